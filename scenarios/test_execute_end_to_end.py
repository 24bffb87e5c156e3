"""The main job: a full ENG5 execute on the sample set, end to end on the configured stack."""

from __future__ import annotations

import json

import pytest

from pytest_eng5.runner.artefact import schema_problems, verify_checksum

pytestmark = [pytest.mark.eng5_execute, pytest.mark.eng5_scenario("execute")]


def test_full_execute_on_the_sample_set(
    eng5_runner_factory, eng5_sample_assignment, request
) -> None:
    runner = eng5_runner_factory(
        assignment_id=eng5_sample_assignment.assignment_id,
        course_id=eng5_sample_assignment.course_id,
        batch_label="eng5-sample-execute",
    )
    result = runner.execute()

    assert result.outcome == "completed"
    assert result.comparisons > 0
    doc = json.loads(result.artefact_path.read_text())
    assert schema_problems(doc) == []
    assert verify_checksum(doc)
    students = [s["essay_id"] for s in doc["inputs"]["students"]]
    assert len(students) == 24
    assert sorted(result.projections) == sorted(students), "every student has a projection"
    assert {p["essay_id"] for p in doc["grade_projections"]} >= set(students)

    properties = dict(request.node.user_properties)
    assert properties["eng5_batch_uuid"] == result.batch_uuid
    assert properties["eng5_outcome"] == "completed"
    for key in ("eng5_ssr", "eng5_n_cr", "eng5_comparisons"):
        assert key in properties
    assert float(properties["eng5_ssr"]) >= 0.5, "120 judgements give a usable scale"
    for name in ("request.json", "events.jsonl", "assessment_run.json", "run.log"):
        assert (result.evidence_dir / name).is_file(), name
