"""Publish the CJ request with aiokafka; bounded, and loud when it fails."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.errors import (
    KafkaConnectionError,
    KafkaTimeoutError,
    NodeNotReadyError,
    NotEnoughReplicasAfterAppendError,
    RequestTimedOutError,
)

from pytest_eng5.contracts import REQUEST_TOPIC, EventEnvelope
from pytest_eng5.errors import PublishError, PublishUnconfirmedError
from pytest_eng5.redact import redact

#: failures after the request was handed to the producer that do not tell whether the broker
#: stored it (a timeout, a connection lost mid-request, stored but not fully replicated)
_UNCONFIRMED_ERRORS = (
    KafkaTimeoutError,
    RequestTimedOutError,
    KafkaConnectionError,
    NodeNotReadyError,
    NotEnoughReplicasAfterAppendError,
)


#: produce errors with which the broker says it did not append the record
_REFUSALS = frozenset(
    {
        "NotEnoughReplicasError",
        "TopicAuthorizationFailedError",
        "MessageSizeTooLargeError",
        "InvalidTopicError",
        "RecordListTooLargeError",
        "CorruptRecordError",
        "InvalidRequiredAcksError",
    }
)


@dataclass(frozen=True)
class PublishedInfo:
    """Where the broker stored the request."""

    topic: str
    partition: int
    offset: int


async def publish_request(
    envelope: EventEnvelope,
    *,
    producer_kwargs: dict[str, Any],
    timeout: float,  # noqa: ASYNC109 - public API; the whole publish is bounded by it
) -> PublishedInfo:
    """Send ``envelope`` to the request topic, keyed by its ``entity_id``, with ``acks="all"``.

    Idempotence is whatever ``producer_kwargs`` says (on for every stack by default).
    :class:`PublishError`: the broker refused it or was never reached, so it is not on the topic
    and publishing again is safe. :class:`PublishUnconfirmedError`: the request was sent but not
    acknowledged (a request timeout, a lost connection); it may be on the topic, so re-attach with
    the batch uuid (or check the topic) before publishing again.
    """
    kwargs = {**producer_kwargs, "acks": "all"}
    bootstrap = str(kwargs.get("bootstrap_servers", "localhost:9092"))
    key = _envelope_key(envelope)
    try:
        producer = AIOKafkaProducer(**kwargs)
    except (TypeError, ValueError) as exc:  # settings aiokafka refuses before connecting
        raise PublishError(
            redact(f"the Kafka producer settings for {bootstrap} are invalid: {exc}"),
            next_step="fix the producer settings (security protocol, SASL mechanism and "
            "credentials); the request was not published",
        ) from exc
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    metadata: Any = None
    refusals = _BrokerRefusals()
    sender_log = logging.getLogger("aiokafka.producer.sender")
    sender_log.addHandler(refusals)
    sending = False
    try:
        async with asyncio.timeout(timeout):
            await producer.start()
            sending = True
            metadata = await producer.send_and_wait(
                REQUEST_TOPIC, value=envelope.to_bytes(), key=key
            )
    except TimeoutError:
        reason = f"no acknowledgement within {timeout:g} s{refusals.describe()}"
        if not sending:
            raise _publish_error(
                bootstrap, f"the broker did not answer within {timeout:g} s"
            ) from None
        # the broker's last answer refused the record: it was not stored
        raise _publish_error(bootstrap, reason, unconfirmed=not refusals.refused()) from None
    except Exception as exc:  # aiokafka raises many types
        reason = f"{type(exc).__name__}: {exc}"
        unconfirmed = sending and isinstance(exc, _UNCONFIRMED_ERRORS)
        raise _publish_error(bootstrap, reason, unconfirmed=unconfirmed) from exc
    finally:
        sender_log.removeHandler(refusals)
        await _stop_quietly(producer, max(0.5, deadline - loop.time()))
    return PublishedInfo(topic=metadata.topic, partition=metadata.partition, offset=metadata.offset)


class _BrokerRefusals(logging.Handler):
    """The produce errors aiokafka retries quietly until the deadline (it only logs them)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.errors: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        args = record.args if isinstance(record.args, tuple) else ()
        if record.msg.startswith("Got error produce response") and len(args) == 2:
            partition, error = args
            if getattr(partition, "topic", None) == REQUEST_TOPIC:
                self.errors.append(getattr(error, "__name__", type(error).__name__))

    def refused(self) -> bool:
        """True when the broker's last answer said it did not store the record."""
        return bool(self.errors) and self.errors[-1] in _REFUSALS

    def describe(self) -> str:
        if not self.errors:
            return ""
        text = f"; the broker answered the last attempt with {self.errors[-1]}"
        if "NotEnoughReplicas" in self.errors[-1]:
            text += (
                " (fewer in-sync replicas than the topic's min.insync.replicas; bring the "
                "missing brokers back or lower min.insync.replicas)"
            )
        return text


def _envelope_key(envelope: EventEnvelope) -> bytes:
    data = envelope.data
    entity_id = getattr(data, "entity_id", None)
    if entity_id is None and isinstance(data, dict):
        entity_id = data.get("entity_id")
    if not entity_id:
        raise PublishError(
            "the request envelope has no data.entity_id to use as the Kafka key",
            next_step="build the request with compose_request(), which sets entity_id to the "
            "batch uuid",
        )
    return str(entity_id).encode("utf-8")


def _publish_error(bootstrap: str, reason: str, *, unconfirmed: bool = False) -> PublishError:
    """Refused (not on the topic: publishing again is safe) or unconfirmed (it may be there:
    re-attach first, or the batch runs twice)."""
    hint = ""
    if "UnknownError" in reason or "InitProducerId" in reason:
        hint = (
            " If the broker is Tansu, connect through the embedded stack's bootstrap address (its "
            "protocol adapter answers InitProducerId), not the broker's own port; for a bare "
            "Tansu broker, turn the idempotent producer off with --eng5-kafka-idempotence=off."
        )
    state = (
        "The publish is unconfirmed: the broker may still have stored it, so re-attach with "
        "this batch_uuid (attach) before publishing again."
        if unconfirmed
        else "The request was not published; re-run when the broker answers."
    )
    error_type = PublishUnconfirmedError if unconfirmed else PublishError
    return error_type(
        redact(f"could not publish the CJ request to {REQUEST_TOPIC} via {bootstrap}: {reason}"),
        next_step=redact(
            f"check the broker is up: is {bootstrap} reachable and the topic {REQUEST_TOPIC} "
            f"present? {state}{hint}"
        ),
    )


async def _stop_quietly(producer: AIOKafkaProducer, limit: float) -> None:
    try:
        async with asyncio.timeout(limit):
            await producer.stop()
    except Exception:  # stopping a producer that never started may fail; nothing to keep
        return
