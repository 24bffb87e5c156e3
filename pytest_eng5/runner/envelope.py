"""Compose the CJ request envelope as the reference runner does (runner §6.2, contract D.4)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any, Final
from uuid import UUID, uuid4

from pytest_eng5.contracts import (
    REQUEST_TOPIC,
    RUNNER_SOURCE_SERVICE,
    CourseCode,
    ELS_CJAssessmentRequestV1,
    EssayProcessingInputRefV1,
    EventEnvelope,
    Language,
    LLMConfigOverrides,
    SystemProcessingMetadata,
)
from pytest_eng5.contracts.enums import LLMBatchingMode, ProcessingEvent, ProcessingStage
from pytest_eng5.errors import ConfigurationError
from pytest_eng5.runner.identity import BatchIdentity

ENTITY_TYPE_BATCH: Final = "batch"
PUBLISHING_RUNNER_MODES: Final[tuple[str, ...]] = ("execute", "anchor-align-test")
BATCHING_MODE_HINTS: Final[tuple[str, ...]] = tuple(mode.value for mode in LLMBatchingMode)


def compose_request(
    identity: BatchIdentity,
    essays: Sequence[EssayProcessingInputRefV1],
    *,
    language: Language | str,
    course_code: CourseCode | str,
    assignment_id: str | None,
    user_id: str,
    org_id: str | None,
    llm_overrides: LLMConfigOverrides | None,
    runner_mode: str,
    max_comparisons: int | None,
    llm_batching_mode: str | None,
    correlation_id: UUID | None = None,
) -> EventEnvelope:
    """The ``huleedu.els.cj_assessment.requested.v1`` envelope for one batch.

    ``entity_id``, ``system_metadata.entity_id`` and the Kafka key are ``str(batch_uuid)``;
    the human label travels in ``metadata.batch_label`` only.
    """
    if not essays:
        raise ConfigurationError(
            "the CJ request has no essays (essays_for_cj is empty)",
            next_step="check the student/anchor folders of the run; at least one essay is needed",
        )
    _check_unique_essay_ids(essays)
    if not user_id or not user_id.strip():
        raise ConfigurationError(
            "user_id is blank; CJ accepts such a batch but never publishes its completion",
            next_step="set a non-empty user_id (the reference runner uses eng5_np_research_runner)",
        )
    if runner_mode not in PUBLISHING_RUNNER_MODES:
        raise ConfigurationError(
            f"runner_mode {runner_mode!r} does not publish a CJ request",
            next_step=f"use one of: {', '.join(PUBLISHING_RUNNER_MODES)}",
        )
    course = _course_code(course_code)
    batch_id = identity.batch_id
    request = ELS_CJAssessmentRequestV1(
        event_name=ProcessingEvent.ELS_CJ_ASSESSMENT_REQUESTED,
        entity_id=batch_id,
        entity_type=ENTITY_TYPE_BATCH,
        parent_id=assignment_id,
        system_metadata=SystemProcessingMetadata(
            entity_id=batch_id,
            entity_type=ENTITY_TYPE_BATCH,
            parent_id=assignment_id,
            processing_stage=ProcessingStage.PENDING,
            event=ProcessingEvent.ELS_CJ_ASSESSMENT_REQUESTED.value,
        ),
        essays_for_cj=list(essays),
        language=str(language.value if isinstance(language, Language) else language),
        course_code=course,
        student_prompt_ref=None,
        llm_config_overrides=llm_overrides,
        assignment_id=assignment_id,
        user_id=user_id,
        org_id=org_id,
    )
    return EventEnvelope(
        event_type=REQUEST_TOPIC,
        source_service=RUNNER_SOURCE_SERVICE,
        correlation_id=correlation_id or uuid4(),
        data=request,
        metadata=_request_metadata(identity, runner_mode, max_comparisons, llm_batching_mode),
    )


def _request_metadata(
    identity: BatchIdentity,
    runner_mode: str,
    max_comparisons: int | None,
    llm_batching_mode: str | None,
) -> dict[str, Any]:
    metadata: dict[str, Any] = {"runner_mode": runner_mode, "batch_label": identity.batch_label}
    if max_comparisons is not None:
        if isinstance(max_comparisons, bool) or max_comparisons <= 0:
            raise ConfigurationError(
                f"max_comparisons={max_comparisons!r} is not a positive integer",
                next_step="set max_comparisons to an integer > 0, or leave it unset",
            )
        metadata["max_comparisons"] = max_comparisons
    if llm_batching_mode is not None:
        hint = llm_batching_mode.strip().lower()
        if hint not in BATCHING_MODE_HINTS:
            raise ConfigurationError(
                f"llm_batching_mode {llm_batching_mode!r} is not a mode CJ knows",
                next_step=f"use one of: {', '.join(BATCHING_MODE_HINTS)} (or leave it unset)",
            )
        metadata["llm_batching_mode_hint"] = hint
    return metadata


def _course_code(value: CourseCode | str) -> CourseCode:
    try:
        return CourseCode(value)
    except ValueError:
        raise ConfigurationError(
            f"course_code {value!r} is not a CJ course code",
            next_step=f"use one of: {', '.join(code.value for code in CourseCode)}",
        ) from None


def _check_unique_essay_ids(essays: Sequence[EssayProcessingInputRefV1]) -> None:
    counts = Counter(ref.essay_id for ref in essays)
    clashes = sorted(essay_id for essay_id, count in counts.items() if count > 1)
    if clashes:
        raise ConfigurationError(
            f"essay ids sent twice in one request: {', '.join(clashes[:5])}",
            next_step="CJ stores essay ids as a global primary key; give every essay a unique id",
        )
