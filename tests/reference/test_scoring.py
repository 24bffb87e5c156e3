"""The reference CJ's own Bradley–Terry scoring (HuleEdu's method, E.10)."""

from __future__ import annotations

import math

import pytest

from pytest_eng5.reference.scoring import BT_ALPHA, SE_CAP, fit_scores

#: a: 4 wins 2 losses, b: 3 wins 2 losses, c: 1 win 4 losses
OUTCOMES = [
    ("a", "b"),
    ("a", "b"),
    ("b", "a"),
    ("b", "c"),
    ("b", "c"),
    ("a", "c"),
    ("a", "c"),
    ("c", "a"),
]


def test_no_outcome_gives_no_scores() -> None:
    assert fit_scores(["a", "b"], []) is None


def test_scores_are_mean_centred_and_ordered_by_wins() -> None:
    scores = fit_scores(["a", "b", "c"], OUTCOMES)
    assert scores is not None
    assert math.isclose(sum(scores.theta.values()), 0.0, abs_tol=1e-9)
    assert scores.theta["a"] > scores.theta["b"] > scores.theta["c"]
    assert scores.n_components == 1


def test_the_last_anchor_is_the_reference_item_with_se_zero() -> None:
    without = fit_scores(["a", "b", "c"], OUTCOMES)
    with_anchors = fit_scores(["a", "b", "c"], OUTCOMES, anchor_ids={"a", "b"})
    assert without is not None
    assert with_anchors is not None
    assert (without.reference_id, without.se["c"]) == ("c", 0.0)
    assert (with_anchors.reference_id, with_anchors.se["b"]) == ("b", 0.0)
    assert all(0.0 < with_anchors.se[e] <= SE_CAP for e in ("a", "c"))


def test_two_items_have_the_closed_form_fisher_se() -> None:
    outcomes = [("a", "b")] * 6 + [("b", "a")] * 4
    scores = fit_scores(["a", "b"], outcomes)
    assert scores is not None
    p = 1.0 / (1.0 + math.exp(scores.theta["b"] - scores.theta["a"]))
    assert scores.se["a"] == pytest.approx(1.0 / math.sqrt(10 * p * (1.0 - p)))
    assert 0.5 < p < 0.6  # alpha pulls 6:4 a little towards even


def test_an_uncompared_essay_is_capped_and_counts_as_its_own_component() -> None:
    scores = fit_scores(["a", "b", "lonely", "ref"], [("a", "b"), ("b", "ref"), ("ref", "a")])
    assert scores is not None
    assert scores.se["lonely"] == SE_CAP
    assert scores.n_components == 1  # components are counted over compared essays


def test_the_theta_agree_with_the_runners_independent_fit() -> None:
    # Two implementations of the same published method must agree on the abilities.
    from pytest_eng5.runner.stats import Comparison, fit_bradley_terry

    scores = fit_scores(["a", "b", "c"], OUTCOMES)
    runner = fit_bradley_terry(
        ["a", "b", "c"], [Comparison(winner=w, loser=lo) for w, lo in OUTCOMES], alpha=BT_ALPHA
    )
    assert scores is not None
    for essay in ("a", "b", "c"):
        assert scores.theta[essay] == pytest.approx(runner.theta[essay], abs=1e-6)
