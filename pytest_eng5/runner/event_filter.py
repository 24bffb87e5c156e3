"""The broker-free half of the collector: parse a Kafka record, attribute it to the batch,
de-duplicate and validate it, and gather what was accepted (:class:`CollectedRun`).

It can be benchmarked and tested on recorded envelopes; :mod:`.collector` feeds it from Kafka.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Literal
from uuid import UUID

from pydantic import BaseModel, ValidationError
from pydantic_core import from_json

from pytest_eng5.contracts import (
    CALLBACK_TOPIC,
    COMPLETED_TOPIC,
    FAILED_TOPIC,
    RESULT_TOPIC,
    AssessmentResultV1,
    CJAssessmentCompletedV1,
    CJAssessmentFailedV1,
    EventEnvelope,
    LLMComparisonResultV1,
)
from pytest_eng5.runner.evidence import EvidenceFolder
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
