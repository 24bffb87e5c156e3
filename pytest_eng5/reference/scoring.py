"""Bradley–Terry scoring and the continuation decision of the reference CJ worker (§E.9, §E.10).

Scores as HuleEdu's CJ service computes them, written here on purpose rather than shared with the
runner's statistics (the verifier must not agree with the fake by construction):
``choix.ilsr_pairwise(n, data, alpha=0.01)`` over every essay of the batch, mean-centred; SEs from
the Fisher information with one reference item (the last anchor, else the last essay) fixed at
SE 0, the rest from the pseudo-inverse of the reduced matrix, capped at 2.0. Only successful
comparisons count. The decision after a wave follows HuleEdu's ``workflow_decision``, with one
addition that removes the stall hazard: when the pair planner has nothing left to ask (coverage
and the allowed resampling passes are done) that counts as a cap, so the batch finalises instead
of waiting for a monitor sweep.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Final

import numpy as np
from numpy.typing import NDArray

BT_ALPHA: Final = 0.01
SE_CAP: Final = 2.0
MIN_COMPARISONS_FOR_STABILITY_CHECK: Final = 12
SCORE_STABILITY_THRESHOLD: Final = 0.025
MIN_SUCCESS_RATE_THRESHOLD: Final = 0.8


@dataclass(frozen=True)
class BTScores:
    """Scores of one batch: mean-centred abilities and SEs per essay id."""

    theta: Mapping[str, float]
    se: Mapping[str, float]
    reference_id: str
    #: connected groups among the compared essays (1 = one scale)
    n_components: int


def fit_scores(
    essay_ids: Sequence[str],
    outcomes: Sequence[tuple[str, str]],
    anchor_ids: Collection[str] = (),
) -> BTScores | None:
    """BT scores over ``essay_ids`` from ``(winner, loser)`` outcomes; None without any outcome."""
    if not outcomes:
        return None
    import choix  # imports scipy.stats: only when a batch is scored

    index = {essay_id: i for i, essay_id in enumerate(essay_ids)}
    pairs = [(index[winner], index[loser]) for winner, loser in outcomes]
    raw = np.asarray(choix.ilsr_pairwise(len(index), pairs, alpha=BT_ALPHA), dtype=float)
    theta = raw - raw.mean()
    anchors = [i for essay_id, i in index.items() if essay_id in anchor_ids]
    reference = anchors[-1] if anchors else len(index) - 1
    se = _standard_errors(theta, pairs, reference)
    return BTScores(
        theta={essay_id: float(theta[i]) for essay_id, i in index.items()},
        se={essay_id: float(se[i]) for essay_id, i in index.items()},
        reference_id=essay_ids[reference],
        n_components=_components(pairs),
    )


def _standard_errors(
    theta: NDArray[np.float64], pairs: Sequence[tuple[int, int]], reference: int
) -> NDArray[np.float64]:
    """SEs from the Fisher information with ``reference`` held fixed (SE 0), capped at SE_CAP."""
    n = theta.size
    information = np.zeros((n, n))
    for winner, loser in pairs:
        p = 1.0 / (1.0 + np.exp(theta[loser] - theta[winner]))
        weight = p * (1.0 - p)
        information[winner, winner] += weight
        information[loser, loser] += weight
        information[winner, loser] -= weight
        information[loser, winner] -= weight
    # An essay without a comparison carries no information: it gets the cap, not pinv's 0.
    se = np.where(np.diag(information) > 0.0, 0.0, SE_CAP)
    free = [i for i in range(n) if i != reference and information[i, i] > 0.0]
    if free:
        covariance = np.linalg.pinv(information[np.ix_(free, free)])
        se[free] = np.sqrt(np.clip(np.diag(covariance), 0.0, None))
    return np.minimum(se, SE_CAP)


def _components(pairs: Sequence[tuple[int, int]]) -> int:
    """How many connected groups the compared essays form."""
    parent: dict[int, int] = {}

    def root(item: int) -> int:
        parent.setdefault(item, item)
        while parent[item] != item:
            parent[item] = parent[parent[item]]
            item = parent[item]
        return item

    for winner, loser in pairs:
        parent[root(winner)] = root(loser)
    return len({root(item) for item in parent})


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
