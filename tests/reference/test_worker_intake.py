"""Intake by the reference CJ worker: a request it rejects publishes a failed event (§D.7,
emitter 1); an essay whose text cannot be fetched is left out of the batch."""

from __future__ import annotations

import json
import logging
import uuid

import asyncpg
import pytest
from worker_support import (
    EVENT_TIMEOUT_S,
    SMALL_TEXTS,
    EventTap,
    Infra,
    WorkerFactory,
    build_request,
    for_batch,
    only,
    publish_raw,
    run_batch,
    run_to_failure,
    seed_students,
    set_faults,
)

from pytest_eng5.contracts.envelope import EventEnvelope
from pytest_eng5.contracts.events import (
    CJAssessmentCompletedV1,
    CJAssessmentFailedV1,
    EssayProcessingInputRefV1,
)
from pytest_eng5.contracts.topics import COMPLETED_TOPIC, FAILED_TOPIC, RESULT_TOPIC
from pytest_eng5.reference.faults import FaultConfig

# --------------------------------------------------------------------------- intake failures


async def _expect_intake_failure(infra: Infra, request: EventEnvelope) -> CJAssessmentFailedV1:
    envelope = await run_to_failure(infra, request)
    assert envelope.correlation_id == request.correlation_id
    failed = envelope.data_as(CJAssessmentFailedV1)
    assert failed.cj_assessment_job_id == "INITIALIZATION_FAILED"
    assert failed.status == "failed_critically"
    info = failed.system_metadata.error_info
    assert set(info) >= {"error_code", "error_message", "correlation_id", "timestamp", "service"}
    assert info["correlation_id"] == str(request.correlation_id)
    return failed


@pytest.mark.asyncio
async def test_unknown_assignment_publishes_failed_event(
    infra: Infra, db: asyncpg.Connection, start_worker: WorkerFactory
) -> None:
    essays = await seed_students(db, SMALL_TEXTS[:3])
    await start_worker()
    failed = await _expect_intake_failure(
        infra, build_request(essays, assignment_id=f"missing-{uuid.uuid4().hex[:6]}")
    )
    assert failed.system_metadata.error_info["error_code"] == "RESOURCE_NOT_FOUND"
    assert "assessment_instructions" in failed.system_metadata.error_info["error_message"]


@pytest.mark.asyncio
async def test_empty_user_id_publishes_failed_event(
    infra: Infra, db: asyncpg.Connection, start_worker: WorkerFactory
) -> None:
    essays = await seed_students(db, SMALL_TEXTS[:3])
    await start_worker()
    failed = await _expect_intake_failure(
        infra, build_request(essays, assignment_id=None, user_id="")
    )
    assert "user_id" in failed.system_metadata.error_info["error_message"]


@pytest.mark.asyncio
async def test_force_failure_publishes_failed_event(
    infra: Infra, db: asyncpg.Connection, start_worker: WorkerFactory
) -> None:
    essays = await seed_students(db, SMALL_TEXTS[:3])
    await start_worker()
    await set_faults(infra.dsn, FaultConfig(force_failure=True))
    failed = await _expect_intake_failure(infra, build_request(essays, assignment_id=None))
    assert "force_failure" in failed.system_metadata.error_info["error_message"]


@pytest.mark.asyncio
async def test_invalid_request_fails_and_garbage_is_skipped(
    infra: Infra, db: asyncpg.Connection, start_worker: WorkerFactory
) -> None:
    await start_worker()
    await publish_raw(infra.bootstrap, b"not json at all")
    bad = build_request([], assignment_id=None).to_json_dict()
    bad["data"]["course_code"] = "NOT_A_COURSE"
    batch_id = bad["data"]["entity_id"]
    tap = EventTap(infra.bootstrap)
    async with tap:
        await publish_raw(infra.bootstrap, json.dumps(bad).encode())
        await tap.wait_for(
            lambda t: bool(for_batch(t.envelopes(FAILED_TOPIC), batch_id)),
            EVENT_TIMEOUT_S,
            "failed",
        )
    failed = only(for_batch(tap.envelopes(FAILED_TOPIC), batch_id)).data_as(CJAssessmentFailedV1)
    assert failed.system_metadata.error_info["error_code"] == "VALIDATION_ERROR"
    # The worker survived both and still processes a good request.
    essays = await seed_students(db, SMALL_TEXTS[:2])
    tap = await run_batch(infra, build_request(essays, assignment_id=None))
    assert tap.envelopes(RESULT_TOPIC)


@pytest.mark.asyncio
async def test_database_error_at_intake_publishes_failed_event(
    infra: Infra, db: asyncpg.Connection, start_worker: WorkerFactory
) -> None:
    essays = await seed_students(db, SMALL_TEXTS[:3])
    await start_worker()
    request = build_request(essays, assignment_id=None)
    request.data.language = "english-please"  # cj_batch_uploads.language is varchar(10)
    failed = await _expect_intake_failure(infra, request)
    assert failed.system_metadata.error_info["error_code"] == "PROCESSING_ERROR"


@pytest.mark.asyncio
async def test_essay_whose_text_cannot_be_fetched_is_skipped_with_a_warning(
    infra: Infra,
    db: asyncpg.Connection,
    start_worker: WorkerFactory,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """As HuleEdu: a blob the Content Service does not return drops its essay, not the batch."""
    essays = await seed_students(db, SMALL_TEXTS[:3])
    lost = EssayProcessingInputRefV1(essay_id=str(uuid.uuid4()), text_storage_id=uuid.uuid4().hex)
    await start_worker()
    request = build_request([*essays, lost], assignment_id=None)
    batch_id = str(request.data.entity_id)
    with caplog.at_level(logging.WARNING, logger="pytest_eng5.reference"):
        tap = await run_batch(infra, request)
    completed = only(for_batch(tap.envelopes(COMPLETED_TOPIC), batch_id))
    summary = completed.data_as(CJAssessmentCompletedV1).processing_summary
    assert summary.total_essays == 3
    assert set(summary.successful_essay_ids) == {e.essay_id for e in essays}
    assert f"essay {lost.essay_id} skipped: its text could not be fetched" in caplog.text
    stored = await db.fetchval(
        "SELECT count(*) FROM cj_processed_essays WHERE els_essay_id = $1", lost.essay_id
    )
    assert stored == 0
