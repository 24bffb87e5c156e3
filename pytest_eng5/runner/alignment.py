"""Anchor alignment report for anchor-align-test runs: expert grades against the BT scale.

Fixes the reference runner's report (runner spec §9, §11.18):

* **tau-b** between expert grade index and BT theta handles tied grades; **tau-a** keeps the
  reference runner's normalisation (C − D)/(n(n − 1)/2) so old baselines stay comparable, but
  pairs of anchors with the same grade count 0 here, whereas the reference broke those ties in
  BT order and so counted every one as concordant. A reference value therefore exceeds this
  tau-a by at most ``tied_grade_pairs / (n(n − 1)/2)`` (both numbers are in ``to_dict()``).
* Expected ranks average over tied grades (two B anchors sharing ranks 3 and 4 both get 3.5).
* Inversions are grouped per unordered anchor pair and say how often the lower grade won
  ("k of n comparisons") with the mean confidence of those k judgements and all justifications.
* Exact and ±1-step agreement: anchors sorted by theta (highest first) are given the expert
  grades sorted highest first, position by position (the "BT-order grade"); an anchor agrees
  exactly when its BT-order grade is its expert grade, and within one step when the two grade
  indices differ by at most one.

Only comparisons between two known anchors count; ids missing from ``anchor_grades`` are
ignored. Callers pass successful comparisons only.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pytest_eng5.runner.stats import (
    BTFit,
    StatisticsInputError,
    kendall_tau_a,
    kendall_tau_b,
)


@dataclass(frozen=True)
class AlignmentComparison:
    """One successful judgement between two essays, as the report needs it."""

    winner_id: str
    loser_id: str
    confidence: float | None = None
    justification: str | None = None


@dataclass(frozen=True)
class AnchorRow:
    """One anchor: expert grade against its place on the BT scale."""

    anchor_id: str
    grade: str
    grade_index: int
    theta: float
    se: float
    bt_rank: int
    expected_rank: float
    bt_order_grade: str
    wins: int
    losses: int

    @property
    def win_rate(self) -> float | None:
        total = self.wins + self.losses
        return self.wins / total if total else None


@dataclass(frozen=True)
class InvertedJudgement:
    """One comparison in which the lower-graded anchor won."""

    confidence: float | None
    justification: str | None


@dataclass(frozen=True)
class Inversion:
    """An anchor pair whose lower grade beat the higher grade at least once."""

    higher_id: str
    higher_grade: str
    lower_id: str
    lower_grade: str
    grade_gap: int
    inverted: int
    total: int
    judgements: tuple[InvertedJudgement, ...]

    @property
    def mean_confidence(self) -> float | None:
        values = [j.confidence for j in self.judgements if j.confidence is not None]
        return sum(values) / len(values) if values else None


@dataclass(frozen=True)
class AlignmentResult:
    """Everything the alignment report shows; ``rows`` are sorted by expected rank."""

    grade_order: tuple[str, ...]
    rows: tuple[AnchorRow, ...]
    tau_b: float
    tau_a: float
    tied_grade_pairs: int
    n_comparisons: int
    inversions: tuple[Inversion, ...]
    zero_win: tuple[str, ...]
    exact_agreement: float
    within_one_agreement: float
    missing_anchors: tuple[str, ...]

    @property
    def inverted_comparisons(self) -> int:
        return sum(inversion.inverted for inversion in self.inversions)

    @property
    def exact_matches(self) -> int:
        return sum(1 for row in self.rows if row.bt_order_grade == row.grade)

    @property
    def within_one_matches(self) -> int:
        index = {grade: i for i, grade in enumerate(self.grade_order)}
        return sum(1 for row in self.rows if abs(index[row.bt_order_grade] - row.grade_index) <= 1)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form; NaN becomes None, floats are rounded to 4 dp."""
        return {
            "grade_order": list(self.grade_order),
            "tau_b": _json_float(self.tau_b),
            "tau_a": _json_float(self.tau_a),
            "tied_grade_pairs": self.tied_grade_pairs,
            "n_anchors": len(self.rows),
            "n_comparisons": self.n_comparisons,
            "inverted_pairs": len(self.inversions),
            "inverted_comparisons": self.inverted_comparisons,
            "zero_win": list(self.zero_win),
            "exact_agreement": _json_float(self.exact_agreement),
            "within_one_agreement": _json_float(self.within_one_agreement),
            "missing_anchors": list(self.missing_anchors),
            "anchors": [
                {
                    "anchor_id": row.anchor_id,
                    "grade": row.grade,
                    "theta": _json_float(row.theta),
                    "se": _json_float(row.se),
                    "bt_rank": row.bt_rank,
                    "expected_rank": row.expected_rank,
                    "bt_order_grade": row.bt_order_grade,
                    "wins": row.wins,
                    "losses": row.losses,
                    "win_rate": None if row.win_rate is None else _json_float(row.win_rate),
                }
                for row in self.rows
            ],
            "inversions": [
                {
                    "higher_id": inv.higher_id,
                    "higher_grade": inv.higher_grade,
                    "lower_id": inv.lower_id,
                    "lower_grade": inv.lower_grade,
                    "grade_gap": inv.grade_gap,
                    "inverted": inv.inverted,
                    "total": inv.total,
                    "mean_confidence": (
                        None if inv.mean_confidence is None else _json_float(inv.mean_confidence)
                    ),
                    "judgements": [
                        {"confidence": j.confidence, "justification": j.justification}
                        for j in inv.judgements
                    ],
                }
                for inv in self.inversions
            ],
        }


