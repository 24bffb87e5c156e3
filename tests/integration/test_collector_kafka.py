"""The collector and the publisher over a real Tansu broker; the test plays the CJ side."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest
import pytest_asyncio
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from pytest_eng5.contracts import (
    CALLBACK_TOPIC,
    COMPLETED_TOPIC,
    FAILED_TOPIC,
    REQUEST_TOPIC,
    RESULT_TOPIC,
    EventEnvelope,
)
from pytest_eng5.errors import AwaitTimeoutError, BatchFailedError, PublishError
from pytest_eng5.runner.collector import BatchCollector, CollectedEvent, ProgressInfo
from pytest_eng5.runner.evidence import EVENTS_FILE, EvidenceFolder
from pytest_eng5.runner.identity import BatchIdentity
from pytest_eng5.runner.kafka_io import publish_request

WAIT_SECONDS = 30.0


def _now() -> str:
    return datetime.now(UTC).isoformat()


def _envelope(event_type: str, source: str, data: dict[str, Any]) -> dict[str, Any]:
    return {
        "event_id": str(uuid4()),
        "event_type": event_type,
        "event_timestamp": _now(),
        "source_service": source,
        "schema_version": 1,
        "correlation_id": str(uuid4()),
        "data_schema_uri": None,
        "data": data,
        "metadata": None,
    }


def callback(
    batch_id: str,
    essay_a: str,
    essay_b: str,
    *,
    winner: str | None = "Essay A",
    request_id: str | None = None,
    with_essay_ids: bool = True,
) -> dict[str, Any]:
    metadata: dict[str, Any] = {
        "bos_batch_id": batch_id,
        "cj_batch_id": "7",
        "cj_source": "els",
        "cj_request_type": "cj_comparison",
        "prompt_sha256": "a" * 64,
    }
    if with_essay_ids:
        metadata |= {"essay_a_id": essay_a, "essay_b_id": essay_b}
    data: dict[str, Any] = {
        "request_id": request_id or str(uuid4()),
        "correlation_id": str(uuid4()),
        "provider": "mock",
        "model": "mock-model",
        "response_time_ms": 12,
        "token_usage": {"prompt_tokens": 100, "completion_tokens": 20, "total_tokens": 120},
        "cost_estimate": 0.001,
        "requested_at": _now(),
        "completed_at": _now(),
        "request_metadata": metadata,
    }
    if winner is None:
        data["error_detail"] = {"error_code": "EXTERNAL_SERVICE_ERROR", "message": "provider 503"}
    else:
        data |= {"winner": winner, "justification": "clearer argument", "confidence": 4.0}
    return _envelope("LLMComparisonResultV1", "llm_provider_service", data)


def _system_metadata(batch_id: str, stage: str, error_info: dict[str, Any]) -> dict[str, Any]:
    return {
        "entity_id": batch_id,
        "entity_type": "batch",
        "processing_stage": stage,
        "error_info": error_info,
    }


def completion(batch_id: str, status: str = "completed_successfully") -> dict[str, Any]:
    data = {
        "event_name": "cj_assessment.completed",
        "entity_id": batch_id,
        "entity_type": "batch",
        "status": status,
        "system_metadata": _system_metadata(batch_id, "completed", {}),
        "cj_assessment_job_id": "7",
        "processing_summary": {"total_essays": 2, "successful": 2, "failed": 0},
    }
    return _envelope(COMPLETED_TOPIC, "cj_assessment_service", data)


def failed(batch_id: str, message: str) -> dict[str, Any]:
    info = {"error_code": "RESOURCE_NOT_FOUND", "error_message": message}
    data = {
        "event_name": "cj_assessment.failed",
        "entity_id": batch_id,
        "entity_type": "batch",
        "status": "failed_critically",
        "system_metadata": _system_metadata(batch_id, "failed", info),
        "cj_assessment_job_id": "INITIALIZATION_FAILED",
    }
    return _envelope(FAILED_TOPIC, "cj_assessment_service", data)


def result(batch_id: str, essay_ids: list[str]) -> dict[str, Any]:
    essays = [
        {
            "essay_id": essay_id,
            "normalized_score": 0.6,
            "letter_grade": "C",
            "confidence_score": 0.5,
            "confidence_label": "MID",
            "bt_score": 1.0 - index,
            "rank": index + 1,
            "is_anchor": False,
        }
        for index, essay_id in enumerate(essay_ids)
    ]
    data = {
        "event_name": "assessment.result.published",
        "entity_id": batch_id,
        "entity_type": "batch",
        "batch_id": batch_id,
        "cj_assessment_job_id": "7",
        "model_used": "mock-model",
        "model_provider": "mock",
        "essay_results": essays,
    }
    return _envelope(RESULT_TOPIC, "cj_assessment_service", data)


class CJSide:
    """Produces CJ/LPS events the way HuleEdu does (JSON envelopes on the contract topics)."""

    def __init__(self, producer: AIOKafkaProducer) -> None:
        self.producer = producer

    async def send(self, topic: str, event: dict[str, Any] | bytes, key: str | None = None) -> None:
        value = event if isinstance(event, bytes) else json.dumps(event).encode()
        await self.producer.send_and_wait(topic, value, key=key.encode() if key else None)


@pytest_asyncio.fixture
async def cj(tansu_bootstrap: str) -> AsyncIterator[CJSide]:
    producer = AIOKafkaProducer(
        bootstrap_servers=tansu_bootstrap, enable_idempotence=False, linger_ms=0
    )
    await producer.start()
    try:
        yield CJSide(producer)
    finally:
        await producer.stop()


def _consumer_kwargs(bootstrap: str) -> dict[str, Any]:
    return {"bootstrap_servers": bootstrap}


def _events(folder: Path) -> list[dict[str, Any]]:
    path = folder / EVENTS_FILE
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


async def _read_request(bootstrap: str, partition: int, offset: int) -> tuple[bytes, bytes]:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        tp = TopicPartition(REQUEST_TOPIC, partition)
        consumer.assign([tp])
        consumer.seek(tp, offset)
        record = await consumer.getone()
        return record.key, record.value
    finally:
        await consumer.stop()


@pytest.mark.asyncio
async def test_publish_then_collect_sees_only_its_batch(
    tansu_bootstrap: str,
    cj: CJSide,
    tmp_path: Path,
    make_guest_request: Callable[..., EventEnvelope],
) -> None:
    identity = BatchIdentity.new("integration-own")
    foreign_id = str(uuid4())
    ours = identity.batch_id
    evidence = EvidenceFolder(tmp_path, identity)
    # An event of this batch published BEFORE prepare() must not be read (end offsets).
    await cj.send(CALLBACK_TOPIC, callback(ours, "stale-a", "stale-b"))
    seen: list[CollectedEvent] = []
    progress: list[ProgressInfo] = []
    collector = BatchCollector(
        identity,
        consumer_kwargs=_consumer_kwargs(tansu_bootstrap),
        evidence=evidence,
        on_event=seen.append,
        progress=progress.append,
    )
    envelope = make_guest_request(identity, "ESSAY-1", "ESSAY-2")
    async with collector:
        evidence.write_request(envelope)
        info = await publish_request(
            envelope,
            producer_kwargs={"bootstrap_servers": tansu_bootstrap, "enable_idempotence": False},
            timeout=10,
        )
        await cj.send(CALLBACK_TOPIC, callback(foreign_id, "F-1", "F-2"))
        await cj.send(CALLBACK_TOPIC, callback(ours, "ESSAY-1", "ESSAY-2", winner="Essay B"))
        await cj.send(CALLBACK_TOPIC, callback(foreign_id, "F-2", "F-1"))
        await cj.send(CALLBACK_TOPIC, callback(ours, "ESSAY-2", "ESSAY-1", winner=None))
        await cj.send(COMPLETED_TOPIC, completion(foreign_id))
        await cj.send(RESULT_TOPIC, result(foreign_id, ["F-1", "F-2"]))
        await cj.send(COMPLETED_TOPIC, completion(ours), key=ours)
        await cj.send(RESULT_TOPIC, result(ours, ["ESSAY-2", "ESSAY-1"]))
        run = await collector.wait(WAIT_SECONDS)
    evidence.close()

    key, value = await _read_request(tansu_bootstrap, info.partition, info.offset)
    assert key == ours.encode()
    assert EventEnvelope.from_bytes(value).event_id == envelope.event_id
    # Unkeyed callbacks land on any partition, so arrival order is not part of the contract.
    assert sorted(c.request_metadata["essay_a_id"] for c in run.callbacks) == ["ESSAY-1", "ESSAY-2"]
    assert run.completion is not None
    assert run.completion.entity_id == ours
    assert run.result is not None
    assert run.result.batch_id == ours
    assert run.counts == {"foreign": 4, "duplicates": 0, "malformed": 0}
    assert not run.result_missing
    # Order holds within a topic partition only, so compare the kinds as sorted lists.
    expected_kinds = ["callback", "callback", "completion", "result"]
    assert sorted(event.kind for event in seen) == expected_kinds
    lines = _events(evidence.folder)
    assert sorted(line["kind"] for line in lines) == expected_kinds
    assert all(ours in json.dumps(line["envelope"]) for line in lines)
    assert json.loads((evidence.folder / "request.json").read_text())["data"]["entity_id"] == ours


@pytest.mark.asyncio
async def test_duplicates_and_malformed_are_skipped_counted_and_kept(
    tansu_bootstrap: str, cj: CJSide, tmp_path: Path
) -> None:
    identity = BatchIdentity.new("integration-faults")
    ours = identity.batch_id
    evidence = EvidenceFolder(tmp_path, identity)
    broken_completion = completion(ours)
    del broken_completion["data"]["status"]
    async with BatchCollector(
        identity, consumer_kwargs=_consumer_kwargs(tansu_bootstrap), evidence=evidence
    ) as collector:
        first = callback(ours, "E1", "E2")
        await cj.send(CALLBACK_TOPIC, first)
        await cj.send(CALLBACK_TOPIC, {**first, "event_id": str(uuid4())})  # redelivered
        await cj.send(CALLBACK_TOPIC, b"{not json")
        await cj.send(CALLBACK_TOPIC, callback(ours, "E1", "E2", with_essay_ids=False))
        await cj.send(COMPLETED_TOPIC, broken_completion)
        await cj.send(CALLBACK_TOPIC, callback(ours, "E2", "E1"))
        await cj.send(COMPLETED_TOPIC, completion(ours))
        await cj.send(RESULT_TOPIC, result(ours, ["E1", "E2"]))
        run = await collector.wait(WAIT_SECONDS)
    evidence.close()

    assert len(run.callbacks) == 2
    assert run.counts == {"foreign": 0, "duplicates": 1, "malformed": 3}
    lines = _events(evidence.folder)
    reasons = [line["malformed_reason"] for line in lines if "malformed_reason" in line]
    assert len(reasons) == 3
    assert any(reason.startswith("not JSON") for reason in reasons)
    assert any("essay ids" in reason for reason in reasons)
    assert any("status" in reason for reason in reasons)
    assert sum(1 for line in lines if line.get("duplicate")) == 1
    assert any(line.get("raw") == "{not json" for line in lines)


@pytest.mark.asyncio
async def test_every_callback_before_the_completion_is_collected(
    eng5_stack_factory: Any, tmp_path: Path
) -> None:
    """A collector that finds the batch already finished (as a re-attach does) reads the
    completion's partition at once, but still every callback produced before it."""
    # a broker of its own (one partition per topic): Tansu 0.6 reports end offsets behind the
    # offsets it gave batched records, so this backlog would reach later tests' collectors
    tansu_bootstrap = eng5_stack_factory(services=False, partitions=1).kafka.bootstrap
    identity = BatchIdentity.new("integration-backlog")
    callbacks = 2000
    async with BatchCollector(
        identity, consumer_kwargs=_consumer_kwargs(tansu_bootstrap), evidence=None
    ) as collector:
        producer = AIOKafkaProducer(bootstrap_servers=tansu_bootstrap, linger_ms=5)
        await producer.start()
        try:
            sent = [
                await producer.send(
                    CALLBACK_TOPIC, json.dumps(callback(identity.batch_id, f"E{i}", "E0")).encode()
                )
                for i in range(1, callbacks + 1)
            ]
            await asyncio.gather(*sent)
            await producer.send_and_wait(
                COMPLETED_TOPIC, json.dumps(completion(identity.batch_id)).encode()
            )
            await producer.send_and_wait(
                RESULT_TOPIC, json.dumps(result(identity.batch_id, ["E0", "E1"])).encode()
            )
        finally:
            await producer.stop()
        run = await collector.wait(WAIT_SECONDS)
    assert run.completion is not None
    assert len(run.callbacks) == callbacks


