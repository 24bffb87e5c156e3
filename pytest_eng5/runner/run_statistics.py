"""The run-level statistics recorded with every run (spec: practice §2.5), from the ML fit."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import numpy as np

from pytest_eng5.runner.bt_model import (
    EXTREME_EPS,
    ML_METHOD,
    BTFit,
    Comparison,
    fit_maximum_likelihood,
)
from pytest_eng5.runner.diagnostics import (
    Interval,
    PositionBias,
    needs_dict,
    position_bias,
    ssr_interval,
)
from pytest_eng5.runner.stats import (
    FitStat,
    judge_fit,
    misfits,
    n_cr,
    script_fit,
    split_half_reliability,
    ssr,
)

#: Where the artefact keeps the scores the CJ service itself reported.
CJ_SCORES_NOTE: Final = (
    "bt_summary holds the CJ service's own scores (alpha-regularised I-LSR); every "
    "statistic here comes from the harness's fit named in `fit`"
)


def _rounded(value: float, digits: int) -> float | None:
    """JSON-ready float: NaN/inf become None."""
    if math.isnan(value) or math.isinf(value):
        return None
    return round(value, digits)


@dataclass(frozen=True)
class RunStatistics:
    """Run-level CJ statistics; ``fit`` is the ML fit they come from."""

    fit: BTFit
    n_comparisons: int
    n_judges: int
    n_cr: float
    ssr: float
    split_half_r: float
    split_half_spearman_brown: float
    split_half_n: int
    mean_se: float
    max_se: float
    misfit_scripts: tuple[str, ...]
    misfit_judges: tuple[str, ...]
    script_fits: dict[str, FitStat] = field(default_factory=dict)
    judge_fits: dict[str, FitStat] = field(default_factory=dict)
    ssr_ci: Interval | None = None
    position: PositionBias | None = None

    @property
    def n_items(self) -> int:
        return len(self.fit.ids)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready values: reliabilities and SEs to 4 dp, N_CR to 2 dp, NaN → None."""
        fit = self.fit
        compared = fit.compared_ids()
        needs = needs_dict(self.ssr, self.n_cr)
        position = self.position
        return {
            "fit": ML_METHOD,
            "fit_eps": EXTREME_EPS,
            "cj_reported_scores": CJ_SCORES_NOTE,
            "n_items": self.n_items,
            "n_comparisons": self.n_comparisons,
            "n_judges": self.n_judges,
            "n_uncompared": self.n_items - len(compared),
            "n_components": fit.n_components,
            "n_cr": _rounded(self.n_cr, 2),
            "ssr": _rounded(self.ssr, 4),
            "ssr_ci_low": None if self.ssr_ci is None else round(self.ssr_ci.low, 4),
            "ssr_ci_high": None if self.ssr_ci is None else round(self.ssr_ci.high, 4),
            "ssr_ci": None if self.ssr_ci is None else self.ssr_ci.to_dict(),
            "split_half_r": _rounded(self.split_half_r, 4),
            "split_half_spearman_brown": _rounded(self.split_half_spearman_brown, 4),
            "split_half_n": self.split_half_n,
            "mean_se": _rounded(self.mean_se, 4),
            "max_se": _rounded(self.max_se, 4),
            "misfit_scripts": list(self.misfit_scripts),
            "misfit_judges": list(self.misfit_judges),
            "position_bias": None if position is None else round(position.share, 4),
            "position_bias_ci_low": None if position is None else round(position.ci_low, 4),
            "position_bias_ci_high": None if position is None else round(position.ci_high, 4),
            "position": None if position is None else position.to_dict(),
            "n_cr_more_for_ssr_0.8": needs["ssr_0.8"],
            "n_cr_more_for_ssr_0.9": needs["ssr_0.9"],
            "comparisons_needed": needs,
            "extreme_adjusted": list(fit.adjusted),
            "scores": {
                item: {
                    "theta": round(fit.theta[item], 4),
                    "se": round(fit.se[item], 4),
                    "comparisons": fit.counts.get(item, 0),
                }
                for item in compared
            },
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
    seed: int = 0,
    n_splits: int = 100,
    n_resamples: int | None = None,
) -> RunStatistics:
    """Fit BT (ML) and compute every run-level statistic; SE summaries cover compared items.

    BLAS runs single-threaded meanwhile: the matrices are small (one row per essay) and a
    threaded BLAS on a loaded machine made each solve 20-50 times slower.
    """
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1, user_api="blas"):
        return _summarize(ids, comparisons, seed, n_splits, n_resamples)


def _summarize(
    ids: Sequence[str],
    comparisons: Sequence[Comparison],
    seed: int,
    n_splits: int,
    n_resamples: int | None,
) -> RunStatistics:
    fit = fit_maximum_likelihood(ids, comparisons)
    halves = split_half_reliability(ids, comparisons, n_splits=n_splits, seed=seed)
    compared = fit.compared_ids()
    mean_se, max_se = _mean_max(fit.se[item] for item in compared)
    judge_ids = {c.judge for c in comparisons if c.judge is not None}
    scripts = script_fit(fit, comparisons)
    judges = judge_fit(fit, comparisons)
    return RunStatistics(
        fit=fit,
        n_comparisons=len(comparisons),
        n_judges=len(judge_ids),
        n_cr=n_cr(len(fit.ids), len(comparisons)),
        ssr=ssr(fit),
        split_half_r=halves.median_r,
        split_half_spearman_brown=halves.spearman_brown,
        split_half_n=halves.n_splits,
        mean_se=mean_se,
        max_se=max_se,
        misfit_scripts=misfits(scripts),
        misfit_judges=misfits(judges),
        script_fits=scripts,
        judge_fits=judges,
        ssr_ci=ssr_interval(ids, comparisons, seed=seed, n_resamples=n_resamples),
        position=position_bias(comparisons),
    )
