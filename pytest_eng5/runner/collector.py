"""Collect the events of one CJ batch from Kafka (runner §6.3, fixing §11.3, 11.5, 11.21).

No consumer group: :meth:`BatchCollector.prepare` captures the end offsets of the callback,
completion, failed and result topics BEFORE the request is published, then ``assign()`` +
``seek()`` there. Only this batch's events are kept; duplicates and malformed events are
skipped, counted and kept in the evidence; a failed batch ends the wait at once.

:class:`BatchEventFilter` is the broker-free part (parse, attribute, de-duplicate, validate),
so it can be benchmarked and tested on recorded envelopes.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Literal
from uuid import UUID

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError
from pydantic import BaseModel, ValidationError
from pydantic_core import from_json

from pytest_eng5.contracts import (
    CALLBACK_TOPIC,
    COMPLETED_TOPIC,
    FAILED_TOPIC,
    RESULT_TOPIC,
    AssessmentResultV1,
    BatchStatus,
    CJAssessmentCompletedV1,
    CJAssessmentFailedV1,
    EventEnvelope,
    LLMComparisonResultV1,
)
from pytest_eng5.core.kafka_metadata import topic_partitions
from pytest_eng5.errors import (
    AwaitTimeoutError,
    BatchFailedError,
    BrokerUnavailableError,
    ConfigurationError,
    KafkaReadError,
)
from pytest_eng5.redact import redact
from pytest_eng5.runner.evidence import EVENTS_FILE, EvidenceFolder
from pytest_eng5.runner.identity import BatchIdentity

EventKind = Literal["callback", "completion", "failed", "result"]

KIND_BY_TOPIC: Final[Mapping[str, EventKind]] = {
    CALLBACK_TOPIC: "callback",
    COMPLETED_TOPIC: "completion",
    FAILED_TOPIC: "failed",
    RESULT_TOPIC: "result",
}
COLLECTED_TOPICS: Final[tuple[str, ...]] = tuple(KIND_BY_TOPIC)
_MODEL_BY_KIND: Final[Mapping[EventKind, type[BaseModel]]] = {
    "callback": LLMComparisonResultV1,
    "completion": CJAssessmentCompletedV1,
    "failed": CJAssessmentFailedV1,
    "result": AssessmentResultV1,
}
PROGRESS_INTERVAL_SECONDS: Final = 1.0
_MAX_POLL_SECONDS: Final = 1.0


@dataclass(frozen=True)
class CollectedEvent:
    """One accepted event of this batch."""

    kind: EventKind
    topic: str
    partition: int
    offset: int
    envelope: EventEnvelope
    data: BaseModel
    received_after_seconds: float


@dataclass(frozen=True)
class ProgressInfo:
    comparisons: int
    elapsed_seconds: float
    completion_seen: bool
    result_seen: bool


@dataclass
class CollectedRun:
    """What the wait gathered for one batch (complete or partial)."""

    identity: BatchIdentity
    callbacks: list[LLMComparisonResultV1] = field(default_factory=list)
    completion: CJAssessmentCompletedV1 | None = None
    result: AssessmentResultV1 | None = None
    failed: CJAssessmentFailedV1 | None = None
    counts: dict[str, int] = field(
        default_factory=lambda: {"foreign": 0, "duplicates": 0, "malformed": 0}
    )
    durations: dict[str, float] = field(default_factory=dict)
    envelopes: list[dict[str, Any]] = field(default_factory=list)
    result_missing: bool = False
    completion_missing: bool = False
    timed_out: bool = False
    completion_correlation_matches: bool | None = None

    @property
    def succeeded_callbacks(self) -> list[LLMComparisonResultV1]:
        return [callback for callback in self.callbacks if callback.is_success]

    @property
    def observed_events(self) -> dict[str, int]:
        return {
            "llm_comparisons": len(self.callbacks),
            "completions": int(self.completion is not None),
            "assessment_results": int(self.result is not None),
            "failures": int(self.failed is not None),
            **self.counts,
        }


class BatchEventFilter:
    """Parse → attribute to the batch → de-duplicate → validate, one record at a time."""

    def __init__(
        self,
        identity: BatchIdentity,
        evidence: EvidenceFolder | None = None,
        *,
        request_correlation_id: UUID | None = None,
    ) -> None:
        self.run = CollectedRun(identity=identity)
        self._batch_id = identity.batch_id.lower()
        self._evidence = evidence
        self._request_correlation_id = request_correlation_id
        self._seen_keys: set[str] = set()
        self._started = time.monotonic()

    def restart_clock(self) -> None:
        self._started = time.monotonic()

    def handle(self, topic: str, partition: int, offset: int, raw: bytes) -> CollectedEvent | None:
        """Process one Kafka record; return the event when it is new and belongs to the batch."""
        kind = KIND_BY_TOPIC.get(topic)
        if kind is None:
            return None
        try:
            document = from_json(raw)
        except ValueError as exc:
            self._malformed(kind, raw, topic, partition, offset, f"not JSON: {exc}")
            return None
        if not isinstance(document, dict):
            reason = "the value is JSON but not an object"
            self._malformed(kind, raw, topic, partition, offset, reason)
            return None
        batch_key = _batch_key(kind, document)
        if batch_key is not None and batch_key.lower() != self._batch_id:
            self.run.counts["foreign"] += 1
            return None
        try:
            envelope = EventEnvelope.model_validate(document)
            data = envelope.data_as(_MODEL_BY_KIND[kind])
        except ValidationError as exc:
            self._malformed(kind, document, topic, partition, offset, _first_error(exc))
            return None
        problem = _attribution_problem(kind, data, batch_key)
        if problem is not None:
            self._malformed(kind, document, topic, partition, offset, problem)
            return None
        dedup_key = (
            f"callback:{data.request_id}"
            if isinstance(data, LLMComparisonResultV1)
            else f"{kind}:{envelope.event_id}"
        )
        if dedup_key in self._seen_keys:
            self.run.counts["duplicates"] += 1
            self._record(kind, document, topic, partition, offset, duplicate=True)
            return None
        self._seen_keys.add(dedup_key)
        self._record(kind, document, topic, partition, offset)
        elapsed = time.monotonic() - self._started
        self._accept(kind, envelope, data, document, elapsed)
        return CollectedEvent(kind, topic, partition, offset, envelope, data, elapsed)

    def _accept(
        self,
        kind: EventKind,
        envelope: EventEnvelope,
        data: BaseModel,
        document: dict[str, Any],
        elapsed: float,
    ) -> None:
        run = self.run
        run.envelopes.append({"kind": kind, "envelope": document})
        if isinstance(data, LLMComparisonResultV1):
            run.callbacks.append(data)
            run.durations.setdefault("first_callback_seconds", round(elapsed, 4))
            run.durations["last_callback_seconds"] = round(elapsed, 4)
        elif isinstance(data, CJAssessmentCompletedV1) and run.completion is None:
            run.completion = data
            run.durations["completion_seconds"] = round(elapsed, 4)
            if self._request_correlation_id is not None:
                run.completion_correlation_matches = (
                    envelope.correlation_id == self._request_correlation_id
                )
        elif isinstance(data, AssessmentResultV1) and run.result is None:
            run.result = data
            run.durations["result_seconds"] = round(elapsed, 4)
        elif isinstance(data, CJAssessmentFailedV1) and run.failed is None:
            run.failed = data
            run.durations["failed_seconds"] = round(elapsed, 4)

    def _malformed(
        self,
        kind: EventKind,
        raw: bytes | dict[str, Any],
        topic: str,
        partition: int,
        offset: int,
        reason: str,
    ) -> None:
        self.run.counts["malformed"] += 1
        self._record(kind, raw, topic, partition, offset, malformed_reason=reason)
        if self._evidence is not None:
            self._evidence.log.warning(
                "collector_malformed_event_skipped",
                extra={"topic": topic, "partition": partition, "offset": offset, "reason": reason},
            )

    def _record(
        self,
        kind: EventKind,
        raw: bytes | dict[str, Any],
        topic: str,
        partition: int,
        offset: int,
        *,
        malformed_reason: str | None = None,
        duplicate: bool = False,
    ) -> None:
        if self._evidence is not None:
            self._evidence.append_event(
                kind,
                raw,
                topic=topic,
                partition=partition,
                offset=offset,
                malformed_reason=malformed_reason,
                duplicate=duplicate,
            )


def _batch_key(kind: EventKind, document: dict[str, Any]) -> str | None:
    """The batch id an event names, read from the raw dict (cheap; no validation yet)."""
    data = document.get("data")
    if not isinstance(data, dict):
        return None
    if kind == "callback":
        metadata = data.get("request_metadata")
        if not isinstance(metadata, dict):
            return None
        value = metadata.get("bos_batch_id", metadata.get("batch_id"))
    elif kind == "result":
        value = data.get("batch_id")
    else:
        value = data.get("entity_id")
    return None if value is None else str(value)


def _attribution_problem(kind: EventKind, data: BaseModel, batch_key: str | None) -> str | None:
    if batch_key is None:
        where = {
            "callback": "data.request_metadata.bos_batch_id / batch_id",
            "result": "data.batch_id",
        }.get(kind, "data.entity_id")
        return f"the {kind} event names no batch ({where} missing)"
    if isinstance(data, LLMComparisonResultV1):
        missing = [
            key for key in ("essay_a_id", "essay_b_id") if not data.request_metadata.get(key)
        ]
        if missing:
            return f"callback missing essay ids ({', '.join(missing)} not in request_metadata)"
    return None


def _first_error(exc: ValidationError) -> str:
    errors = exc.errors()
    if not errors:
        return str(exc)
    first = errors[0]
    location = ".".join(str(part) for part in first.get("loc", ()))
    more = f" (+{len(errors) - 1} more)" if len(errors) > 1 else ""
    return f"validation failed at {location or '<root>'}: {first.get('msg', '')}{more}"


class BatchCollector:
    """Await one batch: ``prepare()`` before publishing, then ``wait(timeout)``, ``close()``."""

    def __init__(
        self,
        identity: BatchIdentity,
        *,
        consumer_kwargs: dict[str, Any],
        evidence: EvidenceFolder | None,
        completion_grace: float = 2.0,
        on_event: Callable[[CollectedEvent], None] | None = None,
        progress: Callable[[ProgressInfo], None] | None = None,
        request_correlation_id: UUID | None = None,
        from_beginning: bool = False,
        start_at: Mapping[TopicPartition, int] | None = None,
    ) -> None:
        self.identity = identity
        self.from_beginning = from_beginning
        self.start_at = dict(start_at or {})
        self.evidence = evidence
        self.completion_grace = completion_grace
        self._on_event = on_event
        self._progress = progress
        self._filter = BatchEventFilter(
            identity, evidence, request_correlation_id=request_correlation_id
        )
        self._consumer_kwargs = _consumer_settings(consumer_kwargs)
        self._consumer: AIOKafkaConsumer | None = None
        self.start_offsets: dict[TopicPartition, int] = {}

    @property
    def collected(self) -> CollectedRun:
        """What has been gathered so far (also after a timeout or a failed batch)."""
        return self._filter.run

    async def prepare(self, timeout: float = 15.0) -> None:  # noqa: ASYNC109 - public API
        """Start the consumer and position it at the current end of every collected topic.

        Re-attaching to a batch published by an earlier run, it starts at ``start_at`` (the
        positions that run recorded before publishing) or, for partitions without one and with
        ``from_beginning``, at the beginning; the batch filter keeps the batch's events.
        """
        bootstrap = str(self._consumer_kwargs.get("bootstrap_servers", "localhost:9092"))
        started = time.monotonic()
        try:
            consumer = AIOKafkaConsumer(**self._consumer_kwargs)
        except (TypeError, ValueError) as exc:  # settings aiokafka refuses before connecting
            raise ConfigurationError(
                redact(
                    f"the event collector's consumer settings for {bootstrap} are invalid: {exc}"
                ),
                next_step="fix the consumer settings (security protocol, SASL mechanism and "
                "credentials)",
            ) from exc
        try:
            async with asyncio.timeout(timeout):
                await consumer.start()
                partitions = await topic_partitions(consumer, COLLECTED_TOPICS)
                if self.from_beginning or self.start_at:  # re-attaching to an earlier batch
                    positions = await consumer.beginning_offsets(partitions)
                    positions.update({tp: o for tp, o in self.start_at.items() if tp in positions})
                else:
                    positions = await consumer.end_offsets(partitions)
                consumer.assign(partitions)
                for partition, offset in positions.items():
                    consumer.seek(partition, offset)
        except TimeoutError:
            await _stop_consumer(consumer)
            raise BrokerUnavailableError(
                f"could not position the event collector on {bootstrap} within {timeout:g} s",
                next_step="check the broker is up and that the topics "
                f"{', '.join(COLLECTED_TOPICS)} exist; nothing was published",
            ) from None
        except Exception as exc:
            await _stop_consumer(consumer)
            raise BrokerUnavailableError(
                redact(f"could not start the event collector on {bootstrap}: {exc!r}"),
                next_step="check the broker is up and answers on that address, and the consumer "
                "settings (security protocol, SASL); nothing was published",
            ) from exc
        except BaseException:  # Ctrl-C / cancellation: the started consumer must not leak
            await _stop_consumer(consumer)
            raise
        self._consumer = consumer
        self.start_offsets = dict(positions)
        self.collected.durations["prepare_seconds"] = round(time.monotonic() - started, 4)
        if self.evidence is not None:
            self.evidence.log.info(
                "collector_positioned",
                extra={
                    "offsets": {f"{tp.topic}[{tp.partition}]": o for tp, o in positions.items()}
                },
            )

    async def wait(self, timeout: float) -> CollectedRun:  # noqa: ASYNC109 - public API
        """Read until completion (+ result or grace), a failure, or ``timeout`` seconds."""
        consumer = self._consumer
        if consumer is None:
            raise ConfigurationError(
                "BatchCollector.wait() was called before prepare()",
                next_step="call prepare() before publishing the request, then wait()",
            )
        self._filter.restart_clock()
        run = self.collected
        started = time.monotonic()
        deadline = started + timeout
        last_progress = started
        first_done_at: float | None = None
        while True:
            now = time.monotonic()
            if run.completion is not None and run.result is not None:
                break
            if run.completion is not None or run.result is not None:
                first_done_at = first_done_at or now
                if now - first_done_at >= self.completion_grace:
                    run.result_missing = run.result is None
                    run.completion_missing = run.completion is None
                    break
            if now >= deadline and (run.completion is not None or run.result is not None):
                # The batch finished within the timeout; only the grace for its other event
                # was cut short by the deadline.
                run.result_missing = run.result is None
                run.completion_missing = run.completion is None
                break
            if now >= deadline:
                run.timed_out = True
                run.durations["wait_seconds"] = round(now - started, 4)
                raise self._timeout_error(timeout)
            poll = min(deadline - now, _MAX_POLL_SECONDS)
            if first_done_at is not None:
                poll = min(poll, max(0.0, first_done_at + self.completion_grace - now))
            try:
                batches = await consumer.getmany(timeout_ms=max(1, int(poll * 1000)))
            except KafkaError as exc:
                run.durations["wait_seconds"] = round(time.monotonic() - started, 4)
                raise self._read_error(exc) from exc
            for partition, records in batches.items():
                for record in records:
                    event = self._filter.handle(
                        partition.topic, partition.partition, record.offset, record.value or b""
                    )
                    if event is not None and self._on_event is not None:
                        self._on_event(event)
            self._raise_if_failed()
            now = time.monotonic()
            if self._progress is not None and now - last_progress >= PROGRESS_INTERVAL_SECONDS:
                last_progress = now
                self._progress(
                    ProgressInfo(
                        comparisons=len(run.callbacks),
                        elapsed_seconds=round(now - started, 3),
                        completion_seen=run.completion is not None,
                        result_seen=run.result is not None,
                    )
                )
        run.durations["wait_seconds"] = round(time.monotonic() - started, 4)
        if self.evidence is not None:
            self.evidence.log.info(
                "collector_done",
                extra={"observed_events": run.observed_events, "durations": run.durations},
            )
        return run

    def _raise_if_failed(self) -> None:
        run = self.collected
        label = f"batch {self.identity.batch_id} ({self.identity.batch_label})"
        where = f" Evidence: {self.evidence.folder}." if self.evidence is not None else ""
        if run.failed is not None:
            reason = run.failed.failure_reason
            self._log_failure(reason)
            raise BatchFailedError(
                f"CJ reported {label} as failed: {reason}",
                next_step="read the reason above: an unknown assignment needs its "
                "assessment_instructions row; low_success_rate or stuck_timeout point at the LLM "
                f"provider.{where}",
                reason=reason,
            )
        completion = run.completion
        if completion is not None and completion.status == BatchStatus.FAILED_CRITICALLY:
            summary = completion.processing_summary
            info = completion.system_metadata.error_info
            reason = (
                str(info.get("reason") or info.get("error_message") or "")
                or f"completion status failed_critically ({summary.successful} of "
                f"{summary.total_essays} essays scored)"
            )
            self._log_failure(reason)
            raise BatchFailedError(
                f"CJ completed {label} with status failed_critically: {reason}",
                next_step="no student essay got a Bradley–Terry score; check that the "
                f"comparisons succeeded (error callbacks in events.jsonl).{where}",
                reason=reason,
            )

    def _log_failure(self, reason: str) -> None:
        if self.evidence is not None:
            self.evidence.log.error(
                "collector_batch_failed",
                extra={"reason": reason, "observed_events": self.collected.observed_events},
            )

    def _timeout_error(self, timeout: float) -> AwaitTimeoutError:
        run = self.collected
        summary = (
            f"{len(run.callbacks)} callbacks, completion "
            f"{'seen' if run.completion is not None else 'not seen'}, result "
            f"{'seen' if run.result is not None else 'not seen'}"
        )
        if self.evidence is not None:
            self.evidence.log.warning(
                "collector_timeout",
                extra={"timeout_seconds": timeout, "observed_events": run.observed_events},
            )
            where = f"the events received so far are in {self.evidence.path(EVENTS_FILE)}"
        else:
            where = "no evidence folder was configured"
        return AwaitTimeoutError(
            f"batch {self.identity.batch_id} ({self.identity.batch_label}) did not finish "
            f"within {timeout:g} s: {summary}",
            next_step=f"{where}. Check the CJ service consumes the request topic (a fresh "
            "consumer group can take 5-25 s to join), then re-attach with this batch_uuid and "
            "a longer timeout.",
            evidence_dir=self.evidence.folder if self.evidence is not None else None,
        )

    def _read_error(self, exc: Exception) -> KafkaReadError:
        run = self.collected
        if self.evidence is not None:
            self.evidence.log.error(
                "collector_read_failed",
                extra={"error": redact(repr(exc)), "observed_events": run.observed_events},
            )
            where = f"the events received so far are in {self.evidence.path(EVENTS_FILE)}"
        else:
            where = "no evidence folder was configured"
        return KafkaReadError(
            redact(
                f"batch {self.identity.batch_id} ({self.identity.batch_label}): reading its "
                f"events from Kafka failed after {len(run.callbacks)} callbacks: "
                f"{type(exc).__name__}: {exc}"
            ),
            next_step=f"{where}. The batch itself may still be running: check the broker, "
            "then re-attach with this batch_uuid to collect the rest (do not publish again).",
            evidence_dir=self.evidence.folder if self.evidence is not None else None,
        )

    async def close(self) -> None:
        """Stop the consumer (idempotent; bounded)."""
        consumer, self._consumer = self._consumer, None
        if consumer is not None:
            await _stop_consumer(consumer)

    async def __aenter__(self) -> BatchCollector:
        await self.prepare()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()


def _consumer_settings(consumer_kwargs: dict[str, Any]) -> dict[str, Any]:
    settings = dict(consumer_kwargs)
    settings["group_id"] = None  # no group join: positions come from assign() + seek()
    settings["enable_auto_commit"] = False
    settings.setdefault("fetch_max_wait_ms", 50)
    settings.setdefault("max_partition_fetch_bytes", 4 * 1024 * 1024)
    return settings


async def _stop_consumer(consumer: AIOKafkaConsumer, limit: float = 5.0) -> None:
    try:
        async with asyncio.timeout(limit):
            await consumer.stop()
    except Exception:  # a consumer that never started cannot stop cleanly; nothing to keep
        return
