"""The runner against a CJ API that behaves as HuleEdu HEAD does (contract H.1-H.3).

The reference CJ API's ``huleedu_head_quirks`` fault knob turns on HuleEdu's current bugs:
generic 500s for every admin error, admin writes accepted but not persisted, HTTP-date
datetimes. These scenarios check the runner copes with each as it must against the real service.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from pytest_eng5.errors import AnchorRegistrationError, PreflightNotFoundError

pytestmark = pytest.mark.eng5_scenario("huleedu-head")


@pytest.fixture
def huleedu_head(clean_faults: Any) -> Any:
    """The stack, with the CJ API in HuleEdu HEAD quirk mode (cleared afterwards)."""
    clean_faults.set_faults("cj-api", huleedu_head_quirks=True)
    return clean_faults


def test_plan_reads_http_date_instructions(eng5_runner_factory, huleedu_head, sample) -> None:
    result = eng5_runner_factory(**sample).plan()
    assert result.grade_scale == "eng5_np_legacy_9_step"
    assert any("student prompt present" in m for m in result.messages)


def test_unknown_assignment_is_explained_as_one_of_three_causes(
    eng5_runner_factory, huleedu_head, request_watch, sample
) -> None:
    unknown = str(uuid.uuid4())
    runner = eng5_runner_factory(**{**sample, "assignment_id": unknown})
    with pytest.raises(PreflightNotFoundError) as info:
        runner.execute()
    # HEAD answers 500, not 404: the runner names the three causes, then tells them apart
    # with its local checks (the token works for the instruction list).
    assert "HTTP 500" in str(info.value)
    assert "one of: auth, not found, server fault" in str(info.value)
    assert "most likely not found" in str(info.value)
    assert info.value.next_step
    assert request_watch.new_requests() == []


def test_register_anchors_fails_when_accepted_but_not_persisted(
    eng5_runner_factory, clean_faults, make_assignment, sample
) -> None:
    bare = make_assignment(with_anchors=False)  # seeded before the quirks: HEAD keeps this row
    clean_faults.set_faults("cj-api", huleedu_head_quirks=True)
    runner = eng5_runner_factory(**{**sample, "assignment_id": bare})
    with pytest.raises(AnchorRegistrationError) as info:
        runner.register_anchors()
    assert "accepts admin writes without persisting them" in str(info.value)
    assert "CJ build that commits its admin writes" in info.value.next_step
    assert len(info.value.pending) == 12
    result = runner.last_result
    assert result.outcome != "registered"
    assert len(result.registration["not_persisted"]) == 12
    assert result.anchors_in_cj == 0
    assert any("ACCEPTED BUT NOT PERSISTED" in m for m in result.messages)


def test_execute_completes_against_head(
    eng5_runner_factory, huleedu_head, sample, own_cache
) -> None:
    result = eng5_runner_factory(**sample, **own_cache).execute()
    assert result.outcome == "completed"
    assert result.grade_scale == "eng5_np_legacy_9_step"
