"""The harness's ML Bradley–Terry fit against published results and simulated truth."""

from __future__ import annotations

import math

import numpy as np
import pytest

from pytest_eng5.runner.bt_model import (
    EXTREME_EPS,
    UNCOMPARED_SE,
    Comparison,
    StatisticsInputError,
    fit_maximum_likelihood,
)
from pytest_eng5.runner.stats import ssr

# 1987 American League East, games between the seven teams (Agresti, Categorical Data
# Analysis, Table 10.11; R BradleyTerry2 `baseball`): (home, away, home wins, away wins).
BASEBALL_1987 = (
    ("Milwaukee", "Detroit", 4, 3), ("Milwaukee", "Toronto", 4, 2),
    ("Milwaukee", "New York", 4, 3), ("Milwaukee", "Boston", 6, 1),
    ("Milwaukee", "Cleveland", 4, 2), ("Milwaukee", "Baltimore", 6, 0),
    ("Detroit", "Milwaukee", 3, 3), ("Detroit", "Toronto", 4, 2),
    ("Detroit", "New York", 4, 3), ("Detroit", "Boston", 6, 0),
    ("Detroit", "Cleveland", 6, 1), ("Detroit", "Baltimore", 4, 3),
    ("Toronto", "Milwaukee", 2, 5), ("Toronto", "Detroit", 4, 3),
    ("Toronto", "New York", 2, 4), ("Toronto", "Boston", 4, 3),
    ("Toronto", "Cleveland", 4, 2), ("Toronto", "Baltimore", 6, 0),
    ("New York", "Milwaukee", 3, 3), ("New York", "Detroit", 5, 1),
    ("New York", "Toronto", 2, 5), ("New York", "Boston", 4, 3),
    ("New York", "Cleveland", 4, 2), ("New York", "Baltimore", 6, 1),
    ("Boston", "Milwaukee", 5, 1), ("Boston", "Detroit", 2, 5),
    ("Boston", "Toronto", 3, 3), ("Boston", "New York", 4, 2),
    ("Boston", "Cleveland", 5, 2), ("Boston", "Baltimore", 6, 0),
    ("Cleveland", "Milwaukee", 2, 5), ("Cleveland", "Detroit", 3, 3),
    ("Cleveland", "Toronto", 3, 4), ("Cleveland", "New York", 4, 3),
    ("Cleveland", "Boston", 4, 2), ("Cleveland", "Baltimore", 2, 4),
    ("Baltimore", "Milwaukee", 2, 5), ("Baltimore", "Detroit", 1, 5),
    ("Baltimore", "Toronto", 1, 6), ("Baltimore", "New York", 2, 4),
    ("Baltimore", "Boston", 1, 6), ("Baltimore", "Cleveland", 3, 4),
)  # fmt: skip
# BradleyTerry2 / Agresti: abilities with Baltimore as reference, and SEs of the contrasts.
PUBLISHED_ABILITY = {
    "Milwaukee": 1.5814, "Detroit": 1.4364, "Toronto": 1.2945, "New York": 1.2476,
    "Boston": 1.1077, "Cleveland": 0.6839, "Baltimore": 0.0,
}  # fmt: skip
PUBLISHED_CONTRAST_SE = {
    "Boston": 0.3339, "Cleveland": 0.3319, "Detroit": 0.3396, "Milwaukee": 0.3433,
    "New York": 0.3359, "Toronto": 0.3367,
}  # fmt: skip


def baseball() -> tuple[list[str], list[Comparison]]:
    """The plain BT data: home and away games summed per pair."""
    comparisons: list[Comparison] = []
    for home, away, home_wins, away_wins in BASEBALL_1987:
        comparisons += [Comparison(home, away)] * home_wins + [Comparison(away, home)] * away_wins
    return sorted(PUBLISHED_ABILITY), comparisons


def test_baseball_abilities_match_bradleyterry2() -> None:
    ids, comparisons = baseball()
    fit = fit_maximum_likelihood(ids, comparisons)
    reference = fit.theta["Baltimore"]
    for team, published in PUBLISHED_ABILITY.items():
        assert fit.theta[team] - reference == pytest.approx(published, abs=1e-3), team
    assert fit.adjusted == ()  # no team won or lost every game: plain ML
    assert sum(fit.theta.values()) == pytest.approx(0.0, abs=1e-9)


