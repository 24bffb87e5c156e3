"""Real infrastructure for the reference CJ worker tests and its benchmark.

The embedded stack of :mod:`pytest_eng5.stack` (Tansu and PostgreSQL), the reference Content
Service under uvicorn in a thread, plus seeding and event-tap helpers. Nothing here is a fake:
every wait polls a real signal with a deadline, and everything started is stopped.
"""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import uvicorn
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from starlette.applications import Starlette

from pytest_eng5.contracts.envelope import EventEnvelope
from pytest_eng5.contracts.events import (
    ELS_CJAssessmentRequestV1,
    EssayProcessingInputRefV1,
    SystemProcessingMetadata,
)
from pytest_eng5.contracts.grade_scales import grade_from_filename
from pytest_eng5.contracts.topics import (
    COMPLETED_TOPIC,
    CONTRACT_TOPICS,
    FAILED_TOPIC,
    REQUEST_TOPIC,
    RESOURCE_TOPIC,
    RESULT_TOPIC,
)
from pytest_eng5.reference.content_app import create_content_app
from pytest_eng5.reference.faults import FaultConfig, write_faults
from pytest_eng5.reference.serving import uvicorn_config
from pytest_eng5.reference.worker import CJWorker
from pytest_eng5.stack.infra import Infrastructure
from pytest_eng5.stack.ports import free_port as free_port  # re-exported for the worker tests

#: Every topic the worker writes: all contract topics but the request topic.
OUTPUT_TOPICS = tuple(topic for topic in CONTRACT_TOPICS if topic != REQUEST_TOPIC)
LEGACY_SCALE = "eng5_np_legacy_9_step"
SERVER_START_TIMEOUT_S = 20.0
SERVER_STOP_TIMEOUT_S = 10.0
EVENT_TIMEOUT_S = 60.0
SMALL_TEXTS = [
    "Phones are bad. I think so.",
    "Phones in school can help learning, however they also distract students in class.",
    "In my opinion phones should be allowed during breaks. For example, students can call "
    "their parents. On the other hand, lessons need focus, therefore a fair rule is needed.",
    "phones good i like",
    "Mobile phones are useful tools. Although some teachers disagree, they can help us search "
    "for information quickly and practise vocabulary.",
    "I dont think phones is good becaus we play games.",
]

#: The ``start_worker`` fixture: ``await start_worker(**settings_overrides)`` → a running worker.
WorkerFactory = Callable[..., Awaitable[CJWorker]]


# --------------------------------------------------------------------------- servers


class ServerThread:
    """An ASGI app served by uvicorn in a background thread on a free 127.0.0.1 port.

    uvicorn binds port 0 itself: sockets handed in from outside lose TCP_NODELAY on their
    accepted connections, which costs ~40 ms per keep-alive request (Nagle + delayed ACK).
    """

    def __init__(self, app: Starlette) -> None:
        config = uvicorn_config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="on")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, daemon=True)
        self.port = 0
        self.url = ""

    def start(self) -> ServerThread:
        """Start serving; returns once the app's lifespan start-up has finished."""
        self._thread.start()
        deadline = time.monotonic() + SERVER_START_TIMEOUT_S
        while not self._server.started:
            if not self._thread.is_alive():
                raise RuntimeError("uvicorn exited during start-up (see the log above)")
            if time.monotonic() > deadline:
                raise TimeoutError(f"uvicorn did not start within {SERVER_START_TIMEOUT_S}s")
            time.sleep(0.01)  # polling the real `started` flag, bounded by the deadline
        self.port = int(self._server.servers[0].sockets[0].getsockname()[1])
        self.url = f"http://127.0.0.1:{self.port}"
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=SERVER_STOP_TIMEOUT_S)
        if self._thread.is_alive():
            raise RuntimeError(
                f"uvicorn on port {self.port} did not stop in {SERVER_STOP_TIMEOUT_S}s"
            )


