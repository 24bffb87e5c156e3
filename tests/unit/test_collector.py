"""BatchCollector end conditions and error paths, with a stand-in consumer (no broker)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiokafka import TopicPartition
from aiokafka.errors import KafkaConnectionError

from pytest_eng5.contracts import COMPLETED_TOPIC, RESULT_TOPIC, EventEnvelope
from pytest_eng5.errors import (
    AwaitTimeoutError,
    BatchFailedError,
    BrokerLostError,
    BrokerUnavailableError,
    ConfigurationError,
    Eng5Error,
    InfrastructureError,
    KafkaReadError,
    PublishError,
    PublishUnconfirmedError,
)
from pytest_eng5.runner import collector as collector_module
from pytest_eng5.runner import kafka_io
from pytest_eng5.runner.broker_watch import BrokerWatch
from pytest_eng5.runner.collector import BatchCollector
from pytest_eng5.runner.evidence import EvidenceFolder
from pytest_eng5.runner.identity import BatchIdentity
from pytest_eng5.runner.kafka_io import publish_request


@dataclass
class _Record:
    offset: int
    value: bytes


def _envelope(event_type: str, data: dict[str, Any]) -> bytes:
    envelope = EventEnvelope(
        event_type=event_type, source_service="cj_assessment_service", data=data
    )
    return envelope.model_dump_json().encode()


def _completion(batch_id: str, status: str = "completed_successfully") -> bytes:
    data = {
        "event_name": "cj_assessment.completed",
        "entity_id": batch_id,
        "entity_type": "batch",
        "status": status,
        "system_metadata": {
            "entity_id": batch_id,
            "entity_type": "batch",
            "processing_stage": "completed",
            "error_info": {},
        },
        "cj_assessment_job_id": "7",
        "processing_summary": {"total_essays": 2, "successful": 2, "failed": 0},
    }
    return _envelope(COMPLETED_TOPIC, data)


def _result(batch_id: str) -> bytes:
    data = {
        "event_name": "assessment.result.published",
        "entity_id": batch_id,
        "batch_id": batch_id,
        "cj_assessment_job_id": "7",
        "model_used": "m1",
        "model_provider": "mock",
        "essay_results": [],
    }
    return _envelope(RESULT_TOPIC, data)


class _ScriptedConsumer:
    """``getmany`` hands out the scripted batches, then waits out the poll and returns nothing."""

    def __init__(self, batches: list[Any]) -> None:
        self._batches = list(batches)
        self.stopped = False

    async def getmany(self, timeout_ms: int = 0) -> dict[TopicPartition, list[_Record]]:
        if self._batches:
            step = self._batches.pop(0)
            if isinstance(step, BaseException):
                raise step
            return dict(step)
        await asyncio.sleep(timeout_ms / 1000)
        return {}

    async def stop(self) -> None:
        self.stopped = True

    async def topics(self) -> set[str]:
        return {COMPLETED_TOPIC}

    def assignment(self) -> set[TopicPartition]:
        return set()  # nothing left to drain once the batch finished

    async def end_offsets(self, partitions: list[TopicPartition]) -> dict[TopicPartition, int]:
        return {}


class _BrokerGoneConsumer(_ScriptedConsumer):
    """Fetches return nothing (as aiokafka's do when the broker stops); each metadata request
    answers or fails as ``answers`` says, in turn (empty: every one fails)."""

    def __init__(self, answers: tuple[bool, ...] = ()) -> None:
        super().__init__([])
        self.answers = answers
        self.asked = 0

    async def topics(self) -> set[str]:
        self.asked += 1
        if not self.answers or not self.answers[(self.asked - 1) % len(self.answers)]:
            raise KafkaConnectionError("Unable to get cluster metadata over all known brokers")
        return {COMPLETED_TOPIC}


class _BacklogConsumer(_ScriptedConsumer):
    """The wait's fetches hand out ``batches``; ``backlog`` (one partition's records, from
    offset 0) is fetched only once asked for by partition, as the drain does."""

    def __init__(self, batches: list[Any], backlog: tuple[TopicPartition, list[_Record]]) -> None:
        super().__init__(batches)
        self.backlog_partition, self.backlog = backlog
        self.drained = False

    def assignment(self) -> set[TopicPartition]:
        return {self.backlog_partition}

    async def end_offsets(self, partitions: list[TopicPartition]) -> dict[TopicPartition, int]:
        return {self.backlog_partition: len(self.backlog)}

    async def position(self, partition: TopicPartition) -> int:
        return len(self.backlog) if self.drained else 0

    async def getmany(
        self, *partitions: TopicPartition, timeout_ms: int = 0
    ) -> dict[TopicPartition, list[_Record]]:
        if self.backlog_partition in partitions:
            self.drained = True
            return {self.backlog_partition: self.backlog}
        return await super().getmany(timeout_ms=timeout_ms)


def _collector(
    identity: BatchIdentity, consumer: _ScriptedConsumer, **kwargs: Any
) -> BatchCollector:
    collector = BatchCollector(identity, consumer_kwargs={}, **kwargs)
    collector._consumer = consumer  # type: ignore[assignment]  # positioned by hand
    return collector


@pytest.mark.asyncio
async def test_completion_seen_before_the_deadline_is_not_a_timeout() -> None:
    """A completion that arrives inside the timeout ends the wait as completed, result missing,
    even when the grace for the rich result would run past the deadline."""
    identity = BatchIdentity.new("unit-deadline")
    partition = TopicPartition(COMPLETED_TOPIC, 0)
    consumer = _ScriptedConsumer([{partition: [_Record(0, _completion(identity.batch_id))]}])
    collector = _collector(identity, consumer, evidence=None, completion_grace=30.0)
    started = asyncio.get_running_loop().time()
    run = await collector.wait(0.4)
    assert asyncio.get_running_loop().time() - started < 5.0
    assert run.completion is not None
    assert run.result_missing
    assert not run.timed_out


@pytest.mark.asyncio
async def test_nothing_seen_by_the_deadline_is_still_a_timeout() -> None:
    identity = BatchIdentity.new("unit-timeout")
    collector = _collector(identity, _ScriptedConsumer([]), evidence=None)
    with pytest.raises(AwaitTimeoutError):
        await collector.wait(0.2)
    assert collector.collected.timed_out


@pytest.mark.asyncio
async def test_a_result_the_drain_reads_is_not_reported_missing() -> None:
    """The grace for the result ran out, but the drain reads it: the run has it, not missing."""
    identity = BatchIdentity.new("unit-drained-result")
    completion = {TopicPartition(COMPLETED_TOPIC, 0): [_Record(0, _completion(identity.batch_id))]}
    backlog = (TopicPartition(RESULT_TOPIC, 0), [_Record(0, _result(identity.batch_id))])
    consumer = _BacklogConsumer([completion], backlog)
    collector = _collector(identity, consumer, evidence=None, completion_grace=0.05)
    run = await collector.wait(5.0)
    assert consumer.drained
    assert run.result is not None
    assert not run.result_missing
    assert not run.completion_missing


@pytest.mark.asyncio
async def test_a_failed_completion_the_drain_reads_fails_the_batch() -> None:
    identity = BatchIdentity.new("unit-drained-failure")
    result = {TopicPartition(RESULT_TOPIC, 0): [_Record(0, _result(identity.batch_id))]}
    failed = _completion(identity.batch_id, status="failed_critically")
    consumer = _BacklogConsumer(
        [result], (TopicPartition(COMPLETED_TOPIC, 0), [_Record(0, failed)])
    )
    collector = _collector(identity, consumer, evidence=None, completion_grace=0.05)
    with pytest.raises(BatchFailedError, match="failed_critically"):
        await collector.wait(5.0)
    assert consumer.drained


async def _wait_error(
    tmp_path: Path, consumer: _ScriptedConsumer, seconds: float, **kwargs: Any
) -> tuple[Eng5Error, EvidenceFolder, BatchCollector]:
    """The error ``wait(seconds)`` raises over ``consumer``, with the evidence and collector."""
    identity = BatchIdentity.new("unit-wait-error")
    evidence = EvidenceFolder(tmp_path, identity)
    collector = _collector(identity, consumer, evidence=evidence, **kwargs)
    try:
        with pytest.raises(Eng5Error) as caught:
            await collector.wait(seconds)
    finally:
        evidence.close()
    return caught.value, evidence, collector


@pytest.mark.asyncio
async def test_kafka_error_while_reading_is_typed_and_keeps_the_evidence(tmp_path: Path) -> None:
    consumer = _ScriptedConsumer([KafkaConnectionError("broker went away")])
    error, evidence, _ = await _wait_error(tmp_path, consumer, 5.0)
    # a broker fault, not a batch that ran out of time
    assert isinstance(error, KafkaReadError)
    assert not isinstance(error, AwaitTimeoutError)
    assert "KafkaConnectionError" in error.message
    assert "re-attach" in error.next_step
    assert error.evidence_dir == evidence.folder
    log = (evidence.folder / "run.log").read_text()
    assert "collector_read_failed" in log


@pytest.fixture
def short_polls(monkeypatch: pytest.MonkeyPatch) -> None:
    """Polls of 50 ms, not 1 s: the stand-in consumer waits each one out."""
    monkeypatch.setattr(collector_module, "_MAX_POLL_SECONDS", 0.05)


@pytest.mark.asyncio
@pytest.mark.usefixtures("short_polls")
async def test_a_broker_that_stops_answering_is_lost_not_a_timeout(tmp_path: Path) -> None:
    watch = BrokerWatch(interval=0.01, gone_after=0.1)
    error, evidence, collector = await _wait_error(
        tmp_path, _BrokerGoneConsumer(), 60.0, broker_watch=watch
    )
    assert isinstance(error, BrokerLostError)
    assert isinstance(error, InfrastructureError)
    assert not isinstance(error, AwaitTimeoutError)
    assert not collector.collected.timed_out
    assert "stopped answering while the batch was awaited" in error.message
    assert "KafkaConnectionError" in error.message
    assert "re-attach" in error.next_step
    assert "do not publish again" in error.next_step
    assert "collector_broker_lost" in (evidence.folder / "run.log").read_text()


@pytest.mark.asyncio
@pytest.mark.usefixtures("short_polls")
async def test_a_broker_that_answers_in_between_is_not_lost() -> None:
    """A restart or a leader change: an answer between failed asks starts the count again."""
    identity = BatchIdentity.new("unit-broker-back")
    consumer = _BrokerGoneConsumer(answers=(False, True))
    watch = BrokerWatch(interval=0.01, gone_after=0.01)
    collector = _collector(identity, consumer, evidence=None, broker_watch=watch)
    with pytest.raises(AwaitTimeoutError):
        await collector.wait(0.5)  # polls of 50 ms: asks that fail / answer / fail / ...
    assert consumer.asked >= 3


@pytest.mark.asyncio
async def test_cancelled_prepare_stops_the_started_consumer(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Ctrl-C while positioning must not leave a running consumer behind."""
    created: list[Any] = []
    entered = asyncio.Event()

    class HangingConsumer:
        def __init__(self, **kwargs: Any) -> None:
            self.stopped = False
            created.append(self)

        async def start(self) -> None:
            entered.set()
            await asyncio.Event().wait()

        async def stop(self) -> None:
            self.stopped = True

    monkeypatch.setattr(collector_module, "AIOKafkaConsumer", HangingConsumer)
    collector = BatchCollector(
        BatchIdentity.new("unit-cancel"),
        consumer_kwargs={"bootstrap_servers": "x:1"},
        evidence=None,
    )
    task = asyncio.create_task(collector.prepare(timeout=30.0))
    await entered.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert len(created) == 1
    assert created[0].stopped