def _json_float(value: float) -> float | None:
    if math.isnan(value) or math.isinf(value):
        return None
    return round(value, 4)


def _grade_indices(anchor_grades: Mapping[str, str], grade_order: Sequence[str]) -> dict[str, int]:
    index = {grade: i for i, grade in enumerate(grade_order)}
    if len(index) != len(grade_order):
        raise StatisticsInputError(
            f"grade_order lists a grade twice: {list(grade_order)}",
            next_step="pass each grade of the scale once, lowest first",
        )
    unknown = sorted(f"{a}={g!r}" for a, g in anchor_grades.items() if g not in index)
    if unknown:
        raise StatisticsInputError(
            f"anchor grades not on the grade scale {list(grade_order)}: {unknown}",
            next_step="fix the anchor grades or pass the scale the anchors were graded on",
        )
    return {anchor: index[grade] for anchor, grade in anchor_grades.items()}


def _expected_ranks(grade_index: Mapping[str, int]) -> dict[str, float]:
    """Rank 1 = highest grade; anchors sharing a grade share the average of their ranks."""
    values = list(grade_index.values())
    ranks: dict[str, float] = {}
    for anchor, g in grade_index.items():
        higher = sum(1 for v in values if v > g)
        tied = sum(1 for v in values if v == g)
        ranks[anchor] = higher + (tied + 1) / 2
    return ranks


def _inversions(
    comparisons: Sequence[AlignmentComparison],
    anchors: Mapping[str, int],
    anchor_grades: Mapping[str, str],
) -> tuple[Inversion, ...]:
    totals: dict[tuple[str, str], int] = defaultdict(int)
    inverted: dict[tuple[str, str], list[InvertedJudgement]] = defaultdict(list)
    for c in comparisons:
        w, lo = c.winner_id, c.loser_id
        if anchors[w] == anchors[lo]:
            continue
        key = (w, lo) if anchors[w] > anchors[lo] else (lo, w)
        totals[key] += 1
        if anchors[w] < anchors[lo]:
            inverted[key].append(InvertedJudgement(c.confidence, c.justification))
    found = [
        Inversion(
            higher_id=high,
            higher_grade=anchor_grades[high],
            lower_id=low,
            lower_grade=anchor_grades[low],
            grade_gap=anchors[high] - anchors[low],
            inverted=len(judgements),
            total=totals[(high, low)],
            judgements=tuple(judgements),
        )
        for (high, low), judgements in inverted.items()
    ]
    found.sort(key=lambda inv: (-inv.inverted, -inv.grade_gap, inv.higher_id, inv.lower_id))
    return tuple(found)


def build_alignment(
    anchor_grades: Mapping[str, str],
    grade_order: Sequence[str],
    fit: BTFit,
    comparisons: Sequence[AlignmentComparison],
) -> AlignmentResult:
    """Compare expert anchor grades (``grade_order`` lowest → highest) with a BT fit."""
    all_indices = _grade_indices(anchor_grades, grade_order)
    fitted = set(fit.ids)
    anchors = {a: g for a, g in all_indices.items() if a in fitted}
    missing = tuple(sorted(a for a in all_indices if a not in fitted))
    used = [c for c in comparisons if c.winner_id in anchors and c.loser_id in anchors]

    wins: dict[str, int] = defaultdict(int)
    losses: dict[str, int] = defaultdict(int)
    for c in used:
        wins[c.winner_id] += 1
        losses[c.loser_id] += 1

    by_theta = sorted(anchors, key=lambda a: (-fit.theta[a], a))
    grades_high_first = sorted(anchors.values(), reverse=True)
    bt_order_index = {a: grades_high_first[k] for k, a in enumerate(by_theta)}
    expected = _expected_ranks(anchors)
    rows = tuple(
        sorted(
            (
                AnchorRow(
                    anchor_id=a,
                    grade=anchor_grades[a],
                    grade_index=anchors[a],
                    theta=fit.theta[a],
                    se=fit.se[a],
                    bt_rank=k + 1,
                    expected_rank=expected[a],
                    bt_order_grade=grade_order[bt_order_index[a]],
                    wins=wins[a],
                    losses=losses[a],
                )
                for k, a in enumerate(by_theta)
            ),
            key=lambda row: (row.expected_rank, row.bt_rank),
        )
    )

    grade_x = [float(row.grade_index) for row in rows]
    theta_y = [row.theta for row in rows]
    n = len(rows)
    exact = sum(1 for a in anchors if bt_order_index[a] == anchors[a])
    within = sum(1 for a in anchors if abs(bt_order_index[a] - anchors[a]) <= 1)
    return AlignmentResult(
        grade_order=tuple(grade_order),
        rows=rows,
        tau_b=kendall_tau_b(grade_x, theta_y),
        tau_a=kendall_tau_a(grade_x, theta_y),
        tied_grade_pairs=sum(
            1 for i in range(n) for j in range(i + 1, n) if grade_x[i] == grade_x[j]
        ),
        n_comparisons=len(used),
        inversions=_inversions(used, anchors, anchor_grades),
        zero_win=tuple(row.anchor_id for row in rows if row.wins == 0),
        exact_agreement=exact / n if n else math.nan,
        within_one_agreement=within / n if n else math.nan,
        missing_anchors=missing,
    )


# --- Markdown ------------------------------------------------------------------------------
