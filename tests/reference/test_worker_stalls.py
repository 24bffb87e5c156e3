"""No silent stalls: a batch that raises fails loudly, an unpublished event is relayed again,
and a pair's outcome and its batch counter are written together."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from typing import Any

import asyncpg
import pytest
from worker_support import (
    EVENT_TIMEOUT_S,
    SMALL_TEXTS,
    EventTap,
    Infra,
    WorkerFactory,
    batch_state,
    build_request,
    for_batch,
    only,
    publish,
    run_batch,
    run_to_failure,
    seed_assignment,
    seed_students,
    set_faults,
)

from pytest_eng5.contracts.envelope import EventEnvelope
from pytest_eng5.contracts.events import CJAssessmentFailedV1, LLMComparisonResultV1
from pytest_eng5.contracts.topics import COMPLETED_TOPIC, FAILED_TOPIC, RESULT_TOPIC
from pytest_eng5.reference.faults import FaultConfig
from pytest_eng5.reference.worker_settings import WorkerSettings

# --------------------------------------------------------------------------- no silent stalls


@pytest.mark.asyncio
async def test_batch_that_raises_mid_flight_fails_instead_of_stalling(
    infra: Infra, db: asyncpg.Connection, start_worker: WorkerFactory
) -> None:
    """Batch 2 re-uses an essay id of batch 1 while batch 1 waits for callbacks (essay ids
    are a global key, §G.7): batch 1 cannot be scored any more and must say so."""
    first = await seed_students(db, SMALL_TEXTS[:4])
    others = await seed_students(db, SMALL_TEXTS[4:6])
    await start_worker()
    await set_faults(infra.dsn, FaultConfig(judge_delay_ms=1500))
    request_1 = build_request(first, assignment_id=None, max_comparisons=6)
    request_2 = build_request([first[0], *others], assignment_id=None, max_comparisons=3)
    batch_1, batch_2 = str(request_1.data.entity_id), str(request_2.data.entity_id)
    async with EventTap(infra.bootstrap) as tap:
        await publish(infra.bootstrap, request_1)
        deadline = asyncio.get_running_loop().time() + EVENT_TIMEOUT_S
        while (
            await db.fetchval(
                "SELECT s.state::text FROM cj_batch_states s JOIN cj_batch_uploads u"
                " ON u.id = s.batch_id WHERE u.bos_batch_id = $1",
                batch_1,
            )
            != "WAITING_CALLBACKS"
        ):
            assert asyncio.get_running_loop().time() < deadline, "batch 1 never submitted"
            await asyncio.sleep(0.05)
        await publish(infra.bootstrap, request_2)
        await tap.wait_for(
            lambda t: (
                bool(for_batch(t.envelopes(FAILED_TOPIC), batch_1))
                and bool(for_batch(t.envelopes(RESULT_TOPIC), batch_2))
            ),
            30.0,
            "failure of batch 1 and result of batch 2",
        )
    failed = only(for_batch(tap.envelopes(FAILED_TOPIC), batch_1)).data_as(CJAssessmentFailedV1)
    assert failed.failure_reason == "processing_error"
    assert failed.cj_assessment_job_id == str((await batch_state(db, batch_1))["id"])
    assert not for_batch(tap.envelopes(COMPLETED_TOPIC), batch_1)
    state = await batch_state(db, batch_1)
    assert (state["status"], state["state"]) == ("ERROR_PROCESSING", "FAILED")


@pytest.mark.asyncio
async def test_batch_that_raises_while_finalising_fails_instead_of_stalling(
    infra: Infra, db: asyncpg.Connection, start_worker: WorkerFactory
) -> None:
    """Finalisation marks the batch COMPLETE_* before it publishes; a failure after that
    (here: an instruction row written behind the API's back with an unknown scale) must
    still end in a failure event."""
    assignment_id = f"bad-scale-{uuid.uuid4().hex[:8]}"
    await seed_assignment(db, assignment_id, [], grade_scale="no_such_scale")
    essays = await seed_students(db, SMALL_TEXTS[:3])
    await start_worker()
    request = build_request(essays, assignment_id=assignment_id, max_comparisons=3)
    failed = (await run_to_failure(infra, request)).data_as(CJAssessmentFailedV1)
    assert failed.failure_reason == "processing_error"
    assert "no_such_scale" in failed.system_metadata.error_info["details"]["error"]
    state = await batch_state(db, str(request.data.entity_id))
    assert (state["status"], state["state"]) == ("ERROR_PROCESSING", "FAILED")


@pytest.mark.asyncio
async def test_event_that_failed_to_publish_is_relayed_again(
    infra: Infra, db: asyncpg.Connection, start_worker: WorkerFactory
) -> None:
    essays = await seed_students(db, SMALL_TEXTS[:3])
    worker = await start_worker()
    producer = worker._producer
    assert producer is not None
    send_and_wait = producer.send_and_wait
    refused: list[str] = []

    async def flaky_send(topic: str, *args: Any, **kwargs: Any) -> Any:
        if topic == COMPLETED_TOPIC and not refused:
            refused.append(topic)
            raise ConnectionError("injected: broker unavailable for this send")
        return await send_and_wait(topic, *args, **kwargs)

    producer.send_and_wait = flaky_send  # type: ignore[method-assign]
    request = build_request(essays, assignment_id=None)
    batch_id = str(request.data.entity_id)
    tap = await run_batch(infra, request, terminal=(COMPLETED_TOPIC,))
    assert refused == [COMPLETED_TOPIC]
    only(for_batch(tap.envelopes(COMPLETED_TOPIC), batch_id))
    unpublished = await db.fetchval(
        "SELECT count(*) FROM event_outbox WHERE aggregate_id = $1 AND published_at IS NULL",
        batch_id,
    )
    assert unpublished == 0


# --------------------------------------------------------------------------- atomic counters


@pytest.mark.asyncio
async def test_callback_and_timeout_write_outcome_and_counter_together(
    infra: Infra, db: asyncpg.Connection
) -> None:
    """If the batch counter cannot be updated, the pair outcome must not be stored either: a
    pair with an outcome but an uncounted callback would keep the wave open for ever."""
    from pytest_eng5.contracts.enums import EssayComparisonWinner, LLMProviderType
    from pytest_eng5.contracts.topics import CALLBACK_EVENT_TYPE
    from pytest_eng5.reference.batch_flow import BatchFlow
    from pytest_eng5.reference.db import create_pool
    from pytest_eng5.reference.judge import CoinFlipJudge

    cj_batch_id = await db.fetchval(
        "INSERT INTO cj_batch_uploads (bos_batch_id, event_correlation_id, language, course_code,"
        " expected_essay_count, processing_metadata) VALUES ($1, $2, 'en', 'ENG5', 4, '{}')"
        " RETURNING id",
        str(uuid.uuid4()),
        str(uuid.uuid4()),
    )
    await db.execute(
        "INSERT INTO cj_batch_states (batch_id, state, total_budget, submitted_comparisons,"
        " total_comparisons, current_iteration, processing_metadata)"
        " VALUES ($1, 'WAITING_CALLBACKS', 2, 2, 2, 1, '{}')",
        cj_batch_id,
    )
    correlation_ids = [uuid.uuid4(), uuid.uuid4()]
    for index, correlation_id in enumerate(correlation_ids):
        await db.execute(
            "INSERT INTO cj_comparison_pairs (cj_batch_id, essay_a_els_id, essay_b_els_id,"
            " prompt_text, request_correlation_id, submitted_at) VALUES ($1, $2, $3, 'p', $4,"
            " now())",
            cj_batch_id,
            f"atomic-a{index}",
            f"atomic-b{index}",
            correlation_id,
        )
    trigger = f"eng5_test_fail_state_{cj_batch_id}"
    await db.execute(
        "CREATE OR REPLACE FUNCTION eng5_test_fail_state_update() RETURNS trigger AS"
        " $$ BEGIN RAISE EXCEPTION 'injected: batch state not writable'; END $$"
        " LANGUAGE plpgsql"
    )
    await db.execute(
        f"CREATE TRIGGER {trigger} BEFORE UPDATE ON cj_batch_states FOR EACH ROW"
        f" WHEN (OLD.batch_id = {int(cj_batch_id)}) EXECUTE FUNCTION eng5_test_fail_state_update()"
    )
    settings = WorkerSettings(infra.bootstrap, infra.dsn, infra.content_url)
    pool = await create_pool(infra.dsn)
    # the failing paths use the pool only: no producer, no HTTP client
    flow = BatchFlow(pool, None, None, CoinFlipJudge(), settings)  # type: ignore[arg-type]
    try:
        callback = LLMComparisonResultV1(
            request_id=str(uuid.uuid4()),
            correlation_id=correlation_ids[0],
            winner=EssayComparisonWinner.ESSAY_A,
            justification="A is better.",
            confidence=3.0,
            provider=LLMProviderType.MOCK,
            model="m",
            response_time_ms=1,
            cost_estimate=0.0,
            requested_at=datetime.now(UTC),
            completed_at=datetime.now(UTC),
        )
        envelope = EventEnvelope(
            event_type=CALLBACK_EVENT_TYPE,
            source_service="llm_provider_service",
            correlation_id=correlation_ids[0],
            data=callback,
        )
        with pytest.raises(asyncpg.RaiseError, match="injected"):
            await flow.handle_callback(envelope.to_bytes())
        await flow.on_wave_timeout(cj_batch_id)  # the counter update fails here too

        winners = await db.fetch(
            "SELECT winner FROM cj_comparison_pairs WHERE cj_batch_id = $1", cj_batch_id
        )
        assert [w["winner"] for w in winners] == [None, None], "outcome stored, counter not"
    finally:
        flow.runtimes.cancel_all()
        await db.execute(f"DROP TRIGGER IF EXISTS {trigger} ON cj_batch_states")
        await pool.close()
