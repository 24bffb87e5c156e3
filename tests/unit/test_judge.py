"""The reference CJ worker's judges: text features, coin flip, HTTP LLM, factory."""

from __future__ import annotations

import asyncio
import itertools
import socket
import statistics
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import choix
import pytest
import uvicorn
from scipy.stats import kendalltau
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from pytest_eng5.errors import ConfigurationError
from pytest_eng5.redact import MASK, redact
from pytest_eng5.reference.judge import (
    DEFAULT_RUBRIC,
    DEFAULT_SYSTEM_PROMPT,
    MAX_JUSTIFICATION_CHARS,
    CoinFlipJudge,
    Judge,
    Judgement,
    JudgeRequest,
    LlmHttpJudge,
    LlmResponseError,
    TextFeaturesJudge,
    make_judge,
    parse_llm_answer,
    quality_score,
)
from pytest_eng5.sample_data import SAMPLE_ASSETS, read_sample_text

LEGACY_SCALE = ["F+", "E-", "E+", "D-", "D+", "C-", "C+", "B", "A"]
ESSAY_SUFFIXES = {".docx", ".txt", ".md"}

WEAK_TEXT = (
    "i like phones. phones is good. i have phone in school and i use it alot becaus it is fun. "
    "my frend have phone to. thay play games. i dont now more."
)
STRONG_TEXT = (
    "Phones in School\n\n"
    "Although smartphones can undoubtedly distract students, a complete ban would, in my "
    "opinion, be counterproductive. Schools are supposed to prepare young people for adult "
    "life, and adults must learn to manage technology responsibly.\n\n"
    "Furthermore, phones offer considerable educational benefits. For example, students can "
    "consult reliable dictionaries, record interviews or practise vocabulary with carefully "
    "designed applications. Consequently, removing them entirely would deprive teachers of a "
    "remarkably flexible tool.\n\n"
    "Nevertheless, clear rules are essential. Phones should remain silent during ordinary "
    "lessons unless the teacher decides otherwise, whereas breaks should be left to students."
)


def _essays(folder: str) -> list[Path]:
    return sorted(p for p in (SAMPLE_ASSETS / folder).iterdir() if p.suffix in ESSAY_SUFFIXES)


ANCHOR_FILES = _essays("anchor_essays")
ANCHOR_TEXTS = [read_sample_text(p) for p in ANCHOR_FILES]
ANCHOR_GRADES = [LEGACY_SCALE.index(p.stem.rsplit("_", 1)[-1]) for p in ANCHOR_FILES]
STUDENT_TEXTS = [read_sample_text(p) for p in _essays("student_essays")]


def _anchor(grade: str) -> str:
    return ANCHOR_TEXTS[ANCHOR_GRADES.index(LEGACY_SCALE.index(grade))]


async def _judge_all_pairs(judge: Judge, texts: list[str]) -> list[tuple[int, int]]:
    """Judge every pair once (A = earlier index); return (winner, loser) index pairs."""
    outcomes = []
    for a, b in itertools.combinations(range(len(texts)), 2):
        judgement = await judge.judge(JudgeRequest(texts[a], texts[b]))
        assert judgement.error is None
        outcomes.append((a, b) if judgement.winner == "Essay A" else (b, a))
    return outcomes


# --------------------------------------------------------------------------- quality score


def test_quality_score_orders_clearly_better_over_clearly_worse() -> None:
    assert quality_score(STRONG_TEXT) > quality_score(WEAK_TEXT) + 3
    assert quality_score(_anchor("A")) > quality_score(_anchor("F+")) + 5
    assert quality_score(_anchor("C-")) > quality_score(_anchor("E-"))


def test_learner_errors_lower_the_score() -> None:
    clean = "I think phones are useful because I can check facts. My friends agree with me."
    misspelt = "I think phones are useful becaus I can check facts. My frends agree whit me."
    lowercase_i = "i think phones are useful because i can check facts. my friends agree with me."
    assert quality_score(misspelt) < quality_score(clean)
    assert quality_score(lowercase_i) < quality_score(clean)


def test_anchor_scores_rise_with_the_expert_grade() -> None:
    scores = [quality_score(text) for text in ANCHOR_TEXTS]
    tau = kendalltau(ANCHOR_GRADES, scores).statistic
    assert tau >= 0.8, f"tau-b between grade and raw score is {tau:.3f}"