_SASL_WITHOUT_CREDENTIALS = {
    "bootstrap_servers": "127.0.0.1:9",
    "security_protocol": "SASL_PLAINTEXT",
    "sasl_mechanism": "PLAIN",
}


@pytest.mark.asyncio
async def test_consumer_settings_aiokafka_refuses_are_a_configuration_error() -> None:
    collector = BatchCollector(
        BatchIdentity.new("unit-bad-consumer"),
        consumer_kwargs=dict(_SASL_WITHOUT_CREDENTIALS),
        evidence=None,
    )
    with pytest.raises(ConfigurationError) as caught:
        await collector.prepare(timeout=2.0)
    assert "127.0.0.1:9" in caught.value.message
    assert caught.value.next_step


@pytest.mark.asyncio
async def test_producer_settings_aiokafka_refuses_are_a_publish_error(
    make_guest_request: Callable[..., EventEnvelope],
) -> None:
    envelope = make_guest_request(BatchIdentity.new("unit-bad-producer"), "E1")
    with pytest.raises(PublishError) as caught:
        await publish_request(
            envelope, producer_kwargs=dict(_SASL_WITHOUT_CREDENTIALS), timeout=2.0
        )
    assert "not published" in caught.value.next_step


@pytest.mark.asyncio
async def test_a_broker_that_does_not_answer_at_prepare_is_an_infrastructure_fault() -> None:
    """Not a ConfigurationError: the settings may be right and the broker merely down."""
    from pytest_eng5.stack.ports import free_port

    collector = BatchCollector(
        BatchIdentity.new("unit-broker-down"),
        consumer_kwargs={"bootstrap_servers": f"127.0.0.1:{free_port()}"},
        evidence=None,
    )
    with pytest.raises(BrokerUnavailableError) as caught:
        await collector.prepare(timeout=2.0)
    assert not isinstance(caught.value, ConfigurationError)
    assert "broker is up" in caught.value.next_step
    assert "nothing was published" in caught.value.next_step


