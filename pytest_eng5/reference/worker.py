"""The reference CJ worker: HuleEdu's CJ Assessment Service Kafka flow plus the LLM Provider.

CJ side (contract §E): consume requests and callbacks; :mod:`.intake` creates the batch rows,
:mod:`.waves` plans and rescores comparison waves, :mod:`.finalisation` projects grades and
publishes the completed / result / resource / failed events (:mod:`.cj_events`) through the
outbox. This module holds the Kafka loops and the orchestration between those steps.

LPS side (§F.2): every planned pair goes to :class:`~.provider_emulator.ProviderEmulator`,
which judges it in-process and publishes an ``LLMComparisonResultV1`` on the real callback
topic (with callback faults). The CJ side learns the outcome only from that topic.

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
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final

import httpx
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from pydantic import ValidationError

from pytest_eng5.contracts.envelope import EventEnvelope
from pytest_eng5.contracts.events import ELS_CJAssessmentRequestV1, LLMComparisonResultV1
from pytest_eng5.contracts.topics import (
    CALLBACK_TOPIC,
    FAILED_TOPIC,
    REQUEST_TOPIC,
)
from pytest_eng5.core.kafka_metadata import topic_partitions
from pytest_eng5.core.names import DEFAULT_GRADE_SCALE
from pytest_eng5.errors import ConfigurationError
from pytest_eng5.reference.batch_runtime import BatchRuntimes
from pytest_eng5.reference.batch_store import (
    CALLBACK_TIMEOUT_CODE,
    EssayRow,
    find_pair,
    insert_wave,
    json_object,
    load_wave_state,
    record_and_count_callback,
    time_out_and_count,
)
from pytest_eng5.reference.cj_events import (
    INITIALIZATION_FAILED,
    LETTER_GRADE_OK,
    SERVICE_NAME,
    OutboxPublisher,
    intake_failed_event,
)
from pytest_eng5.reference.db import Pool, apply_schema, create_pool
from pytest_eng5.reference.finalisation import (
    DEFAULT_LLM_MODEL,
    DEFAULT_LLM_PROVIDER,
    BatchFinalizer,
)
from pytest_eng5.reference.intake import (
    ANCHOR_PREFIX,
    STUDENT_PROMPT_CONTENT_TYPE,
    BatchIntake,
    IntakeFailure,
    Rejection,
    reject_unparseable,
)
from pytest_eng5.reference.judge import Judge, make_judge
from pytest_eng5.reference.outbox import relay_pending
from pytest_eng5.reference.pairing import PlannedPair
from pytest_eng5.reference.provider_emulator import (
    LPS_SERVICE_NAME,
    ProviderEmulator,
    ProviderTask,
    sha256_hex,
)
from pytest_eng5.reference.scoring import Decision, WaveOutcome, decide, max_score_change
from pytest_eng5.reference.waves import (
    DEFAULT_LLM_TEMPERATURE,
    build_prompt,
    plan_next_wave,
    prepare_wave,
    rescore,
)

__all__ = [
    "ANCHOR_PREFIX",
    "CALLBACK_TIMEOUT_CODE",
    "DEFAULT_GRADE_SCALE",
    "DEFAULT_LLM_MODEL",
    "DEFAULT_LLM_PROVIDER",
    "DEFAULT_LLM_TEMPERATURE",
    "INITIALIZATION_FAILED",
    "LETTER_GRADE_OK",
    "LPS_SERVICE_NAME",
    "SERVICE_NAME",
    "STUDENT_PROMPT_CONTENT_TYPE",
    "CJWorker",
    "EssayRow",
    "IntakeFailure",
    "ProviderEmulator",
    "ProviderTask",
    "WorkerSettings",
    "build_prompt",
    "sha256_hex",
]

_log = logging.getLogger(__name__)

OUTBOX_RETRY_INTERVAL_S: Final = 2.0
"""How often outbox rows that could not be published (Kafka hiccup) are relayed again."""


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
        self._parts: _Parts | None = None
        self._lock = asyncio.Lock()
        self._ready = asyncio.Event()
        self._stopping = asyncio.Event()
        self._runtimes = BatchRuntimes(settings.callback_timeout_s, self._on_wave_timeout)
        self._run_task: asyncio.Task[None] | None = None

    # ----- lifecycle

    @property
    def ready(self) -> bool:
        """True once the pool is open and the Kafka positions are set."""
        return self._ready.is_set()

    async def wait_ready(self, timeout_s: float) -> None:
        """Wait until :attr:`ready`; raises TimeoutError after ``timeout_s``."""
        await asyncio.wait_for(self._ready.wait(), timeout_s)

    @property
    def pool(self) -> Pool:
        """The worker's connection pool (only while started)."""
        if self._pool is None:
            raise RuntimeError("the worker is not started")
        return self._pool

    @property
    def _started(self) -> _Parts:
        if self._parts is None:
            raise RuntimeError("the worker is not started")
        return self._parts

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
        publisher = OutboxPublisher(self._pool, self._send)
        self._parts = _Parts(
            provider=ProviderEmulator(self._judge, self._producer),
            intake=BatchIntake(
                self._pool,
                self._http,
                self._runtimes,
                content_url=s.content_url,
                max_pairwise_comparisons=s.max_pairwise_comparisons,
            ),
            finalizer=BatchFinalizer(self._pool, publisher, self._runtimes),
            publisher=publisher,
        )
        self._consumer = AIOKafkaConsumer(
            bootstrap_servers=s.bootstrap_servers,
            client_id=s.client_id,
            group_id=None,
            enable_auto_commit=False,
            fetch_max_wait_ms=s.fetch_max_wait_ms,
        )
        await self._consumer.start()
        # the stack creates the contract topics; the worker only waits for them
        partitions = await topic_partitions(
            self._consumer, (REQUEST_TOPIC, CALLBACK_TOPIC), within=10.0
        )
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
        loop = asyncio.get_running_loop()
        next_relay = loop.time() + OUTBOX_RETRY_INTERVAL_S
        while not self._stopping.is_set():
            batches = await consumer.getmany(timeout_ms=100)
            for records in batches.values():
                for record in records:
                    async with self._lock:
                        await self._dispatch(record.topic, record.value)
            if loop.time() >= next_relay:
                async with self._lock:
                    await self._relay_unpublished()
                next_relay = loop.time() + OUTBOX_RETRY_INTERVAL_S

    async def _relay_unpublished(self) -> None:
        """Publish outbox rows whose first relay failed (HuleEdu's relay worker polls too)."""
        try:
            published = await relay_pending(self.pool, self._send)
        except Exception:
            _log.exception("outbox relay failed")
            return
        if published:
            _log.info("outbox relay published %d earlier unpublished event(s)", published)

    async def stop(self) -> None:
        """Stop consuming, cancel timers and in-flight comparisons, close connections."""
        self._stopping.set()
        if self._run_task is not None:
            self._run_task.cancel()
            await asyncio.gather(self._run_task, return_exceptions=True)
        self._runtimes.cancel_all()
        if self._parts is not None:
            await self._parts.provider.close()
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

    # ----- requests (§E.2–E.5)

    async def _handle_request(self, raw: bytes) -> None:
        try:
            envelope = EventEnvelope.from_bytes(raw)
            request = envelope.data_as(ELS_CJAssessmentRequestV1)
        except (ValidationError, ValueError) as exc:
            rejection = reject_unparseable(raw, exc)
            if rejection is not None:
                await self._publish_rejection(rejection)
            return
        if not request.entity_id:
            _log.error("request %s has no entity_id (BOS batch id); skipped", envelope.event_id)
            return
        parts = self._started
        try:
            batch = await parts.intake.admit(envelope, request)
        except Exception as exc:
            # HuleEdu (§D.7, emitter 1): whatever blows up while the batch is being created
            # (unknown assignment, Content Service, a database error) is an
            # INITIALIZATION_FAILED event, never silence.
            if isinstance(exc, IntakeFailure):
                failure = exc
                _log.warning("request for batch %s rejected: %s", request.entity_id, exc.message)
            else:
                _log.exception("intake of batch %s failed", request.entity_id)
                failure = IntakeFailure(
                    "PROCESSING_ERROR",
                    f"Creating the CJ batch failed: {type(exc).__name__}: {str(exc)[:500]}",
                    details={"error_type": type(exc).__name__},
                )
            await self._publish_rejection(
                Rejection(
                    envelope.correlation_id,
                    request.entity_id,
                    request.entity_type,
                    request.parent_id,
                    failure,
                )
            )
            return
        try:
            if batch.student_count < 2:
                await parts.finalizer.finalize_single_essay(batch.cj_batch_id)
                return
            plan = await self._plan_next_wave(batch.cj_batch_id, wave=1)
            if not plan:
                await parts.finalizer.finalize(batch.cj_batch_id)
                return
            await self._submit_wave(batch.cj_batch_id, plan, wave=1)
        except Exception as exc:
            await self._abort_batch(batch.cj_batch_id, exc)

    async def _abort_batch(self, cj_batch_id: int, error: Exception) -> None:
        """Processing of an admitted batch raised: fail it loudly instead of letting it stall
        (its wave timer is gone or would only find nothing to time out)."""
        _log.error("batch %s failed while processing", cj_batch_id, exc_info=error)
        try:
            await self._started.finalizer.finalize_error(cj_batch_id, error)
        except Exception:
            _log.exception("could not publish the failure of batch %s", cj_batch_id)

    async def _publish_rejection(self, rejection: Rejection) -> None:
        failure = rejection.failure
        failed = intake_failed_event(
            rejection.correlation_id,
            rejection.entity_id,
            rejection.entity_type,
            rejection.parent_id,
            error_code=failure.code,
            error_message=failure.message,
            details=failure.details,
            failed_at=datetime.now(UTC),
        )
        await self._started.publisher.emit(
            rejection.entity_id, "cj_batch", FAILED_TOPIC, failed, rejection.correlation_id
        )

    # ----- waves (§E.6–E.7)

    async def _plan_next_wave(self, cj_batch_id: int, *, wave: int) -> list[PlannedPair]:
        seed = self.settings.pair_generation_seed
        return await plan_next_wave(self.pool, cj_batch_id, wave=wave, seed=seed)

    async def _submit_wave(self, cj_batch_id: int, plan: list[PlannedPair], *, wave: int) -> None:
        faults = self._runtimes.get(cj_batch_id).faults
        rows, tasks = await prepare_wave(self.pool, cj_batch_id, plan, wave=wave, faults=faults)
        await insert_wave(self.pool, cj_batch_id, rows, wave)
        self._runtimes.arm(cj_batch_id)
        provider = self._started.provider
        for task in tasks:
            provider.submit(task)

    async def _on_wave_timeout(self, cj_batch_id: int) -> None:
        timeout_s = self.settings.callback_timeout_s
        async with self._lock:
            if self._runtimes.is_armed(cj_batch_id):
                # A callback (or a new wave) re-armed the timer while this handler waited for
                # the lock: the wave is not idle, so nothing times out now.
                return
            try:
                missing = await time_out_and_count(
                    self.pool,
                    cj_batch_id,
                    error_code=CALLBACK_TIMEOUT_CODE,
                    service=SERVICE_NAME,
                    timeout_s=timeout_s,
                )
            except Exception:
                _log.exception("wave timeout handling failed for batch %s", cj_batch_id)
                self._runtimes.arm(cj_batch_id)  # nothing was written: try again later
                return
            if not missing:
                return
            _log.warning(
                "batch %s: %s callbacks missing after %.1f s; counted as failed",
                cj_batch_id,
                missing,
                timeout_s,
            )
            await self._maybe_continue(cj_batch_id)

    # ----- callbacks (§E.8)

    async def _handle_callback(self, raw: bytes) -> None:
        try:
            envelope = EventEnvelope.from_bytes(raw)
            result = envelope.data_as(LLMComparisonResultV1)
        except (ValidationError, ValueError) as exc:
            _log.warning("unparseable callback skipped: %s", str(exc).splitlines()[0][:300])
            return
        pair = await find_pair(self.pool, result.correlation_id)
        if pair is None:
            _log.warning(
                "CJ_CALLBACK_CORRELATION_FAILED: no comparison pair for correlation id %s",
                result.correlation_id,
            )
            return
        cj_batch_id = int(pair["cj_batch_id"])
        recorded = await record_and_count_callback(
            self.pool, pair["id"], cj_batch_id, envelope, result, LPS_SERVICE_NAME
        )
        if recorded is None:
            _log.info("callback %s ignored: its pair already has an outcome", result.correlation_id)
            return
        if recorded == "late_completed":
            # the wave already gave up on it and moved on: only the counters change
            _log.warning(
                "batch %s: late callback %s replaces its wave timeout (counted as completed)",
                cj_batch_id,
                result.correlation_id,
            )
            return
        self._runtimes.arm(cj_batch_id)
        await self._maybe_continue(cj_batch_id)

    # ----- continuation (§E.9)

    async def _maybe_continue(self, cj_batch_id: int) -> None:
        """Continue the batch if its wave is complete; a failure on the way fails the batch."""
        try:
            await self._continue(cj_batch_id)
        except Exception as exc:
            await self._abort_batch(cj_batch_id, exc)

    async def _continue(self, cj_batch_id: int) -> None:
        state = await load_wave_state(self.pool, cj_batch_id)
        if state is None or state["state"] != "WAITING_CALLBACKS":
            return
        submitted = int(state["submitted_comparisons"])
        completed = int(state["completed_comparisons"])
        failed = int(state["failed_comparisons"])
        if submitted - (completed + failed) > 0:
            return
        self._runtimes.disarm(cj_batch_id)
        previous = json_object(state["processing_metadata"]).get("bt_scores") or None
        current = await rescore(self.pool, cj_batch_id, int(state["current_iteration"]))
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
        finalizer = self._started.finalizer
        if decision is Decision.FINALIZE_FAILURE:
            await finalizer.finalize_failure(cj_batch_id, outcome)
        elif decision is Decision.FINALIZE_SCORING:
            await finalizer.finalize(cj_batch_id)
        else:
            await self._submit_wave(cj_batch_id, plan, wave=wave)


@dataclass(frozen=True)
class _Parts:
    """What :meth:`CJWorker.start` builds on top of the pool and producer."""

    provider: ProviderEmulator
    intake: BatchIntake
    finalizer: BatchFinalizer
    publisher: OutboxPublisher
