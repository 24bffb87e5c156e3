"""Wire samples shaped exactly as in the HuleEdu contract round-trip through our models."""

from __future__ import annotations

import json
import re
from datetime import datetime
from typing import Any

import pytest
from pydantic import BaseModel, TypeAdapter

from pytest_eng5.contracts import (
    CALLBACK_EVENT_TYPE,
    COMPLETED_TOPIC,
    FAILED_TOPIC,
    REQUEST_TOPIC,
    RESOURCE_TOPIC,
    RESULT_TOPIC,
    RUNNER_SOURCE_SERVICE,
    AdminErrorBody,
    AnchorSummaryResponse,
    AssessmentInstructionListResponse,
    AssessmentInstructionResponse,
    AssessmentResultV1,
    CJAssessmentCompletedV1,
    CJAssessmentFailedV1,
    ContentErrorBody,
    ContentUploadResponse,
    ELS_CJAssessmentRequestV1,
    EventEnvelope,
    GenericServerErrorBody,
    JudgeRubricResponse,
    LLMComparisonResultV1,
    RegisterAnchorRequest,
    RegisterAnchorResponse,
    ResourceConsumptionV1,
    StudentPromptResponse,
    TolerantDatetime,
)

BATCH_ID = "0b6d8f5e-3c1a-4e8b-9f2d-7a1c5e9b3d21"
ASSIGNMENT_ID = "6c2f1e0a-9d4b-4c8e-a1f3-2b7d9e5c4a10"
REQUEST_CORRELATION = "3f9a7c21-5b8e-4d1f-a6c2-9e0b4d7f1a35"
HTTP_DATE = "Wed, 25 Nov 2026 02:38:26 GMT"

_DATETIME_LIKE = re.compile(
    r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}|^[A-Za-z]{3}, \d{1,2} [A-Za-z]{3} \d{4} "
)
_DATETIME = TypeAdapter(TolerantDatetime)


