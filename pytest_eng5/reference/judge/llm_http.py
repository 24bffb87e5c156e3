"""A judge that asks a real LLM: OpenAI-compatible chat completions or Anthropic messages."""

from __future__ import annotations

import json
import math
import os
import re
import time
from typing import Any, Literal

import httpx

from pytest_eng5.errors import ConfigurationError
from pytest_eng5.redact import redact, register_secret
from pytest_eng5.reference.judge.protocol import (
    ANSWER_INSTRUCTION,
    DEFAULT_RUBRIC,
    DEFAULT_SYSTEM_PROMPT,
    MAX_JUSTIFICATION_CHARS,
    Judgement,
    JudgeRequest,
    Winner,
)
from pytest_eng5.reference.judge.seeded import estimate_tokens

LlmStyle = Literal["openai", "anthropic"]
_STYLES: tuple[LlmStyle, ...] = ("openai", "anthropic")
ANTHROPIC_VERSION = "2023-06-01"
ENV_URL = "ENG5_JUDGE_LLM_URL"
ENV_API_KEY = "ENG5_JUDGE_LLM_API_KEY"
ENV_MODEL = "ENG5_JUDGE_LLM_MODEL"
ENV_STYLE = "ENG5_JUDGE_LLM_STYLE"


class LlmResponseError(ValueError):
    """The LLM answered, but not with a usable judgement."""


def build_user_message(request: JudgeRequest) -> str:
    """The user turn sent to the LLM: task, rubric, both essays and the answer format."""
    parts = []
    if request.prompt_text.strip():
        parts.append(f"Writing task given to the students:\n{request.prompt_text.strip()}")
    parts.append(f"Assessment rubric:\n{(request.rubric or DEFAULT_RUBRIC).strip()}")
    parts.append(f"Essay A:\n<<<\n{request.essay_a_text.strip()}\n>>>")
    parts.append(f"Essay B:\n<<<\n{request.essay_b_text.strip()}\n>>>")
    parts.append(ANSWER_INSTRUCTION)
    return "\n\n".join(parts)


def parse_llm_answer(text: str) -> tuple[Winner, float, str]:
    """Parse ``{"winner": "A"|"B", "justification": ..., "confidence": 1-5}`` from model text."""
    match = re.search(r"\{.*\}", text, flags=re.DOTALL)
    if match is None:
        raise LlmResponseError(f"no JSON object in the answer: {text[:200]!r}")
    try:
        data = json.loads(match.group(0))
    except json.JSONDecodeError as exc:
        raise LlmResponseError(f"answer JSON does not parse ({exc}): {text[:200]!r}") from exc
    if not isinstance(data, dict):
        raise LlmResponseError(f"answer JSON is not an object: {text[:200]!r}")
    raw_winner = str(data.get("winner", "")).strip().upper().removeprefix("ESSAY").strip()
    if raw_winner not in ("A", "B"):
        raise LlmResponseError(f"winner must be 'A' or 'B', got {data.get('winner')!r}")
    try:
        confidence = float(data["confidence"])
    except (KeyError, TypeError, ValueError) as exc:
        raise LlmResponseError(f"confidence 1-5 missing or not a number: {data!r}") from exc
    if not math.isfinite(confidence):
        raise LlmResponseError(f"confidence is not finite: {data['confidence']!r}")
    justification = str(data.get("justification") or "").strip() or "(no justification given)"
    winner: Winner = "Essay A" if raw_winner == "A" else "Essay B"
    return winner, min(5.0, max(1.0, confidence)), justification[:MAX_JUSTIFICATION_CHARS]


