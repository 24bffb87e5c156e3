"""Finalisation of a CJ batch (§E.12): final scores, grade projections, and the completion,
result and resource events — or the failure event of a batch whose comparisons mostly failed."""

from __future__ import annotations

import json
import logging
import uuid
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Final

import asyncpg
from pydantic import ValidationError

from pytest_eng5.contracts.grade_scales import get_scale
from pytest_eng5.contracts.topics import COMPLETED_TOPIC, FAILED_TOPIC, RESOURCE_TOPIC, RESULT_TOPIC
from pytest_eng5.core.names import DEFAULT_GRADE_SCALE
from pytest_eng5.reference.batch_runtime import BatchRuntimes
from pytest_eng5.reference.batch_store import (
    EssayRow,
    json_object,
    load_essays,
    load_outcomes,
    set_state,
    set_status,
)
from pytest_eng5.reference.cj_events import (
    OutboxPublisher,
    assessment_result_event,
    batch_failed_event,
    completed_event,
    essay_results,
    resource_event,
)
from pytest_eng5.reference.db import Pool
from pytest_eng5.reference.projection import (
    AnchorPoint,
    ProjectionSummary,
    StudentPoint,
    normalized_score,
    project_grades,
)
from pytest_eng5.reference.scoring import WaveOutcome
from pytest_eng5.reference.waves import DEFAULT_LLM_TEMPERATURE, rescore

_log = logging.getLogger(__name__)

DEFAULT_LLM_PROVIDER: Final = "openai"
DEFAULT_LLM_MODEL: Final = "gpt-5.1"


