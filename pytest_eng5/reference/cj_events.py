"""The events the reference CJ worker publishes (§E.12) and their way out through the outbox.

Builders for ``CJAssessmentCompletedV1``, ``AssessmentResultV1`` (with its ``EssayResultV1``
list), ``ResourceConsumptionV1`` and ``CJAssessmentFailedV1`` (batch failure and intake
rejection), plus :class:`OutboxPublisher`, which writes an envelope to the outbox and relays it.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Final

import asyncpg

from pytest_eng5.contracts.enums import BatchStatus, ProcessingEvent, ProcessingStage
from pytest_eng5.contracts.envelope import EventEnvelope
from pytest_eng5.contracts.events import (
    AssessmentResultV1,
    CJAssessmentCompletedV1,
    CJAssessmentFailedV1,
    EssayResultV1,
    ProcessingSummary,
    ResourceConsumptionV1,
    SystemProcessingMetadata,
)
from pytest_eng5.contracts.topics import RESULT_TOPIC
from pytest_eng5.reference.batch_store import EssayRow, json_object
from pytest_eng5.reference.db import Pool
from pytest_eng5.reference.outbox import AggregateType, SendFn, relay_rows, write_outbox_row
from pytest_eng5.reference.projection import NO_GRADE, ProjectionSummary, normalized_score

SERVICE_NAME: Final = "cj_assessment_service"
#: envelope ``event_type`` where HuleEdu's CJ does not use the topic name: its rich result
#: carries the event's name (observed on the wire)
EVENT_TYPES: Final[dict[str, str]] = {
    RESULT_TOPIC: ProcessingEvent.ASSESSMENT_RESULT_PUBLISHED.value,
}
INITIALIZATION_FAILED: Final = "INITIALIZATION_FAILED"
LETTER_GRADE_OK: Final = frozenset(
    f"{letter}{mod}" for letter in "ABCDEF" for mod in ("", "+", "-")
) | {"U"}


class OutboxPublisher:
    """Publish CJ events: one outbox row per event, relayed to Kafka straight away."""

    def __init__(self, pool: Pool, send: SendFn) -> None:
        self._pool = pool
        self._send = send

    async def emit(
        self,
        aggregate_id: str,
        aggregate_type: AggregateType,
        topic: str,
        data: Any,
        correlation_id: uuid.UUID | None,
    ) -> None:
        """Wrap ``data`` in an envelope as HuleEdu's CJ does (event type = topic, except
        :data:`EVENT_TYPES`; ``metadata`` an empty trace context), store it and relay it."""
        envelope = EventEnvelope(
            event_type=EVENT_TYPES.get(topic, topic),
            source_service=SERVICE_NAME,
            correlation_id=correlation_id or uuid.uuid4(),
            data=data,
            metadata={},
        )
        row_id = await write_outbox_row(
            self._pool,
            aggregate_id=aggregate_id,
            aggregate_type=aggregate_type,
            topic=topic,
            envelope=envelope,
        )
        await relay_rows(self._pool, self._send, [row_id])


def _batch_metadata(
    upload: asyncpg.Record,
    stage: ProcessingStage,
    ended_at: datetime,
    event: str,
    error_info: dict[str, Any],
) -> SystemProcessingMetadata:
    """``system_metadata`` of a batch-level CJ event (completed or failed) for ``upload``."""
    return SystemProcessingMetadata(
        entity_id=str(upload["bos_batch_id"]),
        entity_type="batch",
        processing_stage=stage,
        started_at=upload["created_at"],
        completed_at=ended_at,
        event=event,
        error_info=error_info,
    )


def processing_seconds(upload: asyncpg.Record, completed_at: datetime) -> float:
    """Seconds from the batch's creation to ``completed_at``, rounded to 0.01."""
    created_at: datetime = upload["created_at"]
    return round((completed_at - created_at).total_seconds(), 2)


def completed_event(
    upload: asyncpg.Record,
    essays: Sequence[EssayRow],
    *,
    completed_at: datetime,
    single_essay: bool,
) -> CJAssessmentCompletedV1:
    """The thin completion event; FAILED_CRITICALLY when no student got a score."""
    bos_batch_id = str(upload["bos_batch_id"])
    students = [e for e in essays if not e.is_anchor]
    scored = [e.essay_id for e in students if e.bt_score is not None]
    unscored = [e.essay_id for e in students if e.bt_score is None]
    return CJAssessmentCompletedV1(
        entity_id=bos_batch_id,
        entity_type="batch",
        parent_id=None,
        status=BatchStatus.COMPLETED_SUCCESSFULLY if scored else BatchStatus.FAILED_CRITICALLY,
        system_metadata=_batch_metadata(
            upload, ProcessingStage.COMPLETED, completed_at, "cj_assessment.completed", {}
        ),
        cj_assessment_job_id=str(upload["id"]),
        processing_summary=ProcessingSummary(
            total_essays=len(students),
            successful=len(scored),
            failed=len(unscored),
            successful_essay_ids=scored,
            failed_essay_ids=unscored,
            processing_time_seconds=processing_seconds(upload, completed_at),
            single_essay_batch=single_essay,
        ),
    )


