"""Intake of a CJ request (§E.2–E.5): validate it, resolve prompt and rubric, create the batch
rows, fetch the essay texts from the Content Service and mix in the assignment's anchors."""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

import asyncpg

from pytest_eng5.contracts.envelope import EventEnvelope
from pytest_eng5.contracts.events import ELS_CJAssessmentRequestV1
from pytest_eng5.core.names import DEFAULT_GRADE_SCALE
from pytest_eng5.errors import Eng5Error
from pytest_eng5.reference.batch_runtime import BatchRuntimes
from pytest_eng5.reference.batch_store import set_status
from pytest_eng5.reference.cj_content_client import ContentClient, ContentServiceError
from pytest_eng5.reference.db import Pool
from pytest_eng5.reference.faults import read_faults
from pytest_eng5.reference.pairing import distinct_pairs

_log = logging.getLogger(__name__)

ANCHOR_PREFIX: Final = "ANCHOR_"
STUDENT_PROMPT_CONTENT_TYPE: Final = "student_prompt_text"

EssayInput = tuple[str, str, str, dict[str, Any]]
"""essay id, text storage id, text, processing metadata."""


class IntakeFailure(Eng5Error):
    """A request the worker rejects; it becomes a CJAssessmentFailedV1 (INITIALIZATION_FAILED)."""

    kind = "cj-intake"

    def __init__(self, code: str, message: str, *, details: Mapping[str, Any] | None = None):
        super().__init__(message, next_step="fix the request or the seeded data and re-publish")
        self.code = code
        self.details = dict(details or {})


@dataclass(frozen=True)
class Rejection:
    """Where to send the failure event of a rejected request, and why."""

    correlation_id: uuid.UUID
    entity_id: str
    entity_type: str | None
    parent_id: str | None
    failure: IntakeFailure


@dataclass(frozen=True)
class AdmittedBatch:
    """A batch whose rows exist; with fewer than 2 students it needs no comparisons."""

    cj_batch_id: int
    student_count: int


def reject_unparseable(raw: bytes, exc: Exception) -> Rejection | None:
    """A VALIDATION_ERROR rejection for a request that does not validate, or None when it has
    no ``data.entity_id`` to address the failure event to."""
    try:
        loaded = json.loads(raw)
    except ValueError:
        loaded = None
    data = loaded.get("data") if isinstance(loaded, dict) else None
    entity_id = data.get("entity_id") if isinstance(data, dict) else None
    if not entity_id or not isinstance(data, dict) or not isinstance(loaded, dict):
        _log.error("unparseable request without entity_id skipped: %s", str(exc)[:300])
        return None
    correlation = loaded.get("correlation_id")
    try:
        correlation_id = uuid.UUID(str(correlation))
    except ValueError:
        correlation_id = uuid.uuid4()
    failure = IntakeFailure(
        "VALIDATION_ERROR",
        f"The request envelope for batch {entity_id} does not validate as "
        f"ELS_CJAssessmentRequestV1: {str(exc)[:800]}",
    )
    return Rejection(
        correlation_id, str(entity_id), data.get("entity_type"), data.get("parent_id"), failure
    )


def _positive_int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    try:
        number = int(value)
    except (TypeError, ValueError):
        return None
    return number if number > 0 else None


