"""The sections of the run record built from the collected events: comparisons, Bradley–Terry
summary with standard errors, grade projections and costs."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Final

import numpy as np

from pytest_eng5.contracts import AssessmentResultV1, LLMComparisonResultV1
from pytest_eng5.contracts.enums import EssayComparisonWinner
from pytest_eng5.runner.record import (
    AnchorRecord,
    BTEntry,
    ComparisonRecord,
    Costs,
    GradeProjection,
    TokenCount,
)

_SHA256_RE: Final = re.compile(r"[0-9a-f]{64}")


def comparison_records(callbacks: Sequence[LLMComparisonResultV1]) -> list[ComparisonRecord]:
    """One record per callback; error callbacks are ``failed`` with no winner."""
    records = []
    for sequence, callback in enumerate(callbacks, start=1):
        essay_a = str(callback.request_metadata.get("essay_a_id", ""))
        essay_b = str(callback.request_metadata.get("essay_b_id", ""))
        winner_id, loser_id = _winner_loser(callback)
        succeeded = winner_id is not None
        prompt_hash = callback.request_metadata.get("prompt_sha256")
        error = callback.error_detail
        records.append(
            ComparisonRecord(
                sequence=sequence,
                request_id=callback.request_id,
                correlation_id=callback.correlation_id,
                status="succeeded" if succeeded else "failed",
                essay_a_id=essay_a,
                essay_b_id=essay_b,
                winner_id=winner_id,
                loser_id=loser_id,
                prompt_hash=prompt_hash if _is_sha256(prompt_hash) else None,
                provider=str(callback.provider.value),
                model=callback.model,
                tokens_prompt=callback.token_usage.prompt_tokens,
                tokens_completion=callback.token_usage.completion_tokens,
                cost_usd=round(callback.cost_estimate, 6),
                response_time_ms=callback.response_time_ms,
                started_at=callback.requested_at,
                completed_at=callback.completed_at,
                confidence=callback.confidence,
                justification=callback.justification,
                failure_reason=None if succeeded else _failure_reason(callback),
                error_code=error.error_code if error is not None else None,
            )
        )
    return records


def _winner_loser(callback: LLMComparisonResultV1) -> tuple[str | None, str | None]:
    """(winner_id, loser_id) from "Essay A"/"Essay B"; (None, None) for error callbacks."""
    essay_a = str(callback.request_metadata.get("essay_a_id", ""))
    essay_b = str(callback.request_metadata.get("essay_b_id", ""))
    if callback.winner == EssayComparisonWinner.ESSAY_A:
        return essay_a, essay_b
    if callback.winner == EssayComparisonWinner.ESSAY_B:
        return essay_b, essay_a
    return None, None


@dataclass(frozen=True)
class _PairTally:
    wins: dict[str, int]
    losses: dict[str, int]
    pairs: list[tuple[str, str]]  # (winner, loser)


def _tally(callbacks: Iterable[LLMComparisonResultV1]) -> _PairTally:
    wins: dict[str, int] = {}
    losses: dict[str, int] = {}
    pairs = []
    for callback in callbacks:
        winner, loser = _winner_loser(callback)
        if winner is None or loser is None:
            continue
        wins[winner] = wins.get(winner, 0) + 1
        losses[loser] = losses.get(loser, 0) + 1
        pairs.append((winner, loser))
    return _PairTally(wins, losses, pairs)


def bt_summary(
    result: AssessmentResultV1 | None,
    callbacks: Sequence[LLMComparisonResultV1],
    anchors: Iterable[AnchorRecord],
) -> list[BTEntry]:
    """BT entries from the rich result, with SEs and counts from the callbacks.

    An essay is an anchor when CJ says so or when it is one of ``anchors`` (in anchor-align
    runs the anchors travel as students, and CJ cannot know they are anchors).
    """
    if result is None:
        return []
    grades = known_anchor_grades(anchors)
    tally = _tally(callbacks)
    thetas = {essay.essay_id: essay.bt_score for essay in result.essay_results}
    errors = fisher_standard_errors(thetas, tally.pairs)
    entries = []
    for essay in sorted(result.essay_results, key=lambda item: item.rank):
        wins = tally.wins.get(essay.essay_id, 0)
        losses = tally.losses.get(essay.essay_id, 0)
        is_anchor = essay.is_anchor or essay.essay_id in grades
        entries.append(
            BTEntry(
                essay_id=essay.essay_id,
                theta=essay.bt_score,
                standard_error=errors.get(essay.essay_id),
                rank=essay.rank,
                comparison_count=wins + losses,
                wins=wins,
                losses=losses,
                is_anchor=is_anchor,
                anchor_grade=grades.get(essay.essay_id) if is_anchor else None,
                grade_projection=None if essay.is_anchor else essay.letter_grade,
            )
        )
    return entries


def fisher_standard_errors(
    thetas: Mapping[str, float], pairs: Sequence[tuple[str, str]]
) -> dict[str, float | None]:
    """BT standard errors from the Fisher information with a sum-to-zero constraint.

    ``I = Σ p(1−p)(eᵢ−eⱼ)(eᵢ−eⱼ)ᵀ`` over the judged pairs at the given abilities; the
    covariance is its pseudo-inverse. Essays never judged get ``None``.
    """
    ids = list(thetas)
    index = {essay_id: position for position, essay_id in enumerate(ids)}
    information = np.zeros((len(ids), len(ids)))
    judged: set[str] = set()
    for winner, loser in pairs:
        if winner not in index or loser not in index:
            continue
        i, j = index[winner], index[loser]
        p = 1.0 / (1.0 + np.exp(-(thetas[winner] - thetas[loser])))
        weight = p * (1.0 - p)
        information[i, i] += weight
        information[j, j] += weight
        information[i, j] -= weight
        information[j, i] -= weight
        judged.update((winner, loser))
    if not judged:
        return dict.fromkeys(ids)
    covariance = np.linalg.pinv(information)
    return {
        essay_id: round(float(np.sqrt(max(covariance[position, position], 0.0))), 6)
        if essay_id in judged
        else None
        for essay_id, position in index.items()
    }


def grade_projections(
    result: AssessmentResultV1 | None, grade_scale: str | None
) -> list[GradeProjection]:
    """Projections of the student essays as CJ sent them (no invented probabilities)."""
    if result is None:
        return []
    return [
        GradeProjection(
            essay_id=essay.essay_id,
            grade_scale=grade_scale,
            grade=essay.letter_grade,
            confidence_score=essay.confidence_score,
            confidence_label=essay.confidence_label,
            normalized_score=essay.normalized_score,
        )
        for essay in sorted(result.student_results, key=lambda item: item.rank)
    ]


def costs(callbacks: Sequence[LLMComparisonResultV1]) -> Costs:
    """Total cost and token counts per ``provider::model`` (failed callbacks included)."""
    # key -> [prompt, completion, total tokens, usd, comparisons]
    sums: dict[tuple[str, str], list[float]] = {}  # provider is a StrEnum, sortable as str
    for callback in callbacks:
        usage = callback.token_usage
        row = sums.get((callback.provider, callback.model))
        if row is None:
            row = sums[(callback.provider, callback.model)] = [0, 0, 0, 0.0, 0]
        row[0] += usage.prompt_tokens
        row[1] += usage.completion_tokens
        row[2] += usage.total_tokens
        row[3] += callback.cost_estimate
        row[4] += 1
    entries = [
        TokenCount(
            key=f"{provider}::{model}",
            provider=str(provider),
            model=model,
            prompt_tokens=int(row[0]),
            completion_tokens=int(row[1]),
            total_tokens=int(row[2]),
            usd=round(row[3], 6),
            comparisons=int(row[4]),
        )
        for (provider, model), row in sorted(sums.items())
    ]
    total = sum(row[3] for row in sums.values())
    return Costs(total_usd=round(total, 6), token_counts=entries)


def known_anchor_grades(anchors: Iterable[AnchorRecord]) -> dict[str, str]:
    """Expert grade per anchor, under its essay id and its anchor id."""
    grades: dict[str, str] = {}
    for anchor in anchors:
        if not anchor.anchor_grade:
            continue
        for key in (anchor.essay_id, anchor.anchor_id):
            if key:
                grades[key] = anchor.anchor_grade
    return grades


def _failure_reason(callback: LLMComparisonResultV1) -> str:
    if callback.error_detail is not None:
        return f"{callback.error_detail.error_code}: {callback.error_detail.message}"
    return "callback carried no winner"


def _is_sha256(value: object) -> bool:
    return isinstance(value, str) and _SHA256_RE.fullmatch(value) is not None