class BatchFinalizer:
    """Closes batches: scores, projections and the outbox events, then forgets the runtime."""

    def __init__(self, pool: Pool, publisher: OutboxPublisher, runtimes: BatchRuntimes) -> None:
        self._pool = pool
        self._publisher = publisher
        self._runtimes = runtimes

    async def finalize_single_essay(self, cj_batch_id: int) -> None:
        """Fewer than 2 students: no comparisons; a lone student gets BT 0.0 and rank 1."""
        essays = await load_essays(self._pool, cj_batch_id)
        await self._pool.executemany(
            "UPDATE cj_processed_essays SET current_bt_score = 0.0 WHERE els_essay_id = $1",
            [(e.essay_id,) for e in essays if not e.is_anchor],
        )
        await self.finalize(cj_batch_id, single_essay=True)

    async def finalize(self, cj_batch_id: int, *, single_essay: bool = False) -> None:
        """Score, project and publish; a batch already complete or failed is left alone."""
        pool = self._pool
        upload = await pool.fetchrow("SELECT * FROM cj_batch_uploads WHERE id = $1", cj_batch_id)
        if upload is None or str(upload["status"]).startswith(("COMPLETE", "ERROR")):
            return
        self._runtimes.disarm(cj_batch_id)
        await set_state(pool, cj_batch_id, "SCORING")
        if not single_essay:
            iteration = await pool.fetchval(
                "SELECT current_iteration FROM cj_batch_states WHERE batch_id = $1", cj_batch_id
            )
            await rescore(pool, cj_batch_id, int(iteration or 0))
        completed_at = datetime.now(UTC)
        status = "COMPLETE_INSUFFICIENT_ESSAYS" if single_essay else "COMPLETE_STABLE"
        await pool.execute(
            "UPDATE cj_batch_uploads SET status = $2::cj_batch_status_enum, completed_at = $3,"
            " updated_at = now() WHERE id = $1",
            cj_batch_id,
            status,
            completed_at,
        )
        essays = await load_essays(pool, cj_batch_id)
        meta = json_object(upload["processing_metadata"])
        scale = get_scale(str(meta.get("grade_scale") or DEFAULT_GRADE_SCALE))
        ranked = sorted(
            essays,
            key=lambda e: (e.bt_score is None, -(e.bt_score or 0.0), e.essay_id),
        )
        model_used, model_provider = await self._most_frequent_model(cj_batch_id)
        projection = project_grades(
            scale,
            [
                AnchorPoint(e.essay_id, str(e.metadata.get("known_grade", "")), e.bt_score)
                for e in essays
                if e.is_anchor and e.bt_score is not None
            ],
            [
                StudentPoint(e.essay_id, e.bt_score, e.bt_se if e.bt_se is not None else 2.0)
                for e in essays
                if not e.is_anchor and e.bt_score is not None
            ],
        )
        await self._store_projections(cj_batch_id, projection, essays, model_used, model_provider)
        successful_comparisons = len(await load_outcomes(pool, cj_batch_id))
        await self._publish_completion(
            upload,
            essays,
            ranked,
            projection,
            completed_at=completed_at,
            single_essay=single_essay,
            model_used=model_used,
            model_provider=model_provider,
            comparison_count=successful_comparisons,
        )

    async def finalize_failure(self, cj_batch_id: int, outcome: WaveOutcome) -> None:
        """Mark the batch failed (``low_success_rate``) and publish CJAssessmentFailedV1."""
        upload = await self._pool.fetchrow(
            "SELECT * FROM cj_batch_uploads WHERE id = $1", cj_batch_id
        )
        if upload is None:
            return
        await set_status(self._pool, cj_batch_id, "ERROR_PROCESSING")
        await self._pool.execute(
            "UPDATE cj_batch_states SET state = 'FAILED', processing_metadata ="
            " processing_metadata || $2::jsonb WHERE batch_id = $1",
            cj_batch_id,
            json.dumps({"failed_reason": "low_success_rate"}),
        )
        failed = batch_failed_event(upload, outcome.details(), failed_at=datetime.now(UTC))
        correlation_id = upload["event_correlation_id"]
        await self._publisher.emit(
            str(upload["bos_batch_id"]), "cj_batch", FAILED_TOPIC, failed, _uuid(correlation_id)
        )
        self._runtimes.forget(cj_batch_id)

    async def finalize_error(self, cj_batch_id: int, error: BaseException) -> None:
        """A batch whose processing raised: mark it failed and publish CJAssessmentFailedV1
        (``processing_error``), so the client is told instead of waiting for ever. A batch
        that already published its completion or failure is left alone."""
        upload = await self._pool.fetchrow(
            "SELECT * FROM cj_batch_uploads WHERE id = $1", cj_batch_id
        )
        self._runtimes.disarm(cj_batch_id)
        if upload is None or str(upload["status"]).startswith("ERROR"):
            return
        # finalize() marks the batch COMPLETE_* before it publishes, so the status alone does
        # not tell whether the client was told: look for the batch's terminal event.
        announced = await self._pool.fetchval(
            "SELECT EXISTS (SELECT 1 FROM event_outbox WHERE aggregate_id = $1"
            " AND topic = ANY($2::varchar[])"
            " AND event_data->'data'->>'cj_assessment_job_id' = $3)",
            str(upload["bos_batch_id"]),
            [COMPLETED_TOPIC, FAILED_TOPIC],
            str(cj_batch_id),
        )
        if announced:
            return
        await set_status(self._pool, cj_batch_id, "ERROR_PROCESSING")
        await self._pool.execute(
            "UPDATE cj_batch_states SET state = 'FAILED', processing_metadata ="
            " coalesce(processing_metadata, '{}'::jsonb) || $2::jsonb WHERE batch_id = $1",
            cj_batch_id,
            json.dumps({"failed_reason": "processing_error"}),
        )
        details = {"error_type": type(error).__name__, "error": str(error)[:1000]}
        failed = batch_failed_event(
            upload, details, failed_at=datetime.now(UTC), reason="processing_error"
        )
        await self._publisher.emit(
            str(upload["bos_batch_id"]),
            "cj_batch",
            FAILED_TOPIC,
            failed,
            _uuid(upload["event_correlation_id"]),
        )
        self._runtimes.forget(cj_batch_id)

    async def _most_frequent_model(self, cj_batch_id: int) -> tuple[str, str]:
        rows = await self._pool.fetch(
            "SELECT processing_metadata->>'model' AS model,"
            " processing_metadata->>'provider' AS provider FROM cj_comparison_pairs"
            " WHERE cj_batch_id = $1 AND winner IN ('essay_a', 'essay_b')",
            cj_batch_id,
        )
        models = Counter(r["model"] for r in rows if r["model"])
        providers = Counter(r["provider"] for r in rows if r["provider"])
        model = models.most_common(1)[0][0] if models else DEFAULT_LLM_MODEL
        provider = providers.most_common(1)[0][0] if providers else DEFAULT_LLM_PROVIDER
        return str(model), str(provider)

    async def _store_projections(
        self,
        cj_batch_id: int,
        projection: ProjectionSummary,
        essays: Sequence[EssayRow],
        model_used: str,
        model_provider: str,
    ) -> None:
        if not projection.projections_available:
            return
        se_by_id = {e.essay_id: e.bt_se for e in essays}
        calibration = projection.calibration_info()
        rows = []
        for essay_id, p in projection.projections.items():
            rows.append(
                (
                    essay_id,
                    cj_batch_id,
                    p.primary_grade,
                    projection.scale_id,
                    p.confidence_score,
                    p.confidence_label,
                    json.dumps(
                        {
                            "grade_probabilities": dict(p.probabilities),
                            "calibration_info": calibration,
                            "bt_se": se_by_id.get(essay_id),
                        }
                    ),
                    p.population_prior,
                    model_used,
                    model_provider,
                    normalized_score(p.primary_grade),
                )
            )
        await self._pool.executemany(
            "INSERT INTO grade_projections (els_essay_id, cj_batch_id, primary_grade, grade_scale,"
            " confidence_score, confidence_label, calculation_metadata, population_prior,"
            " model_used, model_provider, normalized_score)"
            " VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb, $8, $9, $10, $11)"
            " ON CONFLICT (els_essay_id, cj_batch_id) DO UPDATE SET"
            " primary_grade = EXCLUDED.primary_grade, confidence_score = EXCLUDED.confidence_score,"
            " confidence_label = EXCLUDED.confidence_label,"
            " calculation_metadata = EXCLUDED.calculation_metadata,"
            " normalized_score = EXCLUDED.normalized_score",
            rows,
        )

    async def _publish_completion(
        self,
        upload: asyncpg.Record,
        essays: Sequence[EssayRow],
        ranked: Sequence[EssayRow],
        projection: ProjectionSummary,
        *,
        completed_at: datetime,
        single_essay: bool,
        model_used: str,
        model_provider: str,
        comparison_count: int,
    ) -> None:
        cj_batch_id = int(upload["id"])
        bos_batch_id = str(upload["bos_batch_id"])
        correlation_id = _uuid(upload["event_correlation_id"])
        emit = self._publisher.emit
        completed = completed_event(
            upload, essays, completed_at=completed_at, single_essay=single_essay
        )
        await emit(bos_batch_id, "cj_batch", COMPLETED_TOPIC, completed, correlation_id)

        try:
            results = essay_results(ranked, projection)
        except ValidationError as exc:
            # HuleEdu's behaviour for grades outside the EssayResultV1 regex (national 9-step):
            # the thin event is out, the rich and resource events are not, the batch state
            # is left in SCORING.
            _log.error(
                "batch %s: rich result not published, a grade fails EssayResultV1: %s",
                cj_batch_id,
                str(exc)[:300],
            )
            return
        rich = assessment_result_event(
            upload,
            essays,
            results,
            projection,
            completed_at=completed_at,
            model_used=model_used,
            model_provider=model_provider,
            comparison_count=comparison_count,
            llm_temperature=DEFAULT_LLM_TEMPERATURE,
        )
        await emit(str(cj_batch_id), "assessment_result", RESULT_TOPIC, rich, correlation_id)
        students = sum(1 for e in essays if not e.is_anchor)
        resource = resource_event(upload, students)
        await emit(bos_batch_id, "resource_consumption", RESOURCE_TOPIC, resource, None)
        await set_state(self._pool, cj_batch_id, "COMPLETED")
        self._runtimes.forget(cj_batch_id)


def _uuid(value: object) -> uuid.UUID:
    return uuid.UUID(str(value))
