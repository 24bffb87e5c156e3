"""Event payload models of the CJ flow (contract D.3–D.10).

Readers must survive what HuleEdu really sends, so every model ignores unknown fields and
every datetime is a ``TolerantDatetime`` (ISO 8601 or HTTP-date; naive means UTC).
"""

from __future__ import annotations

from typing import Any, Literal, Self
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, model_validator

from pytest_eng5.contracts.enums import (
    BatchStatus,
    CourseCode,
    EssayComparisonWinner,
    LLMProviderType,
    ProcessingEvent,
    ProcessingStage,
)
from pytest_eng5.contracts.timeparse import TolerantDatetime, utcnow

# HuleEdu stores essay ids in cj_processed_essays.els_essay_id varchar(36), a global PK.
ESSAY_ID_MAX_LENGTH = 36
ASSIGNMENT_ID_MAX_LENGTH = 100
JUSTIFICATION_MAX_LENGTH = 500
LETTER_GRADE_PATTERN = r"^([A-F][+-]?|U)$"


class WireModel(BaseModel):
    """Base for wire models: unknown fields ignored, field names or aliases accepted."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)


# --- shared bases (D.3) -------------------------------------------------------------------


class SystemProcessingMetadata(WireModel):
    entity_id: str
    entity_type: str
    parent_id: str | None = None
    timestamp: TolerantDatetime = Field(default_factory=utcnow)
    processing_stage: ProcessingStage | None = None
    started_at: TolerantDatetime | None = None
    completed_at: TolerantDatetime | None = None
    event: str | None = None
    error_info: dict[str, Any] = Field(default_factory=dict)


class BaseEventData(WireModel):
    event_name: ProcessingEvent
    entity_id: str | None = None
    entity_type: str | None = None
    parent_id: str | None = None
    timestamp: TolerantDatetime = Field(default_factory=utcnow)


class ProcessingUpdate(BaseEventData):
    status: BatchStatus
    system_metadata: SystemProcessingMetadata


class ErrorDetail(WireModel):
    """HuleEdu's ErrorDetail, read tolerantly: only ``error_code`` and ``message`` required."""

    error_code: str
    message: str
    correlation_id: UUID | str | None = Field(default=None, union_mode="left_to_right")
    timestamp: TolerantDatetime | None = None
    service: str | None = None
    operation: str | None = None
    details: dict[str, Any] = Field(default_factory=dict)
    stack_trace: str | None = None
    trace_id: str | None = None
    span_id: str | None = None


# --- request (D.4, D.5) -------------------------------------------------------------------


class EssayProcessingInputRefV1(WireModel):
    essay_id: str = Field(min_length=1, max_length=ESSAY_ID_MAX_LENGTH)
    text_storage_id: str = Field(min_length=1)
    spellcheck_metrics: dict[str, Any] | None = None  # ignored by CJ


class StorageReferenceMetadata(WireModel):
    """``references[content_type] = {"storage_id": ..., "path": ...}``."""

    references: dict[str, dict[str, str]] = Field(default_factory=dict)

    def storage_id_for(self, content_type: str) -> str | None:
        """The storage id stored under ``content_type`` (a ContentType value), if any."""
        entry = self.references.get(str(content_type))
        return None if entry is None else entry.get("storage_id")


class LLMConfigOverrides(WireModel):
    """Event form of the overrides; provider/effort/verbosity are free strings on the wire."""

    model_override: str | None = None
    temperature_override: float | None = Field(default=None, ge=0.0, le=2.0)
    max_tokens_override: int | None = Field(default=None, gt=0)
    provider_override: str | None = None
    system_prompt_override: str | None = None
    judge_rubric_override: str | None = None
    reasoning_effort: str | None = None
    output_verbosity: str | None = None


class ELS_CJAssessmentRequestV1(BaseEventData):
    """The CJ request (topic ``huleedu.els.cj_assessment.requested.v1``).

    ``user_id`` accepts ``""`` because HuleEdu does: such a batch is accepted and then fails at
    finalisation without any completion event. Producers should check ``user_id_is_usable``.
    """

    event_name: ProcessingEvent = ProcessingEvent.ELS_CJ_ASSESSMENT_REQUESTED
    system_metadata: SystemProcessingMetadata
    essays_for_cj: list[EssayProcessingInputRefV1]
    language: str
    course_code: CourseCode
    student_prompt_ref: StorageReferenceMetadata | None = None
    llm_config_overrides: LLMConfigOverrides | None = None
    assignment_id: str | None = Field(default=None, max_length=ASSIGNMENT_ID_MAX_LENGTH)
    user_id: str
    org_id: str | None = None

    @property
    def user_id_is_usable(self) -> bool:
        """False when CJ would accept the request but never publish a completion."""
        return bool(self.user_id.strip())


# --- callback (D.10) ----------------------------------------------------------------------


class TokenUsage(WireModel):
    prompt_tokens: int = Field(default=0, ge=0)
    completion_tokens: int = Field(default=0, ge=0)
    total_tokens: int = Field(default=0, ge=0)