class BatchIntake:
    """Turns a valid request into batch rows; raises :class:`IntakeFailure` to reject it."""

    def __init__(
        self,
        pool: Pool,
        content: ContentClient,
        runtimes: BatchRuntimes,
        *,
        max_pairwise_comparisons: int,
    ) -> None:
        self._pool = pool
        self._content = content
        self._runtimes = runtimes
        self._max_pairwise_comparisons = max_pairwise_comparisons

    async def admit(
        self, envelope: EventEnvelope, request: ELS_CJAssessmentRequestV1
    ) -> AdmittedBatch:
        """Check the request, create the batch, its essays and (2+ students) its budget."""
        pool = self._pool
        faults = await read_faults(pool, "cj-worker")
        if faults.force_failure:
            raise IntakeFailure(
                "PROCESSING_ERROR",
                "Forced failure: the cj-worker fault config has force_failure=true",
                details={"fault": "force_failure"},
            )
        if not request.user_id_is_usable:
            raise IntakeFailure(
                "VALIDATION_ERROR",
                "user_id is empty; CJ cannot publish a completion for a batch without a user_id",
                details={"field": "user_id"},
            )
        instruction = None
        if request.assignment_id:
            instruction = await pool.fetchrow(
                "SELECT * FROM assessment_instructions WHERE assignment_id = $1",
                request.assignment_id,
            )
            if instruction is None:
                raise IntakeFailure(
                    "RESOURCE_NOT_FOUND",
                    f"No assessment_instructions row for assignment_id "
                    f"'{request.assignment_id}'; create the assessment instructions before "
                    "publishing an assignment-scoped request",
                    details={"assignment_id": request.assignment_id},
                )
        context = await self._resolve_prompts(request, instruction)
        override = _positive_int((envelope.metadata or {}).get("max_comparisons"))
        original_request = self._original_request(envelope, request, context, override)
        cj_batch_id = await self._create_batch_rows(envelope, request, context, original_request)
        self._runtimes.register(cj_batch_id, faults)
        await set_status(pool, cj_batch_id, "FETCHING_CONTENT")

        students = await self._fetch_students(request)
        anchors: list[EssayInput] = []
        if instruction is not None:
            anchors = await self._fetch_anchors(str(request.assignment_id), context["grade_scale"])
        rows = students + anchors
        await self._store_essays(cj_batch_id, rows)
        if len(students) >= 2:
            await self._store_budget(cj_batch_id, len(rows), override, original_request)
        return AdmittedBatch(cj_batch_id=cj_batch_id, student_count=len(students))

    async def _resolve_prompts(
        self, request: ELS_CJAssessmentRequestV1, instruction: asyncpg.Record | None
    ) -> dict[str, Any]:
        overrides = request.llm_config_overrides
        rubric_override = overrides.judge_rubric_override if overrides else None
        if instruction is not None:
            prompt_id = instruction["student_prompt_storage_id"]
            rubric_id = instruction["judge_rubric_storage_id"]
            if rubric_override and instruction["context_origin"] == "canonical_national":
                raise IntakeFailure(
                    "VALIDATION_ERROR",
                    "judge_rubric_override is not allowed for canonical_national assignment "
                    f"'{request.assignment_id}'",
                )
            instructions_text = str(instruction["instructions_text"])
            grade_scale = str(instruction["grade_scale"])
        else:
            ref = request.student_prompt_ref
            prompt_id = ref.storage_id_for(STUDENT_PROMPT_CONTENT_TYPE) if ref else None
            rubric_id = None
            instructions_text = ""
            grade_scale = DEFAULT_GRADE_SCALE
        prompt_text = await self._fetch_required(prompt_id, "student prompt")
        rubric_text = await self._fetch_required(rubric_id, "judge rubric")
        if rubric_override:
            rubric_text = rubric_override
        return {
            "student_prompt_storage_id": prompt_id,
            "student_prompt_text": prompt_text,
            "judge_rubric_storage_id": rubric_id,
            "judge_rubric_text": rubric_text,
            "instructions_text": instructions_text,
            "grade_scale": grade_scale,
        }

    async def _fetch_required(self, storage_id: str | None, what: str) -> str:
        if not storage_id:
            return ""
        text = await self._fetch_text(storage_id)
        if text is None:
            raise IntakeFailure(
                "CONTENT_SERVICE_ERROR",
                f"The {what} (storage id {storage_id}) could not be fetched from the Content "
                f"Service at {self._content.endpoint}",
                details={"storage_id": storage_id},
            )
        return text

    async def _fetch_text(self, storage_id: str) -> str | None:
        """The text of blob ``storage_id``, or None (with a warning) when it cannot be fetched."""
        try:
            return await self._content.fetch(storage_id)
        except ContentServiceError as exc:
            _log.warning("content fetch of blob %s failed: %s", storage_id, exc)
            return None

    @staticmethod
    def _original_request(
        envelope: EventEnvelope,
        request: ELS_CJAssessmentRequestV1,
        context: dict[str, Any],
        override: int | None,
    ) -> dict[str, Any]:
        overrides = request.llm_config_overrides
        return {
            "assignment_id": request.assignment_id,
            "language": request.language,
            "course_code": str(request.course_code),
            "cj_source": "els",
            "cj_request_type": "cj_comparison",
            "student_prompt_text": context["student_prompt_text"],
            "student_prompt_storage_id": context["student_prompt_storage_id"],
            "judge_rubric_text": context["judge_rubric_text"],
            "judge_rubric_storage_id": context["judge_rubric_storage_id"],
            "llm_config_overrides": overrides.model_dump(mode="json") if overrides else None,
            "batch_config_overrides": (envelope.metadata or {}).get("batch_config_overrides"),
            "max_comparisons_override": override,
            "user_id": request.user_id,
            "org_id": request.org_id,
        }

    async def _create_batch_rows(
        self,
        envelope: EventEnvelope,
        request: ELS_CJAssessmentRequestV1,
        context: dict[str, Any],
        original_request: dict[str, Any],
    ) -> int:
        upload_metadata = {
            "student_prompt_storage_id": context["student_prompt_storage_id"],
            "student_prompt_text": context["student_prompt_text"],
            "judge_rubric_storage_id": context["judge_rubric_storage_id"],
            "judge_rubric_text": context["judge_rubric_text"],
            "instructions_text": context["instructions_text"],
            "grade_scale": context["grade_scale"],
            "original_request": original_request,
        }
        async with self._pool.acquire() as conn, conn.transaction():
            cj_batch_id: int = await conn.fetchval(
                "INSERT INTO cj_batch_uploads (bos_batch_id, event_correlation_id, language,"
                " course_code, expected_essay_count, status, processing_metadata, assignment_id,"
                " user_id, org_id) VALUES ($1, $2, $3, $4, $5, 'PENDING', $6::jsonb, $7, $8, $9)"
                " RETURNING id",
                str(request.entity_id),
                str(envelope.correlation_id),
                request.language,
                str(request.course_code),
                len(request.essays_for_cj),
                json.dumps(upload_metadata),
                request.assignment_id,
                request.user_id,
                request.org_id,
            )
            await conn.execute(
                "INSERT INTO cj_batch_states (batch_id, state, processing_metadata)"
                " VALUES ($1, 'INITIALIZING', $2::jsonb)",
                cj_batch_id,
                json.dumps({"original_request": original_request}),
            )
        return cj_batch_id

    async def _fetch_students(self, request: ELS_CJAssessmentRequestV1) -> list[EssayInput]:
        refs = request.essays_for_cj
        texts = await asyncio.gather(*(self._fetch_text(ref.text_storage_id) for ref in refs))
        rows: list[EssayInput] = []
        for ref, text in zip(refs, texts, strict=True):
            if text is None:
                _log.warning("essay %s skipped: its text could not be fetched", ref.essay_id)
                continue
            rows.append((ref.essay_id, ref.text_storage_id, text, {"is_anchor": False}))
        return rows

    async def _fetch_anchors(self, assignment_id: str, grade_scale: str) -> list[EssayInput]:
        refs = await self._pool.fetch(
            "SELECT id, anchor_label, grade, text_storage_id FROM anchor_essay_references"
            " WHERE assignment_id = $1 AND grade_scale = $2 ORDER BY id",
            assignment_id,
            grade_scale,
        )
        texts = await asyncio.gather(*(self._fetch_text(ref["text_storage_id"]) for ref in refs))
        rows: list[EssayInput] = []
        for ref, text in zip(refs, texts, strict=True):
            if text is None:
                _log.warning("anchor %s skipped: its text could not be fetched", ref["id"])
                continue
            essay_id = f"{ANCHOR_PREFIX}{ref['id']}_{uuid.uuid4().hex[:8]}"
            meta = {
                "is_anchor": True,
                "known_grade": ref["grade"],
                "anchor_ref_id": ref["id"],
                "text_storage_id": ref["text_storage_id"],
                "anchor_label": ref["anchor_label"],
            }
            rows.append((essay_id, ref["text_storage_id"], text, meta))
        return rows

    async def _store_essays(self, cj_batch_id: int, rows: list[EssayInput]) -> None:
        await self._pool.executemany(
            "INSERT INTO cj_processed_essays (els_essay_id, cj_batch_id, text_storage_id,"
            " assessment_input_text, is_anchor, processing_metadata)"
            " VALUES ($1, $2, $3, $4, $5, $6::jsonb)"
            " ON CONFLICT (els_essay_id) DO UPDATE SET cj_batch_id = EXCLUDED.cj_batch_id,"
            " text_storage_id = EXCLUDED.text_storage_id,"
            " assessment_input_text = EXCLUDED.assessment_input_text,"
            " is_anchor = EXCLUDED.is_anchor, processing_metadata = EXCLUDED.processing_metadata,"
            " current_bt_score = NULL, current_bt_se = NULL, comparison_count = 0",
            [
                (essay_id, cj_batch_id, storage_id, text, bool(meta["is_anchor"]), json.dumps(meta))
                for essay_id, storage_id, text, meta in rows
            ],
        )
        await self._pool.execute(
            "UPDATE cj_batch_uploads SET expected_essay_count = $2, updated_at = now()"
            " WHERE id = $1",
            cj_batch_id,
            len(rows),
        )

    async def _store_budget(
        self,
        cj_batch_id: int,
        essay_count: int,
        override: int | None,
        original_request: dict[str, Any],
    ) -> None:
        cap = self._max_pairwise_comparisons
        budget = min(cap, override) if override else cap
        budget_meta = {
            "comparison_budget": {
                "max_pairs_requested": budget,
                "source": "runner_override" if override else "service_default",
            },
            "max_possible_pairs": distinct_pairs(essay_count),
            "llm_batching_mode": "per_request",
            "llm_overrides": original_request["llm_config_overrides"],
            "config_overrides": original_request["batch_config_overrides"],
        }
        await self._pool.execute(
            "UPDATE cj_batch_states SET total_budget = $2, state = 'GENERATING_PAIRS',"
            " processing_metadata = processing_metadata || $3::jsonb, last_activity_at = now()"
            " WHERE batch_id = $1",
            cj_batch_id,
            budget,
            json.dumps(budget_meta),
        )
