"""Invalid payloads fail, and the ValidationError names the offending field."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError

from pytest_eng5.contracts import (
    AdminErrorBody,
    AnchorSummaryResponse,
    AssessmentInstructionListResponse,
    AssessmentInstructionUpsertRequest,
    AssessmentResultV1,
    ContentUploadResponse,
    ELS_CJAssessmentRequestV1,
    EssayComparisonWinner,
    EventEnvelope,
    FlatErrorBody,
    GenericServerErrorBody,
    LLMComparisonResultV1,
    RegisterAnchorRequest,
    StudentPromptUploadRequest,
    parse_admin_error,
    register_anchor_error_text,
)

BATCH_ID = "0b6d8f5e-3c1a-4e8b-9f2d-7a1c5e9b3d21"


def _locations(error: ValidationError) -> list[tuple[int | str, ...]]:
    return [tuple(item["loc"]) for item in error.errors()]


def _expect_error_at(
    model_cls: type[BaseModel], payload: Any, loc: tuple[int | str, ...]
) -> ValidationError:
    with pytest.raises(ValidationError) as caught:
        model_cls.model_validate(payload)
    assert loc in _locations(caught.value), _locations(caught.value)
    return caught.value


def _request() -> dict[str, Any]:
    return {
        "entity_id": BATCH_ID,
        "entity_type": "batch",
        "system_metadata": {"entity_id": BATCH_ID, "entity_type": "batch"},
        "essays_for_cj": [{"essay_id": "ESSAY_1", "text_storage_id": "a" * 32}],
        "language": "en",
        "course_code": "ENG5",
        "user_id": "eng5_np_research_runner",
    }


def _callback(**changes: Any) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "request_id": "7a3e9c1d-5b2f-4d8a-9e6c-0f1b3d5e7a9c",
        "correlation_id": "e7d1c3b5-a9f2-4c6e-8b0d-2f4a6c8e0b13",
        "winner": "Essay A",
        "justification": "Clearer structure.",
        "confidence": 4.0,
        "provider": "mock",
        "model": "gpt-5.1",
        "response_time_ms": 10,
        "cost_estimate": 0.0,
        "requested_at": "2026-11-25T02:38:21Z",
        "completed_at": "2026-11-25T02:38:22Z",
    }
    payload.update(changes)
    return payload


_ERROR_DETAIL = {"error_code": "EXTERNAL_SERVICE_ERROR", "message": "provider said 503"}


def _result_with(**essay_changes: Any) -> dict[str, Any]:
    essay: dict[str, Any] = {
        "essay_id": "ESSAY_1",
        "normalized_score": 0.6,
        "letter_grade": "C",
        "confidence_score": 0.5,
        "confidence_label": "MID",
        "bt_score": 0.1,
        "rank": 1,
    }
    essay.update(essay_changes)
    return {
        "batch_id": BATCH_ID,
        "cj_assessment_job_id": "17",
        "model_used": "gpt-5.1",
        "model_provider": "mock",
        "essay_results": [essay],
    }


# --- request --------------------------------------------------------------------------------


def _with(base: dict[str, Any], mutate: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    mutate(base)
    return base


@pytest.mark.parametrize(
    ("mutate", "loc"),
    [
        pytest.param(
            lambda p: p["essays_for_cj"][0].update(essay_id="E" * 37),
            ("essays_for_cj", 0, "essay_id"),
            id="essay-id-over-36",
        ),
        pytest.param(
            lambda p: p["essays_for_cj"][0].update(essay_id=""),
            ("essays_for_cj", 0, "essay_id"),
            id="essay-id-empty",
        ),
        pytest.param(
            lambda p: p.update(assignment_id="x" * 101), ("assignment_id",), id="assignment-101"
        ),
        pytest.param(lambda p: p.update(course_code="ENG9"), ("course_code",), id="course-code"),
        pytest.param(lambda p: p.pop("user_id"), ("user_id",), id="user-id-missing"),
        pytest.param(
            lambda p: p.pop("system_metadata"), ("system_metadata",), id="system-metadata-missing"
        ),
        pytest.param(
            lambda p: p.update(llm_config_overrides={"temperature_override": 2.5}),
            ("llm_config_overrides", "temperature_override"),
            id="temperature-above-2",
        ),
        pytest.param(
            lambda p: p.update(llm_config_overrides={"max_tokens_override": 0}),
            ("llm_config_overrides", "max_tokens_override"),
            id="max-tokens-zero",
        ),
    ],
)
def test_invalid_request_names_the_field(
    mutate: Callable[[dict[str, Any]], None], loc: tuple[int | str, ...]
) -> None:
    _expect_error_at(ELS_CJAssessmentRequestV1, _with(_request(), mutate), loc)


def test_request_accepts_boundary_values() -> None:
    payload = _request()
    payload["essays_for_cj"][0]["essay_id"] = "E" * 36
    payload["assignment_id"] = "x" * 100
    payload["llm_config_overrides"] = {"temperature_override": 0.0, "max_tokens_override": 1}

    request = ELS_CJAssessmentRequestV1.model_validate(payload)

    assert request.event_name == "els.cj_assessment.requested"
    assert request.llm_config_overrides is not None
    assert request.llm_config_overrides.temperature_override == 0.0


@pytest.mark.parametrize("user_id", ["", "   "])
def test_request_accepts_unusable_user_id_like_huleedu_but_flags_it(user_id: str) -> None:
    payload = _request()
    payload["user_id"] = user_id

    request = ELS_CJAssessmentRequestV1.model_validate(payload)

    assert not request.user_id_is_usable


# --- callback -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "loc"),
    [
        pytest.param({"confidence": 0.5}, ("confidence",), id="confidence-below-1"),
        pytest.param({"confidence": 5.01}, ("confidence",), id="confidence-above-5"),
        pytest.param({"justification": "j" * 501}, ("justification",), id="justification-501"),
        pytest.param({"winner": "essay_a"}, ("winner",), id="winner-snake-case"),
        pytest.param({"provider": "azure"}, ("provider",), id="provider-unknown"),
        pytest.param({"response_time_ms": -1}, ("response_time_ms",), id="negative-time"),
        pytest.param({"correlation_id": "abc"}, ("correlation_id",), id="correlation-not-uuid"),
        pytest.param(
            {"token_usage": {"prompt_tokens": -5}},
            ("token_usage", "prompt_tokens"),
            id="negative-tokens",
        ),
    ],
)
def test_invalid_callback_names_the_field(
    changes: dict[str, Any], loc: tuple[int | str, ...]
) -> None:
    _expect_error_at(LLMComparisonResultV1, _callback(**changes), loc)


@pytest.mark.parametrize(
    ("changes", "fragment"),
    [
        pytest.param({"error_detail": _ERROR_DETAIL}, "both set", id="both"),
        pytest.param(
            {"winner": None, "justification": None, "confidence": None}, "neither", id="neither"
        ),
        pytest.param({"confidence": None}, "must be set together", id="winner-no-confidence"),
        pytest.param({"justification": None}, "must be set together", id="winner-no-why"),
    ],
)
def test_callback_outcome_rule_is_enforced(changes: dict[str, Any], fragment: str) -> None:
    with pytest.raises(ValidationError) as caught:
        LLMComparisonResultV1.model_validate(_callback(**changes))

    assert fragment in str(caught.value)


@settings(database=None, deadline=None)
@given(
    winner=st.one_of(st.none(), st.sampled_from(list(EssayComparisonWinner))),
    justification=st.one_of(st.none(), st.text(max_size=500)),
    confidence=st.one_of(st.none(), st.floats(min_value=1.0, max_value=5.0)),
    with_error=st.booleans(),
)
def test_callback_accepts_exactly_one_complete_outcome(
    winner: EssayComparisonWinner | None,
    justification: str | None,
    confidence: float | None,
    with_error: bool,
) -> None:
    payload = _callback(
        winner=winner,
        justification=justification,
        confidence=confidence,
        error_detail=_ERROR_DETAIL if with_error else None,
    )
    complete_success = winner is not None and justification is not None and confidence is not None
    should_accept = (complete_success and not with_error) or (winner is None and with_error)

    try:
        parsed = LLMComparisonResultV1.model_validate(payload)
    except ValidationError:
        assert not should_accept
    else:
        assert should_accept
        assert parsed.is_success != parsed.is_error


# --- result ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        pytest.param({"letter_grade": "5"}, "letter_grade", id="national-grade"),
        pytest.param({"letter_grade": "0"}, "letter_grade", id="national-below-lowest"),
        pytest.param({"letter_grade": "c+"}, "letter_grade", id="lower-case"),
        pytest.param({"letter_grade": "G"}, "letter_grade", id="beyond-F"),
        pytest.param({"normalized_score": 1.2}, "normalized_score", id="score-above-1"),
        pytest.param({"confidence_score": -0.1}, "confidence_score", id="confidence-negative"),
        pytest.param({"confidence_label": "MEDIUM"}, "confidence_label", id="label"),
        pytest.param({"rank": 0}, "rank", id="rank-zero"),
    ],
)
def test_invalid_essay_result_names_the_field(changes: dict[str, Any], field: str) -> None:
    _expect_error_at(AssessmentResultV1, _result_with(**changes), ("essay_results", 0, field))


@pytest.mark.parametrize("grade", ["A", "F+", "E-", "D+", "C-", "U", "F"])
def test_legacy_scale_grades_fit_the_letter_grade_pattern(grade: str) -> None:
    result = AssessmentResultV1.model_validate(_result_with(letter_grade=grade))

    assert result.essay_results[0].letter_grade == grade


# --- admin requests and responses -----------------------------------------------------------


def _upsert(**changes: Any) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "assignment_id": "assignment-1",
        "instructions_text": "Judge which essay is better.",
        "grade_scale": "eng5_np_legacy_9_step",
    }
    payload.update(changes)
    return payload


@pytest.mark.parametrize(
    ("changes", "loc"),
    [
        pytest.param({"instructions_text": "too short"}, ("instructions_text",), id="text"),
        pytest.param({"instructions_text": "   short   "}, ("instructions_text",), id="stripped"),
        pytest.param({"grade_scale": "eng5_np_legacy_national_exam"}, ("grade_scale",), id="scale"),
        pytest.param(
            {"student_prompt_storage_id": "s" * 256}, ("student_prompt_storage_id",), id="prompt-id"
        ),
    ],
)
def test_invalid_upsert_names_the_field(changes: dict[str, Any], loc: tuple[str, ...]) -> None:
    _expect_error_at(AssessmentInstructionUpsertRequest, _upsert(**changes), loc)


def test_unknown_scale_error_lists_available_scales() -> None:
    error = _expect_error_at(
        AssessmentInstructionUpsertRequest, _upsert(grade_scale="nope"), ("grade_scale",)
    )

    assert "Available scales: eng5_np_legacy_9_step" in str(error)


@pytest.mark.parametrize(
    "changes",
    [
        pytest.param({"course_id": "ENG5"}, id="both"),
        pytest.param({"assignment_id": None}, id="neither"),
        pytest.param({"assignment_id": "   "}, id="blank-assignment-only"),
    ],
)
def test_upsert_requires_exactly_one_scope(changes: dict[str, Any]) -> None:
    error = _expect_error_at(AssessmentInstructionUpsertRequest, _upsert(**changes), ())

    assert "exactly one of assignment_id or course_id" in str(error)


def test_upsert_strips_whitespace_and_defaults_origin() -> None:
    request = AssessmentInstructionUpsertRequest.model_validate(
        _upsert(assignment_id="  assignment-1  ", instructions_text="  Judge the essays.  ")
    )

    assert request.assignment_id == "assignment-1"
    assert request.instructions_text == "Judge the essays."
    assert request.context_origin == "research_experiment"


def test_upsert_by_course_only_is_valid() -> None:
    request = AssessmentInstructionUpsertRequest.model_validate(
        _upsert(assignment_id="   ", course_id="ENG5")
    )

    assert request.course_id == "ENG5"


def test_student_prompt_upload_names_short_text() -> None:
    _expect_error_at(
        StudentPromptUploadRequest,
        {"assignment_id": "a", "prompt_text": "short"},
        ("prompt_text",),
    )


def _register(**changes: Any) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "assignment_id": "assignment-1",
        "grade": "B",
        "essay_text": "x" * 100,
    }
    payload.update(changes)
    return payload


def test_register_anchor_boundary_and_label_default() -> None:
    request = RegisterAnchorRequest.model_validate(_register())

    assert request.anchor_label is None
    assert request.effective_label == "B"


@pytest.mark.parametrize(
    ("changes", "loc", "message"),
    [
        pytest.param(
            {"essay_text": "x" * 99},
            ("essay_text",),
            "Essay text too short (min 100 chars)",
            id="short-text",
        ),
        pytest.param({"grade": "  "}, ("grade",), "Value cannot be empty", id="blank-grade"),
        pytest.param(
            {"assignment_id": ""}, ("assignment_id",), "Value cannot be empty", id="blank-id"
        ),
    ],
)
def test_register_anchor_rejects_like_huleedu(
    changes: dict[str, Any], loc: tuple[str, ...], message: str
) -> None:
    error = _expect_error_at(RegisterAnchorRequest, _register(**changes), loc)

    assert message in register_anchor_error_text(error)


def test_register_anchor_error_text_joins_messages() -> None:
    with pytest.raises(ValidationError) as caught:
        RegisterAnchorRequest.model_validate(_register(grade="", essay_text="short"))

    text = register_anchor_error_text(caught.value)
    assert "; " in text
    assert "Value cannot be empty" in text
    assert "Essay text too short" in text


def test_anchor_summary_requires_assignment_id() -> None:
    _expect_error_at(
        AnchorSummaryResponse,
        {
            "assignment_id": "",
            "grade_scale": "swedish_8_anchor",
            "anchor_count": 0,
            "anchors": [],
            "anchor_count_total": 0,
            "anchor_count_by_scale": {},
        },
        ("assignment_id",),
    )


def test_instruction_list_rejects_page_size_above_200() -> None:
    _expect_error_at(
        AssessmentInstructionListResponse,
        {"items": [], "total": 0, "page": 1, "page_size": 201},
        ("page_size",),
    )


def test_admin_datetime_garbage_names_the_field() -> None:
    _expect_error_at(
        AnchorSummaryResponse,
        {
            "assignment_id": "a",
            "grade_scale": "swedish_8_anchor",
            "anchor_count": 1,
            "anchors": [
                {
                    "id": 1,
                    "anchor_label": "A1",
                    "grade": "A",
                    "grade_scale": "swedish_8_anchor",
                    "text_storage_id": "a" * 32,
                    "created_at": "Wed, 31 Feb 2026 02:38:26 GMT",
                }
            ],
            "anchor_count_total": 1,
        },
        ("anchors", 0, "created_at"),
    )


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        pytest.param(
            {"error": {"code": "AUTHENTICATION_ERROR", "message": "Token expired",
                       "details": {"reason": "token_expired"}}},
            AdminErrorBody,
            id="huleedu-error",
        ),
        pytest.param(
            {"error": "Internal server error", "message": "An unexpected error occurred",
             "service": "cj_assessment_service"},
            GenericServerErrorBody,
            id="catch-all-500",
        ),
        pytest.param({"error": "Unknown assignment_id 'x'"}, FlatErrorBody, id="anchor-flat"),
    ],
)  # fmt: skip
def test_parse_admin_error_tells_the_shapes_apart(
    body: dict[str, Any], expected: type[BaseModel]
) -> None:
    assert type(parse_admin_error(body)) is expected


@pytest.mark.parametrize("body", [None, "oops", {"detail": "x"}, {"error": 5}])
def test_parse_admin_error_returns_none_for_unknown_shapes(body: Any) -> None:
    assert parse_admin_error(body) is None


# --- content and envelope -------------------------------------------------------------------


@pytest.mark.parametrize(
    "storage_id",
    ["9F2C4E7A1B3D5F6E8A0C2E4F6A8B0D1C", "9f2c4e7a1b3d5f6e8a0c2e4f6a8b0d1", "content-abc123"],
)
def test_content_upload_rejects_non_hex32_storage_id(storage_id: str) -> None:
    _expect_error_at(
        ContentUploadResponse,
        {"storage_id": storage_id, "correlation_id": "6a8c0e2f-4b6d-4f8a-9c1e-3b5d7f9a1c3e"},
        ("storage_id",),
    )


def test_envelope_missing_event_type_names_the_field() -> None:
    raw = json.dumps({"source_service": "x", "data": {}}).encode()

    with pytest.raises(ValidationError) as caught:
        EventEnvelope.from_bytes(raw)

    assert ("event_type",) in _locations(caught.value)


def test_envelope_from_bytes_rejects_non_json() -> None:
    with pytest.raises(ValidationError):
        EventEnvelope.from_bytes(b"\x00not json")


def test_envelope_data_as_reports_data_field_errors() -> None:
    envelope = EventEnvelope(event_type="t", source_service="s", data=_callback(confidence=9))

    with pytest.raises(ValidationError) as caught:
        envelope.data_as(LLMComparisonResultV1)

    assert ("confidence",) in _locations(caught.value)


def test_envelope_defaults_are_fresh_per_instance() -> None:
    first = EventEnvelope(event_type="t", source_service="s", data={})
    second = EventEnvelope(event_type="t", source_service="s", data={})

    assert first.event_id != second.event_id
    assert first.correlation_id != second.correlation_id
    assert first.event_timestamp.tzinfo is not None
