"""Comparative-judgement statistics: Bradley–Terry fits, reliability, misfit, Kendall tau.

Pure functions on numpy/scipy (+ choix for the CJ-like fit): no I/O, no pytest. Definitions
follow the CJ literature (Pollitt 2012; Verhavert et al. 2018; Kinnear, Jones & Davies 2025).

Two fits:

* :func:`fit_maximum_likelihood` (:mod:`pytest_eng5.runner.bt_model`): the unpenalised ML fit
  with sirt's eps-adjustment for all-win/all-loss essays. The harness's statistics (SSR,
  infit/outfit, split-half, alignment) are computed from it.
* :func:`fit_bradley_terry`: what the CJ service reports, ``choix.ilsr_pairwise`` with a
  small ``alpha``. ``alpha`` is not a number of virtual comparisons: I-LSR adds it to every
  off-diagonal transition rate of its Markov chain, so the fixed point solves
  ``Σ_j (W_ij − n_ij p_ij) = α·n·(w_i − 1)`` with ``w_i = n·e^θ_i / Σ_k e^θ_k`` (n essays).
  The pull toward the mean grows with the number of essays and with the ability, which
  shrinks the spread and biases SSR low. SEs of this fit are the pseudo-inverse of the Fisher
  information at its (shrunk) abilities; ``alpha`` is not part of the information.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import connected_components

from pytest_eng5.runner.bt_model import (
    ML_METHOD,
    UNCOMPARED_SE,
    BTFit,
    Comparison,
    StatisticsInputError,
    check_comparisons,
    fit_maximum_likelihood,
    index_ids,
    ml_abilities,
    pair_counts,
    standard_errors,
)

__all__ = [
    "ML_METHOD",
    "UNCOMPARED_SE",
    "BTFit",
    "Comparison",
    "FitStat",
    "SplitHalf",
    "StatisticsInputError",
    "fit_bradley_terry",
    "fit_maximum_likelihood",
    "judge_fit",
    "kendall_tau_a",
    "kendall_tau_b",
    "misfits",
    "n_cr",
    "script_fit",
    "spearman_brown",
    "split_half_reliability",
    "ssr",
]

FloatArray = NDArray[np.float64]

#: How :func:`fit_bradley_terry` estimates (the CJ service's kind of fit).
REGULARISED_METHOD = "choix I-LSR, alpha-regularised (as the CJ service scores)"


@dataclass(frozen=True)
class SplitHalf:
    """Split-half reliability: median Pearson r over splits and its Spearman–Brown value."""

    median_r: float
    spearman_brown: float
    n_splits: int


@dataclass(frozen=True)
class FitStat:
    """Infit and outfit mean squares over ``n`` comparisons."""

    infit: float
    outfit: float
    n: int


def _fit_theta(
    n_items: int,
    pairs: Sequence[tuple[int, int]],
    alpha: float,
    tol: float = 1e-8,
) -> tuple[FloatArray, NDArray[np.bool_]]:
    """Mean-centred abilities over compared items; uncompared items get 0.

    Only compared items enter choix, so ``alpha`` never pulls unseen items into the scale.
    """
    compared = np.zeros(n_items, dtype=bool)
    for winner, loser in pairs:
        compared[winner] = compared[loser] = True
    theta = np.zeros(n_items)
    sub_index = np.cumsum(compared) - 1
    n_sub = int(compared.sum())
    if n_sub == 0:
        return theta, compared
    sub_pairs = [(int(sub_index[w]), int(sub_index[lo])) for w, lo in pairs]
    import choix  # imports scipy.stats (~1 s): only when a fit is needed

    try:
        sub_theta = np.asarray(
            choix.ilsr_pairwise(n_sub, sub_pairs, alpha=alpha, tol=tol),
            dtype=float,
        )
    except RuntimeError as exc:
        raise StatisticsInputError(
            f"the Bradley–Terry fit did not converge with alpha={alpha}: {exc}",
            next_step="use a positive alpha (e.g. 0.01) so all-win/all-loss scripts stay finite",
        ) from exc
    theta[compared] = sub_theta - sub_theta.mean()
    return theta, compared


def fit_bradley_terry(
    ids: Sequence[str],
    comparisons: Sequence[Comparison],
    alpha: float = 0.01,
    se_cap: float | None = None,
) -> BTFit:
    """The CJ-like fit: choix I-LSR abilities with ``alpha`` (mean-centred) and pinv SEs.

    Ids without comparisons get theta 0 and SE ``se_cap`` (or ``UNCOMPARED_SE``). All SEs are
    capped at ``se_cap`` when it is given. Unknown ids in ``comparisons`` raise
    :class:`StatisticsInputError` (a ``ValueError``) naming them.
    """
    if alpha < 0:
        raise StatisticsInputError(
            f"alpha must be >= 0, got {alpha}", next_step="use alpha=0.01 (the CJ default)"
        )
    index = index_ids(ids)
    check_comparisons(index, comparisons)
    n_items = len(index)
    pairs = [(index[c.winner], index[c.loser]) for c in comparisons]
    theta, compared = _fit_theta(n_items, pairs, alpha)

    counts = pair_counts(n_items, pairs)
    compared_idx = np.flatnonzero(compared)
    sub_counts = counts[np.ix_(compared_idx, compared_idx)]
    se = np.full(n_items, se_cap if se_cap is not None else UNCOMPARED_SE)
    n_components = 0
    if compared_idx.size:
        se[compared_idx] = standard_errors(theta[compared_idx], sub_counts)
        n_components = int(connected_components(csr_matrix(sub_counts), directed=False)[0])
    if se_cap is not None:
        se = np.minimum(se, se_cap)

    totals = counts.sum(axis=1)
    return BTFit(
        ids=tuple(index),
        theta={item: float(theta[i]) for item, i in index.items()},
        se={item: float(se[i]) for item, i in index.items()},
        counts={item: int(totals[i]) for item, i in index.items()},
        n_components=n_components,
        alpha=alpha,
        method=REGULARISED_METHOD,
    )


def ssr(fit: BTFit) -> float:
    """Scale separation reliability (var θ − mean SE²) / var θ over the compared items.

    ``var θ`` is the sample variance (ddof=1, as sirt's ``mle.rel``). The value is clamped to
    [0, 1]: a negative estimate (SEs larger than the spread) means "no reliable separation"
    and is reported as 0; fewer than two compared items or zero spread also give 0. Items
    without comparisons are left out (their SE is a placeholder, not a measurement).
    """
    compared = fit.compared_ids()
    if len(compared) < 2:
        return 0.0
    theta = np.array([fit.theta[item] for item in compared])
    se = np.array([fit.se[item] for item in compared])
    variance = float(np.var(theta, ddof=1))
    if variance <= 0.0:
        return 0.0
    value = (variance - float(np.mean(se**2))) / variance
    return min(1.0, max(0.0, value))


def _pearson(x: FloatArray, y: FloatArray) -> float:
    if x.size < 3 or np.std(x) == 0.0 or np.std(y) == 0.0:
        return math.nan
    return float(np.corrcoef(x, y)[0, 1])


def spearman_brown(r: float) -> float:
    """Spearman–Brown prophecy for doubling the length: 2ρ/(1+ρ); −1 stays −1."""
    if math.isnan(r):
        return math.nan
    if r <= -1.0:
        return -1.0
    return 2.0 * r / (1.0 + r)


def split_half_reliability(
    ids: Sequence[str],
    comparisons: Sequence[Comparison],
    n_splits: int = 100,
    seed: int = 0,
) -> SplitHalf:
    """Median split-half Pearson r of ML BT thetas over random splits, plus Spearman–Brown.

    With two or more distinct judge ids the judges are split at random into two halves
    (comparisons without a judge are assigned to a half at random); otherwise the comparisons
    themselves are split at random. r is taken over items compared in both halves; splits
    with fewer than three such items or zero spread are skipped, and ``n_splits`` in the result
    counts the splits used (``median_r`` is NaN when none could be used).
    """
    index = index_ids(ids)
    check_comparisons(index, comparisons)
    n_items = len(index)
    winners = np.array([index[c.winner] for c in comparisons], dtype=int)
    losers = np.array([index[c.loser] for c in comparisons], dtype=int)
    judges = sorted({c.judge for c in comparisons if c.judge is not None})
    judge_of = np.array(
        [judges.index(c.judge) if c.judge is not None else -1 for c in comparisons], dtype=int
    )
    rng = np.random.default_rng(seed)
    correlations: list[float] = []
    for _ in range(n_splits):
        if len(judges) >= 2:
            half_a_judges = rng.permutation(len(judges))[: len(judges) // 2]
            in_a = np.isin(judge_of, half_a_judges)
            unjudged = judge_of < 0
            in_a[unjudged] = rng.random(int(unjudged.sum())) < 0.5
        else:
            in_a = np.zeros(len(comparisons), dtype=bool)
            in_a[rng.permutation(len(comparisons))[: len(comparisons) // 2]] = True
        theta_a, seen_a, _, _ = ml_abilities(n_items, winners[in_a], losers[in_a])
        theta_b, seen_b, _, _ = ml_abilities(n_items, winners[~in_a], losers[~in_a])
        both = seen_a & seen_b
        r = _pearson(theta_a[both], theta_b[both])
        if not math.isnan(r):
            correlations.append(r)
    if not correlations:
        return SplitHalf(median_r=math.nan, spearman_brown=math.nan, n_splits=0)
    median_r = float(np.median(correlations))
    return SplitHalf(
        median_r=median_r, spearman_brown=spearman_brown(median_r), n_splits=len(correlations)
    )


#: one comparison's residual: squared (x − p)², variance p(1 − p), z² = (x − p)²/(p(1 − p))
_Residual = tuple[float, float, float]


def _residuals(fit: BTFit, comparisons: Sequence[Comparison]) -> list[tuple[Comparison, _Residual]]:
    """(comparison, residual) per comparison under the fitted model.

    Both sides of a comparison share the same values: the winner has x=1 with p = P(win),
    the loser x=0 with 1 − p, and (1 − p)² and p(1 − p) are symmetric in that swap. z² is
    (1 − p)/p = exp(θ_loser − θ_winner), computed so: when the scale separates two essays far
    enough for p to round to 1, the quotient would be 0/0.
    """
    check_comparisons({item: i for i, item in enumerate(fit.ids)}, comparisons)
    out: list[tuple[Comparison, _Residual]] = []
    for c in comparisons:
        z2 = math.exp(fit.theta[c.loser] - fit.theta[c.winner])
        p = 1.0 / (1.0 + z2)
        out.append((c, ((1.0 - p) ** 2, p * (1.0 - p), z2)))
    return out


def _fit_stats(groups: dict[str, list[_Residual]]) -> dict[str, FitStat]:
    stats: dict[str, FitStat] = {}
    for key, rows in groups.items():
        squared, variance, z2 = (np.array(column) for column in zip(*rows, strict=True))
        if variance.sum() > 0:
            infit = float(squared.sum() / variance.sum())
        else:  # every p rounded to 0 or 1: certain outcomes, met (0) or missed (inf)
            infit = math.inf if squared.sum() > 0 else 0.0
        stats[key] = FitStat(
            infit=infit,
            outfit=float(z2.mean()),
            n=len(rows),
        )
    return stats


def script_fit(fit: BTFit, comparisons: Sequence[Comparison]) -> dict[str, FitStat]:
    """Infit Σ(x−p)²/Σp(1−p) and outfit mean((x−p)²/(p(1−p))) per compared script."""
    groups: dict[str, list[_Residual]] = defaultdict(list)
    for c, residual in _residuals(fit, comparisons):
        groups[c.winner].append(residual)
        groups[c.loser].append(residual)
    return _fit_stats(groups)


def judge_fit(fit: BTFit, comparisons: Sequence[Comparison]) -> dict[str, FitStat]:
    """Infit and outfit per judge id; comparisons without a judge are skipped."""
    groups: dict[str, list[_Residual]] = defaultdict(list)
    for c, residual in _residuals(fit, comparisons):
        if c.judge is not None:
            groups[c.judge].append(residual)
    return _fit_stats(groups)


def misfits(stats: dict[str, FitStat]) -> tuple[str, ...]:
    """Keys whose infit exceeds mean + 2 SD (sample SD) of all infits, worst first.

    The outlier inflates the SD it is judged by: out of n values a single one can only pass
    the line when (n − 1)/√n > 2, i.e. with six or more entries. Fewer than three → none.
    """
    if len(stats) < 3:
        return ()
    infits = np.array([s.infit for s in stats.values()])
    limit = float(infits.mean() + 2.0 * infits.std(ddof=1))
    flagged = [key for key, s in stats.items() if s.infit > limit]
    return tuple(sorted(flagged, key=lambda key: -stats[key].infit))


def n_cr(n_items: int, n_comparisons: int) -> float:
    """Comparisons per representation, N_CR = 2·N_C / N_R."""
    if n_items <= 0:
        raise StatisticsInputError(
            f"N_CR needs at least one item, got n_items={n_items}",
            next_step="compute N_CR only for a batch with essays",
        )
    return 2.0 * n_comparisons / n_items


def _concordance(x: Sequence[float], y: Sequence[float]) -> tuple[int, int, int, int, int]:
    """(n, concordant − discordant, pairs, pairs tied in x, pairs tied in y)."""
    if len(x) != len(y):
        raise StatisticsInputError(
            f"Kendall tau needs equal-length inputs, got {len(x)} and {len(y)}",
            next_step="pass one x and one y value per item",
        )
    xa = np.asarray(x, dtype=float)
    ya = np.asarray(y, dtype=float)
    n = xa.size
    upper = np.triu_indices(n, k=1)
    sx = np.sign(xa[:, None] - xa[None, :])[upper]
    sy = np.sign(ya[:, None] - ya[None, :])[upper]
    return (
        n,
        int(np.sum(sx * sy)),
        n * (n - 1) // 2,
        int(np.sum(sx == 0)),
        int(np.sum(sy == 0)),
    )


def kendall_tau_b(x: Sequence[float], y: Sequence[float]) -> float:
    """Kendall's tau-b: (C − D) / √((P − Tx)(P − Ty)); NaN when x or y is constant or n < 2."""
    n, s, pairs, ties_x, ties_y = _concordance(x, y)
    denominator = (pairs - ties_x) * (pairs - ties_y)
    if n < 2 or denominator == 0:
        return math.nan
    return s / math.sqrt(denominator)


def kendall_tau_a(x: Sequence[float], y: Sequence[float]) -> float:
    """Kendall's tau-a: (C − D) / (n(n−1)/2), tied pairs count 0; NaN when n < 2."""
    n, s, pairs, _, _ = _concordance(x, y)
    if n < 2:
        return math.nan
    return s / pairs
