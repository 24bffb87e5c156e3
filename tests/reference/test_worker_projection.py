"""Unit tests of the grade projection (pure; contract §E.11)."""

from __future__ import annotations

import math

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from pytest_eng5.contracts.grade_scales import GradeScale, get_scale
from pytest_eng5.reference.projection import (
    AnchorPoint,
    StudentPoint,
    calibrate,
    confidence_label,
    isotonic_increasing,
    normalized_score,
    project_grades,
)

LEGACY = get_scale("eng5_np_legacy_9_step")
NATIONAL = get_scale("eng5_np_national_9_step")
SWEDISH = get_scale("swedish_8_anchor")


def _ladder(scale_grades: tuple[str, ...], step: float = 1.0) -> list[AnchorPoint]:
    """One anchor per grade, BT scores rising by ``step`` with the grade."""
    n = len(scale_grades)
    return [
        AnchorPoint(f"ANCHOR_{i}", grade, (i - (n - 1) / 2) * step)
        for i, grade in enumerate(scale_grades)
    ]


def test_grade_means_are_strictly_increasing_even_for_inverted_anchors() -> None:
    anchors = [
        AnchorPoint("a1", "A", -1.0),  # the top grade scored low
        AnchorPoint("a2", "F+", 1.0),
        AnchorPoint("a3", "C-", 0.0),
        AnchorPoint("a4", "C-", 0.2),
        AnchorPoint("a5", "C-", -0.2),
    ]
    cal = calibrate(LEGACY, anchors)
    assert cal.grades == ("F", *LEGACY.grades)  # the below-lowest grade is the first component
    assert all(lo < hi for lo, hi in zip(cal.means, cal.means[1:], strict=False))
    bands = cal.bands()
    assert [low for _, low, _ in bands[1:]] == [high for _, _, high in bands[:-1]]
    assert all(low < high for _, low, high in bands)


def test_isotonic_fit_pools_violators() -> None:
    assert isotonic_increasing([1.0, 3.0, 2.0, 4.0], [1, 1, 1, 1]) == [1.0, 2.5, 2.5, 4.0]
    assert isotonic_increasing([3.0, 1.0], [3, 1]) == [2.5, 2.5]


def test_student_gets_the_grade_of_the_band_holding_its_score() -> None:
    anchors = _ladder(LEGACY.grades)
    c_plus = next(a for a in anchors if a.grade == "C+")
    b = next(a for a in anchors if a.grade == "B")
    students = [
        StudentPoint("s1", c_plus.bt_score + 0.1, 0.3),
        StudentPoint("s2", b.bt_score - 0.1, 0.3),
    ]
    summary = project_grades(LEGACY, anchors, students)
    assert summary.projections_available
    assert summary.projections["s1"].primary_grade == "C+"
    assert summary.projections["s2"].primary_grade == "B"
    probabilities = summary.projections["s1"].probabilities
    assert sum(probabilities.values()) == pytest.approx(1.0)
    assert max(probabilities, key=lambda g: probabilities[g]) == "C+"


def test_higher_scores_never_get_lower_grades() -> None:
    anchors = _ladder(LEGACY.grades, step=0.7)
    students = [StudentPoint(f"s{i}", -4.0 + i * 0.25, 0.4) for i in range(33)]
    summary = project_grades(LEGACY, anchors, students)
    order = {grade: i for i, grade in enumerate(LEGACY.grades)}
    order["F"] = -1
    indexes = [order[summary.projections[s.essay_id].primary_grade] for s in students]
    assert indexes == sorted(indexes)


def test_fewer_than_two_distinct_anchor_grades_means_no_projection() -> None:
    anchors = [AnchorPoint("a1", "B", 0.5), AnchorPoint("a2", "B", 0.7)]
    students = [StudentPoint("s1", 0.6, 0.2)]
    summary = project_grades(LEGACY, anchors, students)
    assert not summary.projections_available
    projected = summary.projections["s1"]
    assert (projected.primary_grade, projected.confidence_score, projected.confidence_label) == (
        "U",
        0.0,
        "LOW",
    )


def test_anchor_grades_outside_the_scale_do_not_calibrate() -> None:
    # "F" is the legacy scale's below-lowest grade, not one of its grades.
    anchors = [AnchorPoint("a1", "F", -2.0), AnchorPoint("a2", "B", 1.0)]
    summary = project_grades(LEGACY, anchors, [StudentPoint("s1", 0.0, 0.2)])
    assert not summary.projections_available
    with_two = project_grades(
        LEGACY, [*anchors, AnchorPoint("a3", "E-", -1.0)], [StudentPoint("s1", 0.0, 0.2)]
    )
    assert with_two.projections_available
    assert with_two.anchor_grades == {"a2": "B", "a3": "E-"}


def test_below_lowest_grade_on_eng5_scales() -> None:
    anchors = _ladder(LEGACY.grades)
    lowest = anchors[0].bt_score
    far_below = StudentPoint("far", lowest - 10.0, 0.2)
    just_below = StudentPoint("near", lowest - 0.1, 0.2)
    summary = project_grades(LEGACY, anchors, [far_below, just_below])
    assert summary.projections["far"].primary_grade == "F"
    assert summary.projections["near"].primary_grade == "F+"
    national = project_grades(NATIONAL, _ladder(NATIONAL.grades), [far_below])
    assert national.projections["far"].primary_grade == "0"