def test_students_spread_over_the_anchor_range() -> None:
    scores = [quality_score(text) for text in STUDENT_TEXTS]
    assert min(scores) < quality_score(_anchor("E-"))
    assert max(scores) > quality_score(_anchor("C-"))
    assert statistics.pstdev(scores) > 2.0
    # the students fill the low, middle and high parts of the anchor range
    low, high = quality_score(_anchor("E+")), quality_score(_anchor("C-"))
    assert sum(s < low for s in scores) >= 3
    assert sum(low <= s < high for s in scores) >= 3
    assert sum(s >= high for s in scores) >= 3


# --------------------------------------------------------------------------- text-features judge


@pytest.mark.asyncio
async def test_text_features_judge_is_deterministic() -> None:
    request = JudgeRequest(_anchor("C+"), _anchor("B"), prompt_text="task")
    first = await TextFeaturesJudge(seed=3).judge(request)
    again = await TextFeaturesJudge(seed=3).judge(request)
    assert first == again
    assert first.provider == "mock"
    assert first.model == "eng5-text-features-v1"


@pytest.mark.asyncio
async def test_close_pairs_depend_on_the_seed_and_clear_pairs_do_not() -> None:
    close = JudgeRequest(_anchor("C+"), _anchor("B"))
    clear = JudgeRequest(_anchor("F+"), _anchor("A"))
    close_winners = {(await TextFeaturesJudge(seed=s).judge(close)).winner for s in range(30)}
    clear_winners = {(await TextFeaturesJudge(seed=s).judge(clear)).winner for s in range(30)}
    assert close_winners == {"Essay A", "Essay B"}
    assert clear_winners == {"Essay B"}


@pytest.mark.asyncio
async def test_judgement_fields() -> None:
    judge = TextFeaturesJudge()
    clear = await judge.judge(JudgeRequest(_anchor("A"), _anchor("F+"), prompt_text="task"))
    close = await judge.judge(JudgeRequest(_anchor("B"), _anchor("C+")))
    assert clear.winner == "Essay A"
    assert clear.confidence is not None
    assert close.confidence is not None
    assert 1.0 <= close.confidence < clear.confidence <= 5.0
    assert clear.justification is not None
    assert len(clear.justification) <= MAX_JUSTIFICATION_CHARS
    assert "Essay A" in clear.justification
    assert "decisive feature" in clear.justification
    assert clear.prompt_tokens > 300
    assert clear.completion_tokens > 0
    assert clear.cost_usd == 0.0


def test_negative_noise_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="noise"):
        TextFeaturesJudge(noise=-1)


def test_noise_free_judge_follows_the_score() -> None:
    judge = TextFeaturesJudge(noise=0)
    assert judge.probability_a_wins(STRONG_TEXT, WEAK_TEXT) == 1.0
    assert judge.probability_a_wins(WEAK_TEXT, STRONG_TEXT) == 0.0


@pytest.mark.asyncio
@pytest.mark.parametrize("seed", range(5))
async def test_bradley_terry_on_all_anchor_pairs_recovers_the_expert_order(seed: int) -> None:
    outcomes = await _judge_all_pairs(TextFeaturesJudge(seed=seed), ANCHOR_TEXTS)
    assert len(outcomes) == 66
    scores = choix.ilsr_pairwise(len(ANCHOR_TEXTS), outcomes, alpha=0.01)
    tau = kendalltau(ANCHOR_GRADES, scores).statistic
    assert tau >= 0.75, f"seed {seed}: Kendall tau-b {tau:.3f} between grade and BT score"


@pytest.mark.asyncio
async def test_bradley_terry_alignment_holds_on_average_across_seeds() -> None:
    taus = []
    for seed in range(10):
        outcomes = await _judge_all_pairs(TextFeaturesJudge(seed=seed), ANCHOR_TEXTS)
        scores = choix.ilsr_pairwise(len(ANCHOR_TEXTS), outcomes, alpha=0.01)
        taus.append(kendalltau(ANCHOR_GRADES, scores).statistic)
    assert min(taus) >= 0.6
    assert statistics.fmean(taus) >= 0.8


