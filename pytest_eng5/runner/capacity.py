"""R1: fail fast when the inputs cannot yield a valid CJ comparison batch."""

from __future__ import annotations

from dataclasses import dataclass
from math import comb
from typing import Literal

from pytest_eng5.errors import CapacityError

RunMode = Literal["plan", "dry-run", "execute", "anchor-align-test"]


@dataclass(frozen=True)
class CapacityReport:
    """The counts behind an R1 decision, and a warning when the budget is wasted."""

    mode: RunMode
    anchor_count: int
    student_count: int
    possible_comparisons: int
    distinct_pairs: int
    max_comparisons: int | None
    warning: str | None = None

    def counts_line(self) -> str:
        return (
            f"anchors: {self.anchor_count}, students: {self.student_count}, possible "
            f"comparisons: {self.possible_comparisons}, max comparisons: "
            f"{self.max_comparisons if self.max_comparisons is not None else 'not set'}"
        )


def ensure_budget_setting(max_comparisons: int | None) -> None:
    """The part of R1 that needs no counts: checked before any network call."""
    if max_comparisons is not None and max_comparisons < 2:
        raise CapacityError(
            f"R1 comparison capacity check failed: max comparisons is {max_comparisons}, below 2",
            next_step="set max comparisons to at least 2 (or leave it unset)",
        )


def ensure_comparison_capacity(
    *, mode: RunMode, anchor_count: int, student_count: int, max_comparisons: int | None
) -> CapacityReport:
    """Check R1 before anything is uploaded or published.

    - ``max_comparisons`` below 2 fails.
    - execute/plan/dry-run need anchors x students >= 1 (anchors: CJ's count when known).
    - anchor-align-test compares anchors among themselves: it needs >= 2 anchors and sends
      no students, so students are not counted.
    """
    if mode == "anchor-align-test":
        possible = comb(anchor_count, 2)
        distinct = possible
    else:
        possible = anchor_count * student_count
        distinct = comb(anchor_count + student_count, 2)
    report = CapacityReport(mode, anchor_count, student_count, possible, distinct, max_comparisons)
    problems: list[str] = []
    fixes: list[str] = []
    if max_comparisons is not None and max_comparisons < 2:
        problems.append(f"max comparisons is {max_comparisons}, below 2")
        fixes.append("set max comparisons to at least 2 (or leave it unset)")
    if possible < 1:
        if mode == "anchor-align-test":
            problems.append(f"anchor-align needs at least 2 anchors, found {anchor_count}")
            fixes.append("add more anchors to anchor_essays/")
        else:
            if anchor_count == 0:
                problems.append("no anchors available")
                fixes.append("add more anchors (register them with CJ for execute runs)")
            if student_count == 0:
                problems.append("no student essays available")
                fixes.append("add more student essays to student_essays/")
    if problems:
        raise CapacityError(
            f"R1 comparison capacity check failed for {mode}: {'; '.join(problems)} "
            f"({report.counts_line()})",
            next_step="; ".join(fixes),
        )
    if max_comparisons is not None and max_comparisons > distinct:
        warning = (
            f"max comparisons {max_comparisons} exceeds the {distinct} distinct pairs of "
            f"{anchor_count + (0 if mode == 'anchor-align-test' else student_count)} essays; "
            f"HuleEdu CJ can stall until its monitor sweep: set max comparisons to {distinct} "
            "or less"
        )
        return CapacityReport(
            mode, anchor_count, student_count, possible, distinct, max_comparisons, warning
        )
    return report