def essay_results(ranked: Sequence[EssayRow], projection: ProjectionSummary) -> list[EssayResultV1]:
    """EssayResultV1 for every ranked essay; raises ValidationError for off-regex grades."""
    results = []
    for rank, essay in enumerate(ranked, start=1):
        if essay.is_anchor:
            known = str(essay.metadata.get("known_grade", ""))
            letter = known if known in LETTER_GRADE_OK else NO_GRADE
            results.append(
                EssayResultV1(
                    essay_id=essay.essay_id,
                    normalized_score=normalized_score(letter),
                    letter_grade=letter,
                    confidence_score=0.0,
                    confidence_label="LOW",
                    bt_score=essay.bt_score or 0.0,
                    rank=rank,
                    is_anchor=True,
                    display_name=f"ANCHOR GRADE {letter}",
                )
            )
            continue
        projected = projection.projections.get(essay.essay_id)
        grade = projected.primary_grade if projected else NO_GRADE
        results.append(
            EssayResultV1(
                essay_id=essay.essay_id,
                normalized_score=normalized_score(grade),
                letter_grade=grade,
                confidence_score=projected.confidence_score if projected else 0.0,
                confidence_label=projected.confidence_label if projected else "LOW",
                bt_score=essay.bt_score or 0.0,
                rank=rank,
                is_anchor=False,
            )
        )
    return results


def assessment_result_event(
    upload: asyncpg.Record,
    essays: Sequence[EssayRow],
    results: list[EssayResultV1],
    projection: ProjectionSummary,
    *,
    completed_at: datetime,
    model_used: str,
    model_provider: str,
    comparison_count: int,
    llm_temperature: float,
) -> AssessmentResultV1:
    """The rich result event; ``comparison_count`` is the number of successful comparisons."""
    bos_batch_id = str(upload["bos_batch_id"])
    meta = json_object(upload["processing_metadata"])
    anchors = [e for e in essays if e.is_anchor]
    assessment_metadata: dict[str, Any] = {
        "anchor_essays_used": len(anchors),
        "calibration_method": "anchor" if projection.projections_available else "default",
        "comparison_count": comparison_count,
        "processing_duration_seconds": processing_seconds(upload, completed_at),
        "llm_temperature": llm_temperature,
        "assignment_id": upload["assignment_id"],
        "course_code": upload["course_code"],
        "grade_scale": meta.get("grade_scale"),
        "projections_available": projection.projections_available,
    }
    if anchors:
        distribution = dict.fromkeys("ABCDEFU", 0)
        for result in results:
            if result.is_anchor:
                distribution[result.letter_grade[0]] += 1
        assessment_metadata["anchor_grade_distribution"] = distribution
    return AssessmentResultV1(
        entity_id=bos_batch_id,
        entity_type="batch",
        batch_id=bos_batch_id,
        cj_assessment_job_id=str(upload["id"]),
        assignment_id=upload["assignment_id"],
        model_used=model_used,
        model_provider=model_provider,
        essay_results=results,
        assessment_metadata=assessment_metadata,
        assessed_at=completed_at,
    )


def resource_event(upload: asyncpg.Record, student_count: int) -> ResourceConsumptionV1:
    """Resource consumption: C(students, 2) comparisons, charged to the batch's user."""
    return ResourceConsumptionV1(
        entity_id=str(upload["bos_batch_id"]),
        entity_type="batch",
        user_id=str(upload["user_id"]),
        org_id=upload["org_id"],
        quantity=student_count * (student_count - 1) // 2,
        processing_id=str(upload["id"]),
    )


def batch_failed_event(
    upload: asyncpg.Record,
    details: Mapping[str, Any],
    *,
    failed_at: datetime,
    reason: str = "low_success_rate",
) -> CJAssessmentFailedV1:
    """The failure event of a batch: its comparisons mostly failed (``low_success_rate``), or
    its processing raised (``processing_error``)."""
    bos_batch_id = str(upload["bos_batch_id"])
    return CJAssessmentFailedV1(
        entity_id=bos_batch_id,
        entity_type="batch",
        parent_id=None,
        system_metadata=_batch_metadata(
            upload,
            ProcessingStage.FAILED,
            failed_at,
            "cj_assessment.failed",
            {"reason": reason, "details": details},
        ),
        cj_assessment_job_id=str(upload["id"]),
    )


def intake_failed_event(
    correlation_id: uuid.UUID,
    entity_id: str,
    entity_type: str | None,
    parent_id: str | None,
    *,
    error_code: str,
    error_message: str,
    details: Mapping[str, Any],
    failed_at: datetime,
) -> CJAssessmentFailedV1:
    """The failure event of a rejected request (job id ``INITIALIZATION_FAILED``)."""
    return CJAssessmentFailedV1(
        entity_id=entity_id,
        entity_type=entity_type,
        parent_id=parent_id,
        system_metadata=SystemProcessingMetadata(
            entity_id=entity_id,
            entity_type=entity_type or "batch",
            parent_id=parent_id,
            processing_stage=ProcessingStage.FAILED,
            completed_at=failed_at,
            event="cj_assessment.failed",
            error_info={
                "error_code": error_code,
                "error_message": error_message,
                "correlation_id": str(correlation_id),
                "timestamp": failed_at.isoformat(),
                "service": SERVICE_NAME,
                "details": details,
            },
        ),
        cj_assessment_job_id=INITIALIZATION_FAILED,
    )