class LLMComparisonResultV1(WireModel):
    """LPS callback: either a judgement (winner+justification+confidence) or an error."""

    request_id: str
    correlation_id: UUID
    winner: EssayComparisonWinner | None = None
    justification: str | None = Field(default=None, max_length=JUSTIFICATION_MAX_LENGTH)
    confidence: float | None = Field(default=None, ge=1.0, le=5.0)
    error_detail: ErrorDetail | None = None
    provider: LLMProviderType
    model: str
    response_time_ms: int = Field(ge=0)
    token_usage: TokenUsage = Field(default_factory=TokenUsage)
    cost_estimate: float = Field(ge=0.0)
    requested_at: TolerantDatetime
    completed_at: TolerantDatetime
    trace_id: str | None = None
    request_metadata: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _exactly_one_outcome(self) -> Self:
        has_winner = self.winner is not None
        has_error = self.error_detail is not None
        if has_winner and has_error:
            raise ValueError(
                "winner and error_detail are both set; a callback carries exactly one of them"
            )
        if not has_winner and not has_error:
            raise ValueError("neither winner nor error_detail is set; exactly one is required")
        if has_winner and (self.justification is None or self.confidence is None):
            raise ValueError(
                "winner is set but justification or confidence is missing; "
                "winner, justification and confidence must be set together"
            )
        return self

    @property
    def is_success(self) -> bool:
        return self.winner is not None

    @property
    def is_error(self) -> bool:
        return self.error_detail is not None

    @property
    def batch_key(self) -> str | None:
        """The BOS batch id echoed in ``request_metadata`` (``batch_id`` first, as the runner)."""
        for key in ("batch_id", "bos_batch_id"):
            value = self.request_metadata.get(key)
            if value is not None:
                return str(value)
        return None


# --- completion, failure, result, resource (D.6–D.9) --------------------------------------


class ProcessingSummary(WireModel):
    total_essays: int = 0
    successful: int = 0
    failed: int = 0
    successful_essay_ids: list[str] = Field(default_factory=list)
    failed_essay_ids: list[str] = Field(default_factory=list)
    processing_time_seconds: float = 0.0
    single_essay_batch: bool = False


class CJAssessmentCompletedV1(ProcessingUpdate):
    """Thin completion event; ``entity_id`` is the request's ``entity_id``."""

    event_name: ProcessingEvent = ProcessingEvent.CJ_ASSESSMENT_COMPLETED
    cj_assessment_job_id: str
    processing_summary: ProcessingSummary = Field(default_factory=ProcessingSummary)


class CJAssessmentFailedV1(ProcessingUpdate):
    """Failure event; ``system_metadata.error_info`` differs per emitter (see ``failure_reason``).

    Intake failures carry ``cj_assessment_job_id == "INITIALIZATION_FAILED"`` and
    ``error_info = {error_code, error_message, ...}``; monitor/low-success failures carry
    ``error_info = {"reason": ..., "details"|"progress_pct": ...}``.
    """

    event_name: ProcessingEvent = ProcessingEvent.CJ_ASSESSMENT_FAILED
    status: BatchStatus = BatchStatus.FAILED_CRITICALLY
    cj_assessment_job_id: str

    @property
    def failure_reason(self) -> str:
        """A one-line reason from whichever ``error_info`` shape the emitter used."""
        info = self.system_metadata.error_info
        reason = info.get("reason")
        if reason:
            return str(reason)
        code = info.get("error_code")
        message = info.get("error_message") or info.get("message")
        if code and message:
            return f"{code}: {message}"
        if message or code:
            return str(message or code)
        return "no reason given in system_metadata.error_info"

    @property
    def is_initialization_failure(self) -> bool:
        return self.cj_assessment_job_id == "INITIALIZATION_FAILED"


class EssayResultV1(WireModel):
    essay_id: str
    normalized_score: float = Field(ge=0.0, le=1.0)
    letter_grade: str = Field(pattern=LETTER_GRADE_PATTERN)
    confidence_score: float = Field(ge=0.0, le=1.0)
    confidence_label: Literal["HIGH", "MID", "LOW"]
    bt_score: float
    rank: int = Field(gt=0)
    is_anchor: bool = False
    feedback_uri: str | None = None
    metrics_uri: str | None = None
    display_name: str | None = None


class AssessmentResultV1(BaseEventData):
    """Rich result; ``batch_id`` is the request's ``entity_id``; anchors included."""

    event_name: ProcessingEvent = ProcessingEvent.ASSESSMENT_RESULT_PUBLISHED
    batch_id: str
    cj_assessment_job_id: str
    assignment_id: str | None = Field(default=None, max_length=ASSIGNMENT_ID_MAX_LENGTH)
    assessment_method: str = "cj_assessment"
    model_used: str
    model_provider: str
    model_version: str | None = None
    essay_results: list[EssayResultV1]
    assessment_metadata: dict[str, Any] = Field(default_factory=dict)
    assessed_at: TolerantDatetime = Field(default_factory=utcnow)

    @property
    def student_results(self) -> list[EssayResultV1]:
        return [result for result in self.essay_results if not result.is_anchor]

    @property
    def anchor_results(self) -> list[EssayResultV1]:
        return [result for result in self.essay_results if result.is_anchor]


class ResourceConsumptionV1(BaseEventData):
    event_name: ProcessingEvent = ProcessingEvent.RESOURCE_CONSUMPTION_REPORTED
    user_id: str
    org_id: str | None = None
    resource_type: str = "cj_comparison"
    quantity: int = Field(ge=0)
    service_name: str = "cj_assessment_service"
    processing_id: str
    consumed_at: TolerantDatetime = Field(default_factory=utcnow)
