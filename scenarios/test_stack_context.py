"""The session stack's helpers: real Kafka clients and a real database connection."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from aiokafka import TopicPartition

from pytest_eng5.contracts import RESOURCE_TOPIC

pytestmark = pytest.mark.eng5_scenario("stack")


def test_producer_and_consumer_round_trip(eng5_stack) -> None:
    payload = uuid.uuid4().hex.encode()

    async def round_trip() -> bytes:
        consumer = eng5_stack.consumer()
        producer = eng5_stack.producer()
        await consumer.start()
        await producer.start()
        try:
            tp = TopicPartition(RESOURCE_TOPIC, 0)
            consumer.assign([tp])
            end = (await consumer.end_offsets([tp]))[tp]
            consumer.seek(tp, end)
            await producer.send_and_wait(RESOURCE_TOPIC, payload)
            async with asyncio.timeout(10):
                while True:
                    record = await consumer.getone()
                    if record.value == payload:
                        return bytes(record.value)
        finally:
            await producer.stop()
            await consumer.stop()

    assert asyncio.run(round_trip()) == payload


def test_connect_reads_the_reference_tables(eng5_stack, eng5_sample_assignment) -> None:
    async def anchors() -> int:
        connection = await eng5_stack.connect()
        try:
            count = await connection.fetchval(
                "SELECT count(*) FROM anchor_essay_references WHERE assignment_id = $1",
                eng5_sample_assignment.assignment_id,
            )
            return int(count)
        finally:
            await connection.close()

    assert asyncio.run(anchors()) == 12


def test_stack_repr_shows_no_secret(eng5_stack) -> None:
    secret = eng5_stack.env["JWT_SECRET_KEY"]
    assert secret not in repr(eng5_stack)
    assert secret not in repr(eng5_stack.endpoints())
