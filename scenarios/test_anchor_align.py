"""anchor-align-test: the asset folder's anchors judged as students; the alignment report and
plot are written. Whether the judge orders them well is the gate's business
(``--eng5-min-tau-b``); the reference judge's quality is checked in
``test_sample_set_reference_judge.py``."""

from __future__ import annotations

from math import comb

import pytest
from matplotlib import image

from pytest_eng5.core import RUNNER_FALLBACK_GRADE_SCALE
from pytest_eng5.runner.alignment_report import PLOT_SIZE_PX
from pytest_eng5.runner.inventory import collect_inventory

pytestmark = [pytest.mark.eng5_execute, pytest.mark.eng5_scenario("anchor-align")]


def test_anchor_alignment_report_and_plot(
    eng5_runner_factory, eng5_settings, request_watch, request
) -> None:
    scale = eng5_settings.expected_grade_scale or RUNNER_FALLBACK_GRADE_SCALE
    anchors = len(collect_inventory(eng5_settings.assets, grade_scale=scale).anchors)
    budget = min(comb(anchors, 2), eng5_settings.comparison_budget)
    runner = eng5_runner_factory(batch_label="eng5-anchor-align", max_comparisons=budget)
    result = runner.anchor_align()

    assert result.outcome == "completed"
    (envelope,) = request_watch.new_requests()
    assert envelope.data["assignment_id"] is None, "a guest batch: CJ adds no anchors"
    ids = [e["essay_id"] for e in envelope.data["essays_for_cj"]]
    assert len(ids) == anchors
    assert all(essay_id.startswith("student::") and len(essay_id) <= 36 for essay_id in ids)
    assert envelope.data["llm_config_overrides"]["system_prompt_override"], (
        "the built-in prompt is sent, not silently dropped"
    )

    report = (result.evidence_dir / "alignment.md").read_text()
    for section in ("tau-b", "Inversions", "Prompts used"):
        assert section.lower() in report.lower()
    height, width = image.imread(result.evidence_dir / "alignment.png").shape[:2]
    assert (width, height) == PLOT_SIZE_PX
    assert -1.0 <= result.alignment["tau_b"] <= 1.0
    assert ("eng5_tau_b", str(result.alignment["tau_b"])) in request.node.user_properties
