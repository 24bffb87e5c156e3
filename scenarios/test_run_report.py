"""Every completed run writes report.md and scale.png next to its artefact, with its numbers."""

from __future__ import annotations

import json
import re

import pytest

pytestmark = pytest.mark.eng5_scenario("report")


def test_execute_writes_a_report_that_matches_the_artefact(
    eng5_runner_factory, sample, own_cache
) -> None:
    result = eng5_runner_factory(**{**sample, **own_cache, "max_comparisons": 60}).execute()
    folder = result.evidence_dir
    report = (folder / "report.md").read_text(encoding="utf-8")
    assert (folder / "scale.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    doc = json.loads(result.artefact_path.read_text())
    stats = doc["statistics"]
    assert result.batch_uuid in report
    assert re.search(rf"^\| SSR \| {stats['ssr']:.3f} \|$", report, re.M)
    assert re.search(
        rf"^\| N_CR \(comparisons per essay\) \| {stats['n_cr']:.2f} \|$", report, re.M
    )
    assert f"won {stats['position']['first_won']} of {stats['position']['n']}" in report
    assert f"| comparison graph components | {stats['n_components']} |" in report
    # one scale row per compared essay, with the artefact's theta
    rows = re.findall(r"^\| \d+ \| (\S+) \| \S* \| \S* \| (-?\d+\.\d+) \|", report, re.M)
    assert len(rows) == len(stats["scores"])
    assert sorted(float(theta) for _, theta in rows) == sorted(
        round(s["theta"], 3) for s in stats["scores"].values()
    )


def test_anchor_align_writes_the_report_and_the_alignment_plot(eng5_runner_factory) -> None:
    runner = eng5_runner_factory(max_comparisons=40)
    result = runner.anchor_align()
    for name in ("report.md", "scale.png", "alignment.md", "alignment.png"):
        assert (result.evidence_dir / name).is_file(), name
