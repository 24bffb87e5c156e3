"""R1: fail fast when the inputs cannot yield a valid CJ comparison batch.

Besides the seed's rules (budget >= 2, at least one possible comparison), a budget that cannot
connect the essays is rejected: CJ scores the essays of one connected comparison graph, and a
graph of N essays needs at least N - 1 comparisons. The budget CJ uses is the requested one,
capped by CJ's own cap (HuleEdu's ``MAX_PAIRWISE_COMPARISONS``, 120).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from math import comb
from typing import Literal

from pytest_eng5.core.names import MAX_PAIRWISE_COMPARISONS
from pytest_eng5.errors import CapacityError

DEFAULT_CJ_CAP = MAX_PAIRWISE_COMPARISONS
#: fewer comparisons per essay than this give a scale too noisy to read (warning only)
MIN_COMPARISONS_PER_ESSAY = 10

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
    cj_cap: int = DEFAULT_CJ_CAP

    @property
    def essays(self) -> int:
        """N: the essays CJ compares (anchor-align sends the anchors only)."""
        if self.mode == "anchor-align-test":
            return self.anchor_count
        return self.anchor_count + self.student_count

    @property
    def budget(self) -> int:
        """B: the comparisons CJ will make at most (the request capped by CJ's cap)."""
        if self.max_comparisons is None:
            return self.cj_cap
        return min(self.max_comparisons, self.cj_cap)

    @property
    def comparisons_per_essay(self) -> float:
        """N_CR = 2B/N: how often each essay is compared when the budget is spent (a budget
        above the distinct pairs is spent on those only)."""
        spent = min(self.budget, self.distinct_pairs)
        return 2 * spent / self.essays if self.essays else 0.0

    def counts_line(self) -> str:
        return (
            f"anchors: {self.anchor_count}, students: {self.student_count}, possible "
            f"comparisons: {self.possible_comparisons}, max comparisons: "
            f"{self.max_comparisons if self.max_comparisons is not None else 'not set'}, "
            f"CJ cap: {self.cj_cap}"
        )


def ensure_budget_setting(max_comparisons: int | None) -> None:
    """The part of R1 that needs no counts: checked before any network call."""
    if max_comparisons is not None and max_comparisons < 2:
        raise CapacityError(
            f"R1 comparison capacity check failed: max comparisons is {max_comparisons}, below 2",
            next_step="set max comparisons to at least 2 (or leave it unset)",
        )


def ensure_comparison_capacity(
    *,
    mode: RunMode,
    anchor_count: int,
    student_count: int,
    max_comparisons: int | None,
    cj_cap: int = DEFAULT_CJ_CAP,
) -> CapacityReport:
    """Check R1 before anything is uploaded or published.

    - ``max_comparisons`` below 2 fails.
    - execute/plan/dry-run need anchors x students >= 1 (anchors: CJ's count when known).
    - anchor-align-test compares anchors among themselves: it needs >= 2 anchors and sends
      no students, so students are not counted.
    - the budget B (``max_comparisons`` capped by ``cj_cap``) must be at least N - 1 for the
      N essays of the batch; below 10 comparisons per essay (2B/N) it warns.
    """
    if mode == "anchor-align-test":
        possible = comb(anchor_count, 2)
        distinct = possible
    else:
        possible = anchor_count * student_count
        distinct = comb(anchor_count + student_count, 2)
    report = CapacityReport(
        mode, anchor_count, student_count, possible, distinct, max_comparisons, cj_cap=cj_cap
    )
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
    if report.essays >= 2 and report.budget < report.essays - 1:
        needed = report.essays - 1
        problems.append(
            f"a budget of {report.budget} comparisons cannot connect {report.essays} essays "
            f"({_essay_counts(report)}): a connected comparison graph needs at least "
            f"{needed}"
        )
        raise_cap = (
            f" and CJ's cap (--eng5-cj-max-comparisons, {cj_cap})" if cj_cap < needed else ""
        )
        fixes.append(
            f"set --eng5-max-comparisons to at least {needed}{raise_cap}, or send fewer essays"
        )
    if problems:
        raise CapacityError(
            f"R1 comparison capacity check failed for {mode}: {'; '.join(problems)} "
            f"({report.counts_line()})",
            next_step="; ".join(fixes),
        )
    warnings = []
    if report.comparisons_per_essay < MIN_COMPARISONS_PER_ESSAY:
        warnings.append(
            f"{report.budget} comparisons for {report.essays} essays give "
            f"{report.comparisons_per_essay:.1f} comparisons per essay (N_CR = 2B/N), fewer than "
            f"{MIN_COMPARISONS_PER_ESSAY}: the scale will be noisy; raise the budget to "
            f"{MIN_COMPARISONS_PER_ESSAY * report.essays // 2} for {MIN_COMPARISONS_PER_ESSAY}"
        )
    if max_comparisons is not None and max_comparisons > distinct:
        warnings.append(
            f"max comparisons {max_comparisons} exceeds the {distinct} distinct pairs of "
            f"{report.essays} essays; HuleEdu CJ can stall until its monitor sweep: set max "
            f"comparisons to {distinct} or less"
        )
    if warnings:
        return dataclasses.replace(report, warning="; ".join(warnings))
    return report


def _essay_counts(report: CapacityReport) -> str:
    if report.mode == "anchor-align-test":
        return f"{report.anchor_count} anchors"
    return f"{report.student_count} students + {report.anchor_count} anchors"
