"""Bradley–Terry scoring and the continuation decision of the reference CJ worker (§E.9, §E.10).

Scores: :func:`pytest_eng5.runner.stats.fit_bradley_terry` with alpha 0.01, mean-centred
abilities, Fisher SEs capped at 2.0; only successful comparisons count. The decision after a
wave follows HuleEdu's ``workflow_decision``, with one addition that removes the stall hazard:
when the pair planner has nothing left to ask (coverage and the allowed resampling passes are
done) that counts as a cap, so the batch finalises instead of waiting for a monitor sweep.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Final

from pytest_eng5.runner.stats import BTFit, Comparison, fit_bradley_terry

BT_ALPHA: Final = 0.01
SE_CAP: Final = 2.0
MIN_COMPARISONS_FOR_STABILITY_CHECK: Final = 12
SCORE_STABILITY_THRESHOLD: Final = 0.025
MIN_SUCCESS_RATE_THRESHOLD: Final = 0.8


def fit_scores(essay_ids: Sequence[str], outcomes: Sequence[tuple[str, str]]) -> BTFit | None:
    """BT fit over ``essay_ids`` from ``(winner, loser)`` outcomes; None without any outcome."""
    if not outcomes:
        return None
    comparisons = [Comparison(winner=w, loser=lo) for w, lo in outcomes]
    return fit_bradley_terry(list(essay_ids), comparisons, alpha=BT_ALPHA, se_cap=SE_CAP)


def max_score_change(previous: Mapping[str, float], current: Mapping[str, float]) -> float | None:
    """Largest |Δθ| over essays scored in both waves; None when there is nothing to compare."""
    shared = [key for key in current if key in previous]
    if not shared:
        return None
    return max(abs(current[key] - previous[key]) for key in shared)


class Decision(StrEnum):
    FINALIZE_SCORING = "FINALIZE_SCORING"
    FINALIZE_FAILURE = "FINALIZE_FAILURE"
    REQUEST_MORE_COMPARISONS = "REQUEST_MORE_COMPARISONS"


@dataclass(frozen=True)
class WaveOutcome:
    """Counters and scores after a wave; the inputs of :func:`decide`."""

    submitted: int
    completed: int
    failed: int
    total_budget: int
    score_change: float | None  # None: no previous scores
    pairs_exhausted: bool  # the planner has no further pair to ask

    @property
    def callbacks_received(self) -> int:
        return self.completed + self.failed

    @property
    def success_rate(self) -> float:
        received = self.callbacks_received
        return self.completed / received if received else 0.0

    @property
    def stability_passed(self) -> bool:
        return (
            self.score_change is not None
            and self.callbacks_received >= MIN_COMPARISONS_FOR_STABILITY_CHECK
            and self.score_change <= SCORE_STABILITY_THRESHOLD
            and self.success_rate >= MIN_SUCCESS_RATE_THRESHOLD
        )

    @property
    def callbacks_reached_cap(self) -> bool:
        return self.callbacks_received >= self.total_budget

    @property
    def budget_exhausted(self) -> bool:
        return self.submitted >= self.total_budget

    def details(self) -> dict[str, Any]:
        """The ``low_success_rate`` details of HuleEdu's failed event (contract D.7)."""
        return {
            "callbacks_received": self.callbacks_received,
            "completed_comparisons": self.completed,
            "failed_comparisons": self.failed,
            "success_rate": round(self.success_rate, 4),
            "success_rate_threshold": MIN_SUCCESS_RATE_THRESHOLD,
            "callbacks_reached_cap": self.callbacks_reached_cap,
            "budget_exhausted": self.budget_exhausted,
            "pairs_exhausted": self.pairs_exhausted,
        }


def decide(outcome: WaveOutcome) -> Decision:
    """Low success at a cap → failure; stable or at a cap → finalise; else another wave."""
    any_cap = outcome.callbacks_reached_cap or outcome.budget_exhausted or outcome.pairs_exhausted
    low_success = outcome.completed == 0 or outcome.success_rate < MIN_SUCCESS_RATE_THRESHOLD
    if low_success and any_cap:
        return Decision.FINALIZE_FAILURE
    if outcome.stability_passed or any_cap:
        return Decision.FINALIZE_SCORING
    return Decision.REQUEST_MORE_COMPARISONS
