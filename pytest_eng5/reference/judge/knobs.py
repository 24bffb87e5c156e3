"""How a request's LLM settings change the text-feature judge, so variants differ as on an LLM.

A real variant changes the request's ``llm_config_overrides``; the reference judge reads the
same fields and turns them into seeded, documented effects (docs/reference-services.md):

- **temperature** scales the judge noise: ``noise = base * max(0.25, 1 + 2.5 * (T - 0.1))``
  (unchanged at CJ's default 0.1, x0.75 at 0, x3.25 at 1.0). At ``T > 0`` every request gets
  its own draw (keyed by its correlation id), so a repeated pair or a repeated run can differ,
  as a sampling LLM does; at ``T = 0`` (or none given) the draw depends on the pair only.
- **system prompt and rubric** weight the features: the more their wording stresses language
  (grammar, spelling, vocabulary...) rather than content and organisation (ideas, structure,
  paragraphs...) compared with the default prompts, the more the language features count.
- **model**: the mock provider's models carry traits (:data:`MOCK_MODELS`), e.g. a position
  bias towards Essay A; any other model name judges like the default one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from pytest_eng5.reference.judge.protocol import DEFAULT_RUBRIC, DEFAULT_SYSTEM_PROMPT, JudgeRequest

REFERENCE_TEMPERATURE = 0.1
NOISE_PER_TEMPERATURE = 2.5
MIN_NOISE_FACTOR = 0.25
PROMPT_WEIGHT_GAIN = 1.5
MAX_WEIGHT_SHIFT = 0.6

#: Features that measure language (the rest measure content and organisation).
LANGUAGE_FEATURES = frozenset(
    {
        "vocabulary range",
        "word length",
        "long words",
        "sentence length",
        "sentence variety",
        "spelling",
        "lowercase i",
        "sentence capitals",
    }
)
LANGUAGE_CUES = (
    "language",
    "grammar",
    "grammatical",
    "spelling",
    "vocabulary",
    "accuracy",
    "accurate",
    "punctuation",
    "idiomatic",
    "fluency",
    "sentence",
    "sentences",
    "word choice",
    "precision",
    "errors",
)
CONTENT_CUES = (
    "content",
    "ideas",
    "argument",
    "arguments",
    "development",
    "developed",
    "structure",
    "organisation",
    "organization",
    "paragraph",
    "paragraphs",
    "coherence",
    "examples",
    "relevance",
    "task",
)


@dataclass(frozen=True)
class MockModel:
    """Traits of one mock-provider model: a noise factor and a position bias (logit for A)."""

    noise_factor: float = 1.0
    position_bias: float = 0.0


DEFAULT_MOCK_MODEL = "eng5-text-features-v1"
MOCK_MODELS: dict[str, MockModel] = {
    DEFAULT_MOCK_MODEL: MockModel(),
    "eng5-text-features-first-bias": MockModel(position_bias=0.8),
    "eng5-text-features-second-bias": MockModel(position_bias=-0.8),
    "eng5-text-features-weak": MockModel(noise_factor=5.0),
}


@dataclass(frozen=True)
class JudgeKnobs:
    """The effective knobs of one comparison."""

    noise: float
    position_bias: float = 0.0
    language_weight: float = 1.0
    content_weight: float = 1.0
    fresh_draw: bool = False
    model: str = DEFAULT_MOCK_MODEL

    def weight(self, feature: str) -> float:
        """The multiplier of one feature's points."""
        return self.language_weight if feature in LANGUAGE_FEATURES else self.content_weight


def _cue_count(text: str, cues: tuple[str, ...]) -> int:
    return sum(len(re.findall(rf"\b{re.escape(cue)}\b", text)) for cue in cues)


@lru_cache(maxsize=256)
def language_share(text: str) -> float:
    """Share of language cues among all cues in ``text`` (0.5 when it has none)."""
    lowered = text.lower()
    language = _cue_count(lowered, LANGUAGE_CUES)
    content = _cue_count(lowered, CONTENT_CUES)
    return 0.5 if language + content == 0 else language / (language + content)


def _instructions(request: JudgeRequest) -> str:
    return f"{request.system_prompt or DEFAULT_SYSTEM_PROMPT}\n{request.rubric or DEFAULT_RUBRIC}"


DEFAULT_LANGUAGE_SHARE = language_share(f"{DEFAULT_SYSTEM_PROMPT}\n{DEFAULT_RUBRIC}")


def prompt_weights(request: JudgeRequest) -> tuple[float, float]:
    """(language weight, content weight): both 1 for the default prompts."""
    shift = PROMPT_WEIGHT_GAIN * (language_share(_instructions(request)) - DEFAULT_LANGUAGE_SHARE)
    shift = max(-MAX_WEIGHT_SHIFT, min(MAX_WEIGHT_SHIFT, shift))
    return 1.0 + shift, 1.0 - shift


def noise_factor(temperature: float | None) -> float:
    """The noise multiplier of a temperature (1 when none is given)."""
    if temperature is None:
        return 1.0
    return max(
        MIN_NOISE_FACTOR, 1.0 + NOISE_PER_TEMPERATURE * (temperature - REFERENCE_TEMPERATURE)
    )


def knobs_for(request: JudgeRequest, base_noise: float) -> JudgeKnobs:
    """The knobs the request's model, temperature and prompts give the text-feature judge."""
    model_name = request.model if request.model in MOCK_MODELS else DEFAULT_MOCK_MODEL
    model = MOCK_MODELS[model_name]
    language_weight, content_weight = prompt_weights(request)
    return JudgeKnobs(
        noise=base_noise * model.noise_factor * noise_factor(request.temperature),
        position_bias=model.position_bias,
        language_weight=language_weight,
        content_weight=content_weight,
        fresh_draw=bool(request.temperature),
        model=model_name,
    )