def test_scales_without_below_lowest_keep_the_lowest_grade() -> None:
    anchors = _ladder(SWEDISH.grades)
    summary = project_grades(SWEDISH, anchors, [StudentPoint("far", -50.0, 0.2)])
    assert summary.projections["far"].primary_grade == "F"
    assert SWEDISH.below_lowest_grade is None


def test_large_standard_errors_cap_the_confidence() -> None:
    anchors = _ladder(LEGACY.grades, step=3.0)
    top = anchors[-1].bt_score + 5.0
    sure = project_grades(LEGACY, anchors, [StudentPoint("s", top, 0.05)]).projections["s"]
    capped_mid = project_grades(LEGACY, anchors, [StudentPoint("s", top, 1.2)]).projections["s"]
    capped_low = project_grades(LEGACY, anchors, [StudentPoint("s", top, 1.8)]).projections["s"]
    assert sure.confidence_label == "HIGH"
    assert capped_mid.confidence_label in {"MID", "LOW"}
    assert capped_mid.confidence_score < 0.7
    assert capped_low.confidence_label == "LOW"


def test_shrinkage_pulls_one_or_two_anchors_toward_the_expected_position() -> None:
    anchors = [
        AnchorPoint("lo1", "F+", -3.0),
        AnchorPoint("lo2", "F+", -3.2),
        AnchorPoint("lo3", "F+", -2.8),
        AnchorPoint("hi1", "A", 3.0),
        AnchorPoint("hi2", "A", 3.2),
        AnchorPoint("hi3", "A", 2.8),
        AnchorPoint("mid", "C-", 2.5),  # one anchor far above its expected position
    ]
    cal = calibrate(LEGACY, anchors)
    c_minus = cal.grades.index("C-")
    assert cal.means[cal.grades.index("F+")] == pytest.approx(-3.0)  # 3 anchors: their mean
    assert cal.means[-1] == pytest.approx(3.0, abs=0.05)
    assert cal.means[c_minus] < 2.5  # shrunk toward the middle
    # one spread for all grades: the pooled SD of the two three-anchor grades
    assert cal.sds == pytest.approx([0.2] * len(cal.grades))


def test_labels_and_normalized_scores() -> None:
    assert confidence_label(0.7) == "HIGH"
    assert confidence_label(0.4) == "MID"
    assert confidence_label(0.39) == "LOW"
    assert normalized_score("A") == 1.0
    assert normalized_score("C+") == 0.67
    assert normalized_score("F+") == 0.07
    assert normalized_score("7") == 0.0


SCALES = (LEGACY, NATIONAL, SWEDISH)


@st.composite
def batches(draw: st.DrawFn) -> tuple[GradeScale, list[AnchorPoint], list[StudentPoint]]:
    """A scale, 2–20 anchors with at least two distinct grades, and 1–30 students."""
    scale = draw(st.sampled_from(SCALES))
    score = st.floats(-6.0, 6.0, allow_nan=False)
    grades = draw(st.lists(st.sampled_from(scale.grades), min_size=2, max_size=20))
    assume(len(set(grades)) >= 2)
    anchors = [AnchorPoint(f"a{i}", g, draw(score)) for i, g in enumerate(grades)]
    n_students = draw(st.integers(1, 30))
    students = [
        StudentPoint(f"s{i}", draw(st.floats(-12.0, 12.0)), draw(st.floats(0.0, 3.0)))
        for i in range(n_students)
    ]
    return scale, anchors, students


@settings(max_examples=300, deadline=None)
@given(batches())
def test_primary_grade_is_the_most_probable_grade(
    batch: tuple[GradeScale, list[AnchorPoint], list[StudentPoint]],
) -> None:
    scale, anchors, students = batch
    summary = project_grades(scale, anchors, students)
    assert summary.projections_available
    assert summary.calibration is not None
    for student in students:
        projected = summary.projections[student.essay_id]
        probabilities = projected.probabilities
        assert sum(probabilities.values()) == pytest.approx(1.0)
        best = max(probabilities.values())
        assert probabilities[projected.primary_grade] == best, student
        # and it sits in the band the same model gives for this student's SE
        bands = summary.calibration.bands(student.bt_se)
        holding = [g for g, low, high in bands if low <= student.bt_score <= high]
        assert projected.primary_grade in holding or probabilities[holding[0]] == pytest.approx(
            best
        )


@settings(max_examples=100, deadline=None)
@given(batches(), st.floats(0.0, 3.0))
def test_bands_are_monotone_for_every_standard_error(
    batch: tuple[GradeScale, list[AnchorPoint], list[StudentPoint]], se: float
) -> None:
    scale, anchors, _ = batch
    cal = calibrate(scale, [a for a in anchors if a.grade in scale.grades])
    order = {grade: i for i, grade in enumerate(cal.grades)}
    bands = cal.bands(se)
    assert [order[g] for g, _, _ in bands] == sorted(order[g] for g, _, _ in bands)
    assert bands[0][1] == -math.inf
    assert bands[-1][2] == math.inf