def test_baseball_contrast_standard_errors_match_bradleyterry2() -> None:
    ids, comparisons = baseball()
    fit = fit_maximum_likelihood(ids, comparisons)
    for team, published in PUBLISHED_CONTRAST_SE.items():
        assert fit.contrast_se(team, "Baltimore") == pytest.approx(published, abs=1e-3), team


def test_essay_se_is_the_inverse_root_of_its_own_information() -> None:
    ids, comparisons = baseball()
    fit = fit_maximum_likelihood(ids, comparisons)
    team = "Toronto"
    information = 0.0
    for c in comparisons:
        if team in (c.winner, c.loser):
            p = 1.0 / (1.0 + math.exp(fit.theta[c.loser] - fit.theta[c.winner]))
            information += p * (1.0 - p)
    assert fit.se[team] == pytest.approx(1.0 / math.sqrt(information), rel=1e-9)


def test_two_items_three_to_one_gives_log_three_exactly() -> None:
    comparisons = [Comparison("a", "b")] * 3 + [Comparison("b", "a")]
    fit = fit_maximum_likelihood(["a", "b"], comparisons)
    assert fit.theta["a"] - fit.theta["b"] == pytest.approx(math.log(3), abs=1e-9)
    assert fit.contrast_se("a", "b") == pytest.approx(math.sqrt(1 / 0.75), rel=1e-6)


def test_all_win_and_all_loss_essays_get_sirt_adjusted_scores() -> None:
    # "top" beats everyone, "bottom" loses to everyone, the middle three are mixed.
    middle = [("m1", "m2"), ("m2", "m3"), ("m3", "m1"), ("m2", "m1"), ("m1", "m3")]
    comparisons = [Comparison(w, lo) for w, lo in middle]
    comparisons += [Comparison("top", m) for m in ("m1", "m2", "m3", "m1")]
    comparisons += [Comparison(m, "bottom") for m in ("m1", "m2", "m3")]
    ids = ["top", "m1", "m2", "m3", "bottom"]
    fit = fit_maximum_likelihood(ids, comparisons)
    assert set(fit.adjusted) == {"top", "bottom"}
    assert all(math.isfinite(v) for v in fit.theta.values())
    assert fit.theta["top"] > max(fit.theta[m] for m in ("m1", "m2", "m3")) > fit.theta["bottom"]
    # At the optimum each essay's expected wins equal its (adjusted) win score.
    expected = dict.fromkeys(ids, 0.0)
    for c in comparisons:
        p = 1.0 / (1.0 + math.exp(fit.theta[c.loser] - fit.theta[c.winner]))
        expected[c.winner] += p
        expected[c.loser] += 1.0 - p
    n_top, n_bottom = 4, 3
    assert expected["top"] == pytest.approx(EXTREME_EPS + (n_top - 2 * EXTREME_EPS) * 1.0, abs=1e-6)
    assert expected["bottom"] == pytest.approx(EXTREME_EPS, abs=1e-6)
    assert expected["m1"] + expected["m2"] + expected["m3"] == pytest.approx(
        len(middle) + n_bottom + EXTREME_EPS - EXTREME_EPS, abs=1e-6
    )


def test_a_closed_group_that_wins_everything_stays_finite() -> None:
    # a and b only lose to each other; together they beat c and d every time.
    record = [("a", "b"), ("b", "a"), ("c", "d"), ("d", "c"), ("a", "c"), ("b", "d"), ("a", "d")]
    comparisons = [Comparison(w, lo) for w, lo in record]
    fit = fit_maximum_likelihood(["a", "b", "c", "d"], comparisons)
    assert all(abs(v) < 10 for v in fit.theta.values())
    assert min(fit.theta["a"], fit.theta["b"]) > max(fit.theta["c"], fit.theta["d"])


