"""The LLM Provider Service in mock form (§F.2): judge one pair, publish its callback.

Every comparison CJ plans becomes a :class:`ProviderTask`; :class:`ProviderEmulator` judges it
in-process (honouring ``judge_delay_ms`` / ``judge_error_rate``) and publishes an
``LLMComparisonResultV1`` on the real callback topic, with the ``drop`` / ``duplicate`` /
``malformed`` callback faults. Fault draws are seeded per batch, pair and wave.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import random
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from aiokafka import AIOKafkaProducer

from pytest_eng5.contracts.enums import EssayComparisonWinner, LLMProviderType
from pytest_eng5.contracts.envelope import EventEnvelope
from pytest_eng5.contracts.events import ErrorDetail, LLMComparisonResultV1, TokenUsage
from pytest_eng5.contracts.topics import CALLBACK_EVENT_TYPE, CALLBACK_TOPIC
from pytest_eng5.reference.faults import FaultConfig
from pytest_eng5.reference.judge import Judge, Judgement, JudgeRequest

_log = logging.getLogger(__name__)

LPS_SERVICE_NAME: Final = "llm_provider_service"


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


def sha256_hex(text: str) -> str:
    """Hex SHA-256 of ``text`` (UTF-8); LPS reports the prompt's hash in the callback."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


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
        """Cancel the comparisons still in flight and wait for them to end."""
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
        duplicate = faults.duplicate_callback_rate
        copies = 2 if duplicate and rng.random() < duplicate else 1
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