def _normalise(value: Any) -> Any:
    """Datetime strings (ISO or HTTP-date) become aware datetimes so forms compare equal."""
    if isinstance(value, dict):
        return {key: _normalise(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_normalise(item) for item in value]
    if isinstance(value, str) and _DATETIME_LIKE.match(value):
        parsed: datetime = _DATETIME.validate_python(value)
        return parsed
    return value


def _dump(model: BaseModel) -> Any:
    return model.model_dump(mode="json", by_alias=True)


# --- samples from the contract (runner §6.2, D.4–D.10, A.5, A.6, C.1) -----------------------


def request_envelope() -> dict[str, Any]:
    return {
        "event_id": "a41e7d3b-8c2f-4f6a-9b1e-5d7c3a2f8e64",
        "event_type": REQUEST_TOPIC,
        "event_timestamp": "2026-11-25T02:38:20.104512+00:00",
        "source_service": RUNNER_SOURCE_SERVICE,
        "schema_version": 1,
        "correlation_id": REQUEST_CORRELATION,
        "data_schema_uri": None,
        "data": {
            "event_name": "els.cj_assessment.requested",
            "entity_id": BATCH_ID,
            "entity_type": "batch",
            "parent_id": ASSIGNMENT_ID,
            "timestamp": "2026-11-25T02:38:20.104301+00:00",
            "system_metadata": {
                "entity_id": BATCH_ID,
                "entity_type": "batch",
                "parent_id": ASSIGNMENT_ID,
                "timestamp": "2026-11-25T02:38:20.104290+00:00",
                "processing_stage": "pending",
                "started_at": None,
                "completed_at": None,
                "event": "els.cj_assessment.requested",
                "error_info": {},
            },
            "essays_for_cj": [
                {
                    "essay_id": "ESSAY_ENG_5_17_VT_014",
                    "text_storage_id": "9f2c4e7a1b3d5f6e8a0c2e4f6a8b0d1c",
                    "spellcheck_metrics": None,
                },
                {
                    "essay_id": "STUDENT_ESSAY_WITH_A_VERY_L_1A2B3C4D",
                    "text_storage_id": "0a1b2c3d4e5f60718293a4b5c6d7e8f9",
                    "spellcheck_metrics": None,
                },
            ],
            "language": "en",
            "course_code": "ENG5",
            "student_prompt_ref": None,
            "llm_config_overrides": {
                "model_override": "gpt-5.1",
                "temperature_override": 0.3,
                "max_tokens_override": 2048,
                "provider_override": "openai",
                "system_prompt_override": "You are an impartial examiner of English essays.",
                "judge_rubric_override": None,
                "reasoning_effort": "low",
                "output_verbosity": "low",
            },
            "assignment_id": ASSIGNMENT_ID,
            "user_id": "eng5_np_research_runner",
            "org_id": None,
        },
        "metadata": {
            "runner_mode": "execute",
            "batch_label": "eng5-vt17-pilot",
            "max_comparisons": 12,
            "llm_batching_mode_hint": "serial_bundle",
        },
    }


def callback_envelope() -> dict[str, Any]:
    return {
        "event_id": "5c8e2a1f-7b3d-4e9a-8f6c-1d2e3f4a5b6c",
        "event_type": CALLBACK_EVENT_TYPE,
        "event_timestamp": "2026-11-25T02:38:22.871004+00:00",
        "source_service": "llm_provider_service",
        "schema_version": 1,
        "correlation_id": "e7d1c3b5-a9f2-4c6e-8b0d-2f4a6c8e0b13",
        "data_schema_uri": None,
        "data": {
            "request_id": "7a3e9c1d-5b2f-4d8a-9e6c-0f1b3d5e7a9c",
            "correlation_id": "e7d1c3b5-a9f2-4c6e-8b0d-2f4a6c8e0b13",
            "winner": "Essay B",
            "justification": "Essay B develops its argument with clearer paragraphing.",
            "confidence": 4.6,
            "error_detail": None,
            "provider": "mock",
            "model": "gpt-5.1",
            "response_time_ms": 1432,
            "token_usage": {"prompt_tokens": 1000, "completion_tokens": 30, "total_tokens": 1030},
            "cost_estimate": 0.00125,
            "requested_at": "2026-11-25T02:38:21.002000+00:00",
            "completed_at": "2026-11-25T02:38:22.434000+00:00",
            "trace_id": None,
            "request_metadata": {
                "essay_a_id": "ESSAY_ENG_5_17_VT_014",
                "essay_b_id": "ANCHOR_12_a1b2c3d4",
                "bos_batch_id": BATCH_ID,
                "cj_batch_id": "17",
                "cj_source": "els",
                "cj_request_type": "cj_comparison",
                "prompt_sha256": "c0ffee" * 10 + "c0ff",
                "resolved_provider": "mock",
                "queue_processing_mode": "per_request",
                "cache_read_input_tokens": 0,
                "cache_creation_input_tokens": 0,
                "usage": {"input_tokens": 1000, "output_tokens": 30},
            },
        },
        "metadata": None,
    }


def error_callback_data() -> dict[str, Any]:
    return {
        "request_id": "8b4f0d2e-6c3a-4e9b-a7d1-1a2c3e4f5b6d",
        "correlation_id": "f8e2d4c6-b0a3-4d7f-9c1e-3a5b7c9d1e24",
        "winner": None,
        "justification": None,
        "confidence": None,
        "error_detail": {
            "error_code": "EXTERNAL_SERVICE_ERROR",
            "message": "Mock provider simulated error (status 503)",
            "correlation_id": "f8e2d4c6-b0a3-4d7f-9c1e-3a5b7c9d1e24",
            "timestamp": "2026-11-25T02:38:23.100000+00:00",
            "service": "llm_provider_service",
            "operation": "generate_comparison",
            "details": {"provider": "mock", "status_code": 503},
            "stack_trace": None,
            "trace_id": None,
            "span_id": None,
        },
        "provider": "mock",
        "model": "unknown",
        "response_time_ms": 12,
        "token_usage": {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0},
        "cost_estimate": 0.0,
        "requested_at": "2026-11-25T02:38:23.001000+00:00",
        "completed_at": "2026-11-25T02:38:23.013000+00:00",
        "trace_id": None,
        "request_metadata": {
            "essay_a_id": "ESSAY_ENG_5_17_VT_014",
            "essay_b_id": "ESSAY_ENG_5_17_VT_020",
            "bos_batch_id": BATCH_ID,
            "cj_batch_id": "17",
            "cj_source": "els",
            "cj_request_type": "cj_retry",
            "comparison_iteration": 2,
        },
    }


def completed_data() -> dict[str, Any]:
    return {
        "event_name": "cj_assessment.completed",
        "entity_id": BATCH_ID,
        "entity_type": "batch",
        "parent_id": None,
        "timestamp": "2026-11-25T02:38:27.300000+00:00",
        "status": "completed_successfully",
        "system_metadata": {
            "entity_id": BATCH_ID,
            "entity_type": "batch",
            "parent_id": None,
            "timestamp": "2026-11-25T02:38:27.299000+00:00",
            "processing_stage": "completed",
            "started_at": "2026-11-25T02:38:20.900000+00:00",
            # CJ writes completed_at as naive UTC
            "completed_at": "2026-11-25T02:38:27.250000",
            "event": "cj_assessment.completed",
            "error_info": {},
        },
        "cj_assessment_job_id": "17",
        "processing_summary": {
            "total_essays": 2,
            "successful": 2,
            "failed": 0,
            "successful_essay_ids": [
                "ESSAY_ENG_5_17_VT_014",
                "STUDENT_ESSAY_WITH_A_VERY_L_1A2B3C4D",
            ],
            "failed_essay_ids": [],
            "processing_time_seconds": 6.35,
            "single_essay_batch": False,
        },
    }


def failed_initialization_data() -> dict[str, Any]:
    return {
        "event_name": "cj_assessment.failed",
        "entity_id": BATCH_ID,
        "entity_type": "batch",
        "parent_id": ASSIGNMENT_ID,
        "timestamp": "2026-11-25T02:38:20.420000+00:00",
        "status": "failed_critically",
        "system_metadata": {
            "entity_id": BATCH_ID,
            "entity_type": "batch",
            "parent_id": ASSIGNMENT_ID,
            "timestamp": "2026-11-25T02:38:20.419000+00:00",
            "processing_stage": "failed",
            "started_at": None,
            "completed_at": None,
            "event": "cj_assessment.failed",
            "error_info": {
                "error_code": "PROCESSING_ERROR",
                "error_message": f"No assessment_instructions found for assignment {ASSIGNMENT_ID}",
                "correlation_id": REQUEST_CORRELATION,
                "timestamp": "2026-11-25T02:38:20.418000+00:00",
                "service": "cj_assessment_service",
                "details": {"assignment_id": ASSIGNMENT_ID},
            },
        },
        "cj_assessment_job_id": "INITIALIZATION_FAILED",
    }


def failed_low_success_data() -> dict[str, Any]:
    data = failed_initialization_data()
    data["parent_id"] = None
    data["system_metadata"]["parent_id"] = None
    data["system_metadata"]["error_info"] = {
        "reason": "low_success_rate",
        "details": {
            "callbacks_received": 12,
            "completed_comparisons": 5,
            "failed_comparisons": 7,
            "success_rate": 0.4167,
            "success_rate_threshold": 0.8,
            "callbacks_reached_cap": True,
            "budget_exhausted": True,
        },
    }
    data["cj_assessment_job_id"] = "17"
    return data


def result_data() -> dict[str, Any]:
    return {
        "event_name": "assessment.result.published",
        "entity_id": BATCH_ID,
        "entity_type": "batch",
        "parent_id": None,
        "timestamp": "2026-11-25T02:38:27.310000+00:00",
        "batch_id": BATCH_ID,
        "cj_assessment_job_id": "17",
        "assignment_id": ASSIGNMENT_ID,
        "assessment_method": "cj_assessment",
        "model_used": "gpt-5.1",
        "model_provider": "mock",
        "model_version": None,
        "essay_results": [
            {
                "essay_id": "ANCHOR_12_a1b2c3d4",
                "normalized_score": 0.0,
                "letter_grade": "U",
                "confidence_score": 0.0,
                "confidence_label": "LOW",
                "bt_score": 1.21,
                "rank": 1,
                "is_anchor": True,
                "feedback_uri": None,
                "metrics_uri": None,
                "display_name": "ANCHOR GRADE U",
            },
            {
                "essay_id": "ESSAY_ENG_5_17_VT_014",
                "normalized_score": 0.67,
                "letter_grade": "C+",
                "confidence_score": 0.52,
                "confidence_label": "MID",
                "bt_score": 0.14,
                "rank": 2,
                "is_anchor": False,
                "feedback_uri": None,
                "metrics_uri": None,
                "display_name": None,
            },
            {
                "essay_id": "STUDENT_ESSAY_WITH_A_VERY_L_1A2B3C4D",
                "normalized_score": 0.07,
                "letter_grade": "F+",
                "confidence_score": 0.31,
                "confidence_label": "LOW",
                "bt_score": -1.35,
                "rank": 3,
                "is_anchor": False,
                "feedback_uri": None,
                "metrics_uri": None,
                "display_name": None,
            },
        ],
        "assessment_metadata": {
            "anchor_essays_used": 1,
            "calibration_method": "anchor",
            "anchor_grade_distribution": {"A": 0, "B": 0, "C": 0, "D": 0, "E": 0, "F": 0, "U": 1},
            "comparison_count": 3,
            "processing_duration_seconds": 6.35,
            "llm_temperature": 0.1,
            "assignment_id": ASSIGNMENT_ID,
            "course_code": "ENG5",
        },
        "assessed_at": "2026-11-25T02:38:27.308000+00:00",
    }


def resource_data() -> dict[str, Any]:
    return {
        "event_name": "resource.consumption.reported",
        "entity_id": BATCH_ID,
        "entity_type": "batch",
        "parent_id": None,
        "timestamp": "2026-11-25T02:38:27.320000+00:00",
        "user_id": "eng5_np_research_runner",
        "org_id": None,
        "resource_type": "cj_comparison",
        "quantity": 1,
        "service_name": "cj_assessment_service",
        "processing_id": "17",
        "consumed_at": "2026-11-25T02:38:27.319000+00:00",
    }


def instruction_response() -> dict[str, Any]:
    return {
        "id": 4,
        "assignment_id": ASSIGNMENT_ID,
        "course_id": None,
        "instructions_text": "Judge which essay better fulfils the ENG5 writing task.",
        "grade_scale": "eng5_np_legacy_9_step",
        "context_origin": "research_experiment",
        "student_prompt_storage_id": "1c3e5a7b9d0f2e4a6c8e0b1d3f5a7c9e",
        "created_at": HTTP_DATE,
    }


def _envelope(event_type: str, data: dict[str, Any]) -> dict[str, Any]:
    return {
        "event_id": "d2c4e6a8-0b1d-4f3a-8c5e-7a9b1c3d5e7f",
        "event_type": event_type,
        "event_timestamp": "2026-11-25T02:38:27.400000+00:00",
        "source_service": "cj_assessment_service",
        "schema_version": 1,
        "correlation_id": REQUEST_CORRELATION,
        "data_schema_uri": None,
        "data": data,
        "metadata": {"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"},
    }


ENVELOPE_CASES: list[tuple[str, dict[str, Any], type[BaseModel]]] = [
    ("request", request_envelope(), ELS_CJAssessmentRequestV1),
    ("callback", callback_envelope(), LLMComparisonResultV1),
    (
        "error-callback",
        _envelope(CALLBACK_EVENT_TYPE, error_callback_data()),
        LLMComparisonResultV1,
    ),
    ("completed", _envelope(COMPLETED_TOPIC, completed_data()), CJAssessmentCompletedV1),
    ("failed-init", _envelope(FAILED_TOPIC, failed_initialization_data()), CJAssessmentFailedV1),
    ("failed-low", _envelope(FAILED_TOPIC, failed_low_success_data()), CJAssessmentFailedV1),
    ("result", _envelope(RESULT_TOPIC, result_data()), AssessmentResultV1),
    ("resource", _envelope(RESOURCE_TOPIC, resource_data()), ResourceConsumptionV1),
]


@pytest.mark.parametrize(
    ("sample", "model_cls"),
    [pytest.param(sample, cls, id=name) for name, sample, cls in ENVELOPE_CASES],
)
def test_envelope_round_trips_through_bytes_and_typed_data(
    sample: dict[str, Any], model_cls: type[BaseModel]
) -> None:
    envelope = EventEnvelope.from_bytes(json.dumps(sample).encode("utf-8"))
    typed = envelope.data_as(model_cls)
    rebuilt = envelope.model_copy(update={"data": typed})

    assert _normalise(json.loads(rebuilt.to_bytes())) == _normalise(sample)
    assert _normalise(_dump(typed)) == _normalise(sample["data"])


def test_request_sample_exposes_the_fields_the_runner_keys_on() -> None:
    envelope = EventEnvelope.model_validate(request_envelope())
    request = envelope.data_as(ELS_CJAssessmentRequestV1)

    assert envelope.event_type == REQUEST_TOPIC
    assert str(envelope.correlation_id) == REQUEST_CORRELATION
    assert request.entity_id == request.system_metadata.entity_id == BATCH_ID
    assert request.user_id_is_usable
    assert envelope.metadata is not None
    assert envelope.metadata["max_comparisons"] == 12


def test_request_with_student_prompt_reference_round_trips() -> None:
    data = request_envelope()["data"]
    data["assignment_id"] = None
    data["student_prompt_ref"] = {
        "references": {
            "student_prompt_text": {
                "storage_id": "5e7a9c1b3d5f7e9a1c3e5a7b9d1f3e5a",
                "path": "",
            }
        }
    }
    request = ELS_CJAssessmentRequestV1.model_validate(data)

    assert request.student_prompt_ref is not None
    assert (
        request.student_prompt_ref.storage_id_for("student_prompt_text")
        == "5e7a9c1b3d5f7e9a1c3e5a7b9d1f3e5a"
    )
    assert _normalise(_dump(request)) == _normalise(data)


def test_callback_filters_and_outcome_flags() -> None:
    success = LLMComparisonResultV1.model_validate(callback_envelope()["data"])
    failure = LLMComparisonResultV1.model_validate(error_callback_data())

    assert success.is_success
    assert not success.is_error
    assert failure.is_error
    assert not failure.is_success
    assert success.batch_key == failure.batch_key == BATCH_ID
    assert failure.error_detail is not None
    assert failure.error_detail.details["status_code"] == 503


def test_failed_event_reason_reads_both_emitter_shapes() -> None:
    init = CJAssessmentFailedV1.model_validate(failed_initialization_data())
    low = CJAssessmentFailedV1.model_validate(failed_low_success_data())

    assert init.is_initialization_failure
    assert "assessment_instructions" in init.failure_reason
    assert init.failure_reason.startswith("PROCESSING_ERROR: ")
    assert not low.is_initialization_failure
    assert low.failure_reason == "low_success_rate"


def test_completed_naive_timestamp_is_read_as_utc() -> None:
    completed = CJAssessmentCompletedV1.model_validate(completed_data())
    completed_at = completed.system_metadata.completed_at

    assert completed_at is not None
    offset = completed_at.utcoffset()
    assert offset is not None
    assert offset.total_seconds() == 0


def test_result_splits_anchors_from_students() -> None:
    result = AssessmentResultV1.model_validate(result_data())

    assert [r.essay_id for r in result.anchor_results] == ["ANCHOR_12_a1b2c3d4"]
    assert len(result.student_results) == 2
    assert result.batch_id == BATCH_ID


def test_event_readers_ignore_unknown_fields() -> None:
    data = result_data()
    data["future_field"] = {"added": "by a newer HuleEdu"}
    data["essay_results"][0]["percentile"] = 99
    envelope = _envelope(RESULT_TOPIC, data)
    envelope["partition_hint"] = 3

    parsed = EventEnvelope.model_validate(envelope).data_as(AssessmentResultV1)

    assert "future_field" not in _dump(parsed)
    assert "percentile" not in _dump(parsed.essay_results[0])


# --- HTTP bodies ------------------------------------------------------------------------------


HTTP_CASES: list[tuple[str, dict[str, Any], type[BaseModel]]] = [
    ("instruction", instruction_response(), AssessmentInstructionResponse),
    (
        "instruction-list",
        {"items": [instruction_response()], "total": 1, "page": 1, "page_size": 50},
        AssessmentInstructionListResponse,
    ),
    (
        "student-prompt",
        {
            "assignment_id": ASSIGNMENT_ID,
            "student_prompt_storage_id": "1c3e5a7b9d0f2e4a6c8e0b1d3f5a7c9e",
            "prompt_text": "Write a letter to a friend about a place you love.",
            "instructions_text": "Judge which essay better fulfils the ENG5 writing task.",
            "grade_scale": "eng5_np_legacy_9_step",
            "created_at": HTTP_DATE,
        },
        StudentPromptResponse,
    ),
    (
        "judge-rubric",
        {
            "assignment_id": ASSIGNMENT_ID,
            "judge_rubric_storage_id": "2d4f6b8c0e1a3c5e7b9d1f2a4c6e8a0b",
            "rubric_text": "Content, structure, language; weigh content highest.",
            "instructions_text": "Judge which essay better fulfils the ENG5 writing task.",
            "grade_scale": "eng5_np_legacy_9_step",
            "created_at": "Tue, 25 Nov 2025 22:25:13 GMT",
        },
        JudgeRubricResponse,
    ),
    (
        "anchor-summary",
        {
            "assignment_id": ASSIGNMENT_ID,
            "grade_scale": "eng5_np_legacy_9_step",
            "anchor_count": 2,
            "anchors": [
                {
                    "id": 12,
                    "assignment_id": ASSIGNMENT_ID,
                    "anchor_label": "anchor_essay_eng_5_17_vt_003_E-",
                    "grade": "E-",
                    "grade_scale": "eng5_np_legacy_9_step",
                    "text_storage_id": "3e5a7c9e1b3d5f7a9c1e3b5d7f9a1c3e",
                    "created_at": HTTP_DATE,
                },
                {
                    "id": 13,
                    "assignment_id": ASSIGNMENT_ID,
                    "anchor_label": "anchor_essay_eng_5_17_vt_007_A",
                    "grade": "A",
                    "grade_scale": "eng5_np_legacy_9_step",
                    "text_storage_id": "4f6b8d0f2c4e6a8c0e2f4b6d8a0c2e4f",
                    "created_at": "Wed, 25 Nov 2026 02:38:27 GMT",
                },
            ],
            "anchor_count_total": 3,
            "anchor_count_by_scale": {"eng5_np_legacy_9_step": 2, "swedish_8_anchor": 1},
        },
        AnchorSummaryResponse,
    ),
    (
        "register-request",
        {
            "assignment_id": ASSIGNMENT_ID,
            "grade": "F+",
            "anchor_label": "anchor_essay_eng_5_17_vt_001_F+2",
            "essay_text": "My favourite place is the lake behind my grandmother's house. " * 3,
        },
        RegisterAnchorRequest,
    ),
    (
        "register-response",
        {
            "anchor_id": 12,
            "storage_id": "3e5a7c9e1b3d5f7a9c1e3b5d7f9a1c3e",
            "grade_scale": "eng5_np_legacy_9_step",
            "status": "registered",
        },
        RegisterAnchorResponse,
    ),
    (
        "admin-error",
        {
            "error": {
                "code": "RESOURCE_NOT_FOUND",
                "message": f"assessment_instructions with ID '{ASSIGNMENT_ID}' not found",
                "correlation_id": REQUEST_CORRELATION,
                "service": "cj_assessment_service",
                "timestamp": "2026-11-25T02:38:26.000000+00:00",
                "details": {
                    "resource_type": "assessment_instructions",
                    "resource_id": ASSIGNMENT_ID,
                },
            }
        },
        AdminErrorBody,
    ),
    (
        "generic-500",
        {
            "error": "Internal server error",
            "message": "An unexpected error occurred",
            "service": "cj_assessment_service",
        },
        GenericServerErrorBody,
    ),
    (
        "content-upload",
        {
            "storage_id": "9f2c4e7a1b3d5f6e8a0c2e4f6a8b0d1c",
            "correlation_id": "6a8c0e2f-4b6d-4f8a-9c1e-3b5d7f9a1c3e",
        },
        ContentUploadResponse,
    ),
    (
        "content-400",
        {
            "error": {
                "error_code": "VALIDATION_ERROR",
                "message": "Request body cannot be empty",
                "correlation_id": "6a8c0e2f-4b6d-4f8a-9c1e-3b5d7f9a1c3e",
                "timestamp": HTTP_DATE,
                "service": "content_service",
                "operation": "upload_content",
                "details": {"field": "request_body"},
                "stack_trace": None,
                "trace_id": None,
                "span_id": None,
                "content_id": None,
            }
        },
        ContentErrorBody,
    ),
]


@pytest.mark.parametrize(
    ("sample", "model_cls"),
    [pytest.param(sample, cls, id=name) for name, sample, cls in HTTP_CASES],
)
def test_http_body_round_trips(sample: dict[str, Any], model_cls: type[BaseModel]) -> None:
    parsed = model_cls.model_validate(sample)

    assert _normalise(_dump(parsed)) == _normalise(sample)


def test_http_date_created_at_becomes_aware_utc() -> None:
    parsed = AssessmentInstructionResponse.model_validate(instruction_response())

    assert parsed.created_at.isoformat() == "2026-11-25T02:38:26+00:00"


def test_content_500_body_with_only_three_fields_parses() -> None:
    body = {
        "error": {
            "error_code": "UNKNOWN_ERROR",
            "message": "database unavailable",
            "correlation_id": "not-a-uuid",
            "content_id": "9f2c4e7a1b3d5f6e8a0c2e4f6a8b0d1c",
        }
    }
    parsed = ContentErrorBody.model_validate(body)

    assert parsed.error.error_code == "UNKNOWN_ERROR"
    assert parsed.error.correlation_id == "not-a-uuid"
    assert parsed.error.content_id == "9f2c4e7a1b3d5f6e8a0c2e4f6a8b0d1c"
