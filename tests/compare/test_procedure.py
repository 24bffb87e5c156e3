"""The comparison procedure itself, on simulated comparisons of known anchors (no stack).

Seeded sessions: two identical variants must give "no detectable difference" in at least 19
of 20; a variant with ten times the judge noise must be called worse in at least 19 of 20
(the documented effect size, docs/experiments.md).
"""

from __future__ import annotations

from collections import Counter

import choix
import numpy as np
import pytest
from scipy.stats import kendalltau
from simulate import ANCHOR_GRADES, GRADE_ORDER, TRUE_THETA, simulate_run

from pytest_eng5.compare import (
    NO_DIFFERENCE,
    WORSE,
    CompareInputError,
    compare_runs,
    report_dict,
)
from pytest_eng5.compare.bootstrap import fit_bt_batch, tau_b_batch, win_matrix

SESSIONS = 20
BASE_NOISE = 1.0
NOISY = 10.0  # x10 the noise: expected tau-b 0.94 -> 0.48 with 198 comparisons


def _verdict(base_noise: float, other_noise: float, session: int, rounds: int) -> str:
    runs = [
        simulate_run("baseline", noise=base_noise, seed=2 * session, rounds=rounds),
        simulate_run("other", noise=other_noise, seed=2 * session + 1, rounds=rounds),
    ]
    other = compare_runs(runs, seed=session).experiments[0].variants[1]
    assert other.vs_baseline is not None
    return other.vs_baseline.verdict


def test_identical_variants_show_no_difference_in_19_of_20_sessions() -> None:
    verdicts = Counter(_verdict(BASE_NOISE, BASE_NOISE, s, rounds=1) for s in range(SESSIONS))
    assert verdicts[NO_DIFFERENCE] >= 19, verdicts


def test_ten_times_the_noise_is_detected_as_worse() -> None:
    verdicts = Counter(_verdict(BASE_NOISE, NOISY, s, rounds=3) for s in range(SESSIONS))
    assert verdicts[WORSE] >= 19, verdicts


def test_the_batch_fit_agrees_with_choix_and_tau_with_scipy() -> None:
    rng = np.random.default_rng(7)
    ids = sorted(ANCHOR_GRADES)
    theta = np.array([TRUE_THETA[a] for a in ids])
    pairs = [(i, j) for i in range(len(ids)) for j in range(len(ids)) if i != j] * 2
    outcomes = [
        (i, j) if rng.random() < 1 / (1 + np.exp(theta[j] - theta[i])) else (j, i) for i, j in pairs
    ]
    winners = np.array([w for w, _ in outcomes])
    losers = np.array([lo for _, lo in outcomes])
    fitted = fit_bt_batch(win_matrix(len(ids), winners, losers, np.ones((1, winners.size))))[0]
    reference = choix.ilsr_pairwise(len(ids), outcomes, alpha=0.01)
    assert np.corrcoef(fitted, reference)[0, 1] > 0.999
    assert fitted.mean() == pytest.approx(0.0, abs=1e-9)
    grades = [float(GRADE_ORDER.index(ANCHOR_GRADES[a])) for a in ids]
    assert tau_b_batch(grades, fitted[None, :])[0] == pytest.approx(
        kendalltau(grades, fitted).statistic
    )


def test_a_report_does_not_depend_on_the_order_of_the_runs() -> None:
    runs = [
        simulate_run("baseline", noise=1.0, seed=1),
        simulate_run("baseline", noise=1.0, seed=2, repeat=2),
        simulate_run("warm", noise=2.0, seed=3),
        simulate_run("cold", noise=0.8, seed=4),
    ]
    first = report_dict(compare_runs(runs, resamples=200))
    assert report_dict(compare_runs(runs[::-1], resamples=200)) == first
    baseline, *others = first["experiments"][0]["variants"]
    assert baseline["variant"] == "baseline"
    assert baseline["vs_baseline"] is None
    assert baseline["runs"] == 2
    assert baseline["repeats"]["sd"] is not None
    assert [v["variant"] for v in others] == ["cold", "warm"]
    assert first["experiments"][0]["baseline"] == "baseline"


def test_position_bias_shows_in_the_a_position_win_share() -> None:
    runs = [
        simulate_run("baseline", noise=1.0, seed=1, rounds=3),
        simulate_run("first-bias", noise=1.0, seed=2, rounds=3, position_bias=1.5),
    ]
    baseline, biased = compare_runs(runs, resamples=100).experiments[0].variants
    assert abs(baseline.a_win_share - 0.5) < 0.1
    assert biased.a_win_share > 0.65


def test_variants_on_other_anchors_are_refused() -> None:
    other = simulate_run("other", noise=1.0, seed=2)
    fewer = dict(other.anchor_grades)
    fewer.pop("anchor-01")
    runs = [
        simulate_run("baseline", noise=1.0, seed=1),
        type(other)(**{**other.__dict__, "anchor_grades": fewer}),
    ]
    with pytest.raises(CompareInputError, match="other anchors or grades"):
        compare_runs(runs, resamples=100)


def test_an_unknown_baseline_and_too_few_resamples_are_refused() -> None:
    runs = [simulate_run("a", noise=1.0, seed=1), simulate_run("b", noise=1.0, seed=2)]
    with pytest.raises(CompareInputError, match="baseline 'nope' is not among"):
        compare_runs(runs, baseline="nope", resamples=100)
    with pytest.raises(CompareInputError, match="too few"):
        compare_runs(runs, resamples=10)
