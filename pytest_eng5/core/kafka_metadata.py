"""Partition discovery for consumers that read without a group (``assign()`` + ``seek()``)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from aiokafka import AIOKafkaConsumer, TopicPartition

from pytest_eng5.errors import ConfigurationError


async def topic_partitions(
    consumer: AIOKafkaConsumer, topics: Sequence[str], *, within: float | None = None
) -> list[TopicPartition]:
    """Every partition of ``topics``, refreshing metadata until the broker lists each topic.

    Public aiokafka API only: a subscription makes the consumer load the topics' metadata
    (subscribing again forces a refresh); it is dropped before returning, so the caller reads
    with ``assign()`` + ``seek()``. ``within=None`` leaves the bound to the caller.
    """
    loop = asyncio.get_running_loop()
    deadline = None if within is None else loop.time() + within
    asked = -_RESUBSCRIBE_SECONDS
    while True:
        if loop.time() - asked >= _RESUBSCRIBE_SECONDS:
            consumer.subscribe(list(topics))
            asked = loop.time()
        found = {topic: consumer.partitions_for_topic(topic) for topic in topics}
        missing = [topic for topic, partitions in found.items() if not partitions]
        if not missing:
            break
        if deadline is not None and loop.time() > deadline:
            consumer.unsubscribe()
            raise ConfigurationError(
                f"Kafka has no partitions for {', '.join(missing)} after {within:g} s",
                next_step="create the contract topics before starting (the stack does)",
            )
        await asyncio.sleep(0.05)  # a metadata refresh is in flight
    consumer.unsubscribe()
    return [TopicPartition(topic, p) for topic in topics for p in sorted(found[topic] or ())]


_RESUBSCRIBE_SECONDS = 0.5
