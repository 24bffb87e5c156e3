"""Compare variants: per-variant tau-b with a bootstrap interval, the difference to the baseline
with a paired bootstrap interval, and a plain verdict.

The bootstrap resamples each run's comparisons with replacement (stratified by run, so every
repeat keeps its size), pools a variant's runs and refits Bradley–Terry; tau-b is taken against
the expert grades of the same anchors. Resample b of a variant is paired with resample b of the
baseline, so the interval of the difference comes from ``tau_v[b] - tau_base[b]``. A variant is
``better`` or ``worse`` when that 95 % interval excludes 0, else ``no detectable difference``.
"""

from __future__ import annotations

import math
import statistics
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from pytest_eng5.compare.bootstrap import (
    FloatArray,
    fit_bt_batch,
    percentile_interval,
    resample_counts,
    stable_rng,
    tau_b_batch,
    win_matrix,
)
from pytest_eng5.compare.runs import CompareInputError, VariantRun
from pytest_eng5.runner.alignment import AlignmentComparison, AlignmentResult, build_alignment
from pytest_eng5.runner.bt_model import Comparison, fit_maximum_likelihood
from pytest_eng5.runner.diagnostics import position_bias

DEFAULT_RESAMPLES = 1000
DEFAULT_SEED = 0
LEVEL = 0.95
BETTER, WORSE, NO_DIFFERENCE = "better", "worse", "no detectable difference"


@dataclass(frozen=True)
class Difference:
    """A variant's tau-b minus the baseline's, its paired bootstrap interval and the verdict."""

    difference: float
    low: float
    high: float
    verdict: str


@dataclass(frozen=True)
class VariantSummary:
    """Everything the report shows for one variant (its runs pooled)."""

    variant: str
    is_baseline: bool
    batch_uuids: tuple[str, ...]
    settings: dict[str, object]
    tau_b: float
    tau_b_low: float
    tau_b_high: float
    inverted_comparisons: int
    inverted_pairs: int
    exact_agreement: float
    within_one_agreement: float
    a_win_share: float
    a_win_low: float
    a_win_high: float
    ssr: float | None
    comparisons: int
    failed_comparisons: int
    tokens: int
    cost_usd: float
    duration_s: float | None
    repeat_tau_b: tuple[float, ...]
    vs_baseline: Difference | None

    @property
    def runs(self) -> int:
        return len(self.batch_uuids)

    @property
    def repeat_sd(self) -> float | None:
        return statistics.stdev(self.repeat_tau_b) if len(self.repeat_tau_b) > 1 else None


@dataclass(frozen=True)
class ExperimentComparison:
    """The variants of one experiment, the baseline first."""

    experiment: str
    baseline: str
    grade_order: tuple[str, ...]
    anchors: int
    variants: tuple[VariantSummary, ...]


@dataclass(frozen=True)
class ComparisonReport:
    """All experiments of a session (or of the folders given)."""

    experiments: tuple[ExperimentComparison, ...]
    resamples: int
    seed: int
    level: float = LEVEL

    def worse(self) -> list[tuple[str, str]]:
        """(experiment, variant) of every variant worse than its baseline."""
        return [
            (e.experiment, v.variant)
            for e in self.experiments
            for v in e.variants
            if v.vs_baseline is not None and v.vs_baseline.verdict == WORSE
        ]


def _alignment(run_judged: Sequence[VariantRun], grades: dict[str, str]) -> AlignmentResult:
    order = run_judged[0].grade_order
    judged = [j for run in run_judged for j in run.judged]
    fit = fit_maximum_likelihood(sorted(grades), [Comparison(j.winner, j.loser) for j in judged])
    return build_alignment(
        grades, order, fit, [AlignmentComparison(j.winner, j.loser) for j in judged]
    )


def _bootstrap_taus(
    runs: Sequence[VariantRun],
    index: dict[str, int],
    grade_x: list[float],
    resamples: int,
    rng: np.random.Generator,
) -> FloatArray:
    n = len(index)
    wins = np.zeros((resamples, n, n))
    for run in runs:
        winners = np.array([index[j.winner] for j in run.judged], dtype=int)
        losers = np.array([index[j.loser] for j in run.judged], dtype=int)
        counts = resample_counts(winners.size, resamples, rng)
        wins += win_matrix(n, winners, losers, counts)
    return tau_b_batch(grade_x, fit_bt_batch(wins))


def _verdict(low: float, high: float) -> str:
    if low > 0:
        return BETTER
    if high < 0:
        return WORSE
    return NO_DIFFERENCE


