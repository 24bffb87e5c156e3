"""Comparison waves of a CJ batch (§E.6–E.7, §E.9): plan the next wave, turn its pairs into
prompts and LLM Provider tasks, and refit Bradley–Terry scores once a wave is in."""

from __future__ import annotations

import json
import uuid
from collections import Counter
from datetime import UTC, datetime
from typing import Any, Final

from pytest_eng5.reference.batch_store import (
    PairRow,
    json_object,
    load_essays,
    load_outcomes,
    load_pair_history,
    store_scores,
)
from pytest_eng5.reference.db import Pool
from pytest_eng5.reference.faults import FaultConfig
from pytest_eng5.reference.judge import JudgeRequest
from pytest_eng5.reference.pairing import PlannedPair, plan_wave
from pytest_eng5.reference.provider_emulator import ProviderTask
from pytest_eng5.reference.scoring import fit_scores

DEFAULT_LLM_TEMPERATURE: Final = 0.1


def build_prompt(
    instructions: str, student_prompt: str, rubric: str, essay_a: str, essay_b: str
) -> str:
    """The flattened comparison prompt (HuleEdu builds it from the same four parts)."""
    parts = []
    if instructions.strip():
        parts.append(f"**Assessment instructions:**\n{instructions.strip()}")
    if student_prompt.strip():
        parts.append(f"**Student prompt:**\n{student_prompt.strip()}")
    if rubric.strip():
        parts.append(f"**Judge rubric:**\n{rubric.strip()}")
    parts.append(f"**Essay A:**\n{essay_a.strip()}")
    parts.append(f"**Essay B:**\n{essay_b.strip()}")
    parts.append("Which essay is better? Answer 'Essay A' or 'Essay B' with a justification.")
    return "\n\n".join(parts)


def requested_temperature(overrides: dict[str, Any]) -> float:
    """The request's temperature override, CJ's default when none is given (0.0 is kept)."""
    value = overrides.get("temperature_override")
    return DEFAULT_LLM_TEMPERATURE if value is None else float(value)


async def plan_next_wave(
    pool: Pool, cj_batch_id: int, *, wave: int, seed: int, groups: int = 1
) -> list[PlannedPair]:
    """The pairs of wave ``wave`` within the remaining budget; empty when none is left."""
    state = await pool.fetchrow(
        "SELECT total_budget, submitted_comparisons FROM cj_batch_states WHERE batch_id = $1",
        cj_batch_id,
    )
    if state is None:
        return []
    essays = await load_essays(pool, cj_batch_id)
    history = await load_pair_history(pool, cj_batch_id)
    return plan_wave(
        [e.essay_id for e in essays],
        history,
        budget_remaining=int(state["total_budget"] or 0) - int(state["submitted_comparisons"]),
        scores={e.essay_id: e.bt_score for e in essays if e.bt_score is not None},
        seed=seed,
        wave=wave,
        groups=groups,
    )


async def prepare_wave(
    pool: Pool, cj_batch_id: int, plan: list[PlannedPair], *, wave: int, faults: FaultConfig
) -> tuple[list[PairRow], list[ProviderTask]]:
    """The pair rows to store and the provider tasks to submit for ``plan``."""
    upload = await pool.fetchrow(
        "SELECT bos_batch_id, processing_metadata FROM cj_batch_uploads WHERE id = $1",
        cj_batch_id,
    )
    if upload is None:
        raise RuntimeError(f"cj batch {cj_batch_id} vanished while submitting a wave")
    meta = json_object(upload["processing_metadata"])
    original = meta.get("original_request") or {}
    overrides = original.get("llm_config_overrides") or {}
    texts = {e.essay_id: e.text for e in await load_essays(pool, cj_batch_id)}
    request_type = "cj_comparison" if wave == 1 else "cj_retry"
    now = datetime.now(UTC)
    tasks: list[ProviderTask] = []
    rows: list[PairRow] = []
    for pair in plan:
        correlation_id = uuid.uuid4()
        prompt = build_prompt(
            meta.get("instructions_text", ""),
            meta.get("student_prompt_text", ""),
            meta.get("judge_rubric_text", ""),
            texts[pair.essay_a],
            texts[pair.essay_b],
        )
        request_metadata = {
            "essay_a_id": pair.essay_a,
            "essay_b_id": pair.essay_b,
            "bos_batch_id": upload["bos_batch_id"],
            "cj_batch_id": str(cj_batch_id),
            "cj_source": "els",
            "cj_request_type": request_type,
            "comparison_iteration": wave,
        }
        rows.append(
            (
                cj_batch_id,
                pair.essay_a,
                pair.essay_b,
                prompt,
                correlation_id,
                now,
                pair.mode,
                json.dumps({"comparison_iteration": wave, "cj_request_type": request_type}),
            )
        )
        tasks.append(
            ProviderTask(
                correlation_id=correlation_id,
                prompt_text=prompt,
                judge_request=JudgeRequest(
                    essay_a_text=texts[pair.essay_a],
                    essay_b_text=texts[pair.essay_b],
                    prompt_text=meta.get("student_prompt_text", ""),
                    system_prompt=overrides.get("system_prompt_override"),
                    rubric=meta.get("judge_rubric_text") or None,
                    model=overrides.get("model_override"),
                    temperature=requested_temperature(overrides),
                    max_tokens=overrides.get("max_tokens_override"),
                    correlation_id=str(correlation_id),
                ),
                request_metadata=request_metadata,
                faults=faults,
                requested_provider=overrides.get("provider_override"),
            )
        )
    return rows, tasks


async def rescore(pool: Pool, cj_batch_id: int, iteration: int) -> dict[str, float]:
    """Refit BT, store scores/SEs/counts on the essays and in state metadata."""
    essays = await load_essays(pool, cj_batch_id)
    outcomes = await load_outcomes(pool, cj_batch_id)
    fit = fit_scores(
        [e.essay_id for e in essays], outcomes, {e.essay_id for e in essays if e.is_anchor}
    )
    counts: Counter[str] = Counter()
    for winner, loser in outcomes:
        counts[winner] += 1
        counts[loser] += 1
    scores: dict[str, float] = {}
    updates = []
    for essay in essays:
        compared = counts[essay.essay_id] > 0
        score = fit.theta[essay.essay_id] if fit is not None and compared else None
        se = fit.se[essay.essay_id] if fit is not None and compared else None
        if score is not None:
            scores[essay.essay_id] = score
        updates.append((essay.essay_id, score, se, counts[essay.essay_id]))
    ses = [u[2] for u in updates if u[2] is not None]
    summary: dict[str, Any] = {
        "bt_scores": scores,
        "last_scored_iteration": iteration,
        "successful_pairs_count": len(outcomes),
        "bt_se_summary": {
            "mean_se": sum(ses) / len(ses) if ses else None,
            "max_se": max(ses) if ses else None,
            "mean_comparisons_per_item": (2 * len(outcomes) / len(essays)) if essays else 0,
        },
        "bt_quality_flags": {
            "isolated_items": sum(1 for u in updates if u[3] == 0),
            "components": fit.n_components if fit is not None else 0,
        },
    }
    await store_scores(pool, cj_batch_id, updates, summary)
    return scores
