"""Comparative-judgement statistics: Bradley–Terry fit, SEs, reliability, misfit, Kendall tau.

Pure functions on choix + numpy: no I/O, no pytest. Definitions follow the CJ literature
(Pollitt 2012; Verhavert et al. 2018; Kinnear, Jones & Davies 2025):

* BT abilities come from ``choix.ilsr_pairwise(n, data, alpha)`` (``alpha`` adds that many
  virtual comparisons between every pair of compared items, which keeps all-win or all-loss
  scripts finite) and are mean-centred.
* Standard errors come from the Fisher information of the BT likelihood,
  ``I_ii = Σ_j n_ij p_ij (1 − p_ij)`` and ``I_ij = −n_ij p_ij (1 − p_ij)``. That matrix is a
  graph Laplacian whose null space is the all-ones vector, so the covariance of the
  sum-to-zero-constrained estimate is its Moore–Penrose **pseudo-inverse**. Every item gets an
  SE; unlike the upstream CJ service, no reference item is pinned to SE 0. The ``alpha``
  pseudo-counts are not part of the information (they are a regulariser, not data).
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import connected_components

from pytest_eng5.errors import ConfigurationError

FloatArray = NDArray[np.float64]

#: SE reported for an item that took part in no comparison when no ``se_cap`` is given.
UNCOMPARED_SE = 10.0


class StatisticsInputError(ConfigurationError, ValueError):
    """The ids or comparisons given to a statistics function are inconsistent."""

    kind = "statistics-input"


@dataclass(frozen=True)
class Comparison:
    """One successful pairwise judgement."""

    winner: str
    loser: str
    judge: str | None = None


@dataclass(frozen=True)
class BTFit:
    """A Bradley–Terry fit: mean-centred abilities (logits) and their standard errors.

    ``counts`` holds the number of comparisons each id took part in; ``n_components`` is the
    number of connected components of the comparison graph among compared ids (more than 1
    means the relative position of the components is not identified by the data). A fit built
    by hand without ``counts`` treats every id as compared.
    """

    ids: tuple[str, ...]
    theta: dict[str, float]
    se: dict[str, float]
    counts: dict[str, int] = field(default_factory=dict)
    n_components: int = 1
    alpha: float = 0.01

    def ranked(self) -> tuple[str, ...]:
        """Ids by theta, highest first (ties keep the order of ``ids``)."""
        order = {item: index for index, item in enumerate(self.ids)}
        return tuple(sorted(self.ids, key=lambda item: (-self.theta[item], order[item])))

    def compared_ids(self) -> tuple[str, ...]:
        """Ids that took part in at least one comparison."""
        return tuple(item for item in self.ids if self.counts.get(item, 1) > 0)


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


def _index_ids(ids: Sequence[str]) -> dict[str, int]:
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


def _check_comparisons(index: dict[str, int], comparisons: Sequence[Comparison]) -> None:
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


SPLIT_HALF_TOL = 1e-3  # the median r agrees with 1e-8 to 3 decimals, at a third of the cost


def _fit_theta(
    n_items: int,
    pairs: Sequence[tuple[int, int]],
    alpha: float,
    start: FloatArray | None = None,
    tol: float = 1e-8,
) -> tuple[FloatArray, NDArray[np.bool_]]:
    """Mean-centred abilities over compared items; uncompared items get 0.

    Only compared items enter choix, so ``alpha`` never pulls unseen items into the scale.
    ``start`` (one value per item) warm-starts I-LSR; it changes speed, not the optimum.
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
        initial = None if start is None else start[compared]
        sub_theta = np.asarray(
            choix.ilsr_pairwise(n_sub, sub_pairs, alpha=alpha, initial_params=initial, tol=tol),
            dtype=float,
        )
    except RuntimeError as exc:
        raise StatisticsInputError(
            f"the Bradley–Terry fit did not converge with alpha={alpha}: {exc}",
            next_step="use a positive alpha (e.g. 0.01) so all-win/all-loss scripts stay finite",
        ) from exc
    theta[compared] = sub_theta - sub_theta.mean()
    return theta, compared


def _pair_counts(n_items: int, pairs: Sequence[tuple[int, int]]) -> FloatArray:
    counts = np.zeros((n_items, n_items))
    for winner, loser in pairs:
        counts[winner, loser] += 1.0
        counts[loser, winner] += 1.0
    return counts


def _standard_errors(theta: FloatArray, pair_counts: FloatArray) -> FloatArray:
    """SEs from the pseudo-inverse of the Fisher information (sum-to-zero constraint)."""
    diff = theta[:, None] - theta[None, :]
    p = 1.0 / (1.0 + np.exp(-diff))
    weights = pair_counts * p * (1.0 - p)
    information = np.diag(weights.sum(axis=1)) - weights
    covariance = np.asarray(np.linalg.pinv(information, hermitian=True), dtype=np.float64)
    variances: FloatArray = np.clip(np.diag(covariance), 0.0, None)
    return np.sqrt(variances)


