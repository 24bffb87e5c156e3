"""The Bradley–Terry model the harness's statistics are computed from.

:func:`fit_maximum_likelihood` is the unpenalised maximum-likelihood fit. Its one departure
from plain ML concerns data for which no finite maximum exists (an essay that won, or lost,
every comparison): as in R's ``sirt::btm`` (Bertoli-Barsotti, Lando & Punzo 2014), the win
score ``W`` of such an essay over its ``N`` comparisons becomes ``eps + (N − 2·eps)·W/N``
(eps = 0.3), i.e. ``N − eps`` or ``eps``. Here the adjustment is carried by the outcomes of
that essay's comparisons (each loses ``eps/N`` of a win), which keeps the likelihood proper.
A closed group of essays that together won (or lost) all comparisons with the rest is treated
the same way, as one essay. Essays with mixed results are left untouched, so on data with a
finite maximum this is exactly the ML fit (R's ``BradleyTerry2``).

Abilities are mean-centred per connected component of the comparison graph. Everything else
comes from the Fisher information ``I_ii = Σ_j n_ij p_ij (1 − p_ij)``, ``I_ij = −n_ij p_ij
(1 − p_ij)`` at the estimate:

* an essay's SE is ``1/√I_ii``, the information about its own ability (sirt's ``se.theta``,
  which sirt's separation reliability ``mle.rel`` and this module's SSR are built on);
* contrasts θ_a − θ_b use the full covariance: ``I`` is a graph Laplacian (null space:
  constant vectors per component), so the covariance of the sum-to-zero estimate is its
  pseudo-inverse (:meth:`BTFit.contrast_se`, as R's ``BradleyTerry2`` reports).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Final

import numpy as np
from numpy.typing import NDArray
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from pytest_eng5.errors import ConfigurationError

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int_]

#: SE reported for an item that took part in no comparison when no ``se_cap`` is given.
UNCOMPARED_SE: Final = 10.0
#: sirt's default epsilon for the adjusted win score of all-win/all-loss essays.
EXTREME_EPS: Final = 0.3
ML_METHOD: Final = "maximum-likelihood (sirt eps-adjustment for all-win/all-loss essays)"

_MAX_NEWTON_STEPS = 200
_GRADIENT_TOL = 1e-9


class StatisticsInputError(ConfigurationError, ValueError):
    """The ids or comparisons given to a statistics function are inconsistent."""

    kind = "statistics-input"


@dataclass(frozen=True)
class Comparison:
    """One successful pairwise judgement; ``position_a_won`` tells whether the essay
    presented first won (None when the presentation order is unknown)."""

    winner: str
    loser: str
    judge: str | None = None
    position_a_won: bool | None = None


@dataclass(frozen=True)
class BTFit:
    """A Bradley–Terry fit: mean-centred abilities (logits) and their standard errors.

    ``counts`` holds the number of comparisons each id took part in; ``n_components`` is the
    number of connected components of the comparison graph among compared ids (more than 1
    means the relative position of the components is not identified by the data). A fit built
    by hand without ``counts`` treats every id as compared. ``method`` names the estimator.
    """

    ids: tuple[str, ...]
    theta: dict[str, float]
    se: dict[str, float]
    counts: dict[str, int] = field(default_factory=dict)
    n_components: int = 1
    alpha: float = 0.0
    method: str = ML_METHOD
    adjusted: tuple[str, ...] = ()
    information: FloatArray | None = field(default=None, compare=False, repr=False)

    def contrast_se(self, a: str, b: str) -> float:
        """SE of θ_a − θ_b from the pseudo-inverse of the Fisher information."""
        if self.information is None:
            raise StatisticsInputError(
                "this fit carries no Fisher information",
                next_step="use fit_maximum_likelihood for contrast SEs",
            )
        cov = pinv_covariance(self.information)  # on demand: the statistics need no inverse
        i, j = self.ids.index(a), self.ids.index(b)
        return float(np.sqrt(max(cov[i, i] + cov[j, j] - 2.0 * cov[i, j], 0.0)))

    def ranked(self) -> tuple[str, ...]:
        """Ids by theta, highest first (ties keep the order of ``ids``)."""
        order = {item: index for index, item in enumerate(self.ids)}
        return tuple(sorted(self.ids, key=lambda item: (-self.theta[item], order[item])))

    def compared_ids(self) -> tuple[str, ...]:
        """Ids that took part in at least one comparison."""
        return tuple(item for item in self.ids if self.counts.get(item, 1) > 0)


def index_ids(ids: Sequence[str]) -> dict[str, int]:
    """Position of each id; duplicates raise :class:`StatisticsInputError`."""
    index: dict[str, int] = {}
    duplicates: list[str] = []
    for position, item in enumerate(ids):
        if item in index:
            duplicates.append(item)
        index[item] = position
    if duplicates:
        raise StatisticsInputError(
            f"duplicate ids given to the BT fit: {sorted(set(duplicates))}",
            next_step="pass each essay id once",
        )
    return index


def check_comparisons(index: dict[str, int], comparisons: Sequence[Comparison]) -> None:
    """Unknown ids and self-comparisons raise :class:`StatisticsInputError` naming them."""
    unknown = sorted(
        {item for c in comparisons for item in (c.winner, c.loser) if item not in index}
    )
    if unknown:
        raise StatisticsInputError(
            f"comparisons name ids that are not among the fitted ids: {unknown}",
            next_step="add these ids to `ids` or drop the comparisons that name them",
        )
    selfies = sorted({c.winner for c in comparisons if c.winner == c.loser})
    if selfies:
        raise StatisticsInputError(
            f"comparisons pair an essay with itself: {selfies}",
            next_step="drop self-comparisons; they carry no information",
        )


def pair_counts(n_items: int, pairs: Sequence[tuple[int, int]]) -> FloatArray:
    """Symmetric matrix of how often each two items were compared."""
    counts = np.zeros((n_items, n_items))
    for winner, loser in pairs:
        counts[winner, loser] += 1.0
        counts[loser, winner] += 1.0
    return counts


def fisher_information(theta: FloatArray, counts: FloatArray) -> FloatArray:
    """The BT Fisher information (a weighted graph Laplacian) at ``theta``."""
    diff = theta[:, None] - theta[None, :]
    p = 1.0 / (1.0 + np.exp(-diff))
    weights = counts * p * (1.0 - p)
    return np.asarray(np.diag(weights.sum(axis=1)) - weights, dtype=np.float64)


def pinv_covariance(information: FloatArray) -> FloatArray:
    """Covariance of the sum-to-zero estimate: the pseudo-inverse of the information."""
    return np.asarray(np.linalg.pinv(information, hermitian=True), dtype=np.float64)


def standard_errors(theta: FloatArray, counts: FloatArray) -> FloatArray:
    """SEs from the pseudo-inverse of the Fisher information (sum-to-zero per component)."""
    covariance = pinv_covariance(fisher_information(theta, counts))
    variances: FloatArray = np.clip(np.diag(covariance), 0.0, None)
    return np.sqrt(variances)


def _components(n: int, rows: IntArray, cols: IntArray, *, strong: bool) -> tuple[int, IntArray]:
    graph = coo_matrix((np.ones(rows.size), (rows, cols)), shape=(n, n)).tocsr()
    count, labels = connected_components(
        graph, directed=strong, connection="strong" if strong else "weak"
    )
    return int(count), np.asarray(labels, dtype=int)


def adjusted_outcomes(
    n: int,
    winners: IntArray,
    losers: IntArray,
    eps: float = EXTREME_EPS,
    n_weak: int | None = None,
) -> tuple[FloatArray, NDArray[np.bool_]]:
    """The winner's share of each comparison after the eps-adjustment, and which items moved.

    Repeats until every connected component is strongly connected under "had some share of
    a win against": each strongly connected group that won (or lost) all its comparisons with
    the rest gives up (or gains) ``eps`` of its score, spread over those comparisons; a
    comparison is adjusted once per round, smaller groups first.
    """
    share = np.ones(winners.size)
    moved = np.zeros(n, dtype=bool)
    if n_weak is None:
        n_weak, _ = _components(n, winners, losers, strong=False)
    while True:
        partial = share < 1.0
        rows = np.concatenate([winners, losers[partial]])
        cols = np.concatenate([losers, winners[partial]])
        n_strong, labels = _components(n, rows, cols, strong=True)
        if n_strong == n_weak:
            return share, moved
        side_w, side_l = labels[winners], labels[losers]
        cross = side_w != side_l
        claimed = np.zeros(winners.size, dtype=bool)
        sizes = np.bincount(labels, minlength=n_strong)
        for group in sorted(range(n_strong), key=lambda g: (sizes[g], g)):
            as_winner = cross & (side_w == group)
            as_loser = cross & (side_l == group)
            if not (as_winner.any() or as_loser.any()):
                continue
            won_all = not as_loser.any() and bool(np.all(share[as_winner] == 1.0))
            lost_all = not as_winner.any() and bool(np.all(share[as_loser] == 1.0))
            if not (won_all or lost_all):
                continue
            mine = (as_winner | as_loser) & ~claimed
            if not mine.any():
                continue
            total = int((as_winner | as_loser).sum())
            share[mine] -= eps / total
            claimed |= mine
            moved[labels == group] = True


def _log_likelihood(theta: FloatArray, w: IntArray, lo: IntArray, share: FloatArray) -> float:
    diff = theta[w] - theta[lo]
    return float(np.sum(share * diff - np.logaddexp(0.0, diff)))


def newton_fit(
    n: int, winners: IntArray, losers: IntArray, share: FloatArray, labels: IntArray
) -> FloatArray:
    """Maximise the BT log-likelihood with fractional outcomes ``share`` (Newton, line search).

    ``labels`` gives each item's connected component; abilities are centred per component.
    """
    sizes = np.bincount(labels).astype(float)
    gauge = (labels[:, None] == labels[None, :]) / sizes[labels][:, None]
    scores = np.bincount(winners, share, n) + np.bincount(losers, 1.0 - share, n)
    theta = np.zeros(n)
    current = _log_likelihood(theta, winners, losers, share)
    for _ in range(_MAX_NEWTON_STEPS):
        p = 1.0 / (1.0 + np.exp(theta[losers] - theta[winners]))
        gradient = scores - np.bincount(winners, p, n) - np.bincount(losers, 1.0 - p, n)
        if float(np.max(np.abs(gradient))) < _GRADIENT_TOL:
            break
        v = p * (1.0 - p)
        information = np.zeros((n, n))
        np.add.at(information, (winners, losers), -v)
        np.add.at(information, (losers, winners), -v)
        information[np.diag_indices(n)] = np.bincount(winners, v, n) + np.bincount(losers, v, n)
        step = np.linalg.solve(information + gauge, gradient)
        size = 1.0
        while size > 1e-8:
            trial = theta + size * step
            value = _log_likelihood(trial, winners, losers, share)
            if value >= current - 1e-12:
                theta, current = trial, value
                break
            size /= 2.0
        else:
            break
    return np.asarray(theta - (gauge @ theta), dtype=np.float64)


def ml_abilities(
    n_items: int, winners: IntArray, losers: IntArray, eps: float = EXTREME_EPS
) -> tuple[FloatArray, NDArray[np.bool_], NDArray[np.bool_], int]:
    """ML abilities by item index (uncompared items 0), which items were compared, which
    the eps-adjustment moved, and the number of connected components among the compared.
    ``winners``/``losers`` are item indices per comparison."""
    compared = np.zeros(n_items, dtype=bool)
    compared[winners] = True
    compared[losers] = True
    theta = np.zeros(n_items)
    moved = np.zeros(n_items, dtype=bool)
    if winners.size == 0:
        return theta, compared, moved, 0
    position = np.cumsum(compared) - 1
    sub_w, sub_l = position[winners], position[losers]
    n_sub = int(compared.sum())
    n_weak, labels = _components(n_sub, sub_w, sub_l, strong=False)
    share, moved_sub = adjusted_outcomes(n_sub, sub_w, sub_l, eps, n_weak)
    theta[compared] = newton_fit(n_sub, sub_w, sub_l, share, labels)
    moved[compared] = moved_sub
    return theta, compared, moved, n_weak


def fit_maximum_likelihood(
    ids: Sequence[str],
    comparisons: Sequence[Comparison],
    eps: float = EXTREME_EPS,
    se_cap: float | None = None,
) -> BTFit:
    """Unpenalised ML abilities (mean-centred logits) and SEs ``1/√I_ii`` (module docstring).

    Ids without comparisons get theta 0 and SE ``se_cap`` (or ``UNCOMPARED_SE``); all SEs are
    capped at ``se_cap`` when it is given. ``adjusted`` lists the essays whose win score the
    eps-adjustment moved.
    """
    if not 0.0 < eps < 0.5:
        raise StatisticsInputError(
            f"eps must be in (0, 0.5), got {eps}", next_step="use eps=0.3 (sirt's default)"
        )
    index = index_ids(ids)
    check_comparisons(index, comparisons)
    n_items = len(index)
    winners = np.array([index[c.winner] for c in comparisons], dtype=int)
    losers = np.array([index[c.loser] for c in comparisons], dtype=int)
    theta, compared, moved, n_components = ml_abilities(n_items, winners, losers, eps)
    se = np.full(n_items, se_cap if se_cap is not None else UNCOMPARED_SE)
    full_information = np.zeros((n_items, n_items))
    sub = np.flatnonzero(compared)
    if sub.size:
        position = np.cumsum(compared) - 1
        sub_pairs = list(zip(position[winners].tolist(), position[losers].tolist(), strict=True))
        information = fisher_information(theta[sub], pair_counts(sub.size, sub_pairs))
        se[sub] = 1.0 / np.sqrt(np.diag(information))
        full_information[np.ix_(sub, sub)] = information
    if se_cap is not None:
        se = np.minimum(se, se_cap)
    totals = np.bincount(np.concatenate([winners, losers]), minlength=n_items)
    return BTFit(
        ids=tuple(index),
        theta={item: float(theta[i]) for item, i in index.items()},
        se={item: float(se[i]) for item, i in index.items()},
        counts={item: int(totals[i]) for item, i in index.items()},
        n_components=n_components,
        alpha=0.0,
        method=ML_METHOD,
        adjusted=tuple(item for item, i in index.items() if moved[i]),
        information=full_information,
    )