@dataclass
class Infra:
    """The embedded stack plus the reference Content Service."""

    infrastructure: Infrastructure
    content: ServerThread

    @property
    def bootstrap(self) -> str:
        return self.infrastructure.kafka.bootstrap

    @property
    def dsn(self) -> str:
        return self.infrastructure.postgres.dsn

    @property
    def content_url(self) -> str:
        return f"{self.content.url}/v1/content"


def start_infra(infrastructure: Infrastructure) -> Infra:
    """The Content Service (in a thread) on ``infrastructure`` (from ``eng5_stack_factory``).

    The Content Service applies the reference schema at start-up.
    """
    return Infra(
        infrastructure, ServerThread(create_content_app(infrastructure.postgres.dsn)).start()
    )


def stop_infra(infra: Infra) -> None:
    """Stop the Content Service; the stack factory stops the infrastructure."""
    infra.content.stop()


# --------------------------------------------------------------------------- seeding


async def store_text(conn: Any, text: str) -> str:
    """Put ``text`` into ``stored_content``; returns its 32-hex content id."""
    content_id = uuid.uuid4().hex
    data = text.encode("utf-8")
    await conn.execute(
        "INSERT INTO stored_content (content_id, content_data, content_size, content_type)"
        " VALUES ($1, $2, $3, 'text/plain')",
        content_id,
        data,
        len(data),
    )
    return content_id


@dataclass(frozen=True)
class SampleSet:
    students: list[tuple[str, str]]  # (name, text)
    anchors: list[tuple[str, str, str]]  # (label, grade, text)
    prompt: str


def load_sample_set() -> SampleSet:
    """The shipped ENG5-like sample (24 students, 12 graded anchors)."""
    from pytest_eng5.sample_data import SAMPLE_ASSETS, read_sample_text

    students = [
        (path.stem, read_sample_text(path))
        for path in sorted((SAMPLE_ASSETS / "student_essays").iterdir())
        if path.suffix.lower() in {".txt", ".md", ".docx"}
    ]
    anchors = [
        (path.stem, grade_from_filename(path.name), read_sample_text(path))
        for path in sorted((SAMPLE_ASSETS / "anchor_essays").iterdir())
        if path.suffix.lower() in {".txt", ".md", ".docx"}
    ]
    prompt = (SAMPLE_ASSETS / "instructions.md").read_text(encoding="utf-8")
    return SampleSet(students, anchors, prompt)


@dataclass
class SeededBatch:
    assignment_id: str | None
    essays: list[EssayProcessingInputRefV1]
    anchor_grades: dict[str, str] = field(default_factory=dict)  # anchor_ref_id → grade


async def seed_assignment(
    conn: Any,
    assignment_id: str,
    anchors: Iterable[tuple[str, str, str]],
    *,
    grade_scale: str = LEGACY_SCALE,
    prompt: str = "Write an article about phones in school.",
) -> dict[str, str]:
    """Insert an instruction row and its anchors; returns anchor_ref_id → grade."""
    prompt_id = await store_text(conn, prompt)
    await conn.execute(
        "INSERT INTO assessment_instructions (assignment_id, instructions_text, grade_scale,"
        " student_prompt_storage_id) VALUES ($1, $2, $3, $4)",
        assignment_id,
        "Compare the two essays for overall quality of written English.",
        grade_scale,
        prompt_id,
    )
    grades: dict[str, str] = {}
    for label, grade, text in anchors:
        storage_id = await store_text(conn, text)
        ref_id = await conn.fetchval(
            "INSERT INTO anchor_essay_references (anchor_label, grade, grade_scale,"
            " text_storage_id, assignment_id) VALUES ($1, $2, $3, $4, $5) RETURNING id",
            label,
            grade,
            grade_scale,
            storage_id,
            assignment_id,
        )
        grades[str(ref_id)] = grade
    return grades