def _mean(values: Sequence[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return statistics.fmean(known) if known else None


def _check_same_anchors(experiment: str, runs: Sequence[VariantRun]) -> dict[str, str]:
    grades = runs[0].anchor_grades
    for run in runs[1:]:
        if run.anchor_grades != grades or run.grade_order != runs[0].grade_order:
            raise CompareInputError(
                f"experiment {experiment!r}: run {run.batch_uuid} ({run.variant}) used other "
                f"anchors or grades than run {runs[0].batch_uuid} ({runs[0].variant})",
                next_step="compare variants run on the same anchor set and grade scale",
            )
    if len(grades) < 2:
        raise CompareInputError(
            f"experiment {experiment!r}: its runs have fewer than 2 graded anchors",
            next_step="compare anchor-align runs (the anchors' expert grades are the reference)",
        )
    return grades


def _baseline(experiment: str, runs: Sequence[VariantRun], explicit: str | None) -> str:
    variants = sorted({r.variant for r in runs})
    recorded = Counter(r.baseline for r in runs if r.baseline)
    baseline = explicit or (recorded.most_common(1)[0][0] if recorded else variants[0])
    if baseline not in variants:
        raise CompareInputError(
            f"experiment {experiment!r}: baseline {baseline!r} is not among its variants "
            f"({', '.join(variants)})",
            next_step="name one of the variants as the baseline",
        )
    return baseline


def compare_experiment(
    experiment: str,
    runs: Sequence[VariantRun],
    *,
    baseline: str | None = None,
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = DEFAULT_SEED,
) -> ExperimentComparison:
    """Compare the variants of one experiment against its baseline."""
    grades = _check_same_anchors(experiment, runs)
    base = _baseline(experiment, runs, baseline)
    order = runs[0].grade_order
    ids = sorted(grades)
    index = {anchor: i for i, anchor in enumerate(ids)}
    grade_x = [float(order.index(grades[a])) for a in ids]
    by_variant: dict[str, list[VariantRun]] = defaultdict(list)
    for run in sorted(runs, key=lambda r: (r.repeat, r.batch_uuid)):
        by_variant[run.variant].append(run)
    names = [base, *sorted(v for v in by_variant if v != base)]
    taus = {
        name: _bootstrap_taus(
            by_variant[name], index, grade_x, resamples, stable_rng(seed, experiment, name)
        )
        for name in names
    }
    summaries = []
    points: dict[str, float] = {}
    for name in names:
        variant_runs = by_variant[name]
        pooled = _alignment(variant_runs, grades)
        points[name] = pooled.tau_b
        low, high = percentile_interval(taus[name], LEVEL)
        judged = [j for run in variant_runs for j in run.judged]
        position = position_bias(
            [Comparison(j.winner, j.loser, position_a_won=j.winner_was_a) for j in judged]
        )
        difference = None
        if name != base:
            d_low, d_high = percentile_interval(taus[name] - taus[base], LEVEL)
            difference = Difference(
                pooled.tau_b - points[base], d_low, d_high, _verdict(d_low, d_high)
            )
        summaries.append(
            VariantSummary(
                variant=name,
                is_baseline=name == base,
                batch_uuids=tuple(r.batch_uuid for r in variant_runs),
                settings=dict(variant_runs[0].settings),
                tau_b=pooled.tau_b,
                tau_b_low=low,
                tau_b_high=high,
                inverted_comparisons=pooled.inverted_comparisons,
                inverted_pairs=len(pooled.inversions),
                exact_agreement=pooled.exact_agreement,
                within_one_agreement=pooled.within_one_agreement,
                a_win_share=position.share if position else math.nan,
                a_win_low=position.ci_low if position else math.nan,
                a_win_high=position.ci_high if position else math.nan,
                ssr=_mean([r.ssr for r in variant_runs]),
                comparisons=sum(r.comparisons for r in variant_runs),
                failed_comparisons=sum(r.failed_comparisons for r in variant_runs),
                tokens=sum(r.tokens for r in variant_runs),
                cost_usd=sum(r.cost_usd for r in variant_runs),
                duration_s=_mean([r.duration_s for r in variant_runs]),
                repeat_tau_b=tuple(_alignment([r], grades).tau_b for r in variant_runs),
                vs_baseline=difference,
            )
        )
    return ExperimentComparison(experiment, base, order, len(ids), tuple(summaries))


def compare_runs(
    runs: Sequence[VariantRun],
    *,
    baseline: str | None = None,
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = DEFAULT_SEED,
) -> ComparisonReport:
    """Compare every experiment found in ``runs``."""
    if resamples < 100:
        raise CompareInputError(
            f"{resamples} bootstrap resamples are too few for a 95 % interval",
            next_step="use at least 100 (1000 is the default)",
        )
    experiments: dict[str, list[VariantRun]] = defaultdict(list)
    for run in runs:
        experiments[run.experiment].append(run)
    return ComparisonReport(
        tuple(
            compare_experiment(
                name, experiments[name], baseline=baseline, resamples=resamples, seed=seed
            )
            for name in sorted(experiments)
        ),
        resamples,
        seed,
    )
