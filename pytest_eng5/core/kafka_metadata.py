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

    ``within=None`` leaves the bound to the caller. aiokafka has no public call that refreshes
    a group-less consumer's metadata, so this is the one place that asks its client directly.
    """
    loop = asyncio.get_running_loop()
    deadline = None if within is None else loop.time() + within
    await consumer._client.set_topics(list(topics))
    while True:
        found = {topic: consumer.partitions_for_topic(topic) for topic in topics}
        missing = [topic for topic, partitions in found.items() if not partitions]
        if not missing:
            break
        if deadline is not None and loop.time() > deadline:
            raise ConfigurationError(
                f"Kafka has no partitions for {', '.join(missing)} after {within:g} s",
                next_step="create the contract topics before starting (the stack does)",
            )
        await asyncio.sleep(0.05)  # a metadata refresh is in flight
        await consumer._client.force_metadata_update()
    return [TopicPartition(topic, p) for topic in topics for p in sorted(found[topic] or ())]
