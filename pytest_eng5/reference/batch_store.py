"""Reads and writes on a CJ batch's essays, pairs, upload and state rows that the worker's
wave, callback, timeout and finalisation steps share (intake writes its own rows)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final, Literal

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from pytest_eng5.contracts.enums import EssayComparisonWinner
from pytest_eng5.contracts.envelope import EventEnvelope
from pytest_eng5.contracts.events import LLMComparisonResultV1
from pytest_eng5.reference.db import Pool

Executor = Pool | asyncpg.Connection | PoolConnectionProxy
"""A pool (each statement commits on its own) or a connection inside a transaction."""

PairRow = tuple[int, str, str, str, uuid.UUID, datetime, str, str]
"""One ``cj_comparison_pairs`` insert: batch, essay a, essay b, prompt, correlation id,
submitted at, generation mode, processing metadata (JSON)."""


@dataclass(frozen=True)
class EssayRow:
    """One ``cj_processed_essays`` row of a batch (student or anchor)."""

    essay_id: str
    text: str
    text_storage_id: str
    is_anchor: bool
    metadata: dict[str, Any]
    bt_score: float | None
    bt_se: float | None
    comparison_count: int


def json_object(raw: Any) -> dict[str, Any]:
    """A JSONB column as a dict (asyncpg returns JSON text); ``{}`` for NULL or a non-object."""
    if raw is None:
        return {}
    if isinstance(raw, str):
        loaded = json.loads(raw)
        return loaded if isinstance(loaded, dict) else {}
    return dict(raw)


async def load_essays(pool: Pool, cj_batch_id: int) -> list[EssayRow]:
    """All essays of the batch, ordered by essay id."""
    rows = await pool.fetch(
        "SELECT els_essay_id, assessment_input_text, text_storage_id, is_anchor,"
        " processing_metadata, current_bt_score, current_bt_se, comparison_count"
        " FROM cj_processed_essays WHERE cj_batch_id = $1 ORDER BY els_essay_id",
        cj_batch_id,
    )
    return [
        EssayRow(
            essay_id=r["els_essay_id"],
            text=r["assessment_input_text"],
            text_storage_id=r["text_storage_id"],
            is_anchor=r["is_anchor"],
            metadata=json_object(r["processing_metadata"]),
            bt_score=r["current_bt_score"],
            bt_se=r["current_bt_se"],
            comparison_count=r["comparison_count"],
        )
        for r in rows
    ]


async def load_outcomes(pool: Pool, cj_batch_id: int) -> list[tuple[str, str]]:
    """``(winner, loser)`` of every successful comparison, in submission order."""
    rows = await pool.fetch(
        "SELECT essay_a_els_id, essay_b_els_id, winner FROM cj_comparison_pairs"
        " WHERE cj_batch_id = $1 AND winner IN ('essay_a', 'essay_b') ORDER BY id",
        cj_batch_id,
    )
    return [
        (r["essay_a_els_id"], r["essay_b_els_id"])
        if r["winner"] == "essay_a"
        else (r["essay_b_els_id"], r["essay_a_els_id"])
        for r in rows
    ]


async def load_pair_history(pool: Pool, cj_batch_id: int) -> list[tuple[str, str]]:
    """``(essay a, essay b)`` of every pair submitted so far, in submission order."""
    history = await pool.fetch(
        "SELECT essay_a_els_id, essay_b_els_id FROM cj_comparison_pairs"
        " WHERE cj_batch_id = $1 ORDER BY id",
        cj_batch_id,
    )
    return [(h["essay_a_els_id"], h["essay_b_els_id"]) for h in history]


async def load_wave_state(pool: Pool, cj_batch_id: int) -> asyncpg.Record | None:
    """The batch state's state, budget, comparison counters, iteration and metadata."""
    return await pool.fetchrow(
        "SELECT state, total_budget, submitted_comparisons, completed_comparisons,"
        " failed_comparisons, current_iteration, processing_metadata"
        " FROM cj_batch_states WHERE batch_id = $1",
        cj_batch_id,
    )


async def set_status(pool: Pool, cj_batch_id: int, status: str) -> None:
    """Set ``cj_batch_uploads.status``."""
    await pool.execute(
        "UPDATE cj_batch_uploads SET status = $2::cj_batch_status_enum, updated_at = now()"
        " WHERE id = $1",
        cj_batch_id,
        status,
    )


async def set_state(pool: Pool, cj_batch_id: int, state: str) -> None:
    """Set ``cj_batch_states.state``."""
    await pool.execute(
        "UPDATE cj_batch_states SET state = $2::cj_batch_state_enum, last_activity_at = now()"
        " WHERE batch_id = $1",
        cj_batch_id,
        state,
    )


