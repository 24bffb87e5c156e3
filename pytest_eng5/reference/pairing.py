"""Wave pair planning of the reference CJ worker (pure; contract §E.6, without the stall hazard).

The rule, in order:

1. **Levels.** Every unordered pair of essays has a *submission count*. The current level ``L``
   is the smallest count over all C(n,2) pairs. Only pairs at level ``L`` are candidates, so no
   pair is asked a second time before every pair was asked once (coverage, ``L == 0``), and no
   pair a third time before every pair was asked twice (resampling, ``L >= 1``).
2. **Passes.** After coverage at most ``max_resampling_passes`` resampling levels are planned
   (HuleEdu: 1 for nets of more than 3 essays, 4 for smaller nets). Past that the planner returns
   an empty wave, and the worker finalises. Every earlier call returns at least one pair while
   budget remains, so a batch never waits on a wave that cannot be planned.
3. **Matching.** Candidates are ranked by ``(count_a + count_b) + 0.5·|θa − θb|`` (fewer
   comparisons and close Bradley–Terry scores first) plus a seeded jitter below 1e-3 that only
   breaks ties, then taken greedily so each essay appears at most once per wave.
4. **Budget.** The wave is truncated to ``budget_remaining``; a budget of 0 gives an empty wave.
5. **Orientation.** Within a pair, the essay that has been "Essay A" less often (A count − B
   count, this wave included) goes first; ties are broken by the seeded generator.

Deterministic: the same essays, history, scores, seed and wave number give the same wave.

A ``groups`` fault splits the sorted essays into that many disjoint groups (round robin) and
pairs only within a group, so the comparisons cannot connect the batch.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from itertools import combinations
from typing import Literal

PairMode = Literal["coverage", "resampling"]

COMPARISON_COUNT_WEIGHT = 1.0
BT_PROXIMITY_WEIGHT = 0.5
SMALL_NET_SIZE = 3
RESAMPLING_PASSES_REGULAR = 1
RESAMPLING_PASSES_SMALL_NET = 4


@dataclass(frozen=True)
class PlannedPair:
    """One comparison to submit: ``essay_a`` is shown first."""

    essay_a: str
    essay_b: str
    mode: PairMode


def max_resampling_passes(essay_count: int) -> int:
    """HuleEdu's resampling allowance: 4 passes for nets of ≤ 3 essays, else 1."""
    if essay_count <= SMALL_NET_SIZE:
        return RESAMPLING_PASSES_SMALL_NET
    return RESAMPLING_PASSES_REGULAR


def distinct_pairs(essay_count: int) -> int:
    """C(n, 2): how many unordered pairs ``essay_count`` essays have."""
    return essay_count * (essay_count - 1) // 2


def _unordered(a: str, b: str) -> tuple[str, str]:
    return (a, b) if a <= b else (b, a)


def plan_wave(
    essay_ids: Iterable[str],
    history: Sequence[tuple[str, str]],
    *,
    budget_remaining: int,
    scores: Mapping[str, float] | None = None,
    seed: int = 0,
    wave: int = 0,
    max_passes: int | None = None,
    groups: int = 1,
) -> list[PlannedPair]:
    """Plan the next wave.

    ``history`` lists every pair submitted so far as ``(essay_a, essay_b)`` (orientation kept,
    whatever the outcome). ``max_passes`` defaults to :func:`max_resampling_passes`.
    """
    ids = sorted(set(essay_ids))
    if len(ids) < 2 or budget_remaining <= 0:
        return []
    allowed_passes = max_resampling_passes(len(ids)) if max_passes is None else max_passes
    known = set(ids)

    pair_counts: Counter[tuple[str, str]] = Counter()
    essay_counts: Counter[str] = Counter()
    a_minus_b: Counter[str] = Counter()
    for a, b in history:
        if a not in known or b not in known or a == b:
            continue
        pair_counts[_unordered(a, b)] += 1
        essay_counts[a] += 1
        essay_counts[b] += 1
        a_minus_b[a] += 1
        a_minus_b[b] -= 1

    group = {essay: index % groups for index, essay in enumerate(ids)}
    all_pairs = [(a, b) for a, b in combinations(ids, 2) if group[a] == group[b]]
    if not all_pairs:
        return []
    level = min(pair_counts[pair] for pair in all_pairs)
    if level > allowed_passes:
        return []
    mode: PairMode = "coverage" if level == 0 else "resampling"

    rng = random.Random(f"{seed}:{wave}:{len(history)}")
    theta = scores or {}

    def weight(pair: tuple[str, str]) -> float:
        a, b = pair
        proximity = abs(theta.get(a, 0.0) - theta.get(b, 0.0))
        return (
            COMPARISON_COUNT_WEIGHT * (essay_counts[a] + essay_counts[b])
            + BT_PROXIMITY_WEIGHT * proximity
            + rng.random() * 1e-3
        )

    candidates = sorted((weight(pair), pair) for pair in all_pairs if pair_counts[pair] == level)
    used: set[str] = set()
    wave_pairs: list[PlannedPair] = []
    for _, (a, b) in candidates:
        if len(wave_pairs) >= budget_remaining:
            break
        if a in used or b in used:
            continue
        used.update((a, b))
        first, second = _orient(a, b, a_minus_b, rng)
        a_minus_b[first] += 1
        a_minus_b[second] -= 1
        wave_pairs.append(PlannedPair(essay_a=first, essay_b=second, mode=mode))
    return wave_pairs


def _orient(a: str, b: str, a_minus_b: Mapping[str, int], rng: random.Random) -> tuple[str, str]:
    """Put first the essay that has been shown first less often."""
    if a_minus_b[a] < a_minus_b[b]:
        return a, b
    if a_minus_b[b] < a_minus_b[a]:
        return b, a
    return (a, b) if rng.random() < 0.5 else (b, a)
