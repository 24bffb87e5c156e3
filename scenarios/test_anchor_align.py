"""anchor-align-test: anchors judged as students; the alignment report and plot are written."""

from __future__ import annotations

import pytest
from matplotlib import image

from pytest_eng5.runner.alignment import PLOT_SIZE_PX

pytestmark = [pytest.mark.eng5_execute, pytest.mark.eng5_scenario("anchor-align")]


def test_anchor_alignment_report_and_plot(eng5_runner_factory, request_watch, request) -> None:
    runner = eng5_runner_factory(batch_label="eng5-sample-anchor-align", max_comparisons=66)
    result = runner.anchor_align()

    assert result.outcome == "completed"
    (envelope,) = request_watch.new_requests()
    assert envelope.data["assignment_id"] is None, "a guest batch: CJ adds no anchors"
    ids = [e["essay_id"] for e in envelope.data["essays_for_cj"]]
    assert len(ids) == 12
    assert all(essay_id.startswith("student::") and len(essay_id) <= 36 for essay_id in ids)
    assert envelope.data["llm_config_overrides"]["system_prompt_override"], (
        "the built-in prompt is sent, not silently dropped"
    )

    report = (result.evidence_dir / "alignment.md").read_text()
    for section in ("tau-b", "Inversions", "Prompts used"):
        assert section.lower() in report.lower()
    height, width = image.imread(result.evidence_dir / "alignment.png").shape[:2]
    assert (width, height) == PLOT_SIZE_PX
    assert result.alignment["tau_b"] >= 0.6, "the text-feature judge orders the anchors"
    assert ("eng5_tau_b", str(result.alignment["tau_b"])) in request.node.user_properties
