"""The CJ request envelope (runner §6.2, contract D.4) and the batch identity rules (R2)."""

from __future__ import annotations

import json
from typing import Any
from uuid import UUID, uuid4

import pytest

from pytest_eng5.contracts import (
    REQUEST_TOPIC,
    EssayProcessingInputRefV1,
    EventEnvelope,
    LLMConfigOverrides,
)
from pytest_eng5.errors import ConfigurationError
from pytest_eng5.runner.envelope import compose_request
from pytest_eng5.runner.identity import BatchIdentity

ESSAYS = [
    EssayProcessingInputRefV1(essay_id="STUDENT-A", text_storage_id="content-a"),
    EssayProcessingInputRefV1(essay_id="STUDENT-B", text_storage_id="content-b"),
]


def _compose(identity: BatchIdentity, **overrides: Any) -> EventEnvelope:
    arguments: dict[str, Any] = {
        "language": "en",
        "course_code": "ENG5",
        "assignment_id": "assignment-7",
        "user_id": "eng5_np_research_runner",
        "org_id": None,
        "llm_overrides": None,
        "runner_mode": "execute",
        "max_comparisons": None,
        "llm_batching_mode": None,
    }
    arguments.update(overrides)
    essays = arguments.pop("essays", ESSAYS)
    return compose_request(identity, essays, **arguments)


def test_wire_form_has_exactly_the_reference_keys_and_ids() -> None:
    identity = BatchIdentity.new("pilot run #1")
    correlation = uuid4()
    wire = json.loads(_compose(identity, correlation_id=correlation).to_bytes())
    batch = str(identity.batch_uuid)

    assert set(wire) == {
        "event_id",
        "event_type",
        "event_timestamp",
        "source_service",
        "schema_version",
        "correlation_id",
        "data_schema_uri",
        "data",
        "metadata",
    }
    assert wire["event_type"] == REQUEST_TOPIC
    assert wire["source_service"] == "eng5_np_batch_runner"
    assert wire["schema_version"] == 1
    assert wire["correlation_id"] == str(correlation)
    assert wire["data_schema_uri"] is None
    data = wire["data"]
    assert set(data) == {
        "event_name",
        "entity_id",
        "entity_type",
        "parent_id",
        "timestamp",
        "system_metadata",
        "essays_for_cj",
        "language",
        "course_code",
        "student_prompt_ref",
        "llm_config_overrides",
        "assignment_id",
        "user_id",
        "org_id",
    }
    assert data["event_name"] == "els.cj_assessment.requested"
    assert (data["entity_id"], data["entity_type"], data["parent_id"]) == (
        batch,
        "batch",
        "assignment-7",
    )
    system = data["system_metadata"]
    assert (system["entity_id"], system["entity_type"], system["parent_id"]) == (
        batch,
        "batch",
        "assignment-7",
    )
    assert system["processing_stage"] == "pending"
    assert system["event"] == "els.cj_assessment.requested"
    assert (system["started_at"], system["completed_at"], system["error_info"]) == (None, None, {})
    assert data["essays_for_cj"] == [
        {"essay_id": "STUDENT-A", "text_storage_id": "content-a", "spellcheck_metrics": None},
        {"essay_id": "STUDENT-B", "text_storage_id": "content-b", "spellcheck_metrics": None},
    ]
    assert (data["language"], data["course_code"], data["assignment_id"]) == (
        "en",
        "ENG5",
        "assignment-7",
    )
    assert (data["user_id"], data["org_id"], data["student_prompt_ref"]) == (
        "eng5_np_research_runner",
        None,
        None,
    )
    assert wire["metadata"] == {"runner_mode": "execute", "batch_label": "pilot run #1"}


def test_metadata_carries_budget_and_a_normalised_batching_hint() -> None:
    identity = BatchIdentity.new("label")
    envelope = _compose(
        identity,
        max_comparisons=42,
        llm_batching_mode="Serial_Bundle",
        runner_mode="anchor-align-test",
        assignment_id=None,
        llm_overrides=LLMConfigOverrides(model_override="m", temperature_override=0.0),
    )
    wire = json.loads(envelope.to_bytes())
    assert wire["metadata"] == {
        "runner_mode": "anchor-align-test",
        "batch_label": "label",
        "max_comparisons": 42,
        "llm_batching_mode_hint": "serial_bundle",
    }
    assert wire["data"]["parent_id"] is None
    assert wire["data"]["llm_config_overrides"]["temperature_override"] == 0.0
    assert wire["data"]["llm_config_overrides"]["model_override"] == "m"


def test_correlation_id_is_fresh_when_not_given() -> None:
    identity = BatchIdentity.new("label")
    assert _compose(identity).correlation_id != _compose(identity).correlation_id


def test_round_trip_through_bytes_keeps_the_request() -> None:
    identity = BatchIdentity.new("label")
    envelope = _compose(identity)
    parsed = EventEnvelope.from_bytes(envelope.to_bytes())
    assert parsed.event_id == envelope.event_id
    assert parsed.data["entity_id"] == str(identity.batch_uuid)


@pytest.mark.parametrize(
    ("overrides", "fragment"),
    [
        ({"llm_batching_mode": "turbo"}, "per_request, serial_bundle, provider_batch_api"),
        ({"essays": []}, "no essays"),
        ({"max_comparisons": 0}, "max_comparisons"),
        ({"user_id": "  "}, "user_id is blank"),
        ({"course_code": "ENG9"}, "ENG5, ENG6"),
        ({"runner_mode": "plan"}, "execute, anchor-align-test"),
        ({"essays": [ESSAYS[0], ESSAYS[0]]}, "STUDENT-A"),
    ],
)
def test_invalid_requests_are_refused(overrides: dict[str, Any], fragment: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        _compose(BatchIdentity.new("label"), **overrides)
    assert fragment in str(caught.value)


def test_identity_is_fresh_unless_a_uuid_is_supplied() -> None:
    first, second = BatchIdentity.new("a"), BatchIdentity.new("a")
    assert first.batch_uuid != second.batch_uuid
    assert first.batch_uuid.version == 4
    known = uuid4()
    assert BatchIdentity.new("a", known).batch_uuid == known
    assert BatchIdentity.new("a", str(known).upper()).batch_uuid == known
    assert isinstance(BatchIdentity.new("a", str(known)).batch_uuid, UUID)


@pytest.mark.parametrize("label", ["", "   "])
def test_blank_label_is_refused(label: str) -> None:
    with pytest.raises(ConfigurationError, match="batch label must not be blank"):
        BatchIdentity.new(label)


def test_non_uuid_batch_uuid_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="not a UUID"):
        BatchIdentity.new("label", "batch-42")


def test_identity_is_frozen() -> None:
    identity = BatchIdentity.new("label")
    with pytest.raises(AttributeError):
        identity.batch_label = "other"  # type: ignore[misc]


def test_safe_label_keeps_file_name_characters_only() -> None:
    assert BatchIdentity.new("ENG5 pilot/run #1.v2_a-b").safe_label == "ENG5-pilot-run--1.v2_a-b"
    assert BatchIdentity.new("../../etc").safe_label == "..-..-etc"
    assert len(BatchIdentity.new("x" * 200).safe_label) == 64
