"""Collect the events of one CJ batch from Kafka (runner §6.3, fixing §11.3, 11.5, 11.21).

No consumer group: :meth:`BatchCollector.prepare` captures the end offsets of the callback,
completion, failed and result topics BEFORE the request is published, then ``assign()`` +
``seek()`` there. Only this batch's events are kept; duplicates and malformed events are
skipped, counted and kept in the evidence; a failed batch ends the wait at once. Once the
batch finished, :func:`~pytest_eng5.runner.drain.drain_to_end` reads every partition up to its
end.

:class:`~pytest_eng5.runner.event_filter.BatchEventFilter` is the broker-free part (parse,
attribute, de-duplicate, validate); it is re-exported here.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Final
from uuid import UUID

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError

from pytest_eng5.contracts import BatchStatus
from pytest_eng5.core.kafka_metadata import topic_partitions
from pytest_eng5.errors import (
    AwaitTimeoutError,
    BatchFailedError,
    BrokerLostError,
    BrokerUnavailableError,
    ConfigurationError,
    KafkaReadError,
)
from pytest_eng5.redact import redact
from pytest_eng5.runner.broker_watch import BrokerGone, BrokerWatch
from pytest_eng5.runner.drain import drain_to_end
from pytest_eng5.runner.event_filter import (
    COLLECTED_TOPICS,
    KIND_BY_TOPIC,
    BatchEventFilter,
    CollectedEvent,
    CollectedRun,
    EventKind,
    ProgressInfo,
)
from pytest_eng5.runner.evidence import EVENTS_FILE, EvidenceFolder
from pytest_eng5.runner.identity import BatchIdentity

__all__ = [
    "COLLECTED_TOPICS",
    "KIND_BY_TOPIC",
    "BatchCollector",
    "BatchEventFilter",
    "CollectedEvent",
    "CollectedRun",
    "EventKind",
    "ProgressInfo",
]

PROGRESS_INTERVAL_SECONDS: Final = 1.0
_MAX_POLL_SECONDS: Final = 1.0


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
        broker_watch: BrokerWatch | None = None,
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
        self._broker_watch = broker_watch or BrokerWatch()
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
                    break
            if now >= deadline and (run.completion is not None or run.result is not None):
                # The batch finished within the timeout; only the grace for its other event
                # was cut short by the deadline.
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
            self._handle(batches)
            self._raise_if_failed()
            if any(batches.values()):
                self._broker_watch.saw_records()
            else:
                gone = await self._broker_watch.check(consumer, deadline - time.monotonic())
                if gone is not None:
                    run.durations["wait_seconds"] = round(time.monotonic() - started, 4)
                    raise self._broker_lost_error(gone)
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
        log = self.evidence.log if self.evidence is not None else None
        await drain_to_end(
            consumer, self._handle, deadline=deadline, max_poll=_MAX_POLL_SECONDS, log=log
        )
        # Only now: the drain may have read the event the grace waited for, or a failure.
        run.result_missing = run.result is None
        run.completion_missing = run.completion is None
        self._raise_if_failed()
        run.durations["wait_seconds"] = round(time.monotonic() - started, 4)
        if self.evidence is not None:
            self.evidence.log.info(
                "collector_done",
                extra={"observed_events": run.observed_events, "durations": run.durations},
            )
        return run

    def _handle(self, batches: dict[TopicPartition, list[Any]]) -> None:
        for partition, records in batches.items():
            for record in records:
                event = self._filter.handle(
                    partition.topic, partition.partition, record.offset, record.value or b""
                )
                if event is not None and self._on_event is not None:
                    self._on_event(event)

    @property
    def _label(self) -> str:
        return f"batch {self.identity.batch_id} ({self.identity.batch_label})"

    def _events_so_far(self) -> tuple[str, Path | None]:
        """Where the events received so far are (a next step starts with it), and the folder."""
        if self.evidence is None:
            return "no evidence folder was configured", None
        where = f"the events received so far are in {self.evidence.path(EVENTS_FILE)}"
        return where, self.evidence.folder

    def _raise_if_failed(self) -> None:
        run = self.collected
        label = self._label
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
        where, folder = self._events_so_far()
        return AwaitTimeoutError(
            f"{self._label} did not finish within {timeout:g} s: {summary}",
            next_step=f"{where}. Check the CJ service consumes the request topic (a fresh "
            "consumer group can take 5-25 s to join), then re-attach with this batch_uuid and "
            "a longer timeout.",
            evidence_dir=folder,
        )

    def _read_error(self, exc: Exception) -> KafkaReadError:
        run = self.collected
        if self.evidence is not None:
            self.evidence.log.error(
                "collector_read_failed",
                extra={"error": redact(repr(exc)), "observed_events": run.observed_events},
            )
        where, folder = self._events_so_far()
        return KafkaReadError(
            redact(
                f"{self._label}: reading its events from Kafka failed after "
                f"{len(run.callbacks)} callbacks: "
                f"{type(exc).__name__}: {exc}"
            ),
            next_step=f"{where}. The batch itself may still be running: check the broker, "
            "then re-attach with this batch_uuid to collect the rest (do not publish again).",
            evidence_dir=folder,
        )

    def _broker_lost_error(self, gone: BrokerGone) -> BrokerLostError:
        run = self.collected
        bootstrap = self._consumer_kwargs.get("bootstrap_servers", "localhost:9092")
        if self.evidence is not None:
            self.evidence.log.error(
                "collector_broker_lost",
                extra={
                    "seconds": gone.seconds,
                    "attempts": gone.attempts,
                    "error": redact(gone.last_error),
                    "observed_events": run.observed_events,
                },
            )
        where, folder = self._events_so_far()
        return BrokerLostError(
            redact(
                f"{self._label}: the Kafka broker at {bootstrap} stopped answering while the "
                f"batch was awaited ({gone.attempts} metadata requests failed over "
                f"{gone.seconds:g} s, last: {gone.last_error}), after {len(run.callbacks)} "
                "callbacks"
            ),
            next_step=f"{where}. Bring the broker back (its log says why it stopped); the batch "
            "may still be running in CJ, so re-attach with this batch_uuid to collect the rest "
            "(do not publish again).",
            evidence_dir=folder,
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
