"""The LLM Provider Service in mock form (§F.2): judge one pair, publish its callback.

Every comparison CJ plans becomes a :class:`ProviderTask`; :class:`ProviderEmulator` judges it
in-process (honouring ``judge_delay_ms`` / ``judge_error_rate``) and publishes an
``LLMComparisonResultV1`` on the real callback topic, with the ``drop`` / ``duplicate`` /
``malformed`` callback faults. Fault draws are seeded per batch, pair and wave.

Like HuleEdu's mock LLM Provider, a callback of an in-process judge names the provider and
model CJ asked for (CJ's defaults: ``openai`` / ``gpt-5.1``) and a cost priced from its token
counts; ``request_metadata`` says ``resolved_provider: "mock"`` and names the reference judge
that really decided (``reference_judge``, a key HuleEdu's consumers ignore). A judge that
calls a real LLM over HTTP reports its own provider, model and cost.
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
MOCK_PROVIDER: Final = "mock"
#: what CJ asks the LLM Provider for when the request overrides nothing (contracts §F)
DEFAULT_REPORTED_PROVIDER: Final = LLMProviderType.OPENAI
DEFAULT_REPORTED_MODEL: Final = "gpt-5.1"
#: USD per million prompt / completion tokens, to price an emulated call (cost above 0)
PROMPT_USD_PER_MILLION: Final = 1.25
COMPLETION_USD_PER_MILLION: Final = 10.0


@dataclass(frozen=True)
class ProviderTask:
    """What CJ sends the LLM Provider for one pair (the LPS HTTP body, in-process)."""

    correlation_id: uuid.UUID
    prompt_text: str
    judge_request: JudgeRequest
    request_metadata: dict[str, Any]
    faults: FaultConfig
    #: ``llm_config_overrides.provider_override`` of the request, if any
    requested_provider: str | None = None

    @property
    def fault_key(self) -> str:
        """Seeds the fault draws: the same batch and pair always get the same faults.

        Neither the wave nor the presentation order is part of the key: which wave a pair lands
        in depends on when earlier callbacks arrive, so a seeded fault would change with load.
        """
        meta = self.request_metadata
        pair = sorted(str(meta.get(key)) for key in ("essay_a_id", "essay_b_id"))
        return ":".join([str(meta.get("bos_batch_id")), *pair])


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
        provider, model = reported_identity(task, judgement)
        metadata.setdefault("resolved_provider", judgement.provider if judgement else MOCK_PROVIDER)
        metadata["reference_judge"] = {
            "name": self._judge.name,
            "model": judgement.model if judgement else None,
        }
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
            result = _success_result(
                task, judgement, metadata, requested_at, completed_at, provider, model
            )
        return EventEnvelope(
            event_type=CALLBACK_EVENT_TYPE,
            source_service=LPS_SERVICE_NAME,
            correlation_id=task.correlation_id,
            data=result,
            metadata={},
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


def _provider_type(name: str | None) -> LLMProviderType | None:
    try:
        return LLMProviderType(str(name).lower()) if name else None
    except ValueError:
        return None


def reported_identity(
    task: ProviderTask, judgement: Judgement | None
) -> tuple[LLMProviderType, str]:
    """The provider and model the callback names (see the module docstring)."""
    if judgement is not None and judgement.provider != MOCK_PROVIDER:
        return _provider_type(judgement.provider) or LLMProviderType.MOCK, judgement.model
    requested = _provider_type(task.requested_provider)
    if requested is None or requested is LLMProviderType.MOCK:
        requested = DEFAULT_REPORTED_PROVIDER
    return requested, task.judge_request.model or DEFAULT_REPORTED_MODEL


def priced(judgement: Judgement) -> float:
    """The judge's own cost, or (for an in-process judge) its tokens at the list price."""
    if judgement.cost_usd > 0 or judgement.provider != MOCK_PROVIDER:
        return max(0.0, judgement.cost_usd)
    cost = (
        max(0, judgement.prompt_tokens) * PROMPT_USD_PER_MILLION
        + max(0, judgement.completion_tokens) * COMPLETION_USD_PER_MILLION
    ) / 1_000_000
    return round(cost, 6)


def _success_result(
    task: ProviderTask,
    judgement: Judgement,
    metadata: dict[str, Any],
    requested_at: datetime,
    completed_at: datetime,
    provider: LLMProviderType,
    model: str,
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
        provider=provider,
        model=model,
        response_time_ms=max(0, judgement.response_time_ms, elapsed_ms),
        token_usage=usage,
        cost_estimate=priced(judgement),
        requested_at=requested_at,
        completed_at=completed_at,
        request_metadata=metadata,
    )
