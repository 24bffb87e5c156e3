"""Unit tests of the anchor alignment report (metrics, Markdown, PNG)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from matplotlib.image import imread
from scipy.stats import kendalltau

from pytest_eng5.runner.alignment import AlignmentComparison, build_alignment
from pytest_eng5.runner.alignment_report import PLOT_SIZE_PX, render_markdown, render_plot
from pytest_eng5.runner.stats import BTFit, Comparison, fit_bradley_terry

LEGACY_SCALE = ("F+", "E-", "E+", "D-", "D+", "C-", "C+", "B", "A")


def hand_fit(theta: dict[str, float], se: float = 0.4) -> BTFit:
    return BTFit(ids=tuple(theta), theta=theta, se=dict.fromkeys(theta, se))


def fit_from(ids: list[str], comparisons: list[AlignmentComparison]) -> BTFit:
    return fit_bradley_terry(ids, [Comparison(c.winner_id, c.loser_id) for c in comparisons])


@pytest.fixture
def perfect() -> tuple[dict[str, str], list[AlignmentComparison]]:
    grades = {"a_f": "F+", "a_d": "D+", "a_c": "C+", "a_b": "B", "a_a": "A"}
    order = sorted(grades, key=lambda a: LEGACY_SCALE.index(grades[a]))
    comparisons = [
        AlignmentComparison(high, low, 4.0, "clearer argument")
        for i, low in enumerate(order)
        for high in order[i + 1 :]
        for _ in range(2)
    ]
    return grades, comparisons


def test_perfect_ordering_gives_tau_one_and_no_inversions(
    perfect: tuple[dict[str, str], list[AlignmentComparison]],
) -> None:
    grades, comparisons = perfect
    result = build_alignment(grades, LEGACY_SCALE, fit_from(list(grades), comparisons), comparisons)
    assert result.tau_b == pytest.approx(1.0)
    assert result.tau_a == pytest.approx(1.0)
    assert result.inversions == ()
    assert result.n_comparisons == len(comparisons)
    assert result.exact_agreement == 1.0
    assert [row.anchor_id for row in result.rows] == ["a_a", "a_b", "a_c", "a_d", "a_f"]
    assert [row.bt_rank for row in result.rows] == [1, 2, 3, 4, 5]
    assert result.rows[0].win_rate == 1.0
    # the lowest anchor loses every comparison in a perfect ordering
    assert result.zero_win == ("a_f",)
    assert result.rows[-1].losses == 8


def test_inversion_counted_k_of_n_with_mean_confidence() -> None:
    grades = {"hi": "B", "lo": "C+", "top": "A"}
    comparisons = [
        AlignmentComparison("lo", "hi", 4.0, "more vivid"),
        AlignmentComparison("hi", "lo", 5.0, "better structure"),
        AlignmentComparison("lo", "hi", 3.0, "fewer errors"),
        AlignmentComparison("top", "hi", 5.0, None),
        AlignmentComparison("top", "lo", 5.0, None),
    ]
    result = build_alignment(grades, LEGACY_SCALE, fit_from(list(grades), comparisons), comparisons)
    assert len(result.inversions) == 1
    inversion = result.inversions[0]
    assert (inversion.higher_id, inversion.lower_id) == ("hi", "lo")
    assert (inversion.inverted, inversion.total) == (2, 3)
    assert inversion.mean_confidence == pytest.approx(3.5)
    assert [j.justification for j in inversion.judgements] == ["more vivid", "fewer errors"]
    assert result.inverted_comparisons == 2

    text = render_markdown(result, batch_uuid="u-1", batch_label="b", system_prompt="s", rubric="r")
    assert "| hi (B) | lo (C+) | 2 of 3 comparisons | 3.50 |" in text
    assert "more vivid" in text
    assert "fewer errors" in text


def test_mean_confidence_skips_missing_values() -> None:
    grades = {"hi": "A", "lo": "F+"}
    comparisons = [
        AlignmentComparison("lo", "hi", None, None),
        AlignmentComparison("lo", "hi", 2.0, None),
    ]
    result = build_alignment(grades, LEGACY_SCALE, hand_fit({"hi": 0.1, "lo": -0.1}), comparisons)
    assert result.inversions[0].mean_confidence == pytest.approx(2.0)
    only_none = build_alignment(
        grades, LEGACY_SCALE, hand_fit({"hi": 0.1, "lo": -0.1}), comparisons[:1]
    )
    assert only_none.inversions[0].mean_confidence is None


def test_tied_grades_average_expected_ranks_and_use_tau_b() -> None:
    grades = {"top": "A", "b1": "B", "b2": "B", "low": "C-"}
    theta = {"top": 1.0, "b1": 0.5, "b2": 0.2, "low": -1.7}
    comparisons = [AlignmentComparison("b2", "b1", 3.0, None)]
    result = build_alignment(grades, LEGACY_SCALE, hand_fit(theta), comparisons)

    expected = {row.anchor_id: row.expected_rank for row in result.rows}
    assert expected == {"top": 1.0, "b1": 2.5, "b2": 2.5, "low": 4.0}
    # five concordant pairs, one pair tied in grade only: S = 5, P = 6, Tx = 1, Ty = 0
    assert result.tau_b == pytest.approx(5 / math.sqrt(5 * 6))
    x = [LEGACY_SCALE.index(grades[a]) for a in theta]
    assert result.tau_b == pytest.approx(kendalltau(x, list(theta.values())).statistic)
    assert result.tau_a == pytest.approx(5 / 6)
    assert result.tied_grade_pairs == 1
    # a win between two anchors of the same grade is never an inversion
    assert result.inversions == ()
    assert result.exact_agreement == 1.0

    swapped = build_alignment(
        grades, LEGACY_SCALE, hand_fit({**theta, "b1": 0.2, "b2": 0.5}), comparisons
    )
    assert swapped.tau_b == result.tau_b


def test_exact_and_within_one_step_agreement() -> None:
    grades = {"a": "A", "b": "B", "cp": "C+", "cm": "C-"}
    # BT order a, cm, b, cp is given grades A, B, C+, C-: cm is two steps off, b and cp one
    theta = {"a": 2.0, "cm": 1.0, "b": 0.0, "cp": -1.0}
    result = build_alignment(grades, LEGACY_SCALE, hand_fit(theta), [])
    bt_grade = {row.anchor_id: row.bt_order_grade for row in result.rows}
    assert bt_grade == {"a": "A", "cm": "B", "b": "C+", "cp": "C-"}
    assert result.exact_agreement == pytest.approx(1 / 4)
    assert result.within_one_agreement == pytest.approx(3 / 4)


def test_zero_win_anchors_include_uncompared_ones() -> None:
    grades = {"x": "A", "y": "B", "z": "C+"}
    comparisons = [
        AlignmentComparison("x", "y", 4.0, None),
        AlignmentComparison("y", "x", 2.0, None),
    ]
    result = build_alignment(
        grades, LEGACY_SCALE, hand_fit({"x": 0.3, "y": -0.3, "z": 0.0}), comparisons
    )
    assert result.zero_win == ("z",)
    row = next(r for r in result.rows if r.anchor_id == "z")
    assert (row.wins, row.losses, row.win_rate) == (0, 0, None)
    text = render_markdown(result, batch_uuid="u", batch_label="b", system_prompt=None, rubric=None)
    assert "- z (C+): 0 wins in 0 comparisons" in text


def test_ids_outside_anchor_grades_are_ignored_and_missing_anchors_listed() -> None:
    grades = {"x": "A", "y": "B", "gone": "C-"}
    comparisons = [
        AlignmentComparison("student", "x", 5.0, None),
        AlignmentComparison("x", "y", 4.0, None),
    ]
    result = build_alignment(
        grades, LEGACY_SCALE, hand_fit({"x": 1.0, "y": 0.0, "student": 2.0}), comparisons
    )
    assert [row.anchor_id for row in result.rows] == ["x", "y"]
    assert result.n_comparisons == 1
    assert result.rows[0].losses == 0
    assert result.missing_anchors == ("gone",)


def test_unknown_grade_is_rejected_with_its_anchor_named() -> None:
    with pytest.raises(ValueError, match=r"odd='A\+'"):
        build_alignment({"odd": "A+", "ok": "A"}, LEGACY_SCALE, hand_fit({"ok": 0.0}), [])


def test_markdown_sections_and_prompt_texts(
    perfect: tuple[dict[str, str], list[AlignmentComparison]],
) -> None:
    grades, comparisons = perfect
    result = build_alignment(grades, LEGACY_SCALE, fit_from(list(grades), comparisons), comparisons)
    text = render_markdown(
        result,
        batch_uuid="0b6f8d3e-1111-4222-8333-944455556666",
        batch_label="eng5-align",
        system_prompt="You are an impartial examiner. Use ```fences``` sparingly.",
        rubric="Judge | content and language",
    )
    for heading in (
        "# Anchor Alignment Report: eng5-align",
        "## Summary",
        "## Per-anchor results",
        "## Inversions",
        "## Zero-win anchors",
        "## Prompts used",
        "### System prompt",
        "### Judge rubric",
    ):
        assert heading in text
    assert "0b6f8d3e-1111-4222-8333-944455556666" in text
    assert "| Kendall tau-b (expert grade vs BT theta) | 1.000 |" in text
    assert "| Exact grade agreement | 100.0% (5 of 5) |" in text
    assert "You are an impartial examiner. Use ```fences``` sparingly." in text
    assert "````text" in text
    assert "Judge | content and language" in text
    assert "(built-in CJ system prompt)" not in text

    default = render_markdown(
        result, batch_uuid="u", batch_label="l", system_prompt=None, rubric=None
    )
    assert "(built-in CJ system prompt)" in default


def test_table_cells_escape_pipes() -> None:
    grades = {"hi": "A", "lo": "E-"}
    comparisons = [AlignmentComparison("lo", "hi", 1.0, "a | b\nnext line")]
    result = build_alignment(grades, LEGACY_SCALE, hand_fit({"hi": 0.0, "lo": 0.1}), comparisons)
    text = render_markdown(result, batch_uuid="u", batch_label="l", system_prompt=None, rubric=None)
    assert "a \\| b next line" in text


def test_to_dict_is_json_ready(perfect: tuple[dict[str, str], list[AlignmentComparison]]) -> None:
    grades, comparisons = perfect
    result = build_alignment(grades, LEGACY_SCALE, fit_from(list(grades), comparisons), comparisons)
    data = json.loads(json.dumps(result.to_dict(), allow_nan=False))
    assert data["tau_b"] == 1.0
    assert data["n_anchors"] == 5
    assert data["anchors"][0]["anchor_id"] == "a_a"
    lonely = build_alignment({"x": "A"}, LEGACY_SCALE, hand_fit({"x": 0.0}), []).to_dict()
    assert lonely["tau_b"] is None
    json.dumps(lonely, allow_nan=False)


def test_plot_is_a_png_of_the_fixed_size(
    tmp_path: Path, perfect: tuple[dict[str, str], list[AlignmentComparison]]
) -> None:
    grades, comparisons = perfect
    grades = {**grades, "a_b2": "B"}
    comparisons = [*comparisons, AlignmentComparison("a_b2", "a_c", 3.0, None)]
    result = build_alignment(grades, LEGACY_SCALE, fit_from(list(grades), comparisons), comparisons)
    path = tmp_path / "plots" / "alignment.png"
    render_plot(result, path)
    assert path.stat().st_size > 0
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    height, width = imread(path).shape[:2]
    assert (width, height) == PLOT_SIZE_PX
    render_plot(result, path, batch_uuid="b-uuid", batch_label="label")
    assert imread(path).shape[:2] == (PLOT_SIZE_PX[1], PLOT_SIZE_PX[0])
