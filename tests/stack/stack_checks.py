"""Real-traffic checks shared by the stack tests and their child processes."""

from __future__ import annotations

import asyncio
import time
import uuid
from pathlib import Path
from typing import Any

import asyncpg
import psutil
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from pytest_eng5.stack.config import StackConfig
from pytest_eng5.stack.kafka import KafkaEndpoint

WAIT = 10.0


def embedded_config(base: Path, **overrides: Any) -> StackConfig:
    """An embedded stack's configuration with its work and log folders under ``base``."""
    return StackConfig("embedded", workdir=base / "work", log_dir=base / "logs", **overrides)


async def kafka_round_trip(endpoint: KafkaEndpoint, topic: str, count: int = 3) -> list[bytes]:
    """Produce ``count`` fresh messages and read exactly them back with assign()+seek()."""
    partition = TopicPartition(topic, 0)
    consumer = AIOKafkaConsumer(**endpoint.consumer_kwargs(), enable_auto_commit=False)
    producer = AIOKafkaProducer(**endpoint.producer_kwargs())
    await asyncio.wait_for(consumer.start(), WAIT)
    try:
        await asyncio.wait_for(producer.start(), WAIT)
        try:
            consumer.assign([partition])
            start = (await consumer.end_offsets([partition]))[partition]
            consumer.seek(partition, start)
            sent = [f"{uuid.uuid4()}-{i}".encode() for i in range(count)]
            for value in sent:
                await asyncio.wait_for(producer.send_and_wait(topic, value), WAIT)
        finally:
            await producer.stop()
        received: list[bytes] = []
        async with asyncio.timeout(WAIT):
            while len(received) < count:
                batch = await consumer.getmany(partition, timeout_ms=500)
                received.extend(record.value for record in batch.get(partition, []))
        assert received == sent
        return received
    finally:
        await consumer.stop()


async def partition_counts(endpoint: KafkaEndpoint, topics: list[str]) -> dict[str, int]:
    """How many partitions each topic has, and 0 for a topic the broker reports an error for."""
    admin = AIOKafkaAdminClient(**endpoint.admin_kwargs())
    await admin.start()
    try:
        described = await admin.describe_topics(topics)
    finally:
        await admin.close()
    return {
        entry["topic"]: len(entry["partitions"]) if entry["error_code"] == 0 else 0
        for entry in described
    }


async def sql_round_trip(dsn: str) -> list[str]:
    """Create a table, insert rows and select them back through asyncpg."""
    table = f"stack_check_{uuid.uuid4().hex[:8]}"
    connection = await asyncpg.connect(dsn, timeout=WAIT)
    try:
        await connection.execute(f"CREATE TABLE {table} (id serial PRIMARY KEY, name text)")
        names = [f"essay-{uuid.uuid4().hex[:6]}" for _ in range(3)]
        await connection.executemany(
            f"INSERT INTO {table} (name) VALUES ($1)", [(n,) for n in names]
        )
        rows = await connection.fetch(f"SELECT name FROM {table} ORDER BY id")
        assert [row["name"] for row in rows] == names
        await connection.execute(f"DROP TABLE {table}")
        return names
    finally:
        await connection.close()


def pid_alive(pid: int) -> bool:
    """True while ``pid`` is a live process (a zombie counts as dead)."""
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def dead_within(pid: int, timeout: float = 5.0) -> bool:
    """Poll until ``pid`` is gone (a SIGKILL is delivered asynchronously); False at the deadline."""
    deadline = time.monotonic() + timeout
    while pid_alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True
