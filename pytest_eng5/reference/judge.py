"""The judge of the reference CJ worker: it plays the LLM that compares two essays.

Three judges share one protocol (:class:`Judge`):

- :class:`TextFeaturesJudge` (default) scores each essay with :func:`quality_score`, a transparent
  sum of text features, and draws the winner with P(A wins) = logistic((score_a - score_b) / noise)
  from an RNG seeded by sha256(seed, essay A, essay B). Clear pairs rarely flip, close pairs can go
  either way, and the same inputs always give the same judgement.
- :class:`CoinFlipJudge` draws 50/50 from the same kind of hash, ignoring quality.
- :class:`LlmHttpJudge` asks a real OpenAI-compatible or Anthropic endpoint for JSON.

No judge raises on a failed comparison: failures become a :class:`Judgement` with ``error`` set.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import random
import re
import statistics
import time
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Literal, Protocol

import httpx

from pytest_eng5.errors import ConfigurationError
from pytest_eng5.redact import redact, register_secret

Winner = Literal["Essay A", "Essay B"]

MOCK_PROVIDER = "mock"
TEXT_FEATURES_MODEL = "eng5-text-features-v1"
COIN_FLIP_MODEL = "eng5-coin-flip-v1"
MAX_JUSTIFICATION_CHARS = 500
DEFAULT_NOISE = 0.6

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


# --------------------------------------------------------------------------- text features

_WORD_RE = re.compile(r"[A-Za-z]+(?:['’][A-Za-z]+)*")
_SENTENCE_END_RE = re.compile(r"(?<=[.!?])\s+|\n+")
_LOWERCASE_I_RE = re.compile(r"(?:^|(?<=[\s,.!?;:]))i(?=['’\s,.!?;:]|$)")
_MATTR_WINDOW = 40
_LONG_WORD_LETTERS = 7

# Connectives that show cohesion beyond "and/but/so"; each distinct one counts once.
LINKING_WORDS: tuple[str, ...] = (
    "however",
    "therefore",
    "although",
    "though",
    "furthermore",
    "moreover",
    "nevertheless",
    "consequently",
    "in addition",
    "on the other hand",
    "on the one hand",
    "for example",
    "for instance",
    "such as",
    "as a result",
    "in conclusion",
    "to sum up",
    "to conclude",
    "whereas",
    "while",
    "unless",
    "instead",
    "even though",
    "first of all",
    "secondly",
    "finally",
    "besides",
    "similarly",
    "in contrast",
    "rather than",
    "after all",
    "that said",
    "admittedly",
    "ultimately",
    "since",
    "yet",
    "thus",
)

# Common learner misspellings (Swedish year-9 learners of English), lower case.
LEARNER_MISSPELLINGS: frozenset[str] = frozenset(
    {
        "alot", "becaus", "becouse", "beacuse", "becuse", "thay", "wich", "whit", "realy",
        "frend", "frends", "dont", "cant", "doesnt", "didnt", "isnt", "wont", "thats", "im",
        "lisen", "mobil", "foto", "somthing", "somtimes", "evry", "everyting", "wen", "shuld",
        "wold", "opinon", "oppinion", "consentration", "consentrate", "totaly", "finaly",
        "intresting", "diffrent", "untill", "tomorow", "verry", "wery", "belive", "beutiful",
        "peopel", "pepole", "buyed", "alredy", "allways", "ofcourse", "importent", "exampel",
        "usefull", "helpfull", "teh", "se",
    }
)  # fmt: skip


@dataclass(frozen=True)
class TextFeatures:
    """Raw measurements of one essay (see :func:`feature_points` for how they are scored)."""

    words: int
    vocabulary_mattr: float
    mean_word_length: float
    long_word_share: float
    mean_sentence_length: float
    sentence_length_sd: float
    linking_words: int
    paragraphs: int
    misspellings_per_100: float
    lowercase_i: int
    uncapitalised_sentence_share: float


def _clip01(value: float) -> float:
    return min(1.0, max(0.0, value))


def _mattr(words: list[str]) -> float:
    """Moving-average type-token ratio: mean distinct share over every window of words."""
    if not words:
        return 0.0
    if len(words) <= _MATTR_WINDOW:
        return len(set(words)) / len(words)
    ratios = [
        len(set(words[i : i + _MATTR_WINDOW])) / _MATTR_WINDOW
        for i in range(len(words) - _MATTR_WINDOW + 1)
    ]
    return statistics.fmean(ratios)


def _paragraphs(text: str) -> list[str]:
    blocks = [b for b in re.split(r"\n\s*\n", text.strip()) if b.strip()]
    if len(blocks) <= 1:  # .docx text arrives with single newlines between paragraphs
        blocks = [line for line in text.splitlines() if line.strip()]
    return blocks


def _sentences(text: str) -> list[str]:
    body = re.sub(r"^#+\s*", "", text, flags=re.MULTILINE)  # markdown heading marks
    return [s.strip() for s in _SENTENCE_END_RE.split(body) if _WORD_RE.search(s)]


def _count_linking_words(lowered: str) -> int:
    return sum(1 for link in LINKING_WORDS if re.search(rf"\b{re.escape(link)}\b", lowered))


@lru_cache(maxsize=4096)
def text_features(text: str) -> TextFeatures:
    """Measure one essay."""
    raw_words = _WORD_RE.findall(text)
    words = [w.lower() for w in raw_words]
    n = len(words)
    sentences = _sentences(text)
    sentence_lengths = [len(_WORD_RE.findall(s)) for s in sentences] or [0]
    starts = [s.lstrip("\"'“‘(-– ")[:1] for s in sentences]
    uncapitalised = sum(1 for c in starts if c.isalpha() and c.islower())
    return TextFeatures(
        words=n,
        vocabulary_mattr=_mattr(words),
        mean_word_length=statistics.fmean(len(w) for w in words) if words else 0.0,
        long_word_share=(sum(1 for w in words if len(w) >= _LONG_WORD_LETTERS) / n) if n else 0.0,
        mean_sentence_length=statistics.fmean(sentence_lengths),
        sentence_length_sd=statistics.pstdev(sentence_lengths),
        linking_words=_count_linking_words(text.lower()),
        paragraphs=len(_paragraphs(text)),
        misspellings_per_100=(100.0 * sum(1 for w in words if w in LEARNER_MISSPELLINGS) / n)
        if n
        else 0.0,
        lowercase_i=len(_LOWERCASE_I_RE.findall(text)),
        uncapitalised_sentence_share=(uncapitalised / len(sentences)) if sentences else 0.0,
    )


def feature_points(features: TextFeatures) -> dict[str, float]:
    """Score each feature; the sum is :func:`quality_score`. Penalties are negative.

    - length: 0 at 80 words, full at 300, easing off beyond 450 (the task asks for 150-300);
    - vocabulary range: moving-average type-token ratio over 40-word windows;
    - word length and long words: mean letters per word, share of words with 7+ letters;
    - sentence length: best at 13-26 words a sentence (choppy or run-on sentences lose);
    - sentence variety: spread (standard deviation) of sentence lengths;
    - linking words: distinct connectives beyond and/but/so, up to 10;
    - paragraphing: number of paragraphs (a heading counts), up to 5;
    - spelling: common learner misspellings per 100 words (penalty);
    - lowercase "i" and sentences that do not start with a capital letter (penalties).
    """
    f = features
    length = _clip01((f.words - 80) / 220) - _clip01((f.words - 450) / 300)
    if f.mean_sentence_length < 13:
        sentence_fit = _clip01(1 - (13 - f.mean_sentence_length) / 8)
    else:
        sentence_fit = _clip01(1 - max(0.0, f.mean_sentence_length - 26) / 12)
    return {
        "length": 1.5 * length,
        "vocabulary range": 2.0 * _clip01((f.vocabulary_mattr - 0.76) / 0.18),
        "word length": 2.5 * _clip01((f.mean_word_length - 3.5) / 2.0),
        "long words": 1.5 * _clip01((f.long_word_share - 0.04) / 0.32),
        "sentence length": 1.0 * sentence_fit,
        "sentence variety": 1.0 * _clip01(f.sentence_length_sd / 10),
        "linking words": 2.0 * min(f.linking_words, 10) / 10,
        "paragraphing": 1.0 * _clip01((f.paragraphs - 1) / 4),
        "spelling": -2.5 * _clip01(f.misspellings_per_100 / 4),
        "lowercase i": -1.0 * _clip01(f.lowercase_i / 3),
        "sentence capitals": -1.5 * f.uncapitalised_sentence_share,
    }


def quality_score(text: str) -> float:
    """A transparent text-feature quality score (higher is better, roughly -5..12)."""
    return sum(feature_points(text_features(text)).values())


# --------------------------------------------------------------------------- mock judges


def _pair_rng(seed: int, request: JudgeRequest, salt: str) -> random.Random:
    digest = hashlib.sha256(
        "\x1f".join((salt, str(seed), request.essay_a_text, request.essay_b_text)).encode()
    ).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


def _estimate_tokens(*texts: str | None) -> int:
    return math.ceil(sum(len(_WORD_RE.findall(t or "")) for t in texts) * 4 / 3)


def _mock_prompt_tokens(request: JudgeRequest) -> int:
    return 40 + _estimate_tokens(
        request.system_prompt or DEFAULT_SYSTEM_PROMPT,
        request.rubric or DEFAULT_RUBRIC,
        request.prompt_text,
        request.essay_a_text,
        request.essay_b_text,
    )


def _logistic(x: float) -> float:
    if x >= 0:
        return 1.0 / (1.0 + math.exp(-x))
    e = math.exp(x)
    return e / (1.0 + e)


class TextFeaturesJudge:
    """Deterministic text-feature judge with seeded noise (provider ``mock``)."""

    name = "text_features"

    def __init__(self, seed: int = 0, noise: float = DEFAULT_NOISE) -> None:
        if noise < 0:
            raise ConfigurationError(
                f"TextFeaturesJudge noise must be >= 0, got {noise}",
                next_step="use 0 for a noise-free judge or a positive score scale such as 0.6",
            )
        self.seed = seed
        self.noise = noise

    def probability_a_wins(self, essay_a_text: str, essay_b_text: str) -> float:
        """P(A wins) = logistic((score_a - score_b) / noise); a step function when noise is 0."""
        margin = quality_score(essay_a_text) - quality_score(essay_b_text)
        if self.noise == 0:
            return 1.0 if margin > 0 else 0.0 if margin < 0 else 0.5
        return _logistic(margin / self.noise)

    async def judge(self, request: JudgeRequest) -> Judgement:
        """Judge one pair; the same request and seed always give the same judgement."""
        p_a = self.probability_a_wins(request.essay_a_text, request.essay_b_text)
        a_wins = _pair_rng(self.seed, request, self.name).random() < p_a
        p_winner = p_a if a_wins else 1.0 - p_a
        confidence = 1.0 + 4.0 * max(0.0, 2.0 * p_winner - 1.0)
        justification = _feature_justification(request, a_wins, favoured=p_winner >= 0.5)
        return Judgement(
            winner="Essay A" if a_wins else "Essay B",
            confidence=round(confidence, 2),
            justification=justification,
            error=None,
            provider=MOCK_PROVIDER,
            model=TEXT_FEATURES_MODEL,
            prompt_tokens=_mock_prompt_tokens(request),
            completion_tokens=20 + _estimate_tokens(justification),
            cost_usd=0.0,
            response_time_ms=0,
        )


_FEATURE_PHRASES = {
    "length": "a more fully developed text",
    "vocabulary range": "a wider vocabulary",
    "word length": "more precise, advanced words",
    "long words": "more advanced vocabulary",
    "sentence length": "better-controlled sentences",
    "sentence variety": "more varied sentence structure",
    "linking words": "clearer linking between ideas",
    "paragraphing": "clearer paragraphing",
    "spelling": "fewer spelling errors",
    "lowercase i": "correct capital 'I'",
    "sentence capitals": "sentences that start with capital letters",
}


def _feature_justification(request: JudgeRequest, a_wins: bool, *, favoured: bool) -> str:
    points_a = feature_points(text_features(request.essay_a_text))
    points_b = feature_points(text_features(request.essay_b_text))
    winner, loser = (points_a, points_b) if a_wins else (points_b, points_a)
    decisive = max(winner, key=lambda k: winner[k] - loser[k])
    label, other = ("Essay A", "Essay B") if a_wins else ("Essay B", "Essay A")
    score_w, score_l = sum(winner.values()), sum(loser.values())
    lead = "is stronger" if favoured else "is preferred on a close call"
    text = (
        f"{label} {lead} (text-feature score {score_w:.2f} vs {score_l:.2f} for {other}); "
        f"decisive feature: {_FEATURE_PHRASES[decisive]}."
    )
    return text[:MAX_JUSTIFICATION_CHARS]


class CoinFlipJudge:
    """Deterministic 50/50 judge: the winner comes from a hash of seed and texts only."""

    name = "coin_flip"

    def __init__(self, seed: int = 0) -> None:
        self.seed = seed

    async def judge(self, request: JudgeRequest) -> Judgement:
        """Flip a seeded coin for this pair."""
        a_wins = _pair_rng(self.seed, request, self.name).random() < 0.5
        justification = f"{'Essay A' if a_wins else 'Essay B'} chosen by a seeded coin flip."
        return Judgement(
            winner="Essay A" if a_wins else "Essay B",
            confidence=1.0,
            justification=justification,
            error=None,
            provider=MOCK_PROVIDER,
            model=COIN_FLIP_MODEL,
            prompt_tokens=_mock_prompt_tokens(request),
            completion_tokens=20 + _estimate_tokens(justification),
            cost_usd=0.0,
            response_time_ms=0,
        )


# --------------------------------------------------------------------------- HTTP LLM judge

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
        prompt_tokens = _estimate_tokens(body.get("system"), *_message_texts(body))
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
            completion_tokens = used_completion or _estimate_tokens(text)
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


# --------------------------------------------------------------------------- factory

JUDGE_NAMES: tuple[str, ...] = ("text_features", "coin_flip", "llm_http")


def make_judge(name: str = "text_features", seed: int = 0) -> Judge:
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
