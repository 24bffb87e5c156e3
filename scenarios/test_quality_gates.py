"""Quality gates: a run below a configured SSR / N_CR / tau-b, or with a position bias beyond
the configured limit, fails with the value and the threshold."""

from __future__ import annotations

import asyncio
import json

import pytest

from pytest_eng5.errors import GateError
from pytest_eng5.runner.seeding import seed_assignment_at
from pytest_eng5.sample_data import SAMPLE_ASSETS, SAMPLE_COURSE_ID

pytestmark = pytest.mark.eng5_scenario("gates")


def test_ssr_gate_fails_with_the_value_and_the_threshold(
    eng5_runner_factory, sample, own_cache
) -> None:
    runner = eng5_runner_factory(**sample, **own_cache, min_ssr=0.99)
    with pytest.raises(GateError) as info:
        runner.execute()
    result = runner.last_result
    assert result.outcome == "completed", "the batch itself completed"
    ssr = result.statistics["ssr"]
    assert f"SSR {ssr:.3f} is below the gate 0.990" in str(info.value)
    doc = json.loads(result.artefact_path.read_text())
    assert doc["statistics"]["ssr"] == ssr


def test_met_gates_pass(eng5_runner_factory, sample, own_cache) -> None:
    """A tau-b gate (e.g. from the ini file) does not fail an execute run: tau-b is a fact of
    anchor-align runs only."""
    settings = {**sample, **own_cache, "max_comparisons": 120, "min_n_cr": 5.0}
    result = eng5_runner_factory(**settings, min_tau_b=0.5).execute()
    assert result.outcome == "completed"
    assert result.statistics["n_cr"] >= 5.0
    assert any("applies to anchor-align runs only" in m for m in result.messages)


def test_tau_b_gate_on_anchor_alignment(eng5_runner_factory) -> None:
    runner = eng5_runner_factory(max_comparisons=66, min_tau_b=0.999)
    with pytest.raises(GateError, match=r"Kendall tau-b 0\.\d{3} is below the gate 0\.999"):
        runner.anchor_align()
    assert (runner.last_result.evidence_dir / "alignment.md").is_file()


@pytest.fixture(scope="module")
def roomy_stack(eng5_stack_factory):
    """A stack whose CJ allows 400 comparisons (the session's allows HuleEdu's 120), with the
    sample assignment seeded."""
    stack = eng5_stack_factory(cj_max_comparisons=400)
    asyncio.run(seed_assignment_at(stack.cj_url, stack.env, SAMPLE_ASSETS, assignment_id="roomy"))
    return stack


def test_position_bias_gate_catches_a_judge_that_prefers_the_first_essay(
    eng5_stack_runner_factory, roomy_stack, own_cache
) -> None:
    # The reference provider's "first-bias" mock model adds a logit of 0.8 for essay A: about
    # 0.65 of the wins go to essay A on the sample set (SD of the share ≈ 0.024 at 400, so a
    # share within the gate's 0.02 of a half is five SDs away).
    runner = eng5_stack_runner_factory(
        roomy_stack,
        **own_cache,
        assignment_id="roomy",
        course_id=SAMPLE_COURSE_ID,
        max_comparisons=400,
        max_position_bias=0.02,
        llm_model="eng5-text-features-first-bias",
    )
    with pytest.raises(GateError, match="first-presented essay won") as info:
        runner.execute()
    statistics = runner.last_result.statistics
    assert statistics["position"]["n"] > 300, "the roomy stack's cap let the budget through"
    assert statistics["position_bias"] > 0.52
    assert statistics["position_bias_ci_low"] < statistics["position_bias"]
    assert f"won {statistics['position_bias']:.3f} of the comparisons" in str(info.value)


def test_position_bias_is_recorded_and_a_loose_gate_passes(
    eng5_runner_factory, sample, own_cache
) -> None:
    settings = {**sample, **own_cache, "max_comparisons": 72, "max_position_bias": 0.5}
    result = eng5_runner_factory(**settings).execute()
    position = result.statistics["position"]
    assert position["n"] == result.comparisons - result.failed_comparisons
    assert position["ci_low"] <= position["share"] <= position["ci_high"]
    assert dict(result.properties())["eng5_position_bias"] == str(position["share"])