async def insert_wave(pool: Pool, cj_batch_id: int, rows: Sequence[PairRow], wave: int) -> None:
    """Store a wave's pairs and move the batch to WAITING_CALLBACKS, in one transaction."""
    async with pool.acquire() as conn, conn.transaction():
        await conn.executemany(
            "INSERT INTO cj_comparison_pairs (cj_batch_id, essay_a_els_id, essay_b_els_id,"
            " prompt_text, request_correlation_id, submitted_at, pair_generation_mode,"
            " processing_metadata) VALUES ($1, $2, $3, $4, $5, $6, $7, $8::jsonb)",
            rows,
        )
        await conn.execute(
            "UPDATE cj_batch_states SET state = 'WAITING_CALLBACKS',"
            " submitted_comparisons = submitted_comparisons + $2,"
            " total_comparisons = total_comparisons + $2, current_iteration = $3,"
            " last_activity_at = now() WHERE batch_id = $1",
            cj_batch_id,
            len(rows),
            wave,
        )
        await conn.execute(
            "UPDATE cj_batch_uploads SET status = 'PERFORMING_COMPARISONS', updated_at = now()"
            " WHERE id = $1",
            cj_batch_id,
        )


async def time_out_open_pairs(
    pool: Executor, cj_batch_id: int, *, error_code: str, service: str, timeout_s: float
) -> int:
    """Record every pair still without a winner as an error; return how many there were."""
    missing = await pool.fetchval(
        "WITH timed_out AS (UPDATE cj_comparison_pairs SET winner = 'error',"
        " error_code = $2, error_service = $3, error_timestamp = now(),"
        " completed_at = now(), error_details = $4::jsonb"
        " WHERE cj_batch_id = $1 AND winner IS NULL RETURNING 1)"
        " SELECT count(*) FROM timed_out",
        cj_batch_id,
        error_code,
        service,
        json.dumps({"reason": "no callback within the wave timeout", "timeout_s": timeout_s}),
    )
    return int(missing or 0)


async def add_failed_comparisons(pool: Executor, cj_batch_id: int, count: int) -> None:
    """Add ``count`` to the batch's failed comparisons."""
    await pool.execute(
        "UPDATE cj_batch_states SET failed_comparisons = failed_comparisons + $2,"
        " last_activity_at = now() WHERE batch_id = $1",
        cj_batch_id,
        count,
    )


async def find_pair(pool: Pool, correlation_id: uuid.UUID) -> asyncpg.Record | None:
    """The ``id`` and ``cj_batch_id`` of the pair submitted under ``correlation_id``."""
    return await pool.fetchrow(
        "SELECT id, cj_batch_id FROM cj_comparison_pairs WHERE request_correlation_id = $1",
        correlation_id,
    )


CALLBACK_TIMEOUT_CODE: Final = "CALLBACK_TIMEOUT"
"""``error_code`` of a pair whose callback did not arrive within the wave timeout."""

Recorded = Literal["completed", "failed", "late_completed"]
"""What a callback did: counted as completed or failed, or turned a timed-out pair into a
completed one (a late callback: counted once, moved from failed to completed)."""

_SUCCESS_SET = (
    "UPDATE cj_comparison_pairs AS p SET winner = $2, confidence = $3, justification = $4,"
    " completed_at = $5, raw_llm_response = $6, processing_metadata ="
    " coalesce(p.processing_metadata, '{}'::jsonb) || $7::jsonb"
)
_LATE_SUCCESS = (
    _SUCCESS_SET + ", error_code = NULL, error_correlation_id = NULL, error_timestamp = NULL,"
    " error_service = NULL, error_details = NULL"
    " FROM cj_batch_uploads AS u WHERE p.id = $1 AND p.winner = 'error' AND p.error_code = $8"
    " AND u.id = p.cj_batch_id AND u.status::text NOT LIKE 'COMPLETE%'"
    " AND u.status::text NOT LIKE 'ERROR%' RETURNING p.id"
)


def _success_args(
    pair_id: int, envelope: EventEnvelope, result: LLMComparisonResultV1, extra: dict[str, Any]
) -> tuple[Any, ...]:
    return (
        pair_id,
        "essay_a" if result.winner == EssayComparisonWinner.ESSAY_A else "essay_b",
        result.confidence,
        result.justification,
        result.completed_at,
        envelope.to_bytes().decode("utf-8"),
        json.dumps(
            {
                "provider": str(result.provider),
                "model": result.model,
                "response_time_ms": result.response_time_ms,
                "token_usage": result.token_usage.model_dump(),
                "cost_estimate": result.cost_estimate,
                **extra,
            }
        ),
    )


