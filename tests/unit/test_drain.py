"""drain_to_end with a stand-in consumer (no broker): what it reads and what it logs."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import pytest
from aiokafka import TopicPartition
from aiokafka.errors import KafkaConnectionError

from pytest_eng5.runner.drain import drain_to_end

CALLBACKS = TopicPartition("callbacks", 0)
RESULTS = TopicPartition("results", 0)


class _Partitions:
    """Assigned partitions at ``positions`` with ``ends``; ``getmany`` hands out at most
    ``per_fetch`` offsets of each partition asked for (``fail``: raises instead)."""

    def __init__(
        self,
        positions: dict[TopicPartition, int],
        ends: dict[TopicPartition, int],
        *,
        per_fetch: int = 2,
        fail: Exception | None = None,
    ) -> None:
        self.positions = dict(positions)
        self.ends = ends
        self.per_fetch = per_fetch
        self.fail = fail
        self.hang = False
        self.asked: list[tuple[TopicPartition, ...]] = []

    def assignment(self) -> set[TopicPartition]:
        return set(self.positions)

    async def end_offsets(self, partitions: list[TopicPartition]) -> dict[TopicPartition, int]:
        if self.fail is not None:
            raise self.fail
        if self.hang:  # a broker that went away answers after request_timeout_ms (40 s)
            await asyncio.Event().wait()
        return {tp: self.ends[tp] for tp in partitions}

    async def position(self, partition: TopicPartition) -> int:
        return self.positions[partition]

    async def getmany(self, *partitions: TopicPartition, timeout_ms: int) -> dict[Any, list[int]]:
        self.asked.append(partitions)
        got: dict[TopicPartition, list[int]] = {}
        for tp in partitions:
            start = self.positions[tp]
            stop = min(self.ends[tp], start + self.per_fetch)
            got[tp] = list(range(start, stop))
            self.positions[tp] = stop
        return got


async def _drain(
    consumer: _Partitions, deadline: float, caplog: pytest.LogCaptureFixture
) -> tuple[list[Any], list[dict[str, Any]]]:
    """The (topic, offset) pairs handed on, and the incomplete-drain warnings logged."""
    seen: list[Any] = []

    def handle(batches: dict[TopicPartition, list[Any]]) -> None:
        seen.extend((tp.topic, offset) for tp, offsets in batches.items() for offset in offsets)

    stand_in: Any = consumer
    log = logging.getLogger("drain-test")
    with caplog.at_level(logging.WARNING, logger=log.name):
        await drain_to_end(stand_in, handle, deadline=deadline, max_poll=0.01, log=log)
    warnings = [
        {"reason": r.__dict__["reason"], "partitions": r.__dict__["partitions"]}
        for r in caplog.records
        if r.message == "collector_drain_incomplete"
    ]
    return seen, warnings


@pytest.mark.asyncio
async def test_every_partition_is_read_up_to_its_end_and_no_further(
    caplog: pytest.LogCaptureFixture,
) -> None:
    consumer = _Partitions({CALLBACKS: 3, RESULTS: 0}, {CALLBACKS: 8, RESULTS: 1})
    seen, warnings = await _drain(consumer, time.monotonic() + 60, caplog)
    assert sorted(seen) == [("callbacks", o) for o in range(3, 8)] + [("results", 0)]
    assert consumer.asked[-1] == (CALLBACKS,), "a partition at its end is not fetched again"
    assert warnings == []


@pytest.mark.asyncio
async def test_partitions_left_behind_by_the_deadline_are_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    consumer = _Partitions({CALLBACKS: 0, RESULTS: 1}, {CALLBACKS: 5, RESULTS: 1})
    seen, warnings = await _drain(consumer, time.monotonic() - 1, caplog)
    assert seen == []
    assert warnings == [{"reason": "the await timeout ran out", "partitions": ["callbacks[0]"]}]


@pytest.mark.asyncio
async def test_a_kafka_error_leaves_every_partition_logged_as_behind(
    caplog: pytest.LogCaptureFixture,
) -> None:
    error = KafkaConnectionError("broker went away")
    consumer = _Partitions({CALLBACKS: 0, RESULTS: 0}, {}, fail=error)
    _, warnings = await _drain(consumer, time.monotonic() + 60, caplog)
    assert [w["partitions"] for w in warnings] == [["callbacks[0]", "results[0]"]]
    assert "KafkaConnectionError" in warnings[0]["reason"]


@pytest.mark.asyncio
async def test_a_broker_that_stops_answering_does_not_hold_the_drain_past_the_deadline(
    caplog: pytest.LogCaptureFixture,
) -> None:
    consumer = _Partitions({CALLBACKS: 0}, {CALLBACKS: 5})
    consumer.hang = True
    _, warnings = await asyncio.wait_for(_drain(consumer, time.monotonic() + 0.1, caplog), 10)
    assert warnings == [{"reason": "the await timeout ran out", "partitions": ["callbacks[0]"]}]
