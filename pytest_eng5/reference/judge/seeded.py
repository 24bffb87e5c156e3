"""Helpers of the seeded mock judges: a per-pair RNG, token estimates, the logistic curve."""

from __future__ import annotations

import hashlib
import math
import random

from pytest_eng5.reference.judge.features import WORD_RE
from pytest_eng5.reference.judge.protocol import DEFAULT_RUBRIC, DEFAULT_SYSTEM_PROMPT, JudgeRequest


def pair_rng(seed: int, request: JudgeRequest, salt: str, draw_key: str = "") -> random.Random:
    """An RNG determined by the seed, the salt, the two essay texts and ``draw_key`` if given."""
    parts = [salt, str(seed), request.essay_a_text, request.essay_b_text]
    if draw_key:
        parts.append(draw_key)
    digest = hashlib.sha256("\x1f".join(parts).encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


def estimate_tokens(*texts: str | None) -> int:
    """About 4/3 tokens a word, as English text costs on common tokenizers."""
    return math.ceil(sum(len(WORD_RE.findall(t or "")) for t in texts) * 4 / 3)


def mock_prompt_tokens(request: JudgeRequest) -> int:
    """The prompt tokens a real provider would have billed for this request."""
    return 40 + estimate_tokens(
        request.system_prompt or DEFAULT_SYSTEM_PROMPT,
        request.rubric or DEFAULT_RUBRIC,
        request.prompt_text,
        request.essay_a_text,
        request.essay_b_text,
    )


def logistic(x: float) -> float:
    """1 / (1 + e^-x) without overflow for large |x|."""
    if x >= 0:
        return 1.0 / (1.0 + math.exp(-x))
    e = math.exp(x)
    return e / (1.0 + e)
