"""The reference CJ worker: HuleEdu's CJ Assessment Service Kafka flow plus the LLM Provider.

CJ side (contract §E): consume requests and callbacks, create the batch rows, fetch texts from
the Content Service, mix in anchors, plan waves (:mod:`.pairing`), score with Bradley–Terry
(:mod:`.scoring`), project grades (:mod:`.projection`) and publish the completed / result /
resource / failed events through the outbox (:mod:`.outbox`).

LPS side (§F.2): every planned pair goes to :class:`ProviderEmulator`, which judges it
in-process (honouring ``judge_delay_ms`` / ``judge_error_rate``) and publishes an
``LLMComparisonResultV1`` on the real callback topic (with ``drop`` / ``duplicate`` /
``malformed`` callback faults). The CJ side learns the outcome only from that topic.

Differences from HuleEdu, on purpose:

- No consumer group: all partitions of the request and callback topics are assigned and seeked
  to their end before the worker reports ready, so "ready" means "a request published now will
  be seen" (HuleEdu's group join takes 5–25 s on Tansu, during which requests are lost).
- A wave never waits forever: if no callback of a wave arrives for ``callback_timeout_s``
  (counted from the wave's submission or its latest callback), the missing pairs are recorded
  as errors (``CALLBACK_TIMEOUT``) and the wave is complete. Dropped and malformed callbacks
  therefore cost one timeout, not the batch.
- When the planner has no pair left to ask (coverage plus the allowed resampling passes are
  done) the batch finalises (see :mod:`.scoring`), so a budget above C(n,2) cannot stall it.
- ``assessment_metadata.comparison_count`` is the real number of successful comparisons.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import random
import uuid
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

import asyncpg
import httpx
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from pydantic import ValidationError

from pytest_eng5.contracts.enums import (
    BatchStatus,
    EssayComparisonWinner,
    LLMProviderType,
    ProcessingStage,
)
from pytest_eng5.contracts.envelope import EventEnvelope
from pytest_eng5.contracts.events import (
    AssessmentResultV1,
    CJAssessmentCompletedV1,
    CJAssessmentFailedV1,
    ELS_CJAssessmentRequestV1,
    ErrorDetail,
    EssayResultV1,
    LLMComparisonResultV1,
    ProcessingSummary,
    ResourceConsumptionV1,
    SystemProcessingMetadata,
    TokenUsage,
)
from pytest_eng5.contracts.grade_scales import get_scale
from pytest_eng5.contracts.topics import (
    CALLBACK_EVENT_TYPE,
    CALLBACK_TOPIC,
    COMPLETED_TOPIC,
    CONTRACT_TOPICS,
    FAILED_TOPIC,
    REQUEST_TOPIC,
    RESOURCE_TOPIC,
    RESULT_TOPIC,
)
from pytest_eng5.errors import ConfigurationError, Eng5Error
from pytest_eng5.reference.db import Pool, apply_schema, create_pool
from pytest_eng5.reference.faults import FaultConfig, read_faults
from pytest_eng5.reference.judge import Judge, Judgement, JudgeRequest, make_judge
from pytest_eng5.reference.outbox import AggregateType, relay_pending, relay_rows, write_outbox_row
from pytest_eng5.reference.pairing import PlannedPair, distinct_pairs, plan_wave
from pytest_eng5.reference.projection import (
    NO_GRADE,
    AnchorPoint,
    ProjectionSummary,
    StudentPoint,
    normalized_score,
    project_grades,
)
from pytest_eng5.reference.scoring import (
    Decision,
    WaveOutcome,
    decide,
    fit_scores,
    max_score_change,
)

_log = logging.getLogger(__name__)

SERVICE_NAME: Final = "cj_assessment_service"
LPS_SERVICE_NAME: Final = "llm_provider_service"
INITIALIZATION_FAILED: Final = "INITIALIZATION_FAILED"
ANCHOR_PREFIX: Final = "ANCHOR_"
DEFAULT_LLM_PROVIDER: Final = "openai"
DEFAULT_LLM_MODEL: Final = "gpt-5.1"
DEFAULT_LLM_TEMPERATURE: Final = 0.1
DEFAULT_GRADE_SCALE: Final = "swedish_8_anchor"
LETTER_GRADE_OK: Final = frozenset(
    f"{letter}{mod}" for letter in "ABCDEF" for mod in ("", "+", "-")
) | {"U"}
CALLBACK_TIMEOUT_CODE: Final = "CALLBACK_TIMEOUT"
STUDENT_PROMPT_CONTENT_TYPE: Final = "student_prompt_text"


@dataclass(frozen=True)
class WorkerSettings:
    """How the worker connects and behaves; the CLI of :mod:`.worker_main` fills it."""

    bootstrap_servers: str
    dsn: str
    content_url: str
    judge_name: str = "text_features"
    judge_seed: int = 0
    max_pairwise_comparisons: int = 120
    idempotent_producer: bool = False
    callback_timeout_s: float = 10.0
    pair_generation_seed: int = 0
    client_id: str = "reference-cj-worker"
    fetch_max_wait_ms: int = 10
    http_timeout_s: float = 10.0

    def __post_init__(self) -> None:
        if self.max_pairwise_comparisons < 1:
            raise ConfigurationError(
                f"max_pairwise_comparisons must be >= 1, got {self.max_pairwise_comparisons}",
                next_step="pass --max-pairwise-comparisons 120 (HuleEdu's default) or larger",
            )
        if self.callback_timeout_s <= 0:
            raise ConfigurationError(
                f"callback_timeout_s must be > 0, got {self.callback_timeout_s}",
                next_step="pass --callback-timeout-s 10 (or more for a slow real LLM judge)",
            )


class IntakeFailure(Eng5Error):
    """A request the worker rejects; it becomes a CJAssessmentFailedV1 (INITIALIZATION_FAILED)."""

    kind = "cj-intake"

    def __init__(self, code: str, message: str, *, details: Mapping[str, Any] | None = None):
        super().__init__(message, next_step="fix the request or the seeded data and re-publish")
        self.code = code
        self.details = dict(details or {})


@dataclass(frozen=True)
class EssayRow:
    essay_id: str
    text: str
    text_storage_id: str
    is_anchor: bool
    metadata: dict[str, Any]
    bt_score: float | None
    bt_se: float | None
    comparison_count: int


@dataclass(frozen=True)
class ProviderTask:
    """What CJ sends the LLM Provider for one pair (the LPS HTTP body, in-process)."""

    correlation_id: uuid.UUID
    prompt_text: str
    judge_request: JudgeRequest
    request_metadata: dict[str, Any]
    faults: FaultConfig

    @property
    def fault_key(self) -> str:
        """Seeds the fault draws: the same batch, pair and wave always get the same faults."""
        meta = self.request_metadata
        return ":".join(
            str(meta.get(key))
            for key in ("bos_batch_id", "essay_a_id", "essay_b_id", "comparison_iteration")
        )


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _json(raw: Any) -> dict[str, Any]:
    if raw is None:
        return {}
    if isinstance(raw, str):
        loaded = json.loads(raw)
        return loaded if isinstance(loaded, dict) else {}
    return dict(raw)


def sha256_hex(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def build_prompt(
    instructions: str, student_prompt: str, rubric: str, essay_a: str, essay_b: str
) -> str:
    """The flattened comparison prompt (HuleEdu builds it from the same four parts)."""
    parts = []
    if instructions.strip():
        parts.append(f"**Assessment instructions:**\n{instructions.strip()}")
    if student_prompt.strip():
        parts.append(f"**Student prompt:**\n{student_prompt.strip()}")
    if rubric.strip():
        parts.append(f"**Judge rubric:**\n{rubric.strip()}")
    parts.append(f"**Essay A:**\n{essay_a.strip()}")
    parts.append(f"**Essay B:**\n{essay_b.strip()}")
    parts.append("Which essay is better? Answer 'Essay A' or 'Essay B' with a justification.")
    return "\n\n".join(parts)


# --------------------------------------------------------------------------- LPS emulation


class ProviderEmulator:
    """The LLM Provider Service in mock form: judge a pair, publish its callback."""

    def __init__(self, judge: Judge, producer: AIOKafkaProducer) -> None:
        self._judge = judge
        self._producer = producer
        self._tasks: set[asyncio.Task[None]] = set()

    def submit(self, task: ProviderTask) -> None:
        """Queue one comparison; the callback is published when it is done."""
        running = asyncio.create_task(self._process(task))
        self._tasks.add(running)
        running.add_done_callback(self._tasks.discard)

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _process(self, task: ProviderTask) -> None:
        try:
            envelope = await self._callback_for(task)
            await self._publish(task, envelope)
        except asyncio.CancelledError:
            raise
        except Exception:  # a lost callback is covered by the wave timeout
            _log.exception("LPS emulation failed for comparison %s", task.correlation_id)

    async def _callback_for(self, task: ProviderTask) -> EventEnvelope:
        requested_at = _utcnow()
        faults = task.faults
        rng = random.Random(f"{faults.seed}:judge:{task.fault_key}")
        if faults.judge_delay_ms:
            await asyncio.sleep(faults.judge_delay_ms / 1000.0)  # emulated provider latency
        metadata = {
            **task.request_metadata,
            "prompt_sha256": sha256_hex(task.prompt_text),
            "queue_processing_mode": "per_request",
        }
        judgement: Judgement | None = None
        error: str | None = None
        if faults.judge_error_rate and rng.random() < faults.judge_error_rate:
            error = "Simulated provider error (judge_error_rate fault)"
        else:
            judgement = await self._judge.judge(task.judge_request)
            error = judgement.error
        completed_at = _utcnow()
        elapsed_ms = max(0, int((completed_at - requested_at).total_seconds() * 1000))
        provider = _provider_type(judgement.provider if judgement else "mock")
        metadata.setdefault("resolved_provider", provider.value)
        if judgement is None or error is not None or judgement.winner is None:
            result = LLMComparisonResultV1(
                request_id=str(uuid.uuid4()),
                correlation_id=task.correlation_id,
                error_detail=ErrorDetail(
                    error_code="EXTERNAL_SERVICE_ERROR",
                    message=error or "the judge returned no winner",
                    correlation_id=str(task.correlation_id),
                    timestamp=completed_at,
                    service=LPS_SERVICE_NAME,
                    operation="generate_comparison",
                    details={"provider": provider.value},
                ),
                provider=provider,
                model="unknown",
                response_time_ms=elapsed_ms,
                token_usage=TokenUsage(),
                cost_estimate=0.0,
                requested_at=requested_at,
                completed_at=completed_at,
                request_metadata=metadata,
            )
        else:
            result = _success_result(task, judgement, metadata, requested_at, completed_at)
        return EventEnvelope(
            event_type=CALLBACK_EVENT_TYPE,
            source_service=LPS_SERVICE_NAME,
            correlation_id=task.correlation_id,
            data=result,
        )

    async def _publish(self, task: ProviderTask, envelope: EventEnvelope) -> None:
        faults = task.faults
        rng = random.Random(f"{faults.seed}:publish:{task.fault_key}")
        if faults.drop_callback_rate and rng.random() < faults.drop_callback_rate:
            _log.info("fault: dropping callback %s", task.correlation_id)
            return
        value = envelope.to_bytes()
        if faults.malformed_callback_rate and rng.random() < faults.malformed_callback_rate:
            _log.info("fault: malformed callback instead of %s", task.correlation_id)
            value = b'{"event_type": "LLMComparisonResultV1", "data": ' + value[:40]
        copies = (
            2
            if faults.duplicate_callback_rate and rng.random() < (faults.duplicate_callback_rate)
            else 1
        )
        for _ in range(copies):
            await self._producer.send_and_wait(CALLBACK_TOPIC, value=value)


def _provider_type(name: str) -> LLMProviderType:
    try:
        return LLMProviderType(name)
    except ValueError:
        return LLMProviderType.MOCK


def _success_result(
    task: ProviderTask,
    judgement: Judgement,
    metadata: dict[str, Any],
    requested_at: datetime,
    completed_at: datetime,
) -> LLMComparisonResultV1:
    prompt_tokens = max(0, judgement.prompt_tokens)
    completion_tokens = max(0, judgement.completion_tokens)
    usage = TokenUsage(
        prompt_tokens=prompt_tokens,
        completion_tokens=completion_tokens,
        total_tokens=prompt_tokens + completion_tokens,
    )
    metadata["usage"] = usage.model_dump()
    confidence = min(5.0, max(1.0, judgement.confidence or 1.0))
    elapsed_ms = int((completed_at - requested_at).total_seconds() * 1000)
    return LLMComparisonResultV1(
        request_id=str(uuid.uuid4()),
        correlation_id=task.correlation_id,
        winner=EssayComparisonWinner(judgement.winner or "Essay A"),
        justification=(judgement.justification or "")[:500],
        confidence=confidence,
        provider=_provider_type(judgement.provider),
        model=judgement.model,
        response_time_ms=max(0, judgement.response_time_ms, elapsed_ms),
        token_usage=usage,
        cost_estimate=max(0.0, judgement.cost_usd),
        requested_at=requested_at,
        completed_at=completed_at,
        request_metadata=metadata,
    )


# --------------------------------------------------------------------------- the worker


@dataclass
class _BatchRuntime:
    """In-memory only: the faults read at intake and the wave timer."""

    faults: FaultConfig
    timer: asyncio.TimerHandle | None = None
    timeout_tasks: set[asyncio.Task[None]] = field(default_factory=set)


class CJWorker:
    """One reference CJ worker; use ``async with CJWorker(settings) as worker`` or
    :meth:`start` / :meth:`run` / :meth:`stop`."""

    def __init__(self, settings: WorkerSettings, *, judge: Judge | None = None) -> None:
        self.settings = settings
        self._judge = judge or make_judge(settings.judge_name, settings.judge_seed)
        self._pool: Pool | None = None
        self._producer: AIOKafkaProducer | None = None
        self._consumer: AIOKafkaConsumer | None = None
        self._http: httpx.AsyncClient | None = None
        self._provider: ProviderEmulator | None = None
        self._lock = asyncio.Lock()
        self._ready = asyncio.Event()
        self._stopping = asyncio.Event()
        self._batches: dict[int, _BatchRuntime] = {}
        self._run_task: asyncio.Task[None] | None = None

    # ----- lifecycle

    @property
    def ready(self) -> bool:
        """True once the pool is open and the Kafka positions are set."""
        return self._ready.is_set()

    async def wait_ready(self, timeout_s: float) -> None:
        await asyncio.wait_for(self._ready.wait(), timeout_s)

    @property
    def pool(self) -> Pool:
        if self._pool is None:
            raise RuntimeError("the worker is not started")
        return self._pool

    async def start(self) -> None:
        """Open the pool, producer and consumer; return once positions are at the topic ends."""
        s = self.settings
        self._pool = await create_pool(s.dsn, min_size=1, max_size=8)
        await apply_schema(self._pool)
        self._http = httpx.AsyncClient(timeout=s.http_timeout_s)
        self._producer = AIOKafkaProducer(
            bootstrap_servers=s.bootstrap_servers,
            client_id=s.client_id,
            acks="all",
            enable_idempotence=s.idempotent_producer,
            linger_ms=0,
        )
        await self._producer.start()
        self._provider = ProviderEmulator(self._judge, self._producer)
        await self._ensure_topics()
        self._consumer = AIOKafkaConsumer(
            bootstrap_servers=s.bootstrap_servers,
            client_id=s.client_id,
            group_id=None,
            enable_auto_commit=False,
            fetch_max_wait_ms=s.fetch_max_wait_ms,
        )
        await self._consumer.start()
        partitions = await self._partitions((REQUEST_TOPIC, CALLBACK_TOPIC))
        self._consumer.assign(partitions)
        await self._consumer.seek_to_end(*partitions)
        for partition in partitions:  # resolves the lazy seek: positions are now fixed
            await self._consumer.position(partition)
        await relay_pending(self._pool, self._send)
        self._ready.set()
        _log.info("reference CJ worker ready on %d partitions", len(partitions))

    async def run(self) -> None:
        """Consume until :meth:`stop`; each message is handled to the end before the next."""
        if self._consumer is None:
            raise RuntimeError("call start() before run()")
        consumer = self._consumer
        while not self._stopping.is_set():
            batches = await consumer.getmany(timeout_ms=100)
            for records in batches.values():
                for record in records:
                    async with self._lock:
                        await self._dispatch(record.topic, record.value)

    async def stop(self) -> None:
        """Stop consuming, cancel timers and in-flight comparisons, close connections."""
        self._stopping.set()
        if self._run_task is not None:
            self._run_task.cancel()
            await asyncio.gather(self._run_task, return_exceptions=True)
        for runtime in self._batches.values():
            if runtime.timer is not None:
                runtime.timer.cancel()
            for task in runtime.timeout_tasks:
                task.cancel()
        if self._provider is not None:
            await self._provider.close()
        if self._consumer is not None:
            await self._consumer.stop()
        if self._producer is not None:
            await self._producer.stop()
        if self._http is not None:
            await self._http.aclose()
        if self._pool is not None:
            await self._pool.close()
        self._ready.clear()

    async def __aenter__(self) -> CJWorker:
        await self.start()
        self._run_task = asyncio.create_task(self.run())
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def _ensure_topics(self) -> None:
        """Create the contract topics that do not exist yet (1 partition each)."""
        admin = AIOKafkaAdminClient(
            bootstrap_servers=self.settings.bootstrap_servers, client_id=self.settings.client_id
        )
        await admin.start()
        try:
            existing = set(await admin.list_topics())
            missing = [t for t in CONTRACT_TOPICS if t not in existing]
            if missing:
                await admin.create_topics(
                    [NewTopic(name=t, num_partitions=1, replication_factor=1) for t in missing]
                )
        finally:
            await admin.close()

    async def _partitions(self, topics: Sequence[str]) -> list[TopicPartition]:
        assert self._consumer is not None
        result: list[TopicPartition] = []
        for topic in topics:
            deadline = asyncio.get_running_loop().time() + 10.0
            parts = self._consumer.partitions_for_topic(topic)
            while not parts:
                if asyncio.get_running_loop().time() > deadline:
                    raise ConfigurationError(
                        f"Kafka has no partitions for topic {topic!r} after 10 s",
                        next_step="create the contract topics before starting the worker",
                    )
                await self._consumer._client.force_metadata_update()
                parts = self._consumer.partitions_for_topic(topic)
            result.extend(TopicPartition(topic, p) for p in sorted(parts))
        return result

    async def _send(self, topic: str, key: bytes, value: bytes) -> None:
        assert self._producer is not None
        await self._producer.send_and_wait(topic, value=value, key=key or None)

    async def _dispatch(self, topic: str, value: bytes | None) -> None:
        try:
            if topic == REQUEST_TOPIC:
                await self._handle_request(value or b"")
            elif topic == CALLBACK_TOPIC:
                await self._handle_callback(value or b"")
        except Exception:  # one bad message must not stop the worker
            _log.exception("unhandled error while handling a message on %s", topic)

    # ----- intake (§E.2–E.5)

    async def _handle_request(self, raw: bytes) -> None:
        try:
            envelope = EventEnvelope.from_bytes(raw)
            request = envelope.data_as(ELS_CJAssessmentRequestV1)
        except (ValidationError, ValueError) as exc:
            await self._reject_unparseable(raw, exc)
            return
        if not request.entity_id:
            _log.error("request %s has no entity_id (BOS batch id); skipped", envelope.event_id)
            return
        try:
            await self._intake(envelope, request)
        except IntakeFailure as failure:
            _log.warning("request for batch %s rejected: %s", request.entity_id, failure.message)
            await self._publish_intake_failure(
                envelope.correlation_id,
                request.entity_id,
                request.entity_type,
                request.parent_id,
                failure,
            )

    async def _reject_unparseable(self, raw: bytes, exc: Exception) -> None:
        try:
            loaded = json.loads(raw)
        except ValueError:
            loaded = None
        data = loaded.get("data") if isinstance(loaded, dict) else None
        entity_id = data.get("entity_id") if isinstance(data, dict) else None
        if not entity_id or not isinstance(data, dict) or not isinstance(loaded, dict):
            _log.error("unparseable request without entity_id skipped: %s", str(exc)[:300])
            return
        correlation = loaded.get("correlation_id")
        try:
            correlation_id = uuid.UUID(str(correlation))
        except ValueError:
            correlation_id = uuid.uuid4()
        failure = IntakeFailure(
            "VALIDATION_ERROR",
            f"The request envelope for batch {entity_id} does not validate as "
            f"ELS_CJAssessmentRequestV1: {str(exc)[:800]}",
        )
        await self._publish_intake_failure(
            correlation_id, str(entity_id), data.get("entity_type"), data.get("parent_id"), failure
        )

    async def _intake(self, envelope: EventEnvelope, request: ELS_CJAssessmentRequestV1) -> None:
        pool = self.pool
        faults = await read_faults(pool, "cj-worker")
        if faults.force_failure:
            raise IntakeFailure(
                "PROCESSING_ERROR",
                "Forced failure: the cj-worker fault config has force_failure=true",
                details={"fault": "force_failure"},
            )
        if not request.user_id_is_usable:
            raise IntakeFailure(
                "VALIDATION_ERROR",
                "user_id is empty; CJ cannot publish a completion for a batch without a user_id",
                details={"field": "user_id"},
            )
        instruction = None
        if request.assignment_id:
            instruction = await pool.fetchrow(
                "SELECT * FROM assessment_instructions WHERE assignment_id = $1",
                request.assignment_id,
            )
            if instruction is None:
                raise IntakeFailure(
                    "RESOURCE_NOT_FOUND",
                    f"No assessment_instructions row for assignment_id "
                    f"'{request.assignment_id}'; create the assessment instructions before "
                    "publishing an assignment-scoped request",
                    details={"assignment_id": request.assignment_id},
                )
        context = await self._resolve_prompts(request, instruction)
        overrides = request.llm_config_overrides
        await self._create_batch(envelope, request, instruction, context, faults, overrides)

    async def _resolve_prompts(
        self, request: ELS_CJAssessmentRequestV1, instruction: asyncpg.Record | None
    ) -> dict[str, Any]:
        overrides = request.llm_config_overrides
        rubric_override = overrides.judge_rubric_override if overrides else None
        if instruction is not None:
            prompt_id = instruction["student_prompt_storage_id"]
            rubric_id = instruction["judge_rubric_storage_id"]
            if rubric_override and instruction["context_origin"] == "canonical_national":
                raise IntakeFailure(
                    "VALIDATION_ERROR",
                    "judge_rubric_override is not allowed for canonical_national assignment "
                    f"'{request.assignment_id}'",
                )
            instructions_text = str(instruction["instructions_text"])
            grade_scale = str(instruction["grade_scale"])
        else:
            ref = request.student_prompt_ref
            prompt_id = ref.storage_id_for(STUDENT_PROMPT_CONTENT_TYPE) if ref else None
            rubric_id = None
            instructions_text = ""
            grade_scale = DEFAULT_GRADE_SCALE
        prompt_text = await self._fetch_required(prompt_id, "student prompt")
        rubric_text = await self._fetch_required(rubric_id, "judge rubric")
        if rubric_override:
            rubric_text = rubric_override
        return {
            "student_prompt_storage_id": prompt_id,
            "student_prompt_text": prompt_text,
            "judge_rubric_storage_id": rubric_id,
            "judge_rubric_text": rubric_text,
            "instructions_text": instructions_text,
            "grade_scale": grade_scale,
        }

    async def _fetch_required(self, storage_id: str | None, what: str) -> str:
        if not storage_id:
            return ""
        text = await self._fetch_text(storage_id)
        if text is None:
            raise IntakeFailure(
                "CONTENT_SERVICE_ERROR",
                f"The {what} (storage id {storage_id}) could not be fetched from the Content "
                f"Service at {self.settings.content_url}",
                details={"storage_id": storage_id},
            )
        return text

    async def _fetch_text(self, storage_id: str) -> str | None:
        assert self._http is not None
        url = f"{self.settings.content_url.rstrip('/')}/{storage_id}"
        try:
            response = await self._http.get(url)
        except httpx.HTTPError as exc:
            _log.warning("content fetch %s failed: %s", url, exc)
            return None
        if response.status_code != 200:
            _log.warning("content fetch %s answered %s", url, response.status_code)
            return None
        return response.content.decode("utf-8", errors="replace")

    async def _create_batch(
        self,
        envelope: EventEnvelope,
        request: ELS_CJAssessmentRequestV1,
        instruction: asyncpg.Record | None,
        context: dict[str, Any],
        faults: FaultConfig,
        overrides: Any,
    ) -> None:
        pool = self.pool
        bos_batch_id = str(request.entity_id)
        envelope_metadata = envelope.metadata or {}
        override = _positive_int(envelope_metadata.get("max_comparisons"))
        original_request = {
            "assignment_id": request.assignment_id,
            "language": request.language,
            "course_code": str(request.course_code),
            "cj_source": "els",
            "cj_request_type": "cj_comparison",
            "student_prompt_text": context["student_prompt_text"],
            "student_prompt_storage_id": context["student_prompt_storage_id"],
            "judge_rubric_text": context["judge_rubric_text"],
            "judge_rubric_storage_id": context["judge_rubric_storage_id"],
            "llm_config_overrides": overrides.model_dump(mode="json") if overrides else None,
            "batch_config_overrides": envelope_metadata.get("batch_config_overrides"),
            "max_comparisons_override": override,
            "user_id": request.user_id,
            "org_id": request.org_id,
        }
        upload_metadata = {
            "student_prompt_storage_id": context["student_prompt_storage_id"],
            "student_prompt_text": context["student_prompt_text"],
            "judge_rubric_storage_id": context["judge_rubric_storage_id"],
            "judge_rubric_text": context["judge_rubric_text"],
            "instructions_text": context["instructions_text"],
            "grade_scale": context["grade_scale"],
            "original_request": original_request,
        }
        async with pool.acquire() as conn, conn.transaction():
            cj_batch_id = await conn.fetchval(
                "INSERT INTO cj_batch_uploads (bos_batch_id, event_correlation_id, language,"
                " course_code, expected_essay_count, status, processing_metadata, assignment_id,"
                " user_id, org_id) VALUES ($1, $2, $3, $4, $5, 'PENDING', $6::jsonb, $7, $8, $9)"
                " RETURNING id",
                bos_batch_id,
                str(envelope.correlation_id),
                request.language,
                str(request.course_code),
                len(request.essays_for_cj),
                json.dumps(upload_metadata),
                request.assignment_id,
                request.user_id,
                request.org_id,
            )
            await conn.execute(
                "INSERT INTO cj_batch_states (batch_id, state, processing_metadata)"
                " VALUES ($1, 'INITIALIZING', $2::jsonb)",
                cj_batch_id,
                json.dumps({"original_request": original_request}),
            )
        self._batches[cj_batch_id] = _BatchRuntime(faults=faults)
        await self._set_status(cj_batch_id, "FETCHING_CONTENT")

        students = await self._fetch_students(request)
        anchors: list[tuple[str, str, str, dict[str, Any]]] = []
        if instruction is not None:
            anchors = await self._fetch_anchors(str(request.assignment_id), context["grade_scale"])
        rows = students + anchors
        await pool.executemany(
            "INSERT INTO cj_processed_essays (els_essay_id, cj_batch_id, text_storage_id,"
            " assessment_input_text, is_anchor, processing_metadata)"
            " VALUES ($1, $2, $3, $4, $5, $6::jsonb)"
            " ON CONFLICT (els_essay_id) DO UPDATE SET cj_batch_id = EXCLUDED.cj_batch_id,"
            " text_storage_id = EXCLUDED.text_storage_id,"
            " assessment_input_text = EXCLUDED.assessment_input_text,"
            " is_anchor = EXCLUDED.is_anchor, processing_metadata = EXCLUDED.processing_metadata,"
            " current_bt_score = NULL, current_bt_se = NULL, comparison_count = 0",
            [
                (essay_id, cj_batch_id, storage_id, text, bool(meta["is_anchor"]), json.dumps(meta))
                for essay_id, storage_id, text, meta in rows
            ],
        )
        await pool.execute(
            "UPDATE cj_batch_uploads SET expected_essay_count = $2, updated_at = now()"
            " WHERE id = $1",
            cj_batch_id,
            len(rows),
        )
        if len(students) < 2:
            await self._finalize_single_essay(cj_batch_id)
            return

        cap = self.settings.max_pairwise_comparisons
        budget = min(cap, override) if override else cap
        budget_meta = {
            "comparison_budget": {
                "max_pairs_requested": budget,
                "source": "runner_override" if override else "service_default",
            },
            "max_possible_pairs": distinct_pairs(len(rows)),
            "llm_batching_mode": "per_request",
            "llm_overrides": original_request["llm_config_overrides"],
            "config_overrides": original_request["batch_config_overrides"],
        }
        await pool.execute(
            "UPDATE cj_batch_states SET total_budget = $2, state = 'GENERATING_PAIRS',"
            " processing_metadata = processing_metadata || $3::jsonb, last_activity_at = now()"
            " WHERE batch_id = $1",
            cj_batch_id,
            budget,
            json.dumps(budget_meta),
        )
        plan = await self._plan_next_wave(cj_batch_id, wave=1)
        if not plan:
            await self._finalize(cj_batch_id)
            return
        await self._submit_wave(cj_batch_id, plan, wave=1)

    async def _fetch_students(
        self, request: ELS_CJAssessmentRequestV1
    ) -> list[tuple[str, str, str, dict[str, Any]]]:
        refs = request.essays_for_cj
        texts = await asyncio.gather(*(self._fetch_text(ref.text_storage_id) for ref in refs))
        rows = []
        for ref, text in zip(refs, texts, strict=True):
            if text is None:
                _log.warning("essay %s skipped: its text could not be fetched", ref.essay_id)
                continue
            rows.append((ref.essay_id, ref.text_storage_id, text, {"is_anchor": False}))
        return rows

    async def _fetch_anchors(
        self, assignment_id: str, grade_scale: str
    ) -> list[tuple[str, str, str, dict[str, Any]]]:
        refs = await self.pool.fetch(
            "SELECT id, anchor_label, grade, text_storage_id FROM anchor_essay_references"
            " WHERE assignment_id = $1 AND grade_scale = $2 ORDER BY id",
            assignment_id,
            grade_scale,
        )
        texts = await asyncio.gather(*(self._fetch_text(ref["text_storage_id"]) for ref in refs))
        rows = []
        for ref, text in zip(refs, texts, strict=True):
            if text is None:
                _log.warning("anchor %s skipped: its text could not be fetched", ref["id"])
                continue
            essay_id = f"{ANCHOR_PREFIX}{ref['id']}_{uuid.uuid4().hex[:8]}"
            meta = {
                "is_anchor": True,
                "known_grade": ref["grade"],
                "anchor_ref_id": ref["id"],
                "text_storage_id": ref["text_storage_id"],
                "anchor_label": ref["anchor_label"],
            }
            rows.append((essay_id, ref["text_storage_id"], text, meta))
        return rows

    # ----- waves (§E.6–E.7)

    async def _essays(self, cj_batch_id: int) -> list[EssayRow]:
        rows = await self.pool.fetch(
            "SELECT els_essay_id, assessment_input_text, text_storage_id, is_anchor,"
            " processing_metadata, current_bt_score, current_bt_se, comparison_count"
            " FROM cj_processed_essays WHERE cj_batch_id = $1 ORDER BY els_essay_id",
            cj_batch_id,
        )
        return [
            EssayRow(
                essay_id=r["els_essay_id"],
                text=r["assessment_input_text"],
                text_storage_id=r["text_storage_id"],
                is_anchor=r["is_anchor"],
                metadata=_json(r["processing_metadata"]),
                bt_score=r["current_bt_score"],
                bt_se=r["current_bt_se"],
                comparison_count=r["comparison_count"],
            )
            for r in rows
        ]

    async def _plan_next_wave(self, cj_batch_id: int, *, wave: int) -> list[PlannedPair]:
        state = await self.pool.fetchrow(
            "SELECT total_budget, submitted_comparisons FROM cj_batch_states WHERE batch_id = $1",
            cj_batch_id,
        )
        if state is None:
            return []
        essays = await self._essays(cj_batch_id)
        history = await self.pool.fetch(
            "SELECT essay_a_els_id, essay_b_els_id FROM cj_comparison_pairs"
            " WHERE cj_batch_id = $1 ORDER BY id",
            cj_batch_id,
        )
        return plan_wave(
            [e.essay_id for e in essays],
            [(h["essay_a_els_id"], h["essay_b_els_id"]) for h in history],
            budget_remaining=int(state["total_budget"] or 0) - int(state["submitted_comparisons"]),
            scores={e.essay_id: e.bt_score for e in essays if e.bt_score is not None},
            seed=self.settings.pair_generation_seed,
            wave=wave,
        )

    async def _submit_wave(self, cj_batch_id: int, plan: list[PlannedPair], *, wave: int) -> None:
        pool = self.pool
        upload = await pool.fetchrow(
            "SELECT bos_batch_id, processing_metadata FROM cj_batch_uploads WHERE id = $1",
            cj_batch_id,
        )
        if upload is None:
            raise RuntimeError(f"cj batch {cj_batch_id} vanished while submitting a wave")
        meta = _json(upload["processing_metadata"])
        original = meta.get("original_request") or {}
        overrides = original.get("llm_config_overrides") or {}
        texts = {e.essay_id: e.text for e in await self._essays(cj_batch_id)}
        request_type = "cj_comparison" if wave == 1 else "cj_retry"
        now = _utcnow()
        tasks: list[ProviderTask] = []
        rows = []
        for pair in plan:
            correlation_id = uuid.uuid4()
            prompt = build_prompt(
                meta.get("instructions_text", ""),
                meta.get("student_prompt_text", ""),
                meta.get("judge_rubric_text", ""),
                texts[pair.essay_a],
                texts[pair.essay_b],
            )
            request_metadata = {
                "essay_a_id": pair.essay_a,
                "essay_b_id": pair.essay_b,
                "bos_batch_id": upload["bos_batch_id"],
                "cj_batch_id": str(cj_batch_id),
                "cj_source": "els",
                "cj_request_type": request_type,
                "comparison_iteration": wave,
            }
            rows.append(
                (
                    cj_batch_id,
                    pair.essay_a,
                    pair.essay_b,
                    prompt,
                    correlation_id,
                    now,
                    pair.mode,
                    json.dumps({"comparison_iteration": wave, "cj_request_type": request_type}),
                )
            )
            tasks.append(
                ProviderTask(
                    correlation_id=correlation_id,
                    prompt_text=prompt,
                    judge_request=JudgeRequest(
                        essay_a_text=texts[pair.essay_a],
                        essay_b_text=texts[pair.essay_b],
                        prompt_text=meta.get("student_prompt_text", ""),
                        system_prompt=overrides.get("system_prompt_override"),
                        rubric=meta.get("judge_rubric_text") or None,
                        model=overrides.get("model_override"),
                        temperature=overrides.get("temperature_override")
                        or DEFAULT_LLM_TEMPERATURE,
                        max_tokens=overrides.get("max_tokens_override"),
                        correlation_id=str(correlation_id),
                    ),
                    request_metadata=request_metadata,
                    faults=self._runtime(cj_batch_id).faults,
                )
            )
        async with pool.acquire() as conn, conn.transaction():
            await conn.executemany(
                "INSERT INTO cj_comparison_pairs (cj_batch_id, essay_a_els_id, essay_b_els_id,"
                " prompt_text, request_correlation_id, submitted_at, pair_generation_mode,"
                " processing_metadata) VALUES ($1, $2, $3, $4, $5, $6, $7, $8::jsonb)",
                rows,
            )
            await conn.execute(
                "UPDATE cj_batch_states SET state = 'WAITING_CALLBACKS',"
                " submitted_comparisons = submitted_comparisons + $2,"
                " total_comparisons = total_comparisons + $2, current_iteration = $3,"
                " last_activity_at = now() WHERE batch_id = $1",
                cj_batch_id,
                len(plan),
                wave,
            )
            await conn.execute(
                "UPDATE cj_batch_uploads SET status = 'PERFORMING_COMPARISONS', updated_at = now()"
                " WHERE id = $1",
                cj_batch_id,
            )
        self._arm_timer(cj_batch_id)
        assert self._provider is not None
        for task in tasks:
            self._provider.submit(task)

    def _runtime(self, cj_batch_id: int) -> _BatchRuntime:
        runtime = self._batches.get(cj_batch_id)
        if runtime is None:  # e.g. after a restart: faults default to none
            runtime = self._batches[cj_batch_id] = _BatchRuntime(faults=FaultConfig())
        return runtime

    # ----- wave timeout

    def _arm_timer(self, cj_batch_id: int) -> None:
        runtime = self._runtime(cj_batch_id)
        if runtime.timer is not None:
            runtime.timer.cancel()
        loop = asyncio.get_running_loop()
        runtime.timer = loop.call_later(
            self.settings.callback_timeout_s, self._spawn_timeout, cj_batch_id
        )

    def _disarm_timer(self, cj_batch_id: int) -> None:
        runtime = self._batches.get(cj_batch_id)
        if runtime is not None and runtime.timer is not None:
            runtime.timer.cancel()
            runtime.timer = None

    def _spawn_timeout(self, cj_batch_id: int) -> None:
        runtime = self._runtime(cj_batch_id)
        runtime.timer = None
        task = asyncio.create_task(self._on_wave_timeout(cj_batch_id))
        runtime.timeout_tasks.add(task)
        task.add_done_callback(runtime.timeout_tasks.discard)

    async def _on_wave_timeout(self, cj_batch_id: int) -> None:
        async with self._lock:
            try:
                missing = await self.pool.fetchval(
                    "WITH timed_out AS (UPDATE cj_comparison_pairs SET winner = 'error',"
                    " error_code = $2, error_service = $3, error_timestamp = now(),"
                    " completed_at = now(), error_details = $4::jsonb"
                    " WHERE cj_batch_id = $1 AND winner IS NULL RETURNING 1)"
                    " SELECT count(*) FROM timed_out",
                    cj_batch_id,
                    CALLBACK_TIMEOUT_CODE,
                    SERVICE_NAME,
                    json.dumps(
                        {
                            "reason": "no callback within the wave timeout",
                            "timeout_s": self.settings.callback_timeout_s,
                        }
                    ),
                )
                if not missing:
                    return
                _log.warning(
                    "batch %s: %s callbacks missing after %.1f s; counted as failed",
                    cj_batch_id,
                    missing,
                    self.settings.callback_timeout_s,
                )
                await self.pool.execute(
                    "UPDATE cj_batch_states SET failed_comparisons = failed_comparisons + $2,"
                    " last_activity_at = now() WHERE batch_id = $1",
                    cj_batch_id,
                    int(missing),
                )
                await self._maybe_continue(cj_batch_id)
            except Exception:
                _log.exception("wave timeout handling failed for batch %s", cj_batch_id)

    # ----- callbacks (§E.8)

    async def _handle_callback(self, raw: bytes) -> None:
        try:
            envelope = EventEnvelope.from_bytes(raw)
            result = envelope.data_as(LLMComparisonResultV1)
        except (ValidationError, ValueError) as exc:
            _log.warning("unparseable callback skipped: %s", str(exc).splitlines()[0][:300])
            return
        pool = self.pool
        pair = await pool.fetchrow(
            "SELECT id, cj_batch_id FROM cj_comparison_pairs WHERE request_correlation_id = $1",
            result.correlation_id,
        )
        if pair is None:
            _log.warning(
                "CJ_CALLBACK_CORRELATION_FAILED: no comparison pair for correlation id %s",
                result.correlation_id,
            )
            return
        cj_batch_id = int(pair["cj_batch_id"])
        if result.is_success and result.winner is not None:
            updated = await pool.fetchval(
                "UPDATE cj_comparison_pairs SET winner = $2, confidence = $3, justification = $4,"
                " completed_at = $5, raw_llm_response = $6, processing_metadata ="
                " coalesce(processing_metadata, '{}'::jsonb) || $7::jsonb"
                " WHERE id = $1 AND winner IS NULL RETURNING id",
                pair["id"],
                "essay_a" if result.winner == EssayComparisonWinner.ESSAY_A else "essay_b",
                result.confidence,
                result.justification,
                result.completed_at,
                envelope.to_bytes().decode("utf-8"),
                json.dumps(
                    {
                        "provider": str(result.provider),
                        "model": result.model,
                        "response_time_ms": result.response_time_ms,
                        "token_usage": result.token_usage.model_dump(),
                        "cost_estimate": result.cost_estimate,
                    }
                ),
            )
            counter = "completed_comparisons"
        else:
            detail = result.error_detail
            updated = await pool.fetchval(
                "UPDATE cj_comparison_pairs SET winner = 'error', error_code = $2,"
                " error_correlation_id = $3, error_timestamp = $4, error_service = $5,"
                " error_details = $6::jsonb, completed_at = $7"
                " WHERE id = $1 AND winner IS NULL RETURNING id",
                pair["id"],
                detail.error_code if detail else "UNKNOWN_ERROR",
                result.correlation_id,
                (detail.timestamp if detail and detail.timestamp else result.completed_at),
                (detail.service if detail else None) or LPS_SERVICE_NAME,
                json.dumps(detail.model_dump(mode="json") if detail else {}),
                result.completed_at,
            )
            counter = "failed_comparisons"
        if updated is None:
            _log.info("duplicate callback %s ignored", result.correlation_id)
            return
        await pool.execute(
            f"UPDATE cj_batch_states SET {counter} = {counter} + 1, last_activity_at = now()"
            " WHERE batch_id = $1",
            cj_batch_id,
        )
        self._arm_timer(cj_batch_id)
        await self._maybe_continue(cj_batch_id)

    # ----- continuation (§E.9)

    async def _maybe_continue(self, cj_batch_id: int) -> None:
        state = await self.pool.fetchrow(
            "SELECT state, total_budget, submitted_comparisons, completed_comparisons,"
            " failed_comparisons, current_iteration, processing_metadata"
            " FROM cj_batch_states WHERE batch_id = $1",
            cj_batch_id,
        )
        if state is None or state["state"] != "WAITING_CALLBACKS":
            return
        submitted = int(state["submitted_comparisons"])
        completed = int(state["completed_comparisons"])
        failed = int(state["failed_comparisons"])
        if submitted - (completed + failed) > 0:
            return
        self._disarm_timer(cj_batch_id)
        previous = _json(state["processing_metadata"]).get("bt_scores") or None
        current = await self._rescore(cj_batch_id, int(state["current_iteration"]))
        change = max_score_change(previous, current) if previous and current else None
        wave = int(state["current_iteration"]) + 1
        plan = await self._plan_next_wave(cj_batch_id, wave=wave)
        outcome = WaveOutcome(
            submitted=submitted,
            completed=completed,
            failed=failed,
            total_budget=int(state["total_budget"] or 0),
            score_change=change,
            pairs_exhausted=not plan,
        )
        decision = decide(outcome)
        _log.info(
            "batch %s wave %s done: %s/%s ok, Δθ=%s → %s",
            cj_batch_id,
            wave - 1,
            completed,
            completed + failed,
            change,
            decision,
        )
        if decision is Decision.FINALIZE_FAILURE:
            await self._finalize_failure(cj_batch_id, outcome)
        elif decision is Decision.FINALIZE_SCORING:
            await self._finalize(cj_batch_id)
        else:
            await self._submit_wave(cj_batch_id, plan, wave=wave)

    async def _rescore(self, cj_batch_id: int, iteration: int) -> dict[str, float]:
        """Refit BT, store scores/SEs/counts on the essays and in state metadata."""
        essays = await self._essays(cj_batch_id)
        outcomes = await self._outcomes(cj_batch_id)
        fit = fit_scores([e.essay_id for e in essays], outcomes)
        counts: Counter[str] = Counter()
        for winner, loser in outcomes:
            counts[winner] += 1
            counts[loser] += 1
        scores: dict[str, float] = {}
        updates = []
        for essay in essays:
            compared = counts[essay.essay_id] > 0
            score = fit.theta[essay.essay_id] if fit is not None and compared else None
            se = fit.se[essay.essay_id] if fit is not None and compared else None
            if score is not None:
                scores[essay.essay_id] = score
            updates.append((essay.essay_id, score, se, counts[essay.essay_id]))
        await self.pool.executemany(
            "UPDATE cj_processed_essays SET current_bt_score = $2, current_bt_se = $3,"
            " comparison_count = $4 WHERE els_essay_id = $1",
            updates,
        )
        ses = [u[2] for u in updates if u[2] is not None]
        summary = {
            "bt_scores": scores,
            "last_scored_iteration": iteration,
            "successful_pairs_count": len(outcomes),
            "bt_se_summary": {
                "mean_se": sum(ses) / len(ses) if ses else None,
                "max_se": max(ses) if ses else None,
                "mean_comparisons_per_item": (2 * len(outcomes) / len(essays)) if essays else 0,
            },
            "bt_quality_flags": {
                "isolated_items": sum(1 for u in updates if u[3] == 0),
                "components": fit.n_components if fit is not None else 0,
            },
        }
        await self.pool.execute(
            "UPDATE cj_batch_states SET processing_metadata = processing_metadata || $2::jsonb"
            " WHERE batch_id = $1",
            cj_batch_id,
            json.dumps(summary),
        )
        return scores

    async def _outcomes(self, cj_batch_id: int) -> list[tuple[str, str]]:
        rows = await self.pool.fetch(
            "SELECT essay_a_els_id, essay_b_els_id, winner FROM cj_comparison_pairs"
            " WHERE cj_batch_id = $1 AND winner IN ('essay_a', 'essay_b') ORDER BY id",
            cj_batch_id,
        )
        return [
            (r["essay_a_els_id"], r["essay_b_els_id"])
            if r["winner"] == "essay_a"
            else (r["essay_b_els_id"], r["essay_a_els_id"])
            for r in rows
        ]

    # ----- finalisation (§E.12)

    async def _set_status(self, cj_batch_id: int, status: str) -> None:
        await self.pool.execute(
            "UPDATE cj_batch_uploads SET status = $2::cj_batch_status_enum, updated_at = now()"
            " WHERE id = $1",
            cj_batch_id,
            status,
        )

    async def _set_state(self, cj_batch_id: int, state: str) -> None:
        await self.pool.execute(
            "UPDATE cj_batch_states SET state = $2::cj_batch_state_enum, last_activity_at = now()"
            " WHERE batch_id = $1",
            cj_batch_id,
            state,
        )

    async def _finalize_single_essay(self, cj_batch_id: int) -> None:
        """Fewer than 2 students: no comparisons; a lone student gets BT 0.0 and rank 1."""
        essays = await self._essays(cj_batch_id)
        await self.pool.executemany(
            "UPDATE cj_processed_essays SET current_bt_score = 0.0 WHERE els_essay_id = $1",
            [(e.essay_id,) for e in essays if not e.is_anchor],
        )
        await self._finalize(cj_batch_id, single_essay=True)

    async def _finalize(self, cj_batch_id: int, *, single_essay: bool = False) -> None:
        pool = self.pool
        upload = await pool.fetchrow("SELECT * FROM cj_batch_uploads WHERE id = $1", cj_batch_id)
        if upload is None or str(upload["status"]).startswith(("COMPLETE", "ERROR")):
            return
        self._disarm_timer(cj_batch_id)
        await self._set_state(cj_batch_id, "SCORING")
        if not single_essay:
            iteration = await pool.fetchval(
                "SELECT current_iteration FROM cj_batch_states WHERE batch_id = $1", cj_batch_id
            )
            await self._rescore(cj_batch_id, int(iteration or 0))
        completed_at = _utcnow()
        status = "COMPLETE_INSUFFICIENT_ESSAYS" if single_essay else "COMPLETE_STABLE"
        await pool.execute(
            "UPDATE cj_batch_uploads SET status = $2::cj_batch_status_enum, completed_at = $3,"
            " updated_at = now() WHERE id = $1",
            cj_batch_id,
            status,
            completed_at,
        )
        essays = await self._essays(cj_batch_id)
        meta = _json(upload["processing_metadata"])
        scale = get_scale(str(meta.get("grade_scale") or DEFAULT_GRADE_SCALE))
        ranked = sorted(
            essays,
            key=lambda e: (e.bt_score is None, -(e.bt_score or 0.0), e.essay_id),
        )
        model_used, model_provider = await self._most_frequent_model(cj_batch_id)
        projection = project_grades(
            scale,
            [
                AnchorPoint(e.essay_id, str(e.metadata.get("known_grade", "")), e.bt_score)
                for e in essays
                if e.is_anchor and e.bt_score is not None
            ],
            [
                StudentPoint(e.essay_id, e.bt_score, e.bt_se if e.bt_se is not None else 2.0)
                for e in essays
                if not e.is_anchor and e.bt_score is not None
            ],
        )
        await self._store_projections(cj_batch_id, projection, essays, model_used, model_provider)
        successful_comparisons = len(await self._outcomes(cj_batch_id))
        await self._publish_completion(
            upload,
            essays,
            ranked,
            projection,
            completed_at=completed_at,
            single_essay=single_essay,
            model_used=model_used,
            model_provider=model_provider,
            comparison_count=successful_comparisons,
        )

    async def _most_frequent_model(self, cj_batch_id: int) -> tuple[str, str]:
        rows = await self.pool.fetch(
            "SELECT processing_metadata->>'model' AS model,"
            " processing_metadata->>'provider' AS provider FROM cj_comparison_pairs"
            " WHERE cj_batch_id = $1 AND winner IN ('essay_a', 'essay_b')",
            cj_batch_id,
        )
        models = Counter(r["model"] for r in rows if r["model"])
        providers = Counter(r["provider"] for r in rows if r["provider"])
        model = models.most_common(1)[0][0] if models else DEFAULT_LLM_MODEL
        provider = providers.most_common(1)[0][0] if providers else DEFAULT_LLM_PROVIDER
        return str(model), str(provider)

    async def _store_projections(
        self,
        cj_batch_id: int,
        projection: ProjectionSummary,
        essays: Sequence[EssayRow],
        model_used: str,
        model_provider: str,
    ) -> None:
        if not projection.projections_available:
            return
        se_by_id = {e.essay_id: e.bt_se for e in essays}
        calibration = projection.calibration_info()
        rows = []
        for essay_id, p in projection.projections.items():
            rows.append(
                (
                    essay_id,
                    cj_batch_id,
                    p.primary_grade,
                    projection.scale_id,
                    p.confidence_score,
                    p.confidence_label,
                    json.dumps(
                        {
                            "grade_probabilities": dict(p.probabilities),
                            "calibration_info": calibration,
                            "bt_se": se_by_id.get(essay_id),
                        }
                    ),
                    p.population_prior,
                    model_used,
                    model_provider,
                    normalized_score(p.primary_grade),
                )
            )
        await self.pool.executemany(
            "INSERT INTO grade_projections (els_essay_id, cj_batch_id, primary_grade, grade_scale,"
            " confidence_score, confidence_label, calculation_metadata, population_prior,"
            " model_used, model_provider, normalized_score)"
            " VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb, $8, $9, $10, $11)"
            " ON CONFLICT (els_essay_id, cj_batch_id) DO UPDATE SET"
            " primary_grade = EXCLUDED.primary_grade, confidence_score = EXCLUDED.confidence_score,"
            " confidence_label = EXCLUDED.confidence_label,"
            " calculation_metadata = EXCLUDED.calculation_metadata,"
            " normalized_score = EXCLUDED.normalized_score",
            rows,
        )

    async def _publish_completion(
        self,
        upload: asyncpg.Record,
        essays: Sequence[EssayRow],
        ranked: Sequence[EssayRow],
        projection: ProjectionSummary,
        *,
        completed_at: datetime,
        single_essay: bool,
        model_used: str,
        model_provider: str,
        comparison_count: int,
    ) -> None:
        cj_batch_id = int(upload["id"])
        bos_batch_id = str(upload["bos_batch_id"])
        correlation_id = uuid.UUID(str(upload["event_correlation_id"]))
        created_at: datetime = upload["created_at"]
        students = [e for e in essays if not e.is_anchor]
        scored = [e.essay_id for e in students if e.bt_score is not None]
        unscored = [e.essay_id for e in students if e.bt_score is None]
        duration = round((completed_at - created_at).total_seconds(), 2)
        completed = CJAssessmentCompletedV1(
            entity_id=bos_batch_id,
            entity_type="batch",
            parent_id=None,
            status=BatchStatus.COMPLETED_SUCCESSFULLY if scored else BatchStatus.FAILED_CRITICALLY,
            system_metadata=SystemProcessingMetadata(
                entity_id=bos_batch_id,
                entity_type="batch",
                processing_stage=ProcessingStage.COMPLETED,
                started_at=created_at,
                completed_at=completed_at,
                event="cj_assessment.completed",
                error_info={},
            ),
            cj_assessment_job_id=str(cj_batch_id),
            processing_summary=ProcessingSummary(
                total_essays=len(students),
                successful=len(scored),
                failed=len(unscored),
                successful_essay_ids=scored,
                failed_essay_ids=unscored,
                processing_time_seconds=duration,
                single_essay_batch=single_essay,
            ),
        )
        await self._emit(bos_batch_id, "cj_batch", COMPLETED_TOPIC, completed, correlation_id)

        try:
            results = _essay_results(ranked, projection)
        except ValidationError as exc:
            # HuleEdu's behaviour for grades outside the EssayResultV1 regex (national 9-step):
            # the thin event is out, the rich and resource events are not, the batch state
            # is left in SCORING.
            _log.error(
                "batch %s: rich result not published, a grade fails EssayResultV1: %s",
                cj_batch_id,
                str(exc)[:300],
            )
            return
        meta = _json(upload["processing_metadata"])
        anchors = [e for e in essays if e.is_anchor]
        assessment_metadata: dict[str, Any] = {
            "anchor_essays_used": len(anchors),
            "calibration_method": "anchor" if projection.projections_available else "default",
            "comparison_count": comparison_count,
            "processing_duration_seconds": duration,
            "llm_temperature": DEFAULT_LLM_TEMPERATURE,
            "assignment_id": upload["assignment_id"],
            "course_code": upload["course_code"],
            "grade_scale": meta.get("grade_scale"),
            "projections_available": projection.projections_available,
        }
        if anchors:
            distribution = dict.fromkeys("ABCDEFU", 0)
            for result in results:
                if result.is_anchor:
                    distribution[result.letter_grade[0]] += 1
            assessment_metadata["anchor_grade_distribution"] = distribution
        rich = AssessmentResultV1(
            entity_id=bos_batch_id,
            entity_type="batch",
            batch_id=bos_batch_id,
            cj_assessment_job_id=str(cj_batch_id),
            assignment_id=upload["assignment_id"],
            model_used=model_used,
            model_provider=model_provider,
            essay_results=results,
            assessment_metadata=assessment_metadata,
            assessed_at=completed_at,
        )
        await self._emit(str(cj_batch_id), "assessment_result", RESULT_TOPIC, rich, correlation_id)
        resource = ResourceConsumptionV1(
            entity_id=bos_batch_id,
            entity_type="batch",
            user_id=str(upload["user_id"]),
            org_id=upload["org_id"],
            quantity=len(students) * (len(students) - 1) // 2,
            processing_id=str(cj_batch_id),
        )
        await self._emit(bos_batch_id, "resource_consumption", RESOURCE_TOPIC, resource, None)
        await self._set_state(cj_batch_id, "COMPLETED")
        self._batches.pop(cj_batch_id, None)

    async def _emit(
        self,
        aggregate_id: str,
        aggregate_type: AggregateType,
        topic: str,
        data: Any,
        correlation_id: uuid.UUID | None,
    ) -> None:
        envelope = EventEnvelope(
            event_type=topic,
            source_service=SERVICE_NAME,
            correlation_id=correlation_id or uuid.uuid4(),
            data=data,
        )
        row_id = await write_outbox_row(
            self.pool,
            aggregate_id=aggregate_id,
            aggregate_type=aggregate_type,
            topic=topic,
            envelope=envelope,
        )
        await relay_rows(self.pool, self._send, [row_id])

    async def _finalize_failure(self, cj_batch_id: int, outcome: WaveOutcome) -> None:
        upload = await self.pool.fetchrow(
            "SELECT * FROM cj_batch_uploads WHERE id = $1", cj_batch_id
        )
        if upload is None:
            return
        await self._set_status(cj_batch_id, "ERROR_PROCESSING")
        await self.pool.execute(
            "UPDATE cj_batch_states SET state = 'FAILED', processing_metadata ="
            " processing_metadata || $2::jsonb WHERE batch_id = $1",
            cj_batch_id,
            json.dumps({"failed_reason": "low_success_rate"}),
        )
        bos_batch_id = str(upload["bos_batch_id"])
        failed = CJAssessmentFailedV1(
            entity_id=bos_batch_id,
            entity_type="batch",
            parent_id=None,
            system_metadata=SystemProcessingMetadata(
                entity_id=bos_batch_id,
                entity_type="batch",
                processing_stage=ProcessingStage.FAILED,
                started_at=upload["created_at"],
                completed_at=_utcnow(),
                event="cj_assessment.failed",
                error_info={"reason": "low_success_rate", "details": outcome.details()},
            ),
            cj_assessment_job_id=str(cj_batch_id),
        )
        correlation_id = uuid.UUID(str(upload["event_correlation_id"]))
        await self._emit(bos_batch_id, "cj_batch", FAILED_TOPIC, failed, correlation_id)
        self._batches.pop(cj_batch_id, None)

    async def _publish_intake_failure(
        self,
        correlation_id: uuid.UUID,
        entity_id: str,
        entity_type: str | None,
        parent_id: str | None,
        failure: IntakeFailure,
    ) -> None:
        now = _utcnow()
        failed = CJAssessmentFailedV1(
            entity_id=entity_id,
            entity_type=entity_type,
            parent_id=parent_id,
            system_metadata=SystemProcessingMetadata(
                entity_id=entity_id,
                entity_type=entity_type or "batch",
                parent_id=parent_id,
                processing_stage=ProcessingStage.FAILED,
                completed_at=now,
                event="cj_assessment.failed",
                error_info={
                    "error_code": failure.code,
                    "error_message": failure.message,
                    "correlation_id": str(correlation_id),
                    "timestamp": now.isoformat(),
                    "service": SERVICE_NAME,
                    "details": failure.details,
                },
            ),
            cj_assessment_job_id=INITIALIZATION_FAILED,
        )
        await self._emit(entity_id, "cj_batch", FAILED_TOPIC, failed, correlation_id)


def _positive_int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    try:
        number = int(value)
    except (TypeError, ValueError):
        return None
    return number if number > 0 else None


def _essay_results(
    ranked: Sequence[EssayRow], projection: ProjectionSummary
) -> list[EssayResultV1]:
    """EssayResultV1 for every ranked essay; raises ValidationError for off-regex grades."""
    results = []
    for rank, essay in enumerate(ranked, start=1):
        if essay.is_anchor:
            known = str(essay.metadata.get("known_grade", ""))
            letter = known if known in LETTER_GRADE_OK else NO_GRADE
            results.append(
                EssayResultV1(
                    essay_id=essay.essay_id,
                    normalized_score=normalized_score(letter),
                    letter_grade=letter,
                    confidence_score=0.0,
                    confidence_label="LOW",
                    bt_score=essay.bt_score or 0.0,
                    rank=rank,
                    is_anchor=True,
                    display_name=f"ANCHOR GRADE {letter}",
                )
            )
            continue
        projected = projection.projections.get(essay.essay_id)
        grade = projected.primary_grade if projected else NO_GRADE
        results.append(
            EssayResultV1(
                essay_id=essay.essay_id,
                normalized_score=normalized_score(grade),
                letter_grade=grade,
                confidence_score=projected.confidence_score if projected else 0.0,
                confidence_label=projected.confidence_label if projected else "LOW",
                bt_score=essay.bt_score or 0.0,
                rank=rank,
                is_anchor=False,
            )
        )
    return results