# --------------------------------------------------------------------------- coin flip


@pytest.mark.asyncio
async def test_coin_flip_is_balanced_and_ignores_quality() -> None:
    texts = ANCHOR_TEXTS + STUDENT_TEXTS
    outcomes = await _judge_all_pairs(CoinFlipJudge(seed=0), texts)
    a_share = sum(winner < loser for winner, loser in outcomes) / len(outcomes)
    assert 0.45 <= a_share <= 0.55, f"Essay A won {a_share:.1%} of {len(outcomes)} pairs"
    anchor_outcomes = await _judge_all_pairs(CoinFlipJudge(seed=0), ANCHOR_TEXTS)
    scores = choix.ilsr_pairwise(len(ANCHOR_TEXTS), anchor_outcomes, alpha=0.01)
    assert kendalltau(ANCHOR_GRADES, scores).statistic < 0.6


@pytest.mark.asyncio
async def test_coin_flip_is_deterministic_per_seed() -> None:
    request = JudgeRequest(_anchor("A"), _anchor("B"))
    assert await CoinFlipJudge(1).judge(request) == await CoinFlipJudge(1).judge(request)
    winners = {(await CoinFlipJudge(s).judge(request)).winner for s in range(20)}
    assert winners == {"Essay A", "Essay B"}


# --------------------------------------------------------------------------- factory


def test_make_judge_builds_the_named_judges(monkeypatch: pytest.MonkeyPatch) -> None:
    assert isinstance(make_judge("text_features", seed=2), TextFeaturesJudge)
    assert isinstance(make_judge("coin_flip"), CoinFlipJudge)
    assert make_judge("coin_flip", seed=7).name == "coin_flip"
    monkeypatch.setenv("ENG5_JUDGE_LLM_URL", "http://127.0.0.1:9/v1/messages")
    monkeypatch.setenv("ENG5_JUDGE_LLM_MODEL", "claude-test")
    monkeypatch.setenv("ENG5_JUDGE_LLM_STYLE", "anthropic")
    monkeypatch.setenv("ENG5_JUDGE_LLM_API_KEY", "sk-factory-secret-123")
    judge = make_judge("llm_http")
    assert isinstance(judge, LlmHttpJudge)
    assert judge.style == "anthropic"
    assert judge.model == "claude-test"
    assert redact("key=sk-factory-secret-123") == f"key={MASK}"


def test_make_judge_rejects_unknown_names() -> None:
    with pytest.raises(ConfigurationError) as caught:
        make_judge("gpt-oracle")
    message = str(caught.value)
    for name in ("text_features", "coin_flip", "llm_http"):
        assert name in message
    assert caught.value.next_step


def test_llm_judge_without_url_is_a_configuration_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ENG5_JUDGE_LLM_URL", raising=False)
    with pytest.raises(ConfigurationError, match="ENG5_JUDGE_LLM_URL"):
        make_judge("llm_http")
    with pytest.raises(ConfigurationError, match="style"):
        LlmHttpJudge("http://127.0.0.1:1/x", "m", style="gemini")


# --------------------------------------------------------------------------- answer parsing


@pytest.mark.parametrize(
    ("text", "winner", "confidence"),
    [
        ('{"winner": "A", "justification": "clearer", "confidence": 4}', "Essay A", 4.0),
        (
            '```json\n{"winner": "Essay B", "justification": "x", "confidence": 2.5}\n```',
            "Essay B",
            2.5,
        ),
        ('Sure! {"winner": "b", "justification": "x", "confidence": 9}', "Essay B", 5.0),
    ],
)
def test_parse_llm_answer(text: str, winner: str, confidence: float) -> None:
    assert parse_llm_answer(text)[:2] == (winner, confidence)


@pytest.mark.parametrize(
    "text",
    [
        "I prefer the first essay.",
        '{"winner": "C", "justification": "x", "confidence": 3}',
        '{"winner": "A", "justification": "x"}',
        '{"winner": "A", "confidence": "high"}',
        "{not json}",
    ],
)
def test_parse_llm_answer_rejects_unusable_answers(text: str) -> None:
    with pytest.raises(LlmResponseError):
        parse_llm_answer(text)


# --------------------------------------------------------------------------- HTTP LLM judge

API_KEY = "sk-test-llm-key-0123456789"


