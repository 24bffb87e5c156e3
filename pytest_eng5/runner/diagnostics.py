"""Judge and design diagnostics for LLM-judged CJ: position bias, an SSR interval, the
comparisons still needed for a target reliability. Pure functions, no I/O."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

import numpy as np

from pytest_eng5.runner.bt_model import Comparison, fit_maximum_likelihood
from pytest_eng5.runner.stats import ssr

#: Reliability targets the run reports the comparisons still needed for.
SSR_TARGETS: Final = (0.8, 0.9)
NEEDS_METHOD: Final = "Spearman–Brown prophecy on N_CR (reliability ∝ comparisons per essay)"
BOOTSTRAP_METHOD: Final = "percentile bootstrap over comparisons (ML refit per resample)"
POSITION_CI_METHOD: Final = "Clopper–Pearson exact binomial"
#: Work bound of the bootstrap: resamples × essays³ (one Newton solve per step) stays under it.
BOOTSTRAP_BUDGET: Final = 4e9
MAX_RESAMPLES: Final = 200
MIN_RESAMPLES: Final = 20


@dataclass(frozen=True)
class PositionBias:
    """How often the essay presented first (position A) won, with a 95 % interval."""

    first_won: int
    n: int
    share: float
    ci_low: float
    ci_high: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "first_won": self.first_won,
            "n": self.n,
            "share": round(self.share, 4),
            "ci_low": round(self.ci_low, 4),
            "ci_high": round(self.ci_high, 4),
            "level": 0.95,
            "method": POSITION_CI_METHOD,
        }


def position_bias(comparisons: Sequence[Comparison]) -> PositionBias | None:
    """Share of comparisons won by the first-presented essay; None when no comparison says
    which essay came first. 0.5 is no bias."""
    from scipy.stats import binomtest

    known = [c.position_a_won for c in comparisons if c.position_a_won is not None]
    if not known:
        return None
    first_won = sum(1 for won in known if won)
    interval = binomtest(first_won, len(known)).proportion_ci(0.95, method="exact")
    return PositionBias(
        first_won=first_won,
        n=len(known),
        share=first_won / len(known),
        ci_low=float(interval.low),
        ci_high=float(interval.high),
    )


@dataclass(frozen=True)
class Interval:
    low: float
    high: float
    n_resamples: int
    seed: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "low": round(self.low, 4),
            "high": round(self.high, 4),
            "level": 0.95,
            "n_resamples": self.n_resamples,
            "seed": self.seed,
            "method": BOOTSTRAP_METHOD,
        }


def bootstrap_resamples(n_items: int) -> int:
    """How many resamples the bootstrap may afford for ``n_items`` essays."""
    affordable = int(BOOTSTRAP_BUDGET / max(n_items, 1) ** 3)
    return max(MIN_RESAMPLES, min(MAX_RESAMPLES, affordable))


def ssr_interval(
    ids: Sequence[str],
    comparisons: Sequence[Comparison],
    seed: int = 0,
    n_resamples: int | None = None,
) -> Interval | None:
    """95 % percentile interval of SSR, resampling the comparisons with replacement (seeded);
    None with fewer than two comparisons."""
    if len(comparisons) < 2:
        return None
    count = n_resamples if n_resamples is not None else bootstrap_resamples(len(ids))
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(count):
        picks = rng.integers(0, len(comparisons), len(comparisons))
        sample = [comparisons[int(i)] for i in picks]
        values.append(ssr(fit_maximum_likelihood(ids, sample)))
    low, high = np.percentile(values, [2.5, 97.5])
    return Interval(float(low), float(high), count, seed)


def comparisons_needed(current_ssr: float, current_n_cr: float, target: float) -> float | None:
    """Comparisons per essay still needed (beyond ``current_n_cr``) to reach ``target`` SSR.

    Spearman–Brown: lengthening by k gives kρ/(1 + (k − 1)ρ), so k = ρ*(1 − ρ)/(ρ(1 − ρ*)).
    0 when the target is met; None when the current SSR is 0 (nothing to project from).
    """
    if current_ssr >= target:
        return 0.0
    if current_ssr <= 0.0 or current_n_cr <= 0.0 or not math.isfinite(current_ssr):
        return None
    factor = target * (1.0 - current_ssr) / (current_ssr * (1.0 - target))
    return current_n_cr * (factor - 1.0)


def needs_dict(current_ssr: float, current_n_cr: float) -> dict[str, Any]:
    """JSON-ready comparisons-per-essay needs for every target, with the method named."""
    needs: dict[str, Any] = {"method": NEEDS_METHOD}
    for target in SSR_TARGETS:
        more = comparisons_needed(current_ssr, current_n_cr, target)
        needs[f"ssr_{target}"] = None if more is None else round(more, 1)
    return needs