class LlmHttpJudge:
    """Judge through a real LLM: OpenAI-compatible chat completions or Anthropic messages."""

    name = "llm_http"

    def __init__(
        self,
        url: str,
        model: str,
        *,
        api_key: str | None = None,
        style: str = "openai",
        timeout_s: float = 60.0,
        default_max_tokens: int = 512,
    ) -> None:
        if not url.startswith(("http://", "https://")):
            raise ConfigurationError(
                f"LLM judge URL must start with http:// or https://, got {url!r}",
                next_step=f"set {ENV_URL} to the full endpoint URL, e.g. "
                "https://api.openai.com/v1/chat/completions",
            )
        if style not in _STYLES:
            raise ConfigurationError(
                f"unknown LLM judge style {style!r}; valid styles: {', '.join(_STYLES)}",
                next_step=f"set {ENV_STYLE} to 'openai' or 'anthropic'",
            )
        if not model:
            raise ConfigurationError(
                "the LLM judge needs a model name",
                next_step=f"set {ENV_MODEL} (e.g. gpt-4o-mini or claude-3-5-haiku-latest)",
            )
        register_secret(api_key)
        self.url = url
        self.model = model
        self.style: LlmStyle = "anthropic" if style == "anthropic" else "openai"
        self._api_key = api_key
        self.timeout_s = timeout_s
        self.default_max_tokens = default_max_tokens

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> LlmHttpJudge:
        """Configure from ``ENG5_JUDGE_LLM_URL/_API_KEY/_MODEL/_STYLE``."""
        env = os.environ if environ is None else environ
        url = env.get(ENV_URL, "").strip()
        if not url:
            raise ConfigurationError(
                f"the llm_http judge needs {ENV_URL}",
                next_step=f"set {ENV_URL}, {ENV_MODEL}, {ENV_API_KEY} and {ENV_STYLE} "
                "(openai|anthropic), or use the text_features judge",
            )
        return cls(
            url,
            env.get(ENV_MODEL, "").strip(),
            api_key=env.get(ENV_API_KEY) or None,
            style=env.get(ENV_STYLE, "openai").strip().lower() or "openai",
        )

    def _payload(self, request: JudgeRequest) -> tuple[dict[str, str], dict[str, Any]]:
        system = request.system_prompt or DEFAULT_SYSTEM_PROMPT
        user = build_user_message(request)
        body: dict[str, Any] = {
            "model": request.model or self.model,
            "max_tokens": request.max_tokens or self.default_max_tokens,
        }
        if request.temperature is not None:
            body["temperature"] = request.temperature
        headers = {"Content-Type": "application/json"}
        if self.style == "anthropic":
            body["system"] = system
            body["messages"] = [{"role": "user", "content": user}]
            headers["anthropic-version"] = ANTHROPIC_VERSION
            if self._api_key:
                headers["x-api-key"] = self._api_key
        else:
            body["messages"] = [
                {"role": "system", "content": system},
                {"role": "user", "content": user},
            ]
            if self._api_key:
                headers["Authorization"] = f"Bearer {self._api_key}"
        return headers, body

    def _answer_text(self, data: Any) -> tuple[str, int | None, int | None]:
        try:
            if self.style == "anthropic":
                text = "".join(
                    block.get("text", "")
                    for block in data["content"]
                    if block.get("type") == "text"
                )
                usage = data.get("usage") or {}
                return text, usage.get("input_tokens"), usage.get("output_tokens")
            text = data["choices"][0]["message"]["content"] or ""
            usage = data.get("usage") or {}
            return text, usage.get("prompt_tokens"), usage.get("completion_tokens")
        except (KeyError, IndexError, TypeError, AttributeError) as exc:
            raise LlmResponseError(f"unexpected {self.style} response shape: {exc!r}") from exc

    async def judge(self, request: JudgeRequest) -> Judgement:
        """Ask the endpoint; any HTTP error, timeout or unusable answer becomes ``error``."""
        headers, body = self._payload(request)
        model = str(body["model"])
        started = time.perf_counter()
        prompt_tokens = estimate_tokens(body.get("system"), *_message_texts(body))
        completion_tokens = 0

        def failed(error: str) -> Judgement:
            return Judgement(
                winner=None,
                confidence=None,
                justification=None,
                error=redact(error)[:1000],
                provider=self.style,
                model=model,
                prompt_tokens=prompt_tokens,
                completion_tokens=completion_tokens,
                cost_usd=0.0,
                response_time_ms=int((time.perf_counter() - started) * 1000),
            )

        try:
            async with httpx.AsyncClient(timeout=self.timeout_s) as client:
                response = await client.post(self.url, headers=headers, json=body)
        except httpx.TimeoutException as exc:
            return failed(f"llm_timeout: no answer from {self.url} within {self.timeout_s}s: {exc}")
        except httpx.HTTPError as exc:
            return failed(f"llm_transport_error: {type(exc).__name__}: {exc}")
        if response.status_code >= 400:
            return failed(f"llm_http_status {response.status_code}: {response.text[:300]}")
        try:
            text, used_prompt, used_completion = self._answer_text(response.json())
            completion_tokens = used_completion or estimate_tokens(text)
            prompt_tokens = used_prompt or prompt_tokens
            winner, confidence, justification = parse_llm_answer(text)
        except (LlmResponseError, ValueError) as exc:
            return failed(f"llm_unparseable_answer: {exc}")
        return Judgement(
            winner=winner,
            confidence=confidence,
            justification=justification,
            error=None,
            provider=self.style,
            model=model,
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            cost_usd=0.0,
            response_time_ms=int((time.perf_counter() - started) * 1000),
        )


def _message_texts(body: dict[str, Any]) -> list[str]:
    return [str(message.get("content", "")) for message in body.get("messages", [])]
