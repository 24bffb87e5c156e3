"""What the mock LLM Provider's callbacks name as provider, model and cost (as HuleEdu's)."""

from __future__ import annotations

import uuid
from dataclasses import replace

import pytest

from pytest_eng5.contracts.enums import LLMProviderType
from pytest_eng5.reference.faults import FaultConfig
from pytest_eng5.reference.judge import Judgement, JudgeRequest
from pytest_eng5.reference.provider_emulator import ProviderTask, priced, reported_identity

MOCK_JUDGEMENT = Judgement(
    winner="Essay A",
    confidence=4.0,
    justification="clearer",
    error=None,
    provider="mock",
    model="eng5-text-features-v1",
    prompt_tokens=1000,
    completion_tokens=40,
    cost_usd=0.0,
    response_time_ms=5,
)


def task(provider: str | None = None, model: str | None = None) -> ProviderTask:
    return ProviderTask(
        correlation_id=uuid.uuid4(),
        prompt_text="compare",
        judge_request=JudgeRequest("a", "b", model=model),
        request_metadata={},
        faults=FaultConfig(),
        requested_provider=provider,
    )


def test_defaults_are_cjs_openai_and_gpt_5_1() -> None:
    assert reported_identity(task(), MOCK_JUDGEMENT) == (LLMProviderType.OPENAI, "gpt-5.1")


@pytest.mark.parametrize(
    ("provider", "model", "expected"),
    [
        ("anthropic", "claude-haiku", (LLMProviderType.ANTHROPIC, "claude-haiku")),
        ("OpenAI", None, (LLMProviderType.OPENAI, "gpt-5.1")),
        ("mock", None, (LLMProviderType.OPENAI, "gpt-5.1")),  # CJ never reports mock
        ("no-such-provider", "m", (LLMProviderType.OPENAI, "m")),
    ],
)
def test_requested_provider_and_model_are_reported(
    provider: str, model: str | None, expected: tuple[LLMProviderType, str]
) -> None:
    assert reported_identity(task(provider, model), MOCK_JUDGEMENT) == expected


def test_a_real_llm_judge_reports_itself() -> None:
    real = replace(MOCK_JUDGEMENT, provider="openai", model="gpt-4o-mini", cost_usd=0.0)
    assert reported_identity(task("anthropic"), real) == (LLMProviderType.OPENAI, "gpt-4o-mini")
    assert priced(real) == 0.0  # its own (unknown) cost, never an invented one


def test_an_in_process_judgement_is_priced_from_its_tokens() -> None:
    # 1000 prompt tokens at 1.25 USD/M + 40 completion tokens at 10 USD/M
    assert priced(MOCK_JUDGEMENT) == pytest.approx(0.00165)
    assert priced(replace(MOCK_JUDGEMENT, prompt_tokens=0, completion_tokens=0)) == 0.0
