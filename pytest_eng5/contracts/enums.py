"""String enums whose values are fixed by the HuleEdu wire contract (D.11 and friends)."""

from __future__ import annotations

from enum import StrEnum


class CourseCode(StrEnum):
    ENG5 = "ENG5"
    ENG6 = "ENG6"
    ENG7 = "ENG7"
    SV1 = "SV1"
    SV2 = "SV2"
    SV3 = "SV3"


class Language(StrEnum):
    EN = "en"
    SV = "sv"


class EssayComparisonWinner(StrEnum):
    """Callback winner values (the upstream docstring's essay_a/essay_b is wrong)."""

    ESSAY_A = "Essay A"
    ESSAY_B = "Essay B"


class LLMProviderType(StrEnum):
    ANTHROPIC = "anthropic"
    OPENAI = "openai"
    GOOGLE = "google"
    OPENROUTER = "openrouter"
    MOCK = "mock"


class LLMBatchingMode(StrEnum):
    PER_REQUEST = "per_request"
    SERIAL_BUNDLE = "serial_bundle"
    PROVIDER_BATCH_API = "provider_batch_api"


class BatchStatus(StrEnum):
    AWAITING_CONTENT_VALIDATION = "awaiting_content_validation"
    CONTENT_INGESTION_FAILED = "content_ingestion_failed"
    AWAITING_PIPELINE_CONFIGURATION = "awaiting_pipeline_configuration"
    READY_FOR_PIPELINE_EXECUTION = "ready_for_pipeline_execution"
    PROCESSING_PIPELINES = "processing_pipelines"
    AWAITING_STUDENT_VALIDATION = "awaiting_student_validation"
    VALIDATION_TIMEOUT_PROCESSED = "validation_timeout_processed"
    COMPLETED_SUCCESSFULLY = "completed_successfully"
    COMPLETED_WITH_FAILURES = "completed_with_failures"
    FAILED_CRITICALLY = "failed_critically"
    CANCELLED = "cancelled"


class ProcessingStage(StrEnum):
    PENDING = "pending"
    INITIALIZED = "initialized"
    PROCESSING = "processing"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"


class ProcessingEvent(StrEnum):
    """The ProcessingEvent members of the CJ flow (value → topic via ``topics.topic_for_event``)."""

    ELS_CJ_ASSESSMENT_REQUESTED = "els.cj_assessment.requested"
    LLM_COMPARISON_RESULT = "llm_provider.comparison_result"
    CJ_ASSESSMENT_COMPLETED = "cj_assessment.completed"
    CJ_ASSESSMENT_FAILED = "cj_assessment.failed"
    ASSESSMENT_RESULT_PUBLISHED = "assessment.result.published"
    RESOURCE_CONSUMPTION_REPORTED = "resource.consumption.reported"


class CJBatchStatus(StrEnum):
    """DB enum ``cj_batch_status_enum`` (cj_batch_uploads.status)."""

    PENDING = "PENDING"
    FETCHING_CONTENT = "FETCHING_CONTENT"
    PERFORMING_COMPARISONS = "PERFORMING_COMPARISONS"
    COMPLETE_FORCED_RECOVERY = "COMPLETE_FORCED_RECOVERY"
    COMPLETE_STABLE = "COMPLETE_STABLE"
    COMPLETE_MAX_COMPARISONS = "COMPLETE_MAX_COMPARISONS"
    COMPLETE_INSUFFICIENT_ESSAYS = "COMPLETE_INSUFFICIENT_ESSAYS"
    ERROR_PROCESSING = "ERROR_PROCESSING"
    ERROR_ESSAY_PROCESSING = "ERROR_ESSAY_PROCESSING"


class CJBatchState(StrEnum):
    """DB enum ``cj_batch_state_enum`` (cj_batch_states.state)."""

    INITIALIZING = "INITIALIZING"
    GENERATING_PAIRS = "GENERATING_PAIRS"
    WAITING_CALLBACKS = "WAITING_CALLBACKS"
    SCORING = "SCORING"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"


class ErrorCode(StrEnum):
    """Error codes that appear in the CJ flow; wire fields stay ``str`` so unknown codes parse."""

    VALIDATION_ERROR = "VALIDATION_ERROR"
    RESOURCE_NOT_FOUND = "RESOURCE_NOT_FOUND"
    AUTHENTICATION_ERROR = "AUTHENTICATION_ERROR"
    AUTHORIZATION_ERROR = "AUTHORIZATION_ERROR"
    PROCESSING_ERROR = "PROCESSING_ERROR"
    INITIALIZATION_FAILED = "INITIALIZATION_FAILED"
    EXTERNAL_SERVICE_ERROR = "EXTERNAL_SERVICE_ERROR"
    CONTENT_SERVICE_ERROR = "CONTENT_SERVICE_ERROR"
    INVALID_RESPONSE = "INVALID_RESPONSE"
    UNKNOWN_ERROR = "UNKNOWN_ERROR"
    CJ_INSUFFICIENT_COMPARISONS = "CJ_INSUFFICIENT_COMPARISONS"
    CJ_CALLBACK_CORRELATION_FAILED = "CJ_CALLBACK_CORRELATION_FAILED"


class ContentType(StrEnum):
    """Keys of ``StorageReferenceMetadata.references`` relevant to CJ."""

    STUDENT_PROMPT_TEXT = "student_prompt_text"
    CJ_RESULTS_JSON = "cj_results_json"
    ORIGINAL_ESSAY = "original_essay"


class ContextOrigin(StrEnum):
    """Values the cj-admin CLI allows; the HTTP API accepts any string."""

    RESEARCH_EXPERIMENT = "research_experiment"
    CANONICAL_NATIONAL = "canonical_national"
