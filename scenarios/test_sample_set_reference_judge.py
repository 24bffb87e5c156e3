"""Facts of the bundled sample set on the reference stack with the text-feature judge.

They are not true of every asset folder or judge, so they run only in that configuration and
are not part of the main job; elsewhere they skip with the reason.
"""

from __future__ import annotations

import pytest

from pytest_eng5.core import DEFAULT_JUDGE
from pytest_eng5.sample_data import SAMPLE_ASSETS

pytestmark = pytest.mark.eng5_scenario("sample-set")

SAMPLE_STUDENTS = 24
SAMPLE_ANCHORS = 12


@pytest.fixture
def sample_set_on_the_reference_judge(eng5_settings, eng5_stack) -> None:
    if eng5_settings.assets != SAMPLE_ASSETS:
        pytest.skip(
            f"sample-set facts: --eng5-assets is {eng5_settings.assets}, not the sample set"
        )
    if not eng5_stack.is_reference or eng5_settings.judge != DEFAULT_JUDGE:
        pytest.skip(f"reference-judge facts: needs the reference stack with {DEFAULT_JUDGE}")


@pytest.mark.usefixtures("sample_set_on_the_reference_judge")
def test_the_text_feature_judge_gives_a_usable_scale_of_the_24_students(
    eng5_runner_factory, eng5_sample_assignment
) -> None:
    result = eng5_runner_factory(
        assignment_id=eng5_sample_assignment.assignment_id,
        course_id=eng5_sample_assignment.course_id,
        batch_label="eng5-sample-quality",
    ).execute()
    assert result.students == SAMPLE_STUDENTS
    assert result.anchors_in_cj == SAMPLE_ANCHORS
    assert result.comparisons == 120, "CJ's cap is spent"
    assert result.statistics["ssr"] >= 0.5, "120 judgements give a usable scale"


@pytest.mark.usefixtures("sample_set_on_the_reference_judge")
def test_the_text_feature_judge_orders_the_sample_anchors(eng5_runner_factory) -> None:
    result = eng5_runner_factory(
        batch_label="eng5-sample-anchor-quality", max_comparisons=66
    ).anchor_align()
    assert result.anchors_sent == SAMPLE_ANCHORS
    assert result.alignment["tau_b"] >= 0.6, "the text-feature judge orders the anchors"
