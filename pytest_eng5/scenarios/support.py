"""Fixtures and helpers the scenarios share: assignments, a request-topic watch, asset folders."""

from __future__ import annotations

import asyncio
import shutil
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from pytest_eng5.contracts import REQUEST_TOPIC, EventEnvelope
from pytest_eng5.core import RUNNER_FALLBACK_GRADE_SCALE
from pytest_eng5.core.kafka_metadata import topic_partitions
from pytest_eng5.runner.auth import mint_dev_token
from pytest_eng5.runner.seeding import seed_assignment_at
from pytest_eng5.runner_handle import SampleAssignment
from pytest_eng5.sample_data import SAMPLE_ASSETS

#: the fixtures a scenario folder's conftest.py brings in with ``from ... import *``
__all__ = [
    "asset_folder",
    "clean_faults",
    "make_assignment",
    "own_cache",
    "request_watch",
    "sample",
]

# Enough comparisons that the reference pairing connects the 36 essays (24 students + 12
# anchors) every time: at 40 it sometimes leaves two groups, which is a disconnected_graph run.
FAST_BUDGET = 72


class RequestWatch:
    """Which CJ requests reached Kafka since the watch started (offsets, not a consumer group)."""

    def __init__(self, consumer_kwargs: dict[str, Any]) -> None:
        self._kwargs = consumer_kwargs
        self._start: dict[TopicPartition, int] = {}

    async def _consumer(self) -> AIOKafkaConsumer:
        consumer = AIOKafkaConsumer(**self._kwargs, enable_auto_commit=False)
        await consumer.start()
        return consumer

    async def _mark(self) -> None:
        consumer = await self._consumer()
        try:
            # every partition (``consumer.topics()`` leaves the consumer's own metadata empty,
            # which hid partitions 1 and 2 on the three-partition Apache cluster)
            parts = await topic_partitions(consumer, [REQUEST_TOPIC], within=10)
            self._start = await consumer.end_offsets(parts)
        finally:
            await consumer.stop()

    async def _read(self) -> list[EventEnvelope]:
        consumer = await self._consumer()
        envelopes: list[EventEnvelope] = []
        try:
            consumer.assign(list(self._start))
            end = await consumer.end_offsets(list(self._start))
            for tp, offset in self._start.items():
                consumer.seek(tp, offset)

            async def behind() -> bool:
                return any([await consumer.position(tp) < end[tp] for tp in end])

            async with asyncio.timeout(10):
                while await behind():
                    batch = await consumer.getmany(timeout_ms=500)
                    for records in batch.values():
                        envelopes.extend(EventEnvelope.from_bytes(r.value) for r in records)
        finally:
            await consumer.stop()
        return envelopes

    def start(self) -> None:
        asyncio.run(self._mark())

    def new_requests(self) -> list[EventEnvelope]:
        """Every request envelope published since :meth:`start`."""
        return asyncio.run(self._read())


@pytest.fixture
def request_watch(eng5_stack: Any) -> RequestWatch:
    """Watch the request topic from now on (to assert that nothing was published)."""
    watch = RequestWatch(dict(eng5_stack.kafka.consumer_kwargs()))
    watch.start()
    return watch


@pytest.fixture
def sample(eng5_sample_assignment: SampleAssignment) -> dict[str, Any]:
    """Run settings for the seeded sample assignment and the sample essays, with a budget that
    keeps runs short. The scenarios' counts are the sample set's, so a configured asset folder
    (``--eng5-assets``, ini or env) does not reach them: it is the main job's."""
    return {
        "assignment_id": eng5_sample_assignment.assignment_id,
        "course_id": eng5_sample_assignment.course_id,
        "assets": SAMPLE_ASSETS,
        "max_comparisons": FAST_BUDGET,
    }


@pytest.fixture
def own_cache(tmp_path: Path) -> dict[str, Any]:
    """Settings for an upload cache that only this test uses."""
    return {"cache_file": tmp_path / "content_upload_cache.json"}


@pytest.fixture
def asset_folder(tmp_path: Path) -> Callable[..., Path]:
    """``make(anchors=..., students=...)``: a copy of the sample set cut down or extended."""

    def make(
        *,
        anchors: int | None = None,
        students: int | None = None,
        extra_anchors: dict[str, str] | None = None,
    ) -> Path:
        root = tmp_path / f"assets-{uuid.uuid4().hex[:6]}"
        shutil.copytree(SAMPLE_ASSETS, root)
        for folder, keep in (("anchor_essays", anchors), ("student_essays", students)):
            if keep is None:
                continue
            for path in sorted((root / folder).iterdir())[keep:]:
                path.unlink()
        for name, text in (extra_anchors or {}).items():
            (root / "anchor_essays" / name).write_text(text, encoding="utf-8")
        return root

    return make


@pytest.fixture
def make_assignment(eng5_stack: Any, tmp_path: Path) -> Callable[..., str]:
    """``make(with_anchors=True, with_prompt=True, grade_scale=..., context_origin=...)``:
    a new assignment on the reference stack, made through the CJ admin API."""
    if not eng5_stack.is_reference:
        pytest.skip("creates assignments: needs the reference services")
    token = mint_dev_token(eng5_stack.env)

    def make(
        *,
        with_anchors: bool = True,
        with_prompt: bool = True,
        grade_scale: str = RUNNER_FALLBACK_GRADE_SCALE,
        context_origin: str = "research_experiment",
    ) -> str:
        assignment_id = str(uuid.uuid4())
        if not with_prompt:
            response = httpx.post(
                f"{eng5_stack.cj_url}/admin/v1/assessment-instructions",
                json={
                    "assignment_id": assignment_id,
                    "instructions_text": (SAMPLE_ASSETS / "instructions.md").read_text(),
                    "grade_scale": grade_scale,
                    "context_origin": context_origin,
                },
                headers={"Authorization": f"Bearer {token}"},
                timeout=10,
            )
            response.raise_for_status()
            return assignment_id
        assets = SAMPLE_ASSETS
        if not with_anchors:
            assets = tmp_path / f"no-anchors-{uuid.uuid4().hex[:6]}"
            (assets / "anchor_essays").mkdir(parents=True)
            shutil.copy(SAMPLE_ASSETS / "instructions.md", assets / "instructions.md")
        asyncio.run(
            seed_assignment_at(
                eng5_stack.cj_url,
                eng5_stack.env,
                assets,
                assignment_id=assignment_id,
                grade_scale=grade_scale,
                context_origin=context_origin,
            )
        )
        return assignment_id

    return make


@pytest.fixture
def clean_faults(eng5_stack: Any) -> Iterator[Any]:
    """Give the test the stack and clear every fault knob afterwards."""
    yield eng5_stack
    eng5_stack.clear_faults()
