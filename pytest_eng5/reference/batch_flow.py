"""What the reference CJ worker does with a request, a callback or an idle wave (contract §E).

:mod:`.intake` creates the batch rows, :mod:`.waves` plans and rescores comparison waves,
:mod:`.finalisation` projects grades and publishes the completed / result / resource / failed
events (:mod:`.cj_events`) through the outbox; every planned pair goes to the
:class:`~.provider_emulator.ProviderEmulator` (the LLM Provider, §F.2), whose callback comes back
on the real callback topic. :class:`BatchFlow` orders those steps; each step runs under one lock,
so messages and wave timers never interleave.

Differences from HuleEdu, on purpose:

- A wave never waits forever: if no callback of a wave arrives for ``callback_timeout_s``
  (counted from the wave's submission or its latest callback), the missing pairs are recorded
  as errors (``CALLBACK_TIMEOUT``) and the wave is complete. Dropped and malformed callbacks
  therefore cost one timeout, not the batch. A success that arrives after that, while the batch
  runs, replaces its timeout (counted once, as completed).
- When the planner has no pair left to ask (coverage plus the allowed resampling passes are
  done) the batch finalises (see :mod:`.scoring`), so a budget above C(n,2) cannot stall it.
- ``assessment_metadata.comparison_count`` is the real number of successful comparisons.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime

import httpx
from aiokafka import AIOKafkaProducer
from pydantic import ValidationError

from pytest_eng5.contracts.envelope import EventEnvelope
from pytest_eng5.contracts.events import ELS_CJAssessmentRequestV1, LLMComparisonResultV1
from pytest_eng5.contracts.topics import CALLBACK_TOPIC, FAILED_TOPIC, REQUEST_TOPIC
from pytest_eng5.reference.batch_runtime import BatchRuntimes
from pytest_eng5.reference.batch_store import (
    CALLBACK_TIMEOUT_CODE,
    find_pair,
    insert_wave,
    json_object,
    load_wave_state,
    record_and_count_callback,
    time_out_and_count,
)
from pytest_eng5.reference.cj_content_client import ContentClient
from pytest_eng5.reference.cj_events import SERVICE_NAME, OutboxPublisher, intake_failed_event
from pytest_eng5.reference.db import Pool
from pytest_eng5.reference.finalisation import BatchFinalizer
from pytest_eng5.reference.intake import BatchIntake, IntakeFailure, Rejection, reject_unparseable
from pytest_eng5.reference.judge import Judge
from pytest_eng5.reference.outbox import relay_pending
from pytest_eng5.reference.pairing import PlannedPair
from pytest_eng5.reference.provider_emulator import LPS_SERVICE_NAME, ProviderEmulator
from pytest_eng5.reference.scoring import Decision, WaveOutcome, decide, max_score_change
from pytest_eng5.reference.waves import plan_next_wave, prepare_wave, rescore
from pytest_eng5.reference.worker_settings import WorkerSettings

_log = logging.getLogger(__name__)


class BatchFlow:
    """The CJ side of the worker over one pool and producer; :meth:`handle` takes a message."""

    def __init__(
        self,
        pool: Pool,
        producer: AIOKafkaProducer,
        http: httpx.AsyncClient,
        judge: Judge,
        settings: WorkerSettings,
    ) -> None:
        self.pool = pool
        self.settings = settings
        self.lock = asyncio.Lock()
        self.runtimes = BatchRuntimes(settings.callback_timeout_s, self.on_wave_timeout)
        self._producer = producer
        self.provider = ProviderEmulator(judge, producer)
        self.publisher = OutboxPublisher(pool, self.send)
        self.intake = BatchIntake(
            pool,
            ContentClient(settings.content_url, http),
            self.runtimes,
            max_pairwise_comparisons=settings.max_pairwise_comparisons,
        )
        self.finalizer = BatchFinalizer(pool, self.publisher, self.runtimes)

    async def send(self, topic: str, key: bytes, value: bytes) -> None:
        """Publish one record (the outbox relays through this)."""
        await self._producer.send_and_wait(topic, value=value, key=key or None)

    async def close(self) -> None:
        """Cancel wave timers and the comparisons still in flight."""
        self.runtimes.cancel_all()
        await self.provider.close()

    async def handle(self, topic: str, value: bytes | None) -> None:
        """Handle one request or callback to its end; one bad message never stops the worker."""
        async with self.lock:
            try:
                if topic == REQUEST_TOPIC:
                    await self.handle_request(value or b"")
                elif topic == CALLBACK_TOPIC:
                    await self.handle_callback(value or b"")
            except Exception:
                _log.exception("unhandled error while handling a message on %s", topic)

    async def relay_unpublished(self) -> None:
        """Publish outbox rows whose first relay failed (HuleEdu's relay worker polls too)."""
        async with self.lock:
            try:
                published = await relay_pending(self.pool, self.send)
            except Exception:
                _log.exception("outbox relay failed")
                return
        if published:
            _log.info("outbox relay published %d earlier unpublished event(s)", published)

    # ----- requests (§E.2–E.5)

    async def handle_request(self, raw: bytes) -> None:
        """Admit a request and submit its first wave (or reject it with a failed event)."""
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
        try:
            batch = await self.intake.admit(envelope, request)
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
                await self.finalizer.finalize_single_essay(batch.cj_batch_id)
                return
            plan = await self._plan_next_wave(batch.cj_batch_id, wave=1)
            if not plan:
                await self.finalizer.finalize(batch.cj_batch_id)
                return
            await self._submit_wave(batch.cj_batch_id, plan, wave=1)
        except Exception as exc:
            await self._abort_batch(batch.cj_batch_id, exc)

    async def _abort_batch(self, cj_batch_id: int, error: Exception) -> None:
        """Processing of an admitted batch raised: fail it loudly instead of letting it stall
        (its wave timer is gone or would only find nothing to time out)."""
        _log.error("batch %s failed while processing", cj_batch_id, exc_info=error)
        try:
            await self.finalizer.finalize_error(cj_batch_id, error)
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
        await self.publisher.emit(
            rejection.entity_id, "cj_batch", FAILED_TOPIC, failed, rejection.correlation_id
        )

    # ----- waves (§E.6–E.7)

    async def _plan_next_wave(self, cj_batch_id: int, *, wave: int) -> list[PlannedPair]:
        seed = self.settings.pair_generation_seed
        groups = self.runtimes.get(cj_batch_id).faults.pairing_groups
        return await plan_next_wave(self.pool, cj_batch_id, wave=wave, seed=seed, groups=groups)

    async def _submit_wave(self, cj_batch_id: int, plan: list[PlannedPair], *, wave: int) -> None:
        faults = self.runtimes.get(cj_batch_id).faults
        rows, tasks = await prepare_wave(self.pool, cj_batch_id, plan, wave=wave, faults=faults)
        await insert_wave(self.pool, cj_batch_id, rows, wave)
        self.runtimes.arm(cj_batch_id)
        for task in tasks:
            self.provider.submit(task)

    async def on_wave_timeout(self, cj_batch_id: int) -> None:
        """The wave timer fired: record the missing callbacks as failed and continue."""
        timeout_s = self.settings.callback_timeout_s
        async with self.lock:
            if self.runtimes.is_armed(cj_batch_id):
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
                self.runtimes.arm(cj_batch_id)  # nothing was written: try again later
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

    async def handle_callback(self, raw: bytes) -> None:
        """Record a callback on its pair, count it once, and continue a complete wave."""
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
        self.runtimes.arm(cj_batch_id)
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
        self.runtimes.disarm(cj_batch_id)
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
        if decision is Decision.FINALIZE_FAILURE:
            await self.finalizer.finalize_failure(cj_batch_id, outcome)
        elif decision is Decision.FINALIZE_SCORING:
            await self.finalizer.finalize(cj_batch_id)
        else:
            await self._submit_wave(cj_batch_id, plan, wave=wave)
