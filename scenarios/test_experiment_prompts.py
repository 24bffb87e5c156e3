"""Baseline vs language-control prompts: anchor-align runs on the same anchors and budget."""

import pytest

from pytest_eng5.sample_data import SAMPLE_PROMPTS

pytestmark = [
    pytest.mark.eng5_scenario("experiments"),
    pytest.mark.eng5_variants(
        {
            "baseline": {"system_prompt_file": SAMPLE_PROMPTS / "system" / "001_baseline.txt"},
            "language-control": {
                "system_prompt_file": SAMPLE_PROMPTS / "system" / "003_language_control.txt",
                "rubric_file": SAMPLE_PROMPTS / "rubric" / "003_language_control.txt",
            },
        },
        baseline="baseline",
    ),
]


@pytest.mark.eng5_run(max_comparisons=66, llm_temperature=0.1)
def test_anchor_alignment(eng5_runner):
    result = eng5_runner.anchor_align()
    assert result.outcome == "completed"
