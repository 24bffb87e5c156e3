"""Callbacks that arrive after their wave timed out, over Tansu and the embedded PostgreSQL.

A crashed node of a real cluster holds callbacks back for seconds (acks=all waits until the
node leaves the in-sync replicas and its partitions have new leaders); if that outlasts the wave
timeout, the pair is first recorded as ``CALLBACK_TIMEOUT``. Its callback must still count
once, as the outcome it carries, as long as the batch runs; a callback of a finished batch
changes nothing.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from datetime import UTC, datetime
from typing import Any

import asyncpg
import pytest
import pytest_asyncio
from aiokafka import AIOKafkaProducer
from worker_support import (
    EventTap,
    Infra,
    WorkerFactory,
    build_request,
    for_batch,
    publish,
    publish_raw,
    seed_students,
    set_faults,
)

from pytest_eng5.contracts.enums import EssayComparisonWinner, LLMProviderType
from pytest_eng5.contracts.envelope import EventEnvelope
from pytest_eng5.contracts.events import CJAssessmentFailedV1, ErrorDetail, LLMComparisonResultV1
from pytest_eng5.contracts.topics import CALLBACK_EVENT_TYPE, CALLBACK_TOPIC, FAILED_TOPIC
from pytest_eng5.reference.faults import FaultConfig
from pytest_eng5.reference.worker import CJWorker

TEXTS = [f"Essay {i}: phones in school, " + "with reasons " * i for i in range(1, 7)]
BUDGET = 7  # six essays: three pairs in wave 1, then two a wave, so three waves
#: Waves 1 and 3 end by this timeout (their callbacks are lost). Wave 2 ends by the callbacks
#: the test publishes right after the late ones, on the same partition, so the worker has read
#: the late ones before the batch can move on; only a stall this long could time wave 2 out.
WAVE_TIMEOUT_S = 10.0
WAIT_S = 60.0


@pytest_asyncio.fixture
async def worker(infra: Infra, start_worker: WorkerFactory) -> CJWorker:
    started = await start_worker(callback_timeout_s=WAVE_TIMEOUT_S, judge_name="coin_flip")
    # every callback of the emulated provider is lost: the test delivers them, late
    await set_faults(infra.dsn, FaultConfig(drop_callback_rate=1.0))
    return started


async def timed_out_pairs(db: asyncpg.Connection, bos_batch_id: str) -> list[asyncpg.Record]:
    return list(
        await db.fetch(
            "SELECT p.id, p.request_correlation_id FROM cj_comparison_pairs p"
            " JOIN cj_batch_uploads u ON u.id = p.cj_batch_id"
            " WHERE u.bos_batch_id = $1 AND p.error_code = 'CALLBACK_TIMEOUT' ORDER BY p.id",
            bos_batch_id,
        )
    )


async def first_timeouts(
    db: asyncpg.Connection, bos_batch_id: str, count: int
) -> dict[int, uuid.UUID]:
    """Pair id -> correlation id of the first ``count`` pairs the wave timeout gave up on."""
    deadline = asyncio.get_running_loop().time() + WAIT_S
    while len(rows := await timed_out_pairs(db, bos_batch_id)) < count:
        assert asyncio.get_running_loop().time() < deadline, f"{count} pairs never timed out"
        await asyncio.sleep(0.05)  # polling the pairs the worker's timeout wrote
    return {row["id"]: row["request_correlation_id"] for row in rows[:count]}


async def open_pairs(db: asyncpg.Connection, bos_batch_id: str) -> dict[int, uuid.UUID]:
    """Pair id -> correlation id of the pairs of the wave now waiting (a wave is stored in one
    transaction, so the first pair seen comes with all the others)."""
    deadline = asyncio.get_running_loop().time() + WAIT_S
    query = (
        "SELECT p.id, p.request_correlation_id FROM cj_comparison_pairs p"
        " JOIN cj_batch_uploads u ON u.id = p.cj_batch_id"
        " WHERE u.bos_batch_id = $1 AND p.winner IS NULL ORDER BY p.id"
    )
    while not (rows := await db.fetch(query, bos_batch_id)):
        assert asyncio.get_running_loop().time() < deadline, "the next wave was never submitted"
        await asyncio.sleep(0.05)  # polling the pairs the worker's next wave wrote
    return {row["id"]: row["request_correlation_id"] for row in rows}


def late_success(correlation_id: uuid.UUID) -> bytes:
    """The success callback LPS publishes for a pair, as it arrives after the timeout."""
    return callback(
        correlation_id,
        winner=EssayComparisonWinner.ESSAY_B,
        justification="B argues with reasons.",
        confidence=4.0,
    )


def provider_error(correlation_id: uuid.UUID) -> bytes:
    """The error callback LPS publishes when the provider failed the comparison."""
    error = ErrorDetail(
        error_code="EXTERNAL_SERVICE_ERROR",
        message="provider unavailable",
        correlation_id=str(correlation_id),
        timestamp=datetime.now(UTC),
        service="llm_provider_service",
        operation="generate_comparison",
    )
    return callback(correlation_id, error_detail=error)


def callback(correlation_id: uuid.UUID, **outcome: Any) -> bytes:
    now = datetime.now(UTC)
    result = LLMComparisonResultV1(
        request_id=str(uuid.uuid4()),
        correlation_id=correlation_id,
        provider=LLMProviderType.MOCK,
        model="late-model",
        response_time_ms=12_000,
        cost_estimate=0.0,
        requested_at=now,
        completed_at=now,
        **outcome,
    )
    envelope = EventEnvelope(
        event_type=CALLBACK_EVENT_TYPE,
        source_service="llm_provider_service",
        correlation_id=correlation_id,
        data=result,
    )
    return envelope.to_bytes()


async def publish_in_order(bootstrap: str, values: list[bytes]) -> None:
    """Publish ``values`` to one partition of the callback topic: the worker reads them in
    this order."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=0)
    await producer.start()
    try:
        for value in values:
            await producer.send_and_wait(CALLBACK_TOPIC, value, partition=0)
    finally:
        await producer.stop()


