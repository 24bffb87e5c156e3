"""R1: inputs that cannot yield a valid CJ batch fail before any upload or publish."""

from __future__ import annotations

import pytest

from pytest_eng5.errors import CapacityError
from pytest_eng5.settings import SettingsError

pytestmark = pytest.mark.eng5_scenario("R1")


def assert_nothing_happened(stack, watch, uploads_before: int) -> None:
    assert stack.content_uploads() == uploads_before, "an essay was uploaded"
    assert watch.new_requests() == [], "a CJ request was published"


def test_max_comparisons_of_one_fails_with_the_fix(
    eng5_runner_factory, eng5_stack, request_watch, sample
) -> None:
    uploads = eng5_stack.content_uploads()
    with pytest.raises(SettingsError) as info:
        eng5_runner_factory(**{**sample, "max_comparisons": 1})
    # a factory keyword is named as it was given (the CLI flag is named for a CLI value)
    assert "eng5_runner_factory: max_comparisons=1" in str(info.value)
    assert "set it to at least 2" in str(info.value)
    assert_nothing_happened(eng5_stack, request_watch, uploads)


def test_budget_that_cannot_connect_the_essays_fails_before_upload(
    eng5_runner_factory, eng5_stack, request_watch, sample
) -> None:
    uploads = eng5_stack.content_uploads()
    runner = eng5_runner_factory(**{**sample, "max_comparisons": 20})
    with pytest.raises(CapacityError) as info:
        runner.execute()
    assert "a budget of 20 comparisons cannot connect 36 essays" in str(info.value)
    assert "24 students + 12 anchors" in str(info.value)
    assert "--eng5-max-comparisons to at least 35" in info.value.next_step
    assert_nothing_happened(eng5_stack, request_watch, uploads)


def test_zero_anchors_fails(eng5_runner_factory, eng5_stack, request_watch, asset_folder) -> None:
    uploads = eng5_stack.content_uploads()
    runner = eng5_runner_factory(assets=asset_folder(anchors=0), max_comparisons=10)
    with pytest.raises(CapacityError, match="no anchors available") as info:
        runner.dry_run()
    assert "add more anchors" in info.value.next_step
    assert_nothing_happened(eng5_stack, request_watch, uploads)


def test_zero_students_fails_even_with_cj_anchors(
    eng5_runner_factory, eng5_stack, request_watch, sample, asset_folder
) -> None:
    uploads = eng5_stack.content_uploads()
    runner = eng5_runner_factory(**{**sample, "assets": asset_folder(students=0)})
    with pytest.raises(CapacityError, match="no student essays available") as info:
        runner.execute()
    assert "anchors: 12" in str(info.value)
    assert_nothing_happened(eng5_stack, request_watch, uploads)


def test_anchor_align_with_one_anchor_fails(
    eng5_runner_factory, eng5_stack, request_watch, asset_folder
) -> None:
    uploads = eng5_stack.content_uploads()
    runner = eng5_runner_factory(assets=asset_folder(anchors=1))
    with pytest.raises(CapacityError, match="at least 2 anchors, found 1"):
        runner.anchor_align()
    assert_nothing_happened(eng5_stack, request_watch, uploads)


def test_plan_checks_capacity_too(eng5_runner_factory, asset_folder) -> None:
    runner = eng5_runner_factory(assets=asset_folder(students=0))
    with pytest.raises(CapacityError, match="add more student essays"):
        runner.plan()