@dataclass
class FakeLlmServer:
    base_url: str
    calls: list[dict[str, Any]] = field(default_factory=list)


def _openai_answer(content: str) -> dict[str, Any]:
    return {
        "choices": [{"message": {"role": "assistant", "content": content}}],
        "usage": {"prompt_tokens": 321, "completion_tokens": 17},
    }


def _build_app(calls: list[dict[str, Any]]) -> Starlette:
    async def record(request: Request) -> dict[str, Any]:
        call = {"path": request.url.path, "headers": dict(request.headers)}
        call["body"] = await request.json()
        calls.append(call)
        return call

    async def openai_ok(request: Request) -> Response:
        await record(request)
        answer = '```json\n{"winner": "B", "justification": "B is clearer.", "confidence": 4}\n```'
        return JSONResponse(_openai_answer(answer))

    async def anthropic_ok(request: Request) -> Response:
        await record(request)
        text = '{"winner": "A", "justification": "A argues better.", "confidence": 5}'
        return JSONResponse(
            {
                "content": [{"type": "text", "text": text}],
                "usage": {"input_tokens": 300, "output_tokens": 20},
            }
        )

    async def overloaded(request: Request) -> Response:
        call = await record(request)
        # echo the credentials back, as some proxies do, to prove the error text is redacted
        return PlainTextResponse(f"overloaded; auth={call['headers'].get('authorization')}", 503)

    async def rambling(request: Request) -> Response:
        await record(request)
        return JSONResponse(_openai_answer("I prefer the first essay, it is nicer."))

    async def wrong_shape(request: Request) -> Response:
        await record(request)
        return JSONResponse({"id": "x"})

    async def slow(request: Request) -> Response:
        await record(request)
        await asyncio.sleep(2.0)  # the behaviour under test: an answer slower than the timeout
        return JSONResponse(_openai_answer('{"winner": "A", "confidence": 3}'))

    return Starlette(
        routes=[
            Route("/openai/v1/chat/completions", openai_ok, methods=["POST"]),
            Route("/anthropic/v1/messages", anthropic_ok, methods=["POST"]),
            Route("/overloaded", overloaded, methods=["POST"]),
            Route("/rambling", rambling, methods=["POST"]),
            Route("/wrong-shape", wrong_shape, methods=["POST"]),
            Route("/slow", slow, methods=["POST"]),
        ]
    )


