"""The run report (report.md, scale.png) says what the artefact holds."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.image import imread

from pytest_eng5.runner.alignment_report import readable_id
from pytest_eng5.runner.bt_model import Comparison
from pytest_eng5.runner.report import grade_bands, render_markdown, scale_entries, write_run_report
from pytest_eng5.runner.run_statistics import summarize

UUID = "0a1b2c3d-0000-4000-8000-000000000000"


def artefact_doc(n_students: int = 12, seed: int = 2) -> dict[str, Any]:
    """A small artefact: statistics from a simulated run, bt_summary with anchors/grades."""
    rng = np.random.default_rng(seed)
    students = [f"student_{i:02d}-{UUID[:8]}" for i in range(n_students)]
    anchors = {"ANCHOR_1_x": "E-", "ANCHOR_2_y": "C+", "ANCHOR_3_z": "A"}
    ids = students + list(anchors)
    theta = dict(zip(ids, rng.normal(0.0, 1.5, len(ids)), strict=True))
    comparisons = []
    for _ in range(8 * len(ids)):
        a, b = rng.choice(len(ids), 2, replace=False)
        first, second = ids[a], ids[b]
        a_won = bool(rng.random() < 1 / (1 + np.exp(theta[second] - theta[first])))
        winner, loser = (first, second) if a_won else (second, first)
        comparisons.append(Comparison(winner, loser, "judge-1", a_won))
    statistics = summarize(ids, comparisons, n_splits=5, n_resamples=20).to_dict()
    grades = ["E-", "E+", "D+", "C-", "C+", "B", "A"]
    summary = []
    for essay_id in ids:
        is_anchor = essay_id in anchors
        grade = grades[min(int((theta[essay_id] + 3) / 6 * 7), 6)] if theta[essay_id] > -3 else "F+"
        summary.append(
            {
                "essay_id": essay_id,
                "theta": round(float(theta[essay_id]) / 3, 3),
                "is_anchor": is_anchor,
                "anchor_grade": anchors.get(essay_id),
                "grade_projection": None if is_anchor else grade,
            }
        )
    return {
        "metadata": {
            "batch_uuid": UUID,
            "batch_label": "report-test",
            "runner_mode": "execute",
            "grade_scale": "eng5_np_legacy_9_step",
            "generated_at": "2026-12-02T00:00:00+00:00",
        },
        "bt_summary": summary,
        "statistics": statistics,
    }


def table_value(markdown: str, name: str) -> str:
    match = re.search(rf"^\| {re.escape(name)} \| (.*?) \|$", markdown, re.M)
    assert match, name
    return match.group(1)


def test_report_numbers_are_the_artefact_numbers() -> None:
    doc = artefact_doc()
    stats = doc["statistics"]
    markdown = render_markdown(doc)
    assert UUID in markdown
    assert "report-test" in markdown
    assert table_value(markdown, "SSR") == f"{stats['ssr']:.3f}"
    assert table_value(markdown, "N_CR (comparisons per essay)") == f"{stats['n_cr']:.2f}"
    assert table_value(markdown, "comparison graph components") == str(stats["n_components"])
    interval = table_value(markdown, "SSR 95 % interval")
    assert interval.startswith(f"{stats['ssr_ci_low']:.3f} – {stats['ssr_ci_high']:.3f}")
    assert f"won {stats['position']['first_won']} of {stats['position']['n']}" in markdown
    assert stats["comparisons_needed"]["method"] in markdown
    assert stats["fit"] in markdown
    # the scale table: one row per essay, highest theta first, anchors with their grades
    rows = re.findall(r"^\| (\d+) \| (\S+) \| (\S*) \| (\S*) \| (-?\d+\.\d+) \|", markdown, re.M)
    assert len(rows) == len(stats["scores"])
    thetas = [float(row[4]) for row in rows]
    assert thetas == sorted(thetas, reverse=True)
    by_name = {row[1]: row for row in rows}
    assert by_name["ANCHOR_2_y"][2] == "C+"
    assert by_name["student_00"][4] == f"{stats['scores'][f'student_00-{UUID[:8]}']['theta']:.3f}"


def test_report_files_are_written_and_the_plot_is_a_png(tmp_path: Path) -> None:
    report, plot = write_run_report(artefact_doc(), tmp_path / "evidence")
    assert report.read_text(encoding="utf-8").startswith("# Run report: report-test")
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    height, width = imread(plot).shape[:2]
    assert width == 1200
    assert height >= 500


def test_a_run_without_statistics_still_gets_a_report(tmp_path: Path) -> None:
    doc = {"metadata": {"batch_uuid": UUID, "batch_label": "empty"}, "statistics": {}}
    report, plot = write_run_report(doc, tmp_path)
    assert "No statistics" in report.read_text(encoding="utf-8")
    assert plot.is_file()


def test_grade_bands_follow_the_scale_order_and_cover_their_students() -> None:
    doc = artefact_doc(n_students=30)
    entries = scale_entries(doc)
    order = ("F", "F+", "E-", "E+", "D-", "D+", "C-", "C+", "B", "A")
    bands = grade_bands(entries, order)
    assert [order.index(g) for g, *_ in bands] == sorted(order.index(g) for g, *_ in bands)
    for grade, low, high, count in bands:
        members = [e.theta for e in entries if e.projected_grade == grade and not e.is_anchor]
        assert (low, high, count) == (min(members), max(members), len(members))


def test_readable_ids_drop_prefix_and_batch_suffix() -> None:
    assert readable_id("student::ANCHOR-011-e053d60a", "e053d60a-e0a8") == "ANCHOR-011"
    assert readable_id("student_essay_18-ea191ce9", "ea191ce9-ff49") == "student_essay_18"
    assert readable_id("ANCHOR_12_b92cc46c", "ea191ce9-ff49") == "ANCHOR_12_b92cc46c"
