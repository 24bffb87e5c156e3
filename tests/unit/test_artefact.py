"""The assessment_run.json artefact: hydration, schema validity, the one checksum convention."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest
from pydantic import ValidationError

from pytest_eng5.contracts import AssessmentResultV1, LLMComparisonResultV1
from pytest_eng5.core.outcome import Outcome
from pytest_eng5.redact import MASK, register_secret
from pytest_eng5.runner.artefact import (
    build_record,
    record_document,
    schema_problems,
    verify_checksum,
    write_record,
)
from pytest_eng5.runner.collector import CollectedRun
from pytest_eng5.runner.identity import BatchIdentity
from pytest_eng5.runner.record import (
    SCHEMA_PATH,
    RunInputs,
    RunMetadata,
    RunnerStatus,
    RunRecord,
    RunStatistics,
    record_schema,
)
from pytest_eng5.runner.record_sections import fisher_standard_errors

STUDENTS = ["STUDENT-A", "STUDENT-B", "STUDENT-C"]
ANCHOR = "ANCHOR_1_abcdef01"


def _callback(a: str, b: str, winner: str | None, model: str = "m1") -> LLMComparisonResultV1:
    now = datetime.now(UTC).isoformat()
    data: dict[str, Any] = {
        "request_id": str(uuid4()),
        "correlation_id": str(uuid4()),
        "provider": "mock",
        "model": model,
        "response_time_ms": 5,
        "token_usage": {"prompt_tokens": 100, "completion_tokens": 10, "total_tokens": 110},
        "cost_estimate": 0.0015,
        "requested_at": now,
        "completed_at": now,
        "request_metadata": {"essay_a_id": a, "essay_b_id": b, "prompt_sha256": "f" * 64},
    }
    if winner is None:
        data["error_detail"] = {"error_code": "EXTERNAL_SERVICE_ERROR", "message": "timeout"}
    else:
        data |= {"winner": winner, "justification": "why", "confidence": 3.0}
    return LLMComparisonResultV1.model_validate(data)


def _result(batch_id: str) -> AssessmentResultV1:
    rows = [
        (STUDENTS[0], 0.9, "B", False),
        (ANCHOR, 0.1, "U", True),
        (STUDENTS[1], -0.3, "C", False),
        (STUDENTS[2], -0.7, "E", False),
    ]
    return AssessmentResultV1.model_validate(
        {
            "event_name": "assessment.result.published",
            "entity_id": batch_id,
            "batch_id": batch_id,
            "cj_assessment_job_id": "3",
            "model_used": "m1",
            "model_provider": "mock",
            "essay_results": [
                {
                    "essay_id": essay_id,
                    "normalized_score": 0.5,
                    "letter_grade": grade,
                    "confidence_score": 0.6,
                    "confidence_label": "MID",
                    "bt_score": score,
                    "rank": rank,
                    "is_anchor": is_anchor,
                }
                for rank, (essay_id, score, grade, is_anchor) in enumerate(rows, start=1)
            ],
        }
    )


def _collected(identity: BatchIdentity) -> CollectedRun:
    run = CollectedRun(identity=identity)
    run.callbacks = [
        _callback(STUDENTS[0], STUDENTS[1], "Essay A"),
        _callback(STUDENTS[1], ANCHOR, "Essay B"),
        _callback(STUDENTS[2], STUDENTS[0], "Essay B", model="m2"),
        _callback(STUDENTS[2], ANCHOR, None),
    ]
    run.result = _result(identity.batch_id)
    run.counts = {"foreign": 2, "duplicates": 1, "malformed": 1}
    run.durations = {"wait_seconds": 3.2}
    return run


def _inputs() -> RunInputs:
    checksum = "0" * 64
    return RunInputs.model_validate(
        {
            "instructions": None,
            "prompt_reference": {"source_path": "prompt.md", "checksum": checksum, "content": "W"},
            "anchors": [
                {
                    "anchor_id": ANCHOR,
                    "essay_id": ANCHOR,
                    "anchor_grade": "B",
                    "checksum": checksum,
                }
            ],
            "students": [{"essay_id": essay_id, "checksum": checksum} for essay_id in STUDENTS],
        }
    )


def _record(identity: BatchIdentity, **overrides: Any) -> RunRecord:
    outcome = Outcome(overrides.pop("outcome", "completed"))
    metadata = RunMetadata(
        batch_uuid=identity.batch_uuid,
        batch_label=identity.batch_label,
        runner_mode=overrides.pop("mode", "execute"),
        assignment_id="assign-1",
        course_id=None,
        course_code="ENG5",
        grade_scale="eng5_np_legacy_9_step",
        runner_version="0.0.0",
        git_sha="unknown",
        generated_at=datetime.now(UTC),
        settings={"completion_timeout": 60, "token": "supersecret-token-value"},
    )
    arguments: dict[str, Any] = {
        "metadata": metadata,
        "inputs": _inputs(),
        "collected": _collected(identity),
        "statistics": RunStatistics(ssr=0.71, n_cr=2.5),
        "post_run": {"eng5_db_extract": {"status": "succeeded"}},
        "status": RunnerStatus(outcome=outcome, partial_data=outcome.partial, timeout_seconds=60),
    }
    arguments.update(overrides)
    return build_record(**arguments)


def _doc(identity: BatchIdentity, **overrides: Any) -> dict[str, Any]:
    return record_document(_record(identity, **overrides))


def test_realistic_artefact_is_valid_and_written_with_a_verifiable_checksum(
    tmp_path: Path,
) -> None:
    identity = BatchIdentity.new("unit-artefact")
    folder = tmp_path / identity.batch_id
    folder.mkdir()
    (folder / "request.json").write_text("{}")
    (folder / "events.jsonl").write_text('{"kind": "callback"}\n')
    (folder / "run.log").write_text("")
    path = write_record(_record(identity), folder / "assessment_run.json")

    stored = json.loads(path.read_text())
    assert schema_problems(stored) == []
    assert verify_checksum(stored)
    assert [entry["path"] for entry in stored["validation"]["manifest"]] == [
        "events.jsonl",
        "request.json",
    ]
    stored["statistics"]["ssr"] = 0.99
    assert not verify_checksum(stored)


def test_metadata_and_status_describe_the_batch() -> None:
    identity = BatchIdentity.new("unit-artefact")
    doc = _doc(identity)
    metadata = doc["metadata"]
    assert (metadata["batch_uuid"], metadata["batch_label"]) == (identity.batch_id, "unit-artefact")
    assert metadata["git_sha"] == "unknown"
    assert metadata["course_id"] is None
    status = doc["validation"]["runner_status"]
    assert status["outcome"] == "completed"
    assert status["partial_data"] is False
    assert status["observed_events"]["llm_comparisons"] == 4
    assert status["observed_events"]["duplicates"] == 1


def test_registered_secrets_are_redacted_from_the_artefact() -> None:
    register_secret("supersecret-token-value")
    text = json.dumps(_doc(BatchIdentity.new("x")))
    assert "supersecret-token-value" not in text
    assert MASK in text


def test_comparison_records_map_winners_and_mark_error_callbacks_failed() -> None:
    records = _doc(BatchIdentity.new("x"))["llm_comparisons"]
    assert [(r["winner_id"], r["loser_id"], r["status"]) for r in records] == [
        (STUDENTS[0], STUDENTS[1], "succeeded"),
        (ANCHOR, STUDENTS[1], "succeeded"),
        (STUDENTS[0], STUDENTS[2], "succeeded"),
        (None, None, "failed"),
    ]
    assert records[3]["failure_reason"] == "EXTERNAL_SERVICE_ERROR: timeout"
    assert [r["sequence"] for r in records] == [1, 2, 3, 4]


def test_bt_summary_counts_comparisons_per_essay_and_has_real_errors() -> None:
    summary = {row["essay_id"]: row for row in _doc(BatchIdentity.new("x"))["bt_summary"]}
    assert {k: v["comparison_count"] for k, v in summary.items()} == {
        STUDENTS[0]: 2,
        STUDENTS[1]: 2,
        STUDENTS[2]: 1,
        ANCHOR: 1,
    }
    assert (summary[STUDENTS[0]]["wins"], summary[STUDENTS[1]]["losses"]) == (2, 2)
    assert all(row["standard_error"] > 0 for row in summary.values())
    assert summary[ANCHOR]["anchor_grade"] == "B"  # the known grade, not the projected "U"
    assert summary[ANCHOR]["grade_projection"] is None
    assert summary[STUDENTS[0]]["grade_projection"] == "B"


def test_fisher_standard_error_matches_the_two_essay_closed_form() -> None:
    thetas = {"a": 0.5, "b": -0.5, "never": 0.0}
    errors = fisher_standard_errors(thetas, [("a", "b")] * 6 + [("b", "a")] * 2)
    p = 1.0 / (1.0 + math.exp(-1.0))
    expected = 1.0 / (2.0 * math.sqrt(8 * p * (1 - p)))
    assert errors["a"] == pytest.approx(expected, abs=1e-6)
    assert errors["b"] == pytest.approx(expected, abs=1e-6)
    assert errors["never"] is None


def test_costs_are_totalled_per_provider_and_model() -> None:
    costs = _doc(BatchIdentity.new("x"))["costs"]
    assert costs["total_usd"] == pytest.approx(0.006)
    by_key = {entry["key"]: entry for entry in costs["token_counts"]}
    assert set(by_key) == {"mock::m1", "mock::m2"}
    assert (by_key["mock::m1"]["comparisons"], by_key["mock::m1"]["prompt_tokens"]) == (3, 300)


def test_grade_projections_cover_students_only() -> None:
    projections = _doc(BatchIdentity.new("x"))["grade_projections"]
    assert [p["essay_id"] for p in projections] == STUDENTS
    assert all(p["probabilities"] is None for p in projections)


def test_plan_mode_without_events_is_valid() -> None:
    doc = _doc(
        BatchIdentity.new("plan"),
        mode="plan",
        collected=None,
        statistics=None,
        post_run=None,
        outcome="planned",
    )
    assert doc["validation"]["runner_status"]["observed_events"]["llm_comparisons"] == 0
    assert doc["llm_comparisons"] == []
    assert schema_problems(doc) == []


def test_timeout_outcome_is_partial() -> None:
    doc = _doc(BatchIdentity.new("x"), outcome="timeout")
    assert doc["validation"]["runner_status"]["partial_data"] is True


def test_an_invalid_document_is_refused_by_the_model_and_the_stored_schema() -> None:
    doc = _doc(BatchIdentity.new("x"))
    doc["metadata"]["git_sha"] = "UNKNOWN!"
    doc["llm_comparisons"][0]["winner_id"] = None
    with pytest.raises(ValidationError) as caught:
        RunRecord.model_validate(doc)
    assert "git_sha" in str(caught.value)
    assert "winner" in str(caught.value)
    problems = schema_problems(doc)
    assert any(p.startswith("metadata/git_sha") for p in problems)
    assert any(p.startswith("llm_comparisons/0") for p in problems)


@pytest.mark.parametrize(("argument", "value"), [("mode", "dry_run"), ("outcome", "finished")])
def test_unknown_mode_or_outcome_is_refused(argument: str, value: str) -> None:
    with pytest.raises(ValueError, match=value):  # ValidationError, or Outcome("finished")
        _doc(BatchIdentity.new("x"), **{argument: value})


def test_the_stored_schema_is_generated_from_the_record_model() -> None:
    stored = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    assert stored == record_schema(), "regenerate: python -m pytest_eng5.runner.record"
    outcomes = stored["$defs"]["Outcome"]["enum"]
    assert outcomes == [outcome.value for outcome in Outcome]


def test_anchors_carry_their_grade_also_when_sent_as_students() -> None:
    identity = BatchIdentity.new("align")
    collected = _collected(identity)
    assert collected.result is not None
    for essay in collected.result.essay_results:  # anchor-align: CJ sees only students
        essay.is_anchor = False
    doc = _doc(identity, mode="anchor-align-test", collected=collected)
    anchor = doc["inputs"]["anchors"][0]
    assert (anchor["anchor_grade"], anchor["is_anchor"]) == ("B", True)
    entry = next(row for row in doc["bt_summary"] if row["essay_id"] == ANCHOR)
    assert (entry["is_anchor"], entry["anchor_grade"]) == (True, "B")


def test_anchor_align_mode_and_null_ids_pass_the_schema() -> None:
    doc = _doc(BatchIdentity.new("x"), mode="anchor-align-test")
    doc["metadata"]["assignment_id"] = None
    assert schema_problems(doc) == []


def test_a_write_that_breaks_off_keeps_the_previous_artefact(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    identity = BatchIdentity.new("unit-artefact-crash")
    folder = tmp_path / identity.batch_id
    path = write_record(_record(identity), folder / "assessment_run.json")
    before = path.read_text()

    def write_half_then_fail(self: Path, data: str, *args: Any, **kwargs: Any) -> int:
        with self.open("w", encoding="utf-8") as handle:
            handle.write(data[: len(data) // 2])
        raise OSError("disk full")

    monkeypatch.setattr(Path, "write_text", write_half_then_fail)
    with pytest.raises(OSError, match="disk full"):
        write_record(_record(identity, outcome="timeout"), path)
    monkeypatch.undo()

    assert path.read_text() == before
    assert verify_checksum(json.loads(path.read_text()))