@pytest.fixture(scope="module")
def llm_server() -> Iterator[FakeLlmServer]:
    calls: list[dict[str, Any]] = []
    config = uvicorn.Config(
        _build_app(calls),
        host="127.0.0.1",
        port=0,
        log_level="warning",
        lifespan="off",
        timeout_graceful_shutdown=3,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="fake-llm-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            pytest.fail("the local fake LLM server did not start within 10 s")
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield FakeLlmServer(f"http://127.0.0.1:{port}", calls)
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        assert not thread.is_alive(), "the fake LLM server did not stop within 10 s"


def _request(**overrides: Any) -> JudgeRequest:
    fields: dict[str, Any] = {
        "essay_a_text": "ESSAY-A-TEXT about phones.",
        "essay_b_text": "ESSAY-B-TEXT about phones.",
        "prompt_text": "TASK: write about phones in school.",
    }
    fields.update(overrides)
    return JudgeRequest(**fields)


@pytest.mark.asyncio
async def test_openai_style_sends_overrides_and_parses_the_answer(
    llm_server: FakeLlmServer,
) -> None:
    judge = LlmHttpJudge(
        f"{llm_server.base_url}/openai/v1/chat/completions", "gpt-default", api_key=API_KEY
    )
    before = len(llm_server.calls)
    request = _request(
        system_prompt="SYSTEM-OVERRIDE",
        rubric="RUBRIC-OVERRIDE",
        model="gpt-override",
        temperature=0.2,
        max_tokens=99,
    )
    judgement = await judge.judge(request)
    assert judgement == Judgement(
        winner="Essay B",
        confidence=4.0,
        justification="B is clearer.",
        error=None,
        provider="openai",
        model="gpt-override",
        prompt_tokens=321,
        completion_tokens=17,
        cost_usd=0.0,
        response_time_ms=judgement.response_time_ms,
    )
    (call,) = llm_server.calls[before:]
    assert call["headers"]["authorization"] == f"Bearer {API_KEY}"
    body = call["body"]
    assert body["model"] == "gpt-override"
    assert body["temperature"] == 0.2
    assert body["max_tokens"] == 99
    system, user = body["messages"]
    assert system == {"role": "system", "content": "SYSTEM-OVERRIDE"}
    assert user["role"] == "user"
    for part in ("RUBRIC-OVERRIDE", "ESSAY-A-TEXT", "ESSAY-B-TEXT", "TASK: write", '"winner"'):
        assert part in user["content"]
    assert user["content"].index("ESSAY-A-TEXT") < user["content"].index("ESSAY-B-TEXT")


@pytest.mark.asyncio
async def test_defaults_apply_without_overrides(llm_server: FakeLlmServer) -> None:
    judge = LlmHttpJudge(f"{llm_server.base_url}/openai/v1/chat/completions", "gpt-default")
    before = len(llm_server.calls)
    judgement = await judge.judge(_request())
    assert judgement.model == "gpt-default"
    (call,) = llm_server.calls[before:]
    assert "authorization" not in call["headers"]
    assert "temperature" not in call["body"]
    system, user = call["body"]["messages"]
    assert system["content"] == DEFAULT_SYSTEM_PROMPT
    assert DEFAULT_RUBRIC in user["content"]


@pytest.mark.asyncio
async def test_anthropic_style(llm_server: FakeLlmServer) -> None:
    judge = LlmHttpJudge(
        f"{llm_server.base_url}/anthropic/v1/messages",
        "claude-default",
        api_key=API_KEY,
        style="anthropic",
    )
    before = len(llm_server.calls)
    judgement = await judge.judge(_request(system_prompt="SYSTEM-OVERRIDE", rubric="RUBRIC-X"))
    assert judgement.winner == "Essay A"
    assert judgement.confidence == 5.0
    assert judgement.justification == "A argues better."
    assert (judgement.provider, judgement.prompt_tokens, judgement.completion_tokens) == (
        "anthropic",
        300,
        20,
    )
    (call,) = llm_server.calls[before:]
    assert call["headers"]["x-api-key"] == API_KEY
    assert call["headers"]["anthropic-version"]
    assert call["body"]["system"] == "SYSTEM-OVERRIDE"
    (message,) = call["body"]["messages"]
    assert message["role"] == "user"
    assert "RUBRIC-X" in message["content"]
    assert call["body"]["max_tokens"] > 0


@pytest.mark.asyncio
async def test_error_status_becomes_a_redacted_error_judgement(llm_server: FakeLlmServer) -> None:
    judge = LlmHttpJudge(f"{llm_server.base_url}/overloaded", "gpt-x", api_key=API_KEY)
    judgement = await judge.judge(_request())
    assert judgement.winner is None
    assert judgement.confidence is None
    assert judgement.justification is None
    assert judgement.error is not None
    assert "503" in judgement.error
    assert API_KEY not in judgement.error
    assert MASK in judgement.error


@pytest.mark.asyncio
@pytest.mark.parametrize("path", ["/rambling", "/wrong-shape"])
async def test_unusable_answer_becomes_an_error_judgement(
    llm_server: FakeLlmServer, path: str
) -> None:
    judgement = await LlmHttpJudge(f"{llm_server.base_url}{path}", "gpt-x").judge(_request())
    assert judgement.winner is None
    assert judgement.error is not None
    assert "unparseable" in judgement.error


@pytest.mark.asyncio
async def test_timeout_becomes_an_error_judgement(llm_server: FakeLlmServer) -> None:
    judge = LlmHttpJudge(f"{llm_server.base_url}/slow", "gpt-x", timeout_s=0.2)
    judgement = await judge.judge(_request())
    assert judgement.winner is None
    assert judgement.error is not None
    assert "timeout" in judgement.error


@pytest.mark.asyncio
async def test_refused_connection_becomes_an_error_judgement() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    # the port is closed again, so nothing listens there
    judgement = await LlmHttpJudge(f"http://127.0.0.1:{port}/v1", "gpt-x").judge(_request())
    assert judgement.winner is None
    assert judgement.error is not None
    assert "transport" in judgement.error
