"""The reference judge's knobs: temperature, prompts and model change it in a documented way."""

from __future__ import annotations

import pytest

from pytest_eng5.reference.judge import DEFAULT_NOISE, JudgeRequest, TextFeaturesJudge
from pytest_eng5.reference.judge.knobs import (
    DEFAULT_MOCK_MODEL,
    knobs_for,
    noise_factor,
    prompt_weights,
)
from pytest_eng5.reference.judge.text_feature_judge import weighted_score
from pytest_eng5.reference.waves import DEFAULT_LLM_TEMPERATURE, requested_temperature
from pytest_eng5.sample_data import SAMPLE_PROMPTS

STRONG = (
    "Phones in School\n\nAlthough phones can distract students, a complete ban would be a "
    "mistake. Furthermore, students can consult dictionaries and practise vocabulary.\n\n"
    "In conclusion, clear rules are better than a ban."
)
WEAK = "i like phones. phones is good. i use it alot becaus it is fun. my frend have phone to."

# Good language, thin content (one short paragraph) against rich content with learner errors.
ACCURATE_SHORT = (
    "Mobile telephones undoubtedly distract pupils; nevertheless, prohibiting them entirely "
    "would deprive teachers of remarkably versatile instruments for learning."
)
CONTENT_RICH_SLOPPY = (
    "Phones in school\n\nphones is good in school becaus we can search things. for example "
    "we use it in english class.\n\nbut some pepole play games, so teachers dont like it.\n\n"
    "i think we shuld have rules. first of all no phones on tests. secondly phones in the bag "
    "in lessons. finally we can use them in breaks.\n\nin conclusion phones are usefull."
)


def _language_control() -> JudgeRequest:
    return JudgeRequest(
        ACCURATE_SHORT,
        CONTENT_RICH_SLOPPY,
        system_prompt=(SAMPLE_PROMPTS / "system" / "003_language_control.txt").read_text(),
        rubric=(SAMPLE_PROMPTS / "rubric" / "003_language_control.txt").read_text(),
    )


def test_default_request_keeps_the_base_judge() -> None:
    knobs = knobs_for(JudgeRequest(STRONG, WEAK), DEFAULT_NOISE)
    assert knobs.noise == DEFAULT_NOISE
    assert (knobs.position_bias, knobs.language_weight, knobs.content_weight) == (0.0, 1.0, 1.0)
    assert not knobs.fresh_draw
    assert knobs.model == DEFAULT_MOCK_MODEL


@pytest.mark.parametrize(
    ("temperature", "factor"), [(None, 1.0), (0.1, 1.0), (0.0, 0.75), (1.0, 3.25), (2.0, 5.75)]
)
def test_temperature_scales_the_noise(temperature: float | None, factor: float) -> None:
    assert noise_factor(temperature) == pytest.approx(factor)
    request = JudgeRequest(STRONG, WEAK, temperature=temperature)
    assert knobs_for(request, DEFAULT_NOISE).noise == pytest.approx(DEFAULT_NOISE * factor)


def test_higher_temperature_makes_the_stronger_essay_win_less_often() -> None:
    judge = TextFeaturesJudge()
    p = [
        judge.probability_a_wins(
            STRONG, WEAK, knobs_for(JudgeRequest(STRONG, WEAK, temperature=t), 0.6)
        )
        for t in (0.0, 0.1, 1.0, 2.0)
    ]
    assert p == sorted(p, reverse=True)
    assert p[0] > p[-1] > 0.5


@pytest.mark.asyncio
async def test_positive_temperature_draws_per_request_zero_per_pair() -> None:
    judge = TextFeaturesJudge(seed=1)
    close = (ACCURATE_SHORT, CONTENT_RICH_SLOPPY)

    async def winners(temperature: float) -> set[str | None]:
        found = set()
        for k in range(40):
            request = JudgeRequest(*close, temperature=temperature, correlation_id=f"c{k}")
            found.add((await judge.judge(request)).winner)
        return found

    assert len(await winners(0.0)) == 1, "T = 0: the pair decides, not the request"
    assert await winners(2.0) == {"Essay A", "Essay B"}, "T > 0: each request draws afresh"
    again = JudgeRequest(*close, temperature=2.0, correlation_id="same")
    assert await judge.judge(again) == await judge.judge(again)


def test_language_prompts_weight_language_features() -> None:
    assert prompt_weights(JudgeRequest("a", "b")) == (1.0, 1.0)
    language, content = prompt_weights(_language_control())
    assert language > 1.4
    assert content < 0.6
    content_prompt = JudgeRequest(
        "a", "b", system_prompt="Judge the content: ideas, arguments, examples and structure."
    )
    language, content = prompt_weights(content_prompt)
    assert language < 1.0 < content


def test_language_control_prompt_favours_the_accurate_essay() -> None:
    lc = _language_control()

    def margin(request: JudgeRequest) -> float:
        knobs = knobs_for(request, DEFAULT_NOISE)
        return weighted_score(ACCURATE_SHORT, knobs) - weighted_score(CONTENT_RICH_SLOPPY, knobs)

    assert margin(lc) > margin(JudgeRequest(ACCURATE_SHORT, CONTENT_RICH_SLOPPY)) + 3.0


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("model", "direction"),
    [("eng5-text-features-first-bias", 1), ("eng5-text-features-second-bias", -1)],
)
async def test_position_biased_models(model: str, direction: int) -> None:
    judge = TextFeaturesJudge()
    request = JudgeRequest(STRONG, STRONG, model=model)
    p_a = judge.probability_a_wins(STRONG, STRONG, knobs_for(request, 0.6))
    assert (p_a - 0.5) * direction > 0.15
    assert (await judge.judge(request)).model == model


@pytest.mark.asyncio
async def test_weak_model_is_noisier_and_unknown_models_judge_like_the_default() -> None:
    weak = JudgeRequest("a", "b", model="eng5-text-features-weak")
    assert knobs_for(weak, DEFAULT_NOISE).noise == pytest.approx(5 * DEFAULT_NOISE)
    judge = TextFeaturesJudge()
    unknown = JudgeRequest(STRONG, WEAK, model="claude-sonnet-4-5")
    assert (await judge.judge(unknown)).model == DEFAULT_MOCK_MODEL
    assert knobs_for(unknown, 0.6) == knobs_for(JudgeRequest(STRONG, WEAK), 0.6)


def test_a_zero_temperature_override_reaches_the_judge_as_zero() -> None:
    assert requested_temperature({"temperature_override": 0.0}) == 0.0
    assert requested_temperature({"temperature_override": 1.5}) == 1.5
    assert requested_temperature({}) == DEFAULT_LLM_TEMPERATURE
    assert requested_temperature({"temperature_override": None}) == DEFAULT_LLM_TEMPERATURE