def test_one_comparison_between_two_essays() -> None:
    fit = fit_maximum_likelihood(["a", "b"], [Comparison("a", "b")])
    # sirt: scores 0.7 and 0.3 → θa − θb = logit(0.7)
    assert fit.theta["a"] - fit.theta["b"] == pytest.approx(math.log(0.7 / 0.3), abs=1e-9)


def test_uncompared_and_disconnected_ids() -> None:
    comparisons = [Comparison("a", "b"), Comparison("b", "a"), Comparison("c", "d")]
    fit = fit_maximum_likelihood(["a", "b", "c", "d", "lonely"], comparisons)
    assert fit.n_components == 2
    assert fit.theta["lonely"] == 0.0
    assert fit.se["lonely"] == UNCOMPARED_SE
    assert fit.theta["a"] + fit.theta["b"] == pytest.approx(0.0, abs=1e-9)
    assert fit.theta["c"] + fit.theta["d"] == pytest.approx(0.0, abs=1e-9)
    assert fit.compared_ids() == ("a", "b", "c", "d")
    capped = fit_maximum_likelihood(["a", "b", "lonely"], comparisons[:2], se_cap=2.0)
    assert max(capped.se.values()) <= 2.0


def test_bad_input_names_what_is_wrong() -> None:
    with pytest.raises(StatisticsInputError, match="ghost"):
        fit_maximum_likelihood(["a"], [Comparison("ghost", "a")])
    with pytest.raises(StatisticsInputError, match="eps"):
        fit_maximum_likelihood(["a", "b"], [], eps=0.0)


# --- SSR -------------------------------------------------------------------------------------


def test_ssr_is_the_rasch_separation_reliability() -> None:
    ids, comparisons = baseball()
    fit = fit_maximum_likelihood(ids, comparisons)
    theta = np.array([fit.theta[i] for i in ids])
    rmse = math.sqrt(float(np.mean([fit.se[i] ** 2 for i in ids])))
    # Rasch: G = true SD / RMSE with true variance = observed variance − error variance;
    # reliability = G² / (1 + G²).
    true_sd = math.sqrt(max(float(np.var(theta, ddof=1)) - rmse**2, 0.0))
    separation = true_sd / rmse
    assert ssr(fit) == pytest.approx(separation**2 / (1 + separation**2), abs=1e-12)


def simulate(
    rng: np.random.Generator, theta: np.ndarray, n_cr: int
) -> tuple[list[str], list[Comparison]]:
    """Random pairs, ``n_cr`` comparisons per essay on average, outcomes from the BT model."""
    n = theta.size
    m = n_cr * n // 2
    first = rng.integers(0, n, m)
    second = (first + rng.integers(1, n, m)) % n
    first_wins = rng.random(m) < 1.0 / (1.0 + np.exp(theta[second] - theta[first]))
    ids = [f"s{k:02d}" for k in range(n)]
    return ids, [
        Comparison(ids[a], ids[b]) if won else Comparison(ids[b], ids[a])
        for a, b, won in zip(first.tolist(), second.tolist(), first_wins.tolist(), strict=True)
    ]


@pytest.mark.parametrize("n_cr", [10, 20, 37])
def test_ssr_matches_simulated_true_reliability(n_cr: int) -> None:
    """40 essays, abilities N(0, 1.5²), random pairs, 20 replicates: the mean SSR is within
    0.05 of the true reliability, the squared correlation of estimate and truth.

    Over many seeds the bias is within ±0.012 at every N_CR from 10 to 45; the 20-replicate
    mean itself varies with the seed (SD 0.025 at N_CR 10, 0.01 at N_CR 37)."""
    rng = np.random.default_rng(n_cr)
    estimated, true = [], []
    for _ in range(20):
        theta = rng.normal(0.0, 1.5, 40)
        ids, comparisons = simulate(rng, theta, n_cr)
        fit = fit_maximum_likelihood(ids, comparisons)
        estimated.append(ssr(fit))
        true.append(np.corrcoef([fit.theta[i] for i in ids], theta)[0, 1] ** 2)
    assert abs(float(np.mean(estimated)) - float(np.mean(true))) <= 0.05
