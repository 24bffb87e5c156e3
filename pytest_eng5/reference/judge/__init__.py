"""The judge of the reference CJ worker: it plays the LLM that compares two essays.

Three judges share one protocol (:class:`Judge`):

- :class:`TextFeaturesJudge` (default, :mod:`.text_feature_judge`) scores each essay with
  :func:`quality_score` (:mod:`.features`) and draws the winner with seeded noise;
- :class:`CoinFlipJudge` (:mod:`.coin_flip`) draws 50/50 from a hash of seed and texts;
- :class:`LlmHttpJudge` (:mod:`.llm_http`) asks a real OpenAI-compatible or Anthropic endpoint.

No judge raises on a failed comparison: failures become a :class:`Judgement` with ``error`` set.
"""

from __future__ import annotations

from pytest_eng5.core.names import DEFAULT_JUDGE, JUDGE_NAMES
from pytest_eng5.errors import ConfigurationError
from pytest_eng5.reference.judge.coin_flip import COIN_FLIP_MODEL, CoinFlipJudge
from pytest_eng5.reference.judge.features import (
    LEARNER_MISSPELLINGS,
    LINKING_WORDS,
    TextFeatures,
    feature_points,
    quality_score,
    text_features,
)
from pytest_eng5.reference.judge.llm_http import (
    LlmHttpJudge,
    LlmResponseError,
    build_user_message,
    parse_llm_answer,
)
from pytest_eng5.reference.judge.protocol import (
    ANSWER_INSTRUCTION,
    DEFAULT_RUBRIC,
    DEFAULT_SYSTEM_PROMPT,
    MAX_JUSTIFICATION_CHARS,
    MOCK_PROVIDER,
    Judge,
    Judgement,
    JudgeRequest,
    Winner,
)
from pytest_eng5.reference.judge.text_feature_judge import (
    DEFAULT_NOISE,
    TEXT_FEATURES_MODEL,
    TextFeaturesJudge,
)


def make_judge(name: str = DEFAULT_JUDGE, seed: int = 0) -> Judge:
    """Build a judge by name: ``text_features`` (default), ``coin_flip`` or ``llm_http``."""
    key = name.strip().lower().replace("-", "_")
    if key == "text_features":
        return TextFeaturesJudge(seed=seed)
    if key == "coin_flip":
        return CoinFlipJudge(seed=seed)
    if key == "llm_http":
        return LlmHttpJudge.from_env()
    raise ConfigurationError(
        f"unknown judge {name!r}; valid judges: {', '.join(JUDGE_NAMES)}",
        next_step="choose one of the valid judge names (text_features is the default)",
    )


__all__ = [
    "ANSWER_INSTRUCTION",
    "COIN_FLIP_MODEL",
    "DEFAULT_NOISE",
    "DEFAULT_RUBRIC",
    "DEFAULT_SYSTEM_PROMPT",
    "JUDGE_NAMES",
    "LEARNER_MISSPELLINGS",
    "LINKING_WORDS",
    "MAX_JUSTIFICATION_CHARS",
    "MOCK_PROVIDER",
    "TEXT_FEATURES_MODEL",
    "CoinFlipJudge",
    "Judge",
    "JudgeRequest",
    "Judgement",
    "LlmHttpJudge",
    "LlmResponseError",
    "TextFeatures",
    "TextFeaturesJudge",
    "Winner",
    "build_user_message",
    "feature_points",
    "make_judge",
    "parse_llm_answer",
    "quality_score",
    "text_features",
]
