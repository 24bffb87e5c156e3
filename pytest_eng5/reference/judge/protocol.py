"""What every judge of the reference CJ worker shares: the request, the judgement, the protocol
and the default prompt texts (those of the LLM Provider Service when CJ sends none)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

Winner = Literal["Essay A", "Essay B"]

MOCK_PROVIDER = "mock"
MAX_JUSTIFICATION_CHARS = 500

DEFAULT_SYSTEM_PROMPT = (
    "You are an impartial assessor in a comparative judgement of essays written by Swedish "
    "year-9 students of English as a foreign language. Decide which of two essays shows the "
    "higher overall quality of written English for the task. Stay neutral about the opinion "
    "taken; weigh content, structure and language, not length alone."
)
DEFAULT_RUBRIC = (
    "Content: ideas are clear, developed and supported with examples. "
    "Structure: heading, paragraphs, a clear beginning and ending, linking words. "
    "Language: range and precision of vocabulary and sentence structures; spelling and grammar."
)
ANSWER_INSTRUCTION = (
    "Answer with one JSON object and nothing else: "
    '{"winner": "A" or "B", "justification": "<at most 50 words>", "confidence": <1-5>}'
)


@dataclass(frozen=True)
class JudgeRequest:
    """One comparison: two essay texts plus the prompt and optional overrides."""

    essay_a_text: str
    essay_b_text: str
    prompt_text: str = ""
    system_prompt: str | None = None
    rubric: str | None = None
    model: str | None = None
    temperature: float | None = None
    max_tokens: int | None = None
    correlation_id: str = ""


@dataclass(frozen=True)
class Judgement:
    """The outcome of one comparison; exactly one of ``winner`` / ``error`` is set."""

    winner: Winner | None
    confidence: float | None
    justification: str | None
    error: str | None
    provider: str
    model: str
    prompt_tokens: int
    completion_tokens: int
    cost_usd: float
    response_time_ms: int


class Judge(Protocol):
    """Anything that can compare two essays."""

    name: str

    async def judge(self, request: JudgeRequest) -> Judgement:
        """Compare essay A with essay B; never raise for a failed comparison."""
        ...
