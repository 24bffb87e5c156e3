"""R1: capacity is checked before anything is uploaded or published."""

from __future__ import annotations

import pytest

from pytest_eng5.errors import CapacityError
from pytest_eng5.runner.capacity import ensure_comparison_capacity


def test_max_comparisons_below_two_fails_with_both_fixes_and_counts() -> None:
    with pytest.raises(CapacityError) as info:
        ensure_comparison_capacity(
            mode="execute", anchor_count=0, student_count=1, max_comparisons=1
        )
    text = str(info.value)
    assert "set max comparisons to at least 2" in text
    assert "add more anchors" in text
    assert "students: 1" in text
    assert "max comparisons: 1" in text


@pytest.mark.parametrize("mode", ["plan", "dry-run", "execute"])
def test_zero_students_fails_even_with_a_valid_max(mode: str) -> None:
    with pytest.raises(CapacityError, match="add more student essays"):
        ensure_comparison_capacity(
            mode=mode,
            anchor_count=12,
            student_count=0,  # type: ignore[arg-type]
            max_comparisons=50,
        )


def test_zero_anchors_fails() -> None:
    with pytest.raises(CapacityError, match="no anchors available"):
        ensure_comparison_capacity(
            mode="execute", anchor_count=0, student_count=5, max_comparisons=None
        )


def test_anchor_align_counts_anchor_pairs_and_ignores_students() -> None:
    report = ensure_comparison_capacity(
        mode="anchor-align-test", anchor_count=2, student_count=0, max_comparisons=None
    )
    assert report.possible_comparisons == 1
    with pytest.raises(CapacityError, match="at least 2 anchors, found 1"):
        ensure_comparison_capacity(
            mode="anchor-align-test", anchor_count=1, student_count=30, max_comparisons=None
        )


def test_budget_above_distinct_pairs_warns_with_the_number_to_use() -> None:
    report = ensure_comparison_capacity(
        mode="execute", anchor_count=3, student_count=4, max_comparisons=50
    )
    assert report.distinct_pairs == 21
    assert report.warning is not None
    assert "set max comparisons to 21" in report.warning


def test_valid_inputs_pass_without_warning() -> None:
    report = ensure_comparison_capacity(
        mode="execute", anchor_count=12, student_count=12, max_comparisons=120
    )
    assert report.possible_comparisons == 144
    assert report.comparisons_per_essay == 10.0
    assert report.warning is None


def test_budget_that_cannot_connect_the_essays_fails_with_the_numbers() -> None:
    with pytest.raises(CapacityError) as info:
        ensure_comparison_capacity(
            mode="execute", anchor_count=12, student_count=500, max_comparisons=None
        )
    text = str(info.value)
    assert "a budget of 120 comparisons cannot connect 512 essays" in text
    assert "500 students + 12 anchors" in text
    assert "at least 511" in text
    assert "--eng5-max-comparisons to at least 511" in info.value.next_step
    assert "CJ's cap (--eng5-cj-max-comparisons, 120)" in info.value.next_step


def test_requested_budget_is_capped_by_cj() -> None:
    with pytest.raises(CapacityError, match="a budget of 120 comparisons cannot connect 512"):
        ensure_comparison_capacity(
            mode="execute", anchor_count=12, student_count=500, max_comparisons=5000
        )
    report = ensure_comparison_capacity(
        mode="execute", anchor_count=12, student_count=500, max_comparisons=None, cj_cap=2560
    )
    assert report.budget == 2560
    assert report.warning is None


def test_exactly_n_minus_one_passes_with_a_noise_warning() -> None:
    report = ensure_comparison_capacity(
        mode="execute", anchor_count=12, student_count=24, max_comparisons=35
    )
    assert report.budget == 35
    assert report.warning is not None
    assert "1.9 comparisons per essay (N_CR = 2B/N), fewer than 10" in report.warning
    assert "raise the budget to 180" in report.warning


def test_anchor_align_needs_n_minus_one_anchor_comparisons() -> None:
    with pytest.raises(CapacityError, match="cannot connect 12 essays \\(12 anchors\\)"):
        ensure_comparison_capacity(
            mode="anchor-align-test", anchor_count=12, student_count=0, max_comparisons=10
        )