class _TimingOutProducer:
    """Starts, then the broker never acknowledges the request (aiokafka's request timeout)."""

    def __init__(self, **kwargs: Any) -> None:
        self.kwargs = kwargs

    async def start(self) -> None:
        return None

    async def send_and_wait(self, *args: Any, **kwargs: Any) -> None:
        from aiokafka.errors import RequestTimedOutError

        raise RequestTimedOutError()

    async def stop(self) -> None:
        return None


@pytest.mark.asyncio
async def test_a_request_timeout_at_publish_is_unconfirmed_not_unpublished(
    monkeypatch: pytest.MonkeyPatch, make_guest_request: Callable[..., EventEnvelope]
) -> None:
    """Saying "not published" here invites a second publish of a batch that may be running."""
    monkeypatch.setattr(kafka_io, "AIOKafkaProducer", _TimingOutProducer)
    envelope = make_guest_request(BatchIdentity.new("unit-unconfirmed"), "E1")
    with pytest.raises(PublishUnconfirmedError) as caught:
        await publish_request(envelope, producer_kwargs={"bootstrap_servers": "x:1"}, timeout=5)
    assert "RequestTimedOutError" in caught.value.message
    assert "may still have stored it" in caught.value.next_step
    assert "re-attach" in caught.value.next_step
    assert "not published" not in caught.value.next_step
