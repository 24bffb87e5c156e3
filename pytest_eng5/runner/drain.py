"""The collector's last read: every partition up to the end it has once the batch finished.

CJ publishes its completion after the callbacks it counted, but on other topics, and a fetch of
the completion's partition can overtake thousands of callbacks (a re-attach reads them all from
history): without this the record would miss some of them.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any, Final

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError

#: what the collector does with one ``getmany`` answer
RecordHandler = Callable[[dict[TopicPartition, list[Any]]], None]
#: a broker that answers at all answers in this time: the drain may ask it for the partitions'
#: ends even when the deadline has just passed, to say which ones were left behind
_ANSWER_SECONDS: Final = 0.05


async def drain_to_end(
    consumer: AIOKafkaConsumer,
    handle: RecordHandler,
    *,
    deadline: float,
    max_poll: float,
    log: logging.Logger | None,
) -> None:
    """Hand every record up to the assigned partitions' current ends to ``handle``.

    Reads until ``deadline`` (``time.monotonic()``) at most, broker requests included, in polls
    of at most ``max_poll`` seconds; partitions left behind (the deadline, a Kafka error) are
    logged to ``log``.
    """
    partitions = sorted(consumer.assignment())
    behind = partitions
    reason = "the await timeout ran out"
    try:
        # The deadline bounds the broker's answers too: a broker that went away would leave
        # end_offsets waiting for aiokafka's request timeout (40 s by default).
        async with asyncio.timeout(max(_ANSWER_SECONDS, deadline - time.monotonic())):
            ends = await consumer.end_offsets(partitions)
            while True:
                behind = [tp for tp in partitions if await consumer.position(tp) < ends[tp]]
                remaining = deadline - time.monotonic()
                if not behind or remaining <= 0:
                    break
                poll_ms = max(1, int(min(remaining, max_poll) * 1000))
                handle(await consumer.getmany(*behind, timeout_ms=poll_ms))
    except TimeoutError:
        pass
    except KafkaError as exc:
        behind = partitions
        reason = f"{type(exc).__name__}: {exc}"
    if behind and log is not None:
        log.warning(
            "collector_drain_incomplete",
            extra={
                "reason": reason,
                "partitions": [f"{tp.topic}[{tp.partition}]" for tp in behind],
            },
        )
