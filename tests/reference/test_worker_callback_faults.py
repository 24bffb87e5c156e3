"""Lost, duplicated, garbled and error callbacks: the reference CJ worker still ends the batch."""

from __future__ import annotations

from collections import Counter

import asyncpg
import pytest
from worker_support import (
    SMALL_TEXTS,
    Infra,
    WorkerFactory,
    batch_state,
    build_request,
    for_batch,
    only,
    run_batch,
    run_to_failure,
    seed_students,
    set_faults,
)

from pytest_eng5.contracts.events import (
    CJAssessmentCompletedV1,
    CJAssessmentFailedV1,
    EssayProcessingInputRefV1,
    LLMComparisonResultV1,
)
from pytest_eng5.contracts.topics import CALLBACK_TOPIC, COMPLETED_TOPIC, FAILED_TOPIC, RESULT_TOPIC
from pytest_eng5.reference.faults import FaultConfig

# --------------------------------------------------------------------------- callback faults


def _fixed_essays(
    refs: list[EssayProcessingInputRefV1], tag: str
) -> list[EssayProcessingInputRefV1]:
    """Same texts, fixed ids: fault draws are keyed by batch/essay ids, so runs repeat."""
    return [
        EssayProcessingInputRefV1(essay_id=f"{tag}-{i:02d}", text_storage_id=r.text_storage_id)
        for i, r in enumerate(refs)
    ]


@pytest.mark.asyncio
async def test_dropped_duplicated_and_malformed_callbacks_still_complete(
    infra: Infra, db: asyncpg.Connection, start_worker: WorkerFactory
) -> None:
    refs = _fixed_essays(await seed_students(db, SMALL_TEXTS), "fault")
    await start_worker(callback_timeout_s=1.0)
    await set_faults(
        infra.dsn,
        FaultConfig(
            drop_callback_rate=0.06,
            duplicate_callback_rate=0.3,
            malformed_callback_rate=0.06,
            seed=37,
        ),
    )
    # With seed 37 and these ids: one callback lost, one garbled, several duplicated.
    batch_id = "00000000-0000-4000-8000-000000000020"
    request = build_request(refs, assignment_id=None, max_comparisons=15, batch_id=batch_id)
    tap = await run_batch(infra, request, terminal=(RESULT_TOPIC, FAILED_TOPIC))

    completed = only(for_batch(tap.envelopes(COMPLETED_TOPIC), batch_id))
    assert completed.data_as(CJAssessmentCompletedV1).status == "completed_successfully"
    state = await batch_state(db, batch_id)
    timed_out = await db.fetchval(
        "SELECT count(*) FROM cj_comparison_pairs WHERE cj_batch_id = $1"
        " AND error_code = 'CALLBACK_TIMEOUT'",
        state["id"],
    )
    callbacks = for_batch(tap.envelopes(CALLBACK_TOPIC), batch_id)
    per_pair = Counter(str(c.correlation_id) for c in callbacks)
    malformed = len(tap.raw(CALLBACK_TOPIC)) - len(tap.envelopes(CALLBACK_TOPIC))
    assert timed_out >= 1, "this seed drops or garbles at least one callback"
    assert malformed >= 1, "this seed garbles at least one callback"
    assert max(per_pair.values()) == 2, "this seed duplicates at least one callback"
    # Duplicates are counted once; every submitted pair has exactly one recorded outcome.
    assert (
        state["completed_comparisons"] + state["failed_comparisons"]
        == state["submitted_comparisons"]
    )
    assert state["failed_comparisons"] == timed_out


@pytest.mark.asyncio
async def test_all_callbacks_dropped_ends_with_low_success_failure(
    infra: Infra, db: asyncpg.Connection, start_worker: WorkerFactory
) -> None:
    essays = await seed_students(db, SMALL_TEXTS[:4])
    await start_worker(callback_timeout_s=0.5)
    await set_faults(infra.dsn, FaultConfig(drop_callback_rate=1.0))
    request = build_request(essays, assignment_id=None, max_comparisons=6)
    failed = (await run_to_failure(infra, request)).data_as(CJAssessmentFailedV1)
    info = failed.system_metadata.error_info
    assert info["reason"] == "low_success_rate"
    assert info["details"]["completed_comparisons"] == 0
    assert info["details"]["callbacks_received"] == 6
    state = await batch_state(db, str(request.data.entity_id))
    assert (state["status"], state["state"]) == ("ERROR_PROCESSING", "FAILED")


@pytest.mark.asyncio
async def test_judge_errors_become_error_callbacks(
    infra: Infra, db: asyncpg.Connection, start_worker: WorkerFactory
) -> None:
    essays = await seed_students(db, SMALL_TEXTS[:4])
    await start_worker()
    await set_faults(infra.dsn, FaultConfig(judge_error_rate=1.0))
    request = build_request(essays, assignment_id=None, max_comparisons=6)
    batch_id = str(request.data.entity_id)
    tap = await run_batch(infra, request, terminal=(FAILED_TOPIC, COMPLETED_TOPIC))
    callbacks = [
        c.data_as(LLMComparisonResultV1) for c in for_batch(tap.envelopes(CALLBACK_TOPIC), batch_id)
    ]
    assert len(callbacks) == 6
    assert all(c.is_error and c.model == "unknown" for c in callbacks)
    failed = only(for_batch(tap.envelopes(FAILED_TOPIC), batch_id)).data_as(CJAssessmentFailedV1)
    assert failed.failure_reason == "low_success_rate"