async def batch_counts(db: asyncpg.Connection, bos_batch_id: str) -> asyncpg.Record:
    row = await db.fetchrow(
        "SELECT s.submitted_comparisons AS submitted, s.completed_comparisons AS completed,"
        " s.failed_comparisons AS failed,"
        " (SELECT count(*) FROM cj_comparison_pairs p WHERE p.cj_batch_id = u.id"
        "  AND p.winner IN ('essay_a', 'essay_b')) AS winners,"
        " (SELECT count(*) FROM cj_comparison_pairs p WHERE p.cj_batch_id = u.id"
        "  AND p.winner = 'error') AS errors"
        " FROM cj_batch_uploads u JOIN cj_batch_states s ON s.batch_id = u.id"
        " WHERE u.bos_batch_id = $1",
        bos_batch_id,
    )
    assert row is not None
    return row


@pytest.mark.asyncio
async def test_a_callback_after_its_wave_timed_out_counts_once_as_completed(
    infra: Infra,
    db: asyncpg.Connection,
    worker: CJWorker,
    caplog: pytest.LogCaptureFixture,
) -> None:
    bootstrap = infra.bootstrap
    request = build_request(
        await seed_students(db, TEXTS), assignment_id=None, max_comparisons=BUDGET
    )
    batch_id = str(request.data.entity_id)
    tap = EventTap(bootstrap, (FAILED_TOPIC,))
    await tap.start()
    try:
        await publish(bootstrap, request)
        late = await first_timeouts(db, batch_id, 3)  # wave 1
        wave_2 = await open_pairs(db, batch_id)
        await publish_in_order(
            bootstrap,
            # delivered late, and then once more (a redelivery); then wave 2 ends with errors
            [late_success(c) for c in late.values() for _ in range(2)]
            + [provider_error(c) for c in wave_2.values()],
        )
        await tap.wait_for(
            lambda t: bool(for_batch(t.envelopes(FAILED_TOPIC), batch_id)), WAIT_S, "batch end"
        )
    finally:
        await tap.stop()

    failed = for_batch(tap.envelopes(FAILED_TOPIC), batch_id)[0].data_as(CJAssessmentFailedV1)
    details = failed.system_metadata.error_info["details"]
    assert details["completed_comparisons"] == len(late), "the late callbacks were counted"
    counts = await batch_counts(db, batch_id)
    assert counts["submitted"] == BUDGET
    assert (counts["completed"], counts["failed"]) == (len(late), BUDGET - len(late))
    assert (counts["winners"], counts["errors"]) == (counts["completed"], counts["failed"])
    stored = await db.fetch(
        "SELECT winner, error_code, processing_metadata->>'callback_after_timeout' AS late"
        " FROM cj_comparison_pairs WHERE id = ANY($1::int[])",
        list(late),
    )
    assert {(r["winner"], r["error_code"], r["late"]) for r in stored} == {
        ("essay_b", None, "true")
    }
    ended = await db.fetch(
        "SELECT error_code FROM cj_comparison_pairs WHERE id = ANY($1::int[])", list(wave_2)
    )
    assert [r["error_code"] for r in ended] == ["EXTERNAL_SERVICE_ERROR"] * len(wave_2), (
        "wave 2 ended by its callbacks, not by its timeout"
    )

    # the last wave's pairs time out at the end; a callback for one of them after the batch
    # finished is ignored: the failed event already told what the batch counted
    last = next(row for row in await timed_out_pairs(db, batch_id) if row["id"] not in late)
    with caplog.at_level(logging.INFO, logger="pytest_eng5.reference"):
        await publish_raw(
            bootstrap, late_success(last["request_correlation_id"]), topic=CALLBACK_TOPIC
        )
        deadline = asyncio.get_running_loop().time() + WAIT_S
        while f"callback {last['request_correlation_id']} ignored" not in caplog.text:
            assert asyncio.get_running_loop().time() < deadline, "the worker never read it"
            await asyncio.sleep(0.05)  # polling the worker's log of the callback
    assert await batch_counts(db, batch_id) == counts