async def record_callback(
    pool: Executor,
    pair_id: int,
    envelope: EventEnvelope,
    result: LLMComparisonResultV1,
    lps_service: str,
) -> Recorded | None:
    """Store a callback on its pair unless the pair already has an outcome.

    A success for a pair the wave timeout gave up on replaces the timeout while the batch
    still runs (``late_completed``): a leader change or a slow provider delays a callback, it
    does not lose it. Returns None for a duplicate (or a late callback of a finished batch).
    """
    if result.is_success and result.winner is not None:
        args = _success_args(pair_id, envelope, result, {})
        updated = await pool.fetchval(
            _SUCCESS_SET + " WHERE id = $1 AND winner IS NULL RETURNING id", *args
        )
        if updated is not None:
            return "completed"
        late = _success_args(pair_id, envelope, result, {"callback_after_timeout": True})
        updated = await pool.fetchval(_LATE_SUCCESS, *late, CALLBACK_TIMEOUT_CODE)
        return None if updated is None else "late_completed"
    detail = result.error_detail
    updated = await pool.fetchval(
        "UPDATE cj_comparison_pairs SET winner = 'error', error_code = $2,"
        " error_correlation_id = $3, error_timestamp = $4, error_service = $5,"
        " error_details = $6::jsonb, completed_at = $7"
        " WHERE id = $1 AND winner IS NULL RETURNING id",
        pair_id,
        detail.error_code if detail else "UNKNOWN_ERROR",
        result.correlation_id,
        (detail.timestamp if detail and detail.timestamp else result.completed_at),
        (detail.service if detail else None) or lps_service,
        json.dumps(detail.model_dump(mode="json") if detail else {}),
        result.completed_at,
    )
    return None if updated is None else "failed"


async def record_and_count_callback(
    pool: Pool,
    pair_id: int,
    cj_batch_id: int,
    envelope: EventEnvelope,
    result: LLMComparisonResultV1,
    lps_service: str,
) -> Recorded | None:
    """:func:`record_callback` and :func:`count_callback` in one transaction.

    A pair with an outcome but no counted callback would leave the wave one callback short
    for ever (the timeout only looks at pairs without an outcome), so both or neither commit.
    """
    async with pool.acquire() as conn, conn.transaction():
        recorded = await record_callback(conn, pair_id, envelope, result, lps_service)
        if recorded is not None:
            await count_callback(conn, cj_batch_id, recorded)
    return recorded


async def time_out_and_count(
    pool: Pool, cj_batch_id: int, *, error_code: str, service: str, timeout_s: float
) -> int:
    """:func:`time_out_open_pairs` and :func:`add_failed_comparisons` in one transaction."""
    async with pool.acquire() as conn, conn.transaction():
        missing = await time_out_open_pairs(
            conn, cj_batch_id, error_code=error_code, service=service, timeout_s=timeout_s
        )
        if missing:
            await add_failed_comparisons(conn, cj_batch_id, missing)
    return missing


async def count_callback(pool: Executor, cj_batch_id: int, recorded: Recorded) -> None:
    """Count one callback on the batch state (a late one moves a failure to completed)."""
    change = {
        "completed": "completed_comparisons = completed_comparisons + 1",
        "failed": "failed_comparisons = failed_comparisons + 1",
        "late_completed": "completed_comparisons = completed_comparisons + 1,"
        " failed_comparisons = failed_comparisons - 1",
    }[recorded]
    await pool.execute(
        f"UPDATE cj_batch_states SET {change}, last_activity_at = now() WHERE batch_id = $1",
        cj_batch_id,
    )


async def store_scores(
    pool: Pool,
    cj_batch_id: int,
    updates: Sequence[tuple[str, float | None, float | None, int]],
    summary: dict[str, Any],
) -> None:
    """Write ``(essay, score, se, comparisons)`` on the essays and merge ``summary`` into the
    batch state's metadata."""
    await pool.executemany(
        "UPDATE cj_processed_essays SET current_bt_score = $2, current_bt_se = $3,"
        " comparison_count = $4 WHERE els_essay_id = $1",
        updates,
    )
    await pool.execute(
        "UPDATE cj_batch_states SET processing_metadata = processing_metadata || $2::jsonb"
        " WHERE batch_id = $1",
        cj_batch_id,
        json.dumps(summary),
    )
