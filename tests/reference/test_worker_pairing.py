"""Unit tests of the wave pair planner and the continuation decision (pure functions)."""

from __future__ import annotations

from collections import Counter
from itertools import combinations

import pytest

from pytest_eng5.reference.pairing import (
    PlannedPair,
    distinct_pairs,
    max_resampling_passes,
    plan_wave,
)
from pytest_eng5.reference.scoring import Decision, WaveOutcome, decide, max_score_change


def _ids(n: int) -> list[str]:
    return [f"e{i:02d}" for i in range(n)]


def _run_until_empty(
    ids: list[str], budget: int, seed: int = 0
) -> tuple[list[list[PlannedPair]], list[tuple[str, str]]]:
    waves: list[list[PlannedPair]] = []
    history: list[tuple[str, str]] = []
    for wave in range(1, 1000):
        planned = plan_wave(
            ids, history, budget_remaining=budget - len(history), seed=seed, wave=wave
        )
        if not planned:
            break
        waves.append(planned)
        history.extend((p.essay_a, p.essay_b) for p in planned)
    return waves, history


def test_each_essay_appears_at_most_once_per_wave() -> None:
    waves, _ = _run_until_empty(_ids(9), budget=200)
    for planned in waves:
        used = [e for p in planned for e in (p.essay_a, p.essay_b)]
        assert len(used) == len(set(used))


@pytest.mark.parametrize("n", [4, 7, 12])
def test_no_pair_repeats_before_every_pair_was_covered(n: int) -> None:
    _, history = _run_until_empty(_ids(n), budget=10 * distinct_pairs(n))
    total = distinct_pairs(n)
    first_round = [frozenset(pair) for pair in history[:total]]
    assert len(set(first_round)) == total
    assert set(first_round) == {frozenset(p) for p in combinations(_ids(n), 2)}


def test_budget_above_distinct_pairs_ends_after_the_allowed_resampling_passes() -> None:
    waves, history = _run_until_empty(_ids(4), budget=50)
    expected = distinct_pairs(4) * (1 + max_resampling_passes(4))
    assert len(history) == expected
    counts = Counter(frozenset(pair) for pair in history)
    assert set(counts.values()) == {1 + max_resampling_passes(4)}
    assert all(planned for planned in waves)
    assert {p.mode for p in waves[0]} == {"coverage"}
    assert {p.mode for p in waves[-1]} == {"resampling"}


def test_small_net_gets_more_resampling_passes() -> None:
    _, history = _run_until_empty(_ids(3), budget=100)
    assert len(history) == 3 * (1 + max_resampling_passes(3))
    assert max_resampling_passes(3) > max_resampling_passes(4)


def test_wave_is_truncated_to_the_remaining_budget() -> None:
    assert len(plan_wave(_ids(10), [], budget_remaining=3)) == 3
    assert plan_wave(_ids(10), [], budget_remaining=0) == []
    assert plan_wave(["only"], [], budget_remaining=5) == []


def test_total_budget_is_never_exceeded() -> None:
    _, history = _run_until_empty(_ids(36), budget=120)
    assert len(history) == 120


def test_planner_is_deterministic_for_a_seed() -> None:
    history = [("e00", "e01"), ("e02", "e03")]
    first = plan_wave(_ids(8), history, budget_remaining=10, seed=7, wave=2)
    again = plan_wave(_ids(8), history, budget_remaining=10, seed=7, wave=2)
    assert first == again
    others = {
        tuple(plan_wave(_ids(8), history, budget_remaining=10, seed=s, wave=2)) for s in range(20)
    }
    assert len(others) > 1  # the seed matters


def test_prefers_essays_with_fewer_comparisons() -> None:
    history = [("e00", "e01"), ("e02", "e03")]
    planned = plan_wave(_ids(5), history, budget_remaining=1, seed=3, wave=2)
    assert len(planned) == 1
    assert "e04" in (planned[0].essay_a, planned[0].essay_b)


def test_prefers_close_bradley_terry_scores() -> None:
    scores = {"e00": 0.0, "e01": 0.1, "e02": 5.0, "e03": 5.1}
    planned = plan_wave(_ids(4), [], budget_remaining=10, scores=scores, seed=1, wave=1)
    assert {frozenset((p.essay_a, p.essay_b)) for p in planned} == {
        frozenset(("e00", "e01")),
        frozenset(("e02", "e03")),
    }


def test_orientation_is_balanced_per_essay() -> None:
    _, history = _run_until_empty(_ids(8), budget=distinct_pairs(8))
    balance: Counter[str] = Counter()
    for a, b in history:
        balance[a] += 1
        balance[b] -= 1
    assert max(abs(v) for v in balance.values()) <= 1


# --------------------------------------------------------------------------- decision (§E.9)


def _outcome(**kwargs: object) -> WaveOutcome:
    base: dict[str, object] = {
        "submitted": 20,
        "completed": 20,
        "failed": 0,
        "total_budget": 120,
        "score_change": 0.5,
        "pairs_exhausted": False,
    }
    base.update(kwargs)
    return WaveOutcome(**base)  # type: ignore[arg-type]


def test_more_comparisons_while_budget_remains_and_not_stable() -> None:
    assert decide(_outcome()) is Decision.REQUEST_MORE_COMPARISONS


def test_stable_scores_finalise() -> None:
    assert decide(_outcome(score_change=0.01)) is Decision.FINALIZE_SCORING


def test_stability_needs_previous_scores_and_enough_callbacks() -> None:
    assert decide(_outcome(score_change=None)) is Decision.REQUEST_MORE_COMPARISONS
    few = _outcome(submitted=10, completed=10, score_change=0.0)
    assert decide(few) is Decision.REQUEST_MORE_COMPARISONS


def test_caps_finalise() -> None:
    assert decide(_outcome(submitted=120, completed=120)) is Decision.FINALIZE_SCORING
    assert decide(_outcome(pairs_exhausted=True)) is Decision.FINALIZE_SCORING


def test_low_success_at_a_cap_fails() -> None:
    outcome = _outcome(submitted=120, completed=60, failed=60)
    assert decide(outcome) is Decision.FINALIZE_FAILURE
    assert outcome.details()["success_rate"] == 0.5
    none_ok = _outcome(completed=0, failed=20, pairs_exhausted=True)
    assert decide(none_ok) is Decision.FINALIZE_FAILURE


def test_low_success_before_a_cap_keeps_going() -> None:
    assert decide(_outcome(completed=10, failed=10)) is Decision.REQUEST_MORE_COMPARISONS


def test_max_score_change() -> None:
    assert max_score_change({"a": 0.0, "b": 1.0}, {"a": 0.2, "b": 0.9, "c": 3.0}) == pytest.approx(
        0.2
    )
    assert max_score_change({}, {"a": 1.0}) is None


def test_a_pairing_groups_fault_never_pairs_across_groups() -> None:
    ids = [f"E{i:02d}" for i in range(10)]
    history: list[tuple[str, str]] = []
    for wave in range(6):
        planned = plan_wave(ids, history, budget_remaining=100, wave=wave, groups=2)
        history += [(p.essay_a, p.essay_b) for p in planned]
    assert history, "pairs within each group are still asked"
    group = {essay: i % 2 for i, essay in enumerate(sorted(ids))}
    assert all(group[a] == group[b] for a, b in history)
