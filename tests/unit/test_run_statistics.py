"""Run-level statistics and the judge diagnostics: position bias, SSR interval, needs."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from scipy.stats import binomtest

from pytest_eng5.runner.bt_model import ML_METHOD, Comparison
from pytest_eng5.runner.diagnostics import (
    NEEDS_METHOD,
    bootstrap_resamples,
    comparisons_needed,
    position_bias,
    ssr_interval,
)
from pytest_eng5.runner.results import STATISTICS_PROPERTIES
from pytest_eng5.runner.run_statistics import summarize
from pytest_eng5.runner.stats import spearman_brown


def simulate(
    n_items: int, n_cr_target: int, seed: int, n_judges: int = 6, erratic: str | None = None
) -> tuple[list[str], list[Comparison]]:
    """BT outcomes; the essay shown first wins with its BT probability (no position bias)."""
    rng = np.random.default_rng(seed)
    theta = rng.normal(0.0, 1.5, n_items)
    ids = [f"s{i:02d}" for i in range(n_items)]
    comparisons = []
    for k in range(n_cr_target * n_items // 2):
        a, b = rng.choice(n_items, size=2, replace=False)
        judge = f"j{k % n_judges}"
        p_a = 0.5 if judge == erratic else 1.0 / (1.0 + math.exp(theta[b] - theta[a]))
        a_won = bool(rng.random() < p_a)
        winner, loser = (a, b) if a_won else (b, a)
        comparisons.append(Comparison(ids[winner], ids[loser], judge, a_won))
    return ids, comparisons


def test_position_bias_share_and_exact_interval() -> None:
    comparisons = [Comparison("a", "b", position_a_won=True)] * 30
    comparisons += [Comparison("b", "a", position_a_won=False)] * 10
    comparisons += [Comparison("a", "b")]  # order unknown: not counted
    bias = position_bias(comparisons)
    assert bias is not None
    assert (bias.first_won, bias.n, bias.share) == (30, 40, 0.75)
    reference = binomtest(30, 40).proportion_ci(0.95, method="exact")
    assert (bias.ci_low, bias.ci_high) == pytest.approx((reference.low, reference.high))
    assert bias.ci_low > 0.5  # a real bias is detected
    assert position_bias([Comparison("a", "b")]) is None


def test_comparisons_needed_follow_spearman_brown() -> None:
    more = comparisons_needed(0.6, 10.0, 0.8)
    assert more is not None
    factor = (10.0 + more) / 10.0
    # lengthening by `factor` lifts 0.6 to exactly 0.8
    assert factor * 0.6 / (1 + (factor - 1) * 0.6) == pytest.approx(0.8)
    assert comparisons_needed(0.85, 10.0, 0.8) == 0.0
    assert comparisons_needed(0.0, 10.0, 0.8) is None
    assert spearman_brown(0.6) == pytest.approx(2 * 0.6 / 1.6)


def test_ssr_interval_is_seeded_and_brackets_the_estimate() -> None:
    ids, comparisons = simulate(20, 15, seed=3)
    first = ssr_interval(ids, comparisons, seed=5, n_resamples=40)
    again = ssr_interval(ids, comparisons, seed=5, n_resamples=40)
    stats = summarize(ids, comparisons, n_splits=5, n_resamples=40)
    assert first == again
    assert first is not None
    assert first.low < stats.ssr < first.high
    assert 0.0 <= first.low <= first.high <= 1.0
    assert ssr_interval(ids, comparisons[:1]) is None


def test_bootstrap_cost_is_bounded() -> None:
    assert bootstrap_resamples(30) == 200
    assert bootstrap_resamples(1000) == 20
    assert 20 <= bootstrap_resamples(400) < 200


def test_summarize_is_json_ready_and_names_its_fit() -> None:
    # mean + 2 SD can only flag one judge out of n when (n − 1)/√n > 2, so use eight judges
    ids, comparisons = simulate(24, 40, seed=11, n_judges=8, erratic="j5")
    stats = summarize(ids, comparisons, n_splits=10, n_resamples=30)
    data = json.loads(json.dumps(stats.to_dict(), allow_nan=False))
    assert data["fit"] == ML_METHOD
    assert "alpha-regularised" in data["cj_reported_scores"]
    assert data["n_items"] == len(ids)
    assert data["n_comparisons"] == len(comparisons)
    assert data["n_cr"] == pytest.approx(2 * len(comparisons) / len(ids), abs=0.01)
    assert data["n_judges"] == 8
    assert data["ssr_ci_low"] <= data["ssr"] <= data["ssr_ci_high"]
    assert data["max_se"] >= data["mean_se"] > 0
    assert data["misfit_judges"] == ["j5"]
    assert data["position"]["n"] == len(comparisons)
    assert data["position_bias_ci_low"] <= 0.5 <= data["position_bias_ci_high"]
    assert data["comparisons_needed"]["method"] == NEEDS_METHOD
    assert set(data["scores"]) == set(ids)
    assert set(STATISTICS_PROPERTIES) <= set(data)


def test_summarize_without_comparisons_gives_none_not_nan() -> None:
    data = summarize(["a", "b"], [], n_splits=3).to_dict()
    json.dumps(data, allow_nan=False)
    assert data["n_uncompared"] == 2
    assert data["ssr"] == 0.0
    assert data["split_half_r"] is None
    assert data["ssr_ci"] is None
    assert data["position"] is None
    assert data["n_cr_more_for_ssr_0.8"] is None


def test_position_bias_gate() -> None:
    from pytest_eng5.errors import GateError
    from pytest_eng5.runner.analysis import check_position_bias

    biased = {"position_bias": 0.62, "position_bias_ci_low": 0.55, "position_bias_ci_high": 0.69}
    check_position_bias(None, biased, "b-1")  # no gate configured
    check_position_bias(0.15, biased, "b-1")  # within the limit
    with pytest.raises(GateError, match=r"won 0\.620 .*0\.55-0\.69.*further than 0\.100") as info:
        check_position_bias(0.1, biased, "b-1")
    assert info.value.next_step
    with pytest.raises(GateError, match="could not be computed"):
        check_position_bias(0.1, {"position_bias": None}, "b-1")