def fit_bradley_terry(
    ids: Sequence[str],
    comparisons: Sequence[Comparison],
    alpha: float = 0.01,
    se_cap: float | None = None,
) -> BTFit:
    """Fit BT abilities (mean-centred logits) and Fisher-information SEs.

    Ids without comparisons get theta 0 and SE ``se_cap`` (or ``UNCOMPARED_SE``). All SEs are
    capped at ``se_cap`` when it is given. Unknown ids in ``comparisons`` raise
    :class:`StatisticsInputError` (a ``ValueError``) naming them.
    """
    if alpha < 0:
        raise StatisticsInputError(
            f"alpha must be >= 0, got {alpha}", next_step="use alpha=0.01 (the CJ default)"
        )
    index = _index_ids(ids)
    _check_comparisons(index, comparisons)
    n_items = len(index)
    pairs = [(index[c.winner], index[c.loser]) for c in comparisons]
    theta, compared = _fit_theta(n_items, pairs, alpha)

    pair_counts = _pair_counts(n_items, pairs)
    compared_idx = np.flatnonzero(compared)
    sub_counts = pair_counts[np.ix_(compared_idx, compared_idx)]
    se = np.full(n_items, se_cap if se_cap is not None else UNCOMPARED_SE)
    n_components = 0
    if compared_idx.size:
        se[compared_idx] = _standard_errors(theta[compared_idx], sub_counts)
        n_components = int(connected_components(csr_matrix(sub_counts), directed=False)[0])
    if se_cap is not None:
        se = np.minimum(se, se_cap)

    totals = pair_counts.sum(axis=1)
    return BTFit(
        ids=tuple(index),
        theta={item: float(theta[i]) for item, i in index.items()},
        se={item: float(se[i]) for item, i in index.items()},
        counts={item: int(totals[i]) for item, i in index.items()},
        n_components=n_components,
        alpha=alpha,
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


def _as_pairs(rows: NDArray[np.int_]) -> list[tuple[int, int]]:
    return [(int(w), int(lo)) for w, lo in rows]


def split_half_reliability(
    ids: Sequence[str],
    comparisons: Sequence[Comparison],
    n_splits: int = 100,
    seed: int = 0,
    alpha: float = 0.01,
) -> SplitHalf:
    """Median split-half Pearson r of BT thetas over random splits, plus Spearman–Brown.

    With two or more distinct judge ids the judges are split at random into two halves
    (comparisons without a judge are assigned to a half at random); otherwise the comparisons
    themselves are split at random. r is taken over items compared in both halves; splits
    with fewer than three such items or zero spread are skipped, and ``n_splits`` in the result
    counts the splits used (``median_r`` is NaN when none could be used).
    """
    index = _index_ids(ids)
    _check_comparisons(index, comparisons)
    n_items = len(index)
    pairs = np.array([(index[c.winner], index[c.loser]) for c in comparisons], dtype=int)
    pairs = pairs.reshape(-1, 2)
    judges = sorted({c.judge for c in comparisons if c.judge is not None})
    judge_of = np.array(
        [judges.index(c.judge) if c.judge is not None else -1 for c in comparisons], dtype=int
    )
    full_theta, _ = _fit_theta(n_items, _as_pairs(pairs), alpha)
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
        # Half-data fits only feed a correlation: a looser tolerance keeps 100 splits fast.
        theta_a, seen_a = _fit_theta(
            n_items, _as_pairs(pairs[in_a]), alpha, full_theta, SPLIT_HALF_TOL
        )
        theta_b, seen_b = _fit_theta(
            n_items, _as_pairs(pairs[~in_a]), alpha, full_theta, SPLIT_HALF_TOL
        )
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


def _residuals(
    fit: BTFit, comparisons: Sequence[Comparison]
) -> list[tuple[Comparison, float, float]]:
    """(comparison, squared residual, variance) per comparison under the fitted model.

    Both sides of a comparison share the same values: the winner has x=1 with p = P(win),
    the loser x=0 with 1 − p, and (1 − p)² and p(1 − p) are symmetric in that swap.
    """
    _check_comparisons({item: i for i, item in enumerate(fit.ids)}, comparisons)
    out: list[tuple[Comparison, float, float]] = []
    for c in comparisons:
        p = 1.0 / (1.0 + math.exp(fit.theta[c.loser] - fit.theta[c.winner]))
        out.append((c, (1.0 - p) ** 2, p * (1.0 - p)))
    return out


def _fit_stats(groups: dict[str, list[tuple[float, float]]]) -> dict[str, FitStat]:
    stats: dict[str, FitStat] = {}
    for key, rows in groups.items():
        squared = np.array([r for r, _ in rows])
        variance = np.array([v for _, v in rows])
        stats[key] = FitStat(
            infit=float(squared.sum() / variance.sum()),
            outfit=float(np.mean(squared / variance)),
            n=len(rows),
        )
    return stats


def script_fit(fit: BTFit, comparisons: Sequence[Comparison]) -> dict[str, FitStat]:
    """Infit Σ(x−p)²/Σp(1−p) and outfit mean((x−p)²/(p(1−p))) per compared script."""
    groups: dict[str, list[tuple[float, float]]] = defaultdict(list)
    for c, squared, variance in _residuals(fit, comparisons):
        groups[c.winner].append((squared, variance))
        groups[c.loser].append((squared, variance))
    return _fit_stats(groups)


def judge_fit(fit: BTFit, comparisons: Sequence[Comparison]) -> dict[str, FitStat]:
    """Infit and outfit per judge id; comparisons without a judge are skipped."""
    groups: dict[str, list[tuple[float, float]]] = defaultdict(list)
    for c, squared, variance in _residuals(fit, comparisons):
        if c.judge is not None:
            groups[c.judge].append((squared, variance))
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


def _rounded(value: float, digits: int) -> float | None:
    """JSON-ready float: NaN/inf become None."""
    if math.isnan(value) or math.isinf(value):
        return None
    return round(value, digits)


@dataclass(frozen=True)
class RunStatistics:
    """Run-level CJ statistics recorded with every run (spec: practice §2.5)."""

    n_items: int
    n_comparisons: int
    n_judges: int
    n_uncompared: int
    n_components: int
    n_cr: float
    ssr: float
    split_half_r: float
    split_half_spearman_brown: float
    split_half_n: int
    mean_se: float
    max_se: float
    misfit_scripts: tuple[str, ...]
    misfit_judges: tuple[str, ...]
    alpha: float
    script_fits: dict[str, FitStat] = field(default_factory=dict)
    judge_fits: dict[str, FitStat] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready values: reliabilities and SEs to 4 dp, N_CR to 2 dp, NaN → None."""
        return {
            "n_items": self.n_items,
            "n_comparisons": self.n_comparisons,
            "n_judges": self.n_judges,
            "n_uncompared": self.n_uncompared,
            "n_components": self.n_components,
            "n_cr": _rounded(self.n_cr, 2),
            "ssr": _rounded(self.ssr, 4),
            "split_half_r": _rounded(self.split_half_r, 4),
            "split_half_spearman_brown": _rounded(self.split_half_spearman_brown, 4),
            "split_half_n": self.split_half_n,
            "mean_se": _rounded(self.mean_se, 4),
            "max_se": _rounded(self.max_se, 4),
            "misfit_scripts": list(self.misfit_scripts),
            "misfit_judges": list(self.misfit_judges),
            "alpha": self.alpha,
            "script_fit": _fits_dict(self.script_fits),
            "judge_fit": _fits_dict(self.judge_fits),
        }


def _fits_dict(fits: dict[str, FitStat]) -> dict[str, dict[str, Any]]:
    return {
        item: {"infit": _rounded(f.infit, 4), "outfit": _rounded(f.outfit, 4), "n": f.n}
        for item, f in sorted(fits.items())
    }


def _mean_max(values: Iterable[float]) -> tuple[float, float]:
    array = np.fromiter(values, dtype=float)
    if array.size == 0:
        return math.nan, math.nan
    return float(array.mean()), float(array.max())


def summarize(
    ids: Sequence[str],
    comparisons: Sequence[Comparison],
    alpha: float = 0.01,
    seed: int = 0,
    n_splits: int = 100,
) -> RunStatistics:
    """Fit BT and compute every run-level statistic; SE summaries cover compared items only."""
    fit = fit_bradley_terry(ids, comparisons, alpha=alpha)
    halves = split_half_reliability(ids, comparisons, n_splits=n_splits, seed=seed, alpha=alpha)
    compared = fit.compared_ids()
    mean_se, max_se = _mean_max(fit.se[item] for item in compared)
    judge_ids = {c.judge for c in comparisons if c.judge is not None}
    scripts = script_fit(fit, comparisons)
    judges = judge_fit(fit, comparisons)
    return RunStatistics(
        n_items=len(fit.ids),
        n_comparisons=len(comparisons),
        n_judges=len(judge_ids),
        n_uncompared=len(fit.ids) - len(compared),
        n_components=fit.n_components,
        n_cr=n_cr(len(fit.ids), len(comparisons)),
        ssr=ssr(fit),
        split_half_r=halves.median_r,
        split_half_spearman_brown=halves.spearman_brown,
        split_half_n=halves.n_splits,
        mean_se=mean_se,
        max_se=max_se,
        misfit_scripts=misfits(scripts),
        misfit_judges=misfits(judges),
        alpha=alpha,
        script_fits=scripts,
        judge_fits=judges,
    )