async def seed_students(conn: Any, texts: Iterable[str]) -> list[EssayProcessingInputRefV1]:
    """Store student texts; returns refs with fresh, globally unique essay ids."""
    refs = []
    for text in texts:
        storage_id = await store_text(conn, text)
        refs.append(
            EssayProcessingInputRefV1(essay_id=str(uuid.uuid4()), text_storage_id=storage_id)
        )
    return refs


def build_request(
    essays: list[EssayProcessingInputRefV1],
    *,
    assignment_id: str | None,
    user_id: str = "researcher-1",
    max_comparisons: int | None = None,
    batch_id: str | None = None,
) -> EventEnvelope:
    """A request envelope shaped like the ENG5 runner's (contract D.4)."""
    batch = batch_id or str(uuid.uuid4())
    request = ELS_CJAssessmentRequestV1(
        entity_id=batch,
        entity_type="batch",
        parent_id=assignment_id,
        system_metadata=SystemProcessingMetadata(entity_id=batch, entity_type="batch"),
        essays_for_cj=essays,
        language="en",
        course_code="ENG5",
        assignment_id=assignment_id,
        user_id=user_id,
    )
    metadata: dict[str, Any] = {"runner_mode": "execute"}
    if max_comparisons is not None:
        metadata["max_comparisons"] = max_comparisons
    return EventEnvelope(
        event_type=REQUEST_TOPIC,
        source_service="eng5_np_batch_runner",
        data=request,
        metadata=metadata,
    )


async def set_faults(dsn: str, faults: FaultConfig) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        await write_faults(conn, "cj-worker", faults)
    finally:
        await conn.close()


# --------------------------------------------------------------------------- Kafka taps


class EventTap:
    """Reads the output topics from their current end, without a consumer group."""

    def __init__(self, bootstrap: str, topics: Iterable[str] = OUTPUT_TOPICS) -> None:
        self._bootstrap = bootstrap
        self._topics = tuple(topics)
        self._consumer: AIOKafkaConsumer | None = None
        self.records: list[tuple[str, bytes | None, bytes]] = []  # (topic, key, value)

    async def start(self) -> None:
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self._bootstrap, group_id=None, enable_auto_commit=False,
            fetch_max_wait_ms=20,
        )  # fmt: skip
        await consumer.start()
        partitions = [
            TopicPartition(topic, p)
            for topic in self._topics
            for p in sorted(consumer.partitions_for_topic(topic) or {0})
        ]
        consumer.assign(partitions)
        await consumer.seek_to_end(*partitions)
        for partition in partitions:
            await consumer.position(partition)
        self._consumer = consumer

    async def stop(self) -> None:
        if self._consumer is not None:
            await self._consumer.stop()
            self._consumer = None

    async def __aenter__(self) -> EventTap:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def _poll(self) -> None:
        assert self._consumer is not None
        batches = await self._consumer.getmany(timeout_ms=50)
        for records in batches.values():
            for record in records:
                self.records.append((record.topic, record.key, record.value))

    def envelopes(self, topic: str) -> list[EventEnvelope]:
        """Parsed envelopes on ``topic`` (unparseable ones skipped)."""
        parsed = []
        for rec_topic, _, value in self.records:
            if rec_topic != topic:
                continue
            try:
                parsed.append(EventEnvelope.from_bytes(value))
            except ValueError:
                continue
        return parsed

    def raw(self, topic: str) -> list[bytes]:
        return [value for rec_topic, _, value in self.records if rec_topic == topic]

    def key_of(self, topic: str, batch_id: str) -> bytes | None:
        """The Kafka key of the (first) record on ``topic`` that belongs to ``batch_id``."""
        for rec_topic, key, value in self.records:
            if rec_topic != topic:
                continue
            try:
                envelope = EventEnvelope.from_bytes(value)
            except ValueError:
                continue
            if for_batch([envelope], batch_id):
                return key
        raise AssertionError(f"no record for batch {batch_id} on {topic}")

    async def wait_for(
        self, predicate: Callable[[EventTap], bool], timeout_s: float, what: str
    ) -> None:
        deadline = asyncio.get_running_loop().time() + timeout_s
        while not predicate(self):
            if asyncio.get_running_loop().time() > deadline:
                counts = {t: len(self.raw(t)) for t in self._topics}
                raise TimeoutError(f"{what} not seen within {timeout_s} s; records: {counts}")
            await self._poll()


