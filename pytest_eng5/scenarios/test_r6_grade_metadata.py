"""R6: CJ owns grade scales and anchor grades; the harness checks against them, never redefines."""

from __future__ import annotations

import pytest

from pytest_eng5.errors import AnchorsMissingError, InventoryError

pytestmark = pytest.mark.eng5_scenario("R6")

ESSAY = "My town has a small square where people meet on Saturdays. " * 4


def test_grade_not_on_the_assignment_scale_is_rejected_listing_the_scale(
    eng5_runner_factory, eng5_stack, make_assignment, sample, asset_folder
) -> None:
    bare = make_assignment(with_anchors=False)
    assets = asset_folder(extra_anchors={"anchor_essay_eng_5_17_vt_013_A+.txt": ESSAY})
    uploads = eng5_stack.content_uploads()
    runner = eng5_runner_factory(**{**sample, "assignment_id": bare, "assets": assets})
    with pytest.raises(InventoryError) as info:
        runner.register_anchors()
    message = str(info.value)
    assert "anchor_essay_eng_5_17_vt_013_A+.txt" in message
    assert "F+, E-, E+, D-, D+, C-, C+, B, A" in message
    assert eng5_stack.content_uploads() == uploads, "nothing was registered"


def test_the_scale_comes_from_cj_not_from_the_harness(
    eng5_runner_factory, make_assignment, sample
) -> None:
    national = make_assignment(with_anchors=False, grade_scale="eng5_np_national_9_step")
    runner = eng5_runner_factory(**{**sample, "assignment_id": national})
    with pytest.raises(AnchorsMissingError) as info:
        runner.plan()
    assert "eng5_np_national_9_step" in str(info.value)
    assert runner.last_result is not None
    assert runner.last_result.grade_scale == "eng5_np_national_9_step"