@pytest.mark.asyncio
async def test_failed_event_ends_the_wait_at_once(
    tansu_bootstrap: str, cj: CJSide, tmp_path: Path
) -> None:
    identity = BatchIdentity.new("integration-failed")
    evidence = EvidenceFolder(tmp_path, identity)
    async with BatchCollector(
        identity, consumer_kwargs=_consumer_kwargs(tansu_bootstrap), evidence=evidence
    ) as collector:
        await cj.send(FAILED_TOPIC, failed(str(uuid4()), "someone else's batch"))
        await cj.send(FAILED_TOPIC, failed(identity.batch_id, "assessment_instructions missing"))
        with pytest.raises(BatchFailedError) as caught:
            await collector.wait(WAIT_SECONDS)
    evidence.close()
    assert "assessment_instructions missing" in caught.value.reason
    assert not collector.collected.timed_out
    assert collector.collected.counts["foreign"] == 1
    assert [line["kind"] for line in _events(evidence.folder)] == ["failed"]


@pytest.mark.asyncio
async def test_failed_critically_completion_raises(
    tansu_bootstrap: str, cj: CJSide, tmp_path: Path
) -> None:
    identity = BatchIdentity.new("integration-critical")
    async with BatchCollector(
        identity, consumer_kwargs=_consumer_kwargs(tansu_bootstrap), evidence=None
    ) as collector:
        await cj.send(COMPLETED_TOPIC, completion(identity.batch_id, status="failed_critically"))
        with pytest.raises(BatchFailedError, match="failed_critically"):
            await collector.wait(WAIT_SECONDS)
    assert collector.collected.completion is not None
    assert not collector.collected.timed_out