def for_batch(envelopes: list[EventEnvelope], batch_id: str) -> list[EventEnvelope]:
    """Envelopes whose data names ``batch_id`` (entity_id, batch_id or bos_batch_id)."""
    matched = []
    for envelope in envelopes:
        data = envelope.data if isinstance(envelope.data, dict) else {}
        meta = data.get("request_metadata") or {}
        if batch_id in (data.get("entity_id"), data.get("batch_id"), meta.get("bos_batch_id")):
            matched.append(envelope)
    return matched


async def publish(bootstrap: str, envelope: EventEnvelope) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=0)
    await producer.start()
    try:
        key = str(envelope.data.entity_id).encode() if hasattr(envelope.data, "entity_id") else None
        await producer.send_and_wait(REQUEST_TOPIC, envelope.to_bytes(), key=key)
    finally:
        await producer.stop()


async def publish_raw(bootstrap: str, value: bytes, *, topic: str = REQUEST_TOPIC) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=0)
    await producer.start()
    try:
        await producer.send_and_wait(topic, value)
    finally:
        await producer.stop()


# --------------------------------------------------------------------------- batch runs


async def run_batch(
    infra: Infra, request: EventEnvelope, *, terminal: tuple[str, ...] = (RESULT_TOPIC,)
) -> EventTap:
    """Publish ``request`` and wait until its batch has an event on one of ``terminal``."""
    batch_id = str(request.data.entity_id)
    tap = EventTap(infra.bootstrap)
    await tap.start()
    try:
        await publish(infra.bootstrap, request)
        await tap.wait_for(
            lambda t: any(for_batch(t.envelopes(topic), batch_id) for topic in terminal),
            EVENT_TIMEOUT_S,
            f"terminal event for batch {batch_id}",
        )
        if RESULT_TOPIC in terminal and for_batch(tap.envelopes(RESULT_TOPIC), batch_id):
            await tap.wait_for(
                lambda t: bool(for_batch(t.envelopes(RESOURCE_TOPIC), batch_id)),
                EVENT_TIMEOUT_S,
                "resource event",
            )
    finally:
        await tap.stop()
    return tap


async def run_to_failure(infra: Infra, request: EventEnvelope) -> EventEnvelope:
    """Run ``request`` to its end, which must be no completion and one failure event; that."""
    batch_id = str(request.data.entity_id)
    tap = await run_batch(infra, request, terminal=(FAILED_TOPIC, COMPLETED_TOPIC))
    assert not for_batch(tap.envelopes(COMPLETED_TOPIC), batch_id)
    return only(for_batch(tap.envelopes(FAILED_TOPIC), batch_id))


def only(envelopes: list[EventEnvelope]) -> EventEnvelope:
    assert len(envelopes) == 1, f"expected exactly one event, got {len(envelopes)}"
    return envelopes[0]


async def batch_state(db: asyncpg.Connection, bos_batch_id: str) -> asyncpg.Record:
    row = await db.fetchrow(
        "SELECT u.id, u.status, u.completed_at, s.state, s.total_budget,"
        " s.submitted_comparisons, s.completed_comparisons, s.failed_comparisons,"
        " s.processing_metadata FROM cj_batch_uploads u JOIN cj_batch_states s"
        " ON s.batch_id = u.id WHERE u.bos_batch_id = $1",
        bos_batch_id,
    )
    assert row is not None, f"no cj batch rows for {bos_batch_id}"
    return row
