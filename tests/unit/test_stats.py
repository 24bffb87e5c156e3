"""Unit tests of the CJ statistics module: the CJ-like regularised fit, SSR, split-half,
misfit, Kendall tau. The ML fit has its own tests (test_bt_model.py)."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from scipy.stats import kendalltau, spearmanr

from pytest_eng5.runner.bt_model import BTFit
from pytest_eng5.runner.stats import (
    UNCOMPARED_SE,
    Comparison,
    StatisticsInputError,
    fit_bradley_terry,
    fit_maximum_likelihood,
    judge_fit,
    kendall_tau_a,
    kendall_tau_b,
    misfits,
    n_cr,
    script_fit,
    split_half_reliability,
    ssr,
)


def simulate(
    theta: np.ndarray,
    n_cr_target: int,
    seed: int,
    n_judges: int = 6,
    erratic_judge: str | None = None,
) -> tuple[list[str], list[Comparison]]:
    """Random pairs under the BT model; ``erratic_judge`` (one of the judges) answers by coin."""
    rng = np.random.default_rng(seed)
    ids = [f"s{i:02d}" for i in range(theta.size)]
    judges = [f"j{k}" for k in range(n_judges)]
    comparisons: list[Comparison] = []
    for k in range(n_cr_target * theta.size // 2):
        i, j = rng.choice(theta.size, size=2, replace=False)
        judge = judges[k % n_judges]
        p_i = 0.5 if judge == erratic_judge else 1.0 / (1.0 + math.exp(theta[j] - theta[i]))
        winner, loser = (i, j) if rng.random() < p_i else (j, i)
        comparisons.append(Comparison(ids[winner], ids[loser], judge))
    return ids, comparisons


@pytest.fixture(scope="module")
def true_theta() -> np.ndarray:
    return np.random.default_rng(42).normal(0.0, 1.5, size=24)


# --- Kendall tau -------------------------------------------------------------------------


def test_tau_b_matches_scipy_on_random_data_with_ties() -> None:
    rng = np.random.default_rng(7)
    for _ in range(60):
        n = int(rng.integers(3, 25))
        x = rng.integers(0, 5, size=n).astype(float)
        y = rng.integers(0, 4, size=n).astype(float)
        expected = kendalltau(x, y, variant="b").statistic
        got = kendall_tau_b(list(x), list(y))
        if math.isnan(expected):
            assert math.isnan(got)
        else:
            assert got == pytest.approx(expected, abs=1e-12)


def test_tau_a_and_tau_b_hand_computed_without_ties() -> None:
    # pairs (0,1) and (0,2) concordant, (1,2) discordant → (2 − 1) / 3
    assert kendall_tau_a([1, 2, 3], [1, 3, 2]) == pytest.approx(1 / 3)
    assert kendall_tau_b([1, 2, 3], [1, 3, 2]) == pytest.approx(1 / 3)


def test_tau_a_and_tau_b_hand_computed_with_a_tie() -> None:
    # x ties on pair (0,1); the other two pairs are concordant: S = 2, P = 3, Tx = 1, Ty = 0
    assert kendall_tau_a([1, 1, 2], [1, 2, 3]) == pytest.approx(2 / 3)
    assert kendall_tau_b([1, 1, 2], [1, 2, 3]) == pytest.approx(2 / math.sqrt(2 * 3))


def test_tau_reference_runner_cases() -> None:
    ranks = [1, 2, 3, 4, 5]
    assert kendall_tau_a(ranks, ranks) == 1.0
    assert kendall_tau_a(ranks, ranks[::-1]) == -1.0
    assert kendall_tau_a(ranks, [1, 2, 4, 3, 5]) == pytest.approx(0.8)
    assert kendall_tau_b(ranks, [1, 2, 4, 3, 5]) == pytest.approx(0.8)


def test_tau_degenerate_inputs() -> None:
    assert math.isnan(kendall_tau_b([1, 1, 1], [1, 2, 3]))
    assert math.isnan(kendall_tau_a([1], [1]))
    with pytest.raises(ValueError, match="equal-length"):
        kendall_tau_b([1, 2], [1, 2, 3])


# --- the CJ-like (alpha-regularised) fit -----------------------------------------------


def test_two_items_three_to_one_gives_log_three() -> None:
    comparisons = [Comparison("a", "b")] * 3 + [Comparison("b", "a")]
    fit = fit_bradley_terry(["a", "b"], comparisons, alpha=1e-8)
    assert fit.theta["a"] - fit.theta["b"] == pytest.approx(math.log(3), abs=1e-4)
    assert fit.theta["a"] + fit.theta["b"] == pytest.approx(0.0, abs=1e-12)
    # I = n p (1 − p) = 4 · 0.75 · 0.25; var(θa − θb) = 1/I and θa = (θa − θb)/2 after centring
    assert fit.se["a"] == pytest.approx(math.sqrt(1 / 0.75) / 2, rel=1e-4)
    assert fit.ranked() == ("a", "b")
    assert fit.counts == {"a": 4, "b": 4}


def test_se_equals_explicit_sum_to_zero_constrained_inverse() -> None:
    ids = ["a", "b", "c", "d"]
    record = [("a", "b", 3), ("b", "a", 1), ("b", "c", 2), ("c", "b", 2), ("c", "d", 3)]
    record += [("d", "c", 1), ("a", "c", 2), ("d", "a", 1), ("a", "d", 1)]
    comparisons = [Comparison(w, lo) for w, lo, k in record for _ in range(k)]
    fit = fit_bradley_terry(ids, comparisons)

    theta = np.array([fit.theta[i] for i in ids])
    information = np.zeros((4, 4))
    for w, lo, k in record:
        i, j = ids.index(w), ids.index(lo)
        p = 1 / (1 + math.exp(theta[j] - theta[i]))
        information[i, j] -= k * p * (1 - p)
        information[j, i] -= k * p * (1 - p)
    np.fill_diagonal(information, -information.sum(axis=1))
    # basis of the sum-to-zero subspace: θ = A φ, cov θ = A (Aᵀ I A)⁻¹ Aᵀ
    basis = np.vstack([np.eye(3), -np.ones(3)])
    covariance = basis @ np.linalg.inv(basis.T @ information @ basis) @ basis.T
    assert [fit.se[i] for i in ids] == pytest.approx(np.sqrt(np.diag(covariance)).tolist())


def test_uncompared_id_gets_zero_theta_and_large_or_capped_se() -> None:
    comparisons = [Comparison("a", "b"), Comparison("b", "a"), Comparison("a", "b")]
    fit = fit_bradley_terry(["a", "b", "lonely"], comparisons)
    assert fit.theta["lonely"] == 0.0
    assert fit.se["lonely"] == UNCOMPARED_SE
    assert fit.theta["a"] > 0 > fit.theta["b"]
    assert fit.compared_ids() == ("a", "b")
    capped = fit_bradley_terry(["a", "b", "lonely"], comparisons, se_cap=2.0)
    assert capped.se["lonely"] == 2.0
    assert max(capped.se.values()) <= 2.0


def test_unknown_ids_raise_value_error_naming_them() -> None:
    with pytest.raises(ValueError, match=r"ghost.*phantom|phantom.*ghost") as info:
        fit_bradley_terry(["a"], [Comparison("ghost", "a"), Comparison("a", "phantom")])
    assert isinstance(info.value, StatisticsInputError)
    assert info.value.next_step


def test_duplicate_ids_and_self_comparisons_are_rejected() -> None:
    with pytest.raises(ValueError, match="duplicate"):
        fit_bradley_terry(["a", "a"], [])
    with pytest.raises(ValueError, match="itself"):
        fit_bradley_terry(["a", "b"], [Comparison("a", "a")])


def test_disconnected_comparison_graph_is_reported() -> None:
    comparisons = [Comparison("a", "b"), Comparison("b", "a"), Comparison("c", "d")]
    fit = fit_bradley_terry(["a", "b", "c", "d"], comparisons)
    assert fit.n_components == 2


def test_recovery_of_known_theta(true_theta: np.ndarray) -> None:
    ids, comparisons = simulate(true_theta, n_cr_target=30, seed=1)
    assert n_cr(len(ids), len(comparisons)) >= 20
    fit = fit_maximum_likelihood(ids, comparisons)
    rho = spearmanr([fit.theta[i] for i in ids], true_theta).statistic
    assert rho >= 0.9
    assert sum(fit.theta.values()) == pytest.approx(0.0, abs=1e-9)


# --- reliability ---------------------------------------------------------------------------


def test_ssr_in_unit_interval_and_rising_with_n_cr(true_theta: np.ndarray) -> None:
    values = {}
    for target in (5, 40):
        ids, comparisons = simulate(true_theta, n_cr_target=target, seed=3)
        values[target] = ssr(fit_maximum_likelihood(ids, comparisons))
        assert 0.0 <= values[target] <= 1.0
    assert values[40] > values[5]
    assert values[40] >= 0.8


def test_ssr_is_clamped_to_zero_when_errors_exceed_spread() -> None:
    comparisons = [Comparison("a", "b"), Comparison("b", "a"), Comparison("b", "c")]
    comparisons += [Comparison("c", "b")]
    assert ssr(fit_maximum_likelihood(["a", "b", "c"], comparisons)) == 0.0


def test_split_half_high_for_n_cr_40(true_theta: np.ndarray) -> None:
    ids, comparisons = simulate(true_theta, n_cr_target=40, seed=5)
    result = split_half_reliability(ids, comparisons, n_splits=15, seed=0)
    assert result.n_splits == 15
    assert -1.0 <= result.median_r <= 1.0
    assert result.median_r >= 0.7
    assert result.spearman_brown == pytest.approx(2 * result.median_r / (1 + result.median_r))


def test_split_half_without_judges_splits_comparisons(true_theta: np.ndarray) -> None:
    ids, judged = simulate(true_theta, n_cr_target=20, seed=6)
    comparisons = [Comparison(c.winner, c.loser) for c in judged]
    result = split_half_reliability(ids, comparisons, n_splits=10, seed=1)
    assert result.n_splits == 10
    assert -1.0 <= result.median_r <= 1.0
    again = split_half_reliability(ids, comparisons, n_splits=10, seed=1)
    assert again == result


def test_split_half_reports_nothing_when_no_split_is_usable() -> None:
    result = split_half_reliability(["a", "b"], [Comparison("a", "b")], n_splits=5)
    assert result.n_splits == 0
    assert math.isnan(result.median_r)


# --- misfit --------------------------------------------------------------------------------


def test_infit_near_one_for_model_data_and_high_for_erratic_judge(
    true_theta: np.ndarray,
) -> None:
    ids, comparisons = simulate(true_theta, n_cr_target=40, seed=8, erratic_judge="j5")
    fit = fit_maximum_likelihood(ids, comparisons)
    judges = judge_fit(fit, comparisons)
    assert set(judges) == {f"j{k}" for k in range(6)}
    for judge in ("j0", "j1", "j2", "j3", "j4"):
        assert 0.7 <= judges[judge].infit <= 1.3
    assert judges["j5"].infit > 1.5
    assert judges["j5"].infit > max(judges[j].infit for j in judges if j != "j5")
    assert judges["j5"].n == sum(1 for c in comparisons if c.judge == "j5")


def test_script_infit_near_one_for_model_conforming_data(true_theta: np.ndarray) -> None:
    ids, comparisons = simulate(true_theta, n_cr_target=40, seed=9)
    stats = script_fit(fit_maximum_likelihood(ids, comparisons), comparisons)
    assert set(stats) == set(ids)
    assert 0.8 <= float(np.mean([s.infit for s in stats.values()])) <= 1.2
    assert all(s.outfit > 0 for s in stats.values())


def test_fit_of_essays_the_scale_separates_beyond_float_precision_is_finite() -> None:
    """p rounds to 1 when thetas lie ~40 logits apart: the residual and its variance are both
    0, and z² = (1 − p)/p must come out as its limit, not 0/0."""
    fit = BTFit(ids=("a", "b"), theta={"a": 20.0, "b": -20.0}, se={"a": 1.0, "b": 1.0})
    comparisons = [Comparison("a", "b", judge="j0")] * 3
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        stats = {**script_fit(fit, comparisons), **judge_fit(fit, comparisons)}
    assert set(stats) == {"a", "b", "j0"}
    for stat in stats.values():
        assert stat.infit == 0.0
        assert 0.0 < stat.outfit < 1e-15


def test_judge_fit_empty_without_judge_ids() -> None:
    comparisons = [Comparison("a", "b"), Comparison("b", "a")]
    assert judge_fit(fit_maximum_likelihood(["a", "b"], comparisons), comparisons) == {}


def test_misfits_flag_above_mean_plus_two_sd() -> None:
    from pytest_eng5.runner.stats import FitStat

    stats = {f"j{k}": FitStat(infit=1.0 + 0.01 * k, outfit=1.0, n=10) for k in range(10)}
    assert misfits(stats) == ()
    stats["wild"] = FitStat(infit=3.0, outfit=4.0, n=10)
    assert misfits(stats) == ("wild",)


# --- run summary -----------------------------------------------------------------------------


def test_n_cr_definition() -> None:
    assert n_cr(10, 100) == 20.0
    with pytest.raises(ValueError, match="at least one item"):
        n_cr(0, 5)