@pytest.mark.asyncio
async def test_completion_without_result_ends_after_grace(
    tansu_bootstrap: str, cj: CJSide, tmp_path: Path
) -> None:
    identity = BatchIdentity.new("integration-grace")
    async with BatchCollector(
        identity,
        consumer_kwargs=_consumer_kwargs(tansu_bootstrap),
        evidence=None,
        completion_grace=0.3,
    ) as collector:
        await cj.send(CALLBACK_TOPIC, callback(identity.batch_id, "E1", "E2"))
        await cj.send(COMPLETED_TOPIC, completion(identity.batch_id))
        run = await collector.wait(WAIT_SECONDS)
    assert run.result_missing
    assert run.completion is not None
    assert run.result is None
    assert not run.timed_out
    assert len(run.callbacks) == 1


@pytest.mark.asyncio
async def test_timeout_keeps_partial_evidence(
    tansu_bootstrap: str, cj: CJSide, tmp_path: Path
) -> None:
    identity = BatchIdentity.new("integration-timeout")
    evidence = EvidenceFolder(tmp_path, identity)
    async with BatchCollector(
        identity, consumer_kwargs=_consumer_kwargs(tansu_bootstrap), evidence=evidence
    ) as collector:
        await cj.send(CALLBACK_TOPIC, callback(identity.batch_id, "E1", "E2"))
        await cj.send(CALLBACK_TOPIC, callback(identity.batch_id, "E2", "E3"))
        with pytest.raises(AwaitTimeoutError) as caught:
            await collector.wait(1.5)
    evidence.close()
    assert caught.value.evidence_dir == evidence.folder
    assert "2 callbacks" in str(caught.value)
    assert collector.collected.timed_out
    lines = _events(evidence.folder)
    essay_b_ids = sorted(
        line["envelope"]["data"]["request_metadata"]["essay_b_id"] for line in lines
    )
    assert essay_b_ids == ["E2", "E3"]
    log_lines = [
        json.loads(line) for line in (evidence.folder / "run.log").read_text().splitlines()
    ]
    assert any(line["event"] == "collector_timeout" for line in log_lines)


@pytest.mark.asyncio
async def test_publish_to_dead_bootstrap_raises_publish_error(
    make_guest_request: Callable[..., EventEnvelope],
) -> None:
    identity = BatchIdentity.new("integration-dead")
    envelope = make_guest_request(identity, "E1")
    dead = "127.0.0.1:9"  # discard port: nothing listens there
    with pytest.raises(PublishError) as caught:
        await publish_request(
            envelope,
            producer_kwargs={"bootstrap_servers": dead, "enable_idempotence": False},
            timeout=3,
        )
    assert dead in str(caught.value)
    assert "check the broker is up" in caught.value.next_step
