"""R4: anchors are a CJ precondition; execute never uploads or registers them."""

from __future__ import annotations

import pytest

from pytest_eng5.errors import AnchorsMissingError

pytestmark = pytest.mark.eng5_scenario("R4")


def test_no_anchors_fails_with_register_guidance_and_publishes_nothing(
    eng5_runner_factory, eng5_stack, request_watch, make_assignment, sample
) -> None:
    bare = make_assignment(with_anchors=False)
    uploads = eng5_stack.content_uploads()
    runner = eng5_runner_factory(**{**sample, "assignment_id": bare})
    with pytest.raises(AnchorsMissingError) as info:
        runner.execute()
    assert "register" in info.value.next_step.lower()
    assert eng5_stack.content_uploads() == uploads
    assert request_watch.new_requests() == []


def test_after_register_anchors_execute_sends_students_only(
    eng5_runner_factory, eng5_stack, request_watch, make_assignment, sample, own_cache
) -> None:
    bare = make_assignment(with_anchors=False)
    registered = eng5_runner_factory(**{**sample, "assignment_id": bare}).register_anchors()
    assert registered.anchors_in_cj == 12
    assert len(registered.registration["inserted"]) == 12

    uploads = eng5_stack.content_uploads()
    result = eng5_runner_factory(**{**sample, "assignment_id": bare}, **own_cache).execute()
    assert result.outcome == "completed"
    assert eng5_stack.content_uploads() - uploads == 24, "only the 24 students are uploaded"
    (envelope,) = request_watch.new_requests()
    ids = [e["essay_id"] for e in envelope.data["essays_for_cj"]]
    assert len(ids) == 24
    assert not any("anchor" in essay_id for essay_id in ids)
    assert result.projections, "CJ mixed in its anchors, so students got grades"


def test_registering_again_is_idempotent(eng5_runner_factory, make_assignment, sample) -> None:
    bare = make_assignment(with_anchors=False)
    first = eng5_runner_factory(**{**sample, "assignment_id": bare}).register_anchors()
    again = eng5_runner_factory(**{**sample, "assignment_id": bare}).register_anchors()
    assert first.anchors_in_cj == again.anchors_in_cj == 12
    assert again.registration["inserted"] == []
    assert len(again.registration["updated"]) == 12
    assert again.registration["not_persisted"] == []
