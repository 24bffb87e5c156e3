"""The reference CJ worker runs batches to their result over Tansu, embedded PostgreSQL and the
Content Service: the sample set with anchors, a budget above the distinct pairs, one student."""

from __future__ import annotations

import json
import uuid
from collections import Counter

import asyncpg
import pytest
from worker_support import (
    LEGACY_SCALE,
    SMALL_TEXTS,
    Infra,
    WorkerFactory,
    batch_state,
    build_request,
    for_batch,
    load_sample_set,
    only,
    run_batch,
    seed_assignment,
    seed_students,
)

from pytest_eng5.contracts.events import (
    AssessmentResultV1,
    CJAssessmentCompletedV1,
    LLMComparisonResultV1,
    ResourceConsumptionV1,
)
from pytest_eng5.contracts.grade_scales import grade_index
from pytest_eng5.contracts.topics import (
    CALLBACK_TOPIC,
    COMPLETED_TOPIC,
    FAILED_TOPIC,
    RESOURCE_TOPIC,
    RESULT_TOPIC,
)
from pytest_eng5.reference.pairing import distinct_pairs, max_resampling_passes
from pytest_eng5.runner.stats import kendall_tau_b

# --------------------------------------------------------------------------- full batch


@pytest.mark.asyncio
async def test_full_batch_with_anchors_over_kafka(
    infra: Infra, db: asyncpg.Connection, start_worker: WorkerFactory
) -> None:
    sample = load_sample_set()
    assert (len(sample.students), len(sample.anchors)) == (24, 12)
    assignment_id = f"eng5-{uuid.uuid4().hex[:8]}"
    anchor_grades = await seed_assignment(db, assignment_id, sample.anchors, prompt=sample.prompt)
    essays = await seed_students(db, [text for _, text in sample.students])
    worker = await start_worker()
    assert worker.ready

    request = build_request(essays, assignment_id=assignment_id)
    batch_id = str(request.data.entity_id)
    tap = await run_batch(infra, request)

    callbacks = for_batch(tap.envelopes(CALLBACK_TOPIC), batch_id)
    completed_env = only(for_batch(tap.envelopes(COMPLETED_TOPIC), batch_id))
    result_env = only(for_batch(tap.envelopes(RESULT_TOPIC), batch_id))
    resource_env = only(for_batch(tap.envelopes(RESOURCE_TOPIC), batch_id))
    assert not for_batch(tap.envelopes(FAILED_TOPIC), batch_id)

    state = await batch_state(db, batch_id)
    pairs = await db.fetch(
        "SELECT essay_a_els_id, essay_b_els_id, winner, request_correlation_id"
        " FROM cj_comparison_pairs WHERE cj_batch_id = $1 ORDER BY id",
        state["id"],
    )
    # Budget: min(MAX_PAIRWISE_COMPARISONS=120, no override); 36 essays have 630 distinct pairs.
    assert state["total_budget"] == 120
    assert 12 <= len(pairs) <= 120
    assert len({frozenset((p["essay_a_els_id"], p["essay_b_els_id"])) for p in pairs}) == len(pairs)
    assert state["status"] == "COMPLETE_STABLE"
    assert state["state"] == "COMPLETED"
    assert state["submitted_comparisons"] == len(pairs)
    assert state["completed_comparisons"] + state["failed_comparisons"] == len(pairs)

    # Callbacks: one per pair, joined by correlation id, with the request metadata echoed.
    parsed = [c.data_as(LLMComparisonResultV1) for c in callbacks]
    assert len(parsed) == len(pairs)
    assert {str(c.correlation_id) for c in parsed} == {
        str(p["request_correlation_id"]) for p in pairs
    }
    for envelope, callback in zip(callbacks, parsed, strict=True):
        assert envelope.event_type == "LLMComparisonResultV1"
        assert envelope.source_service == "llm_provider_service"
        assert envelope.correlation_id == callback.correlation_id
        assert callback.request_metadata["cj_source"] == "els"
        assert callback.request_metadata["cj_batch_id"] == str(state["id"])
        assert len(callback.request_metadata["prompt_sha256"]) == 64
        # As HuleEdu's mock LLM Provider: CJ's default provider and model, a priced call;
        # the judge that really decided is named where HuleEdu does not look.
        assert envelope.metadata == {}
        assert callback.provider == "openai"
        assert callback.model == "gpt-5.1"
        assert callback.cost_estimate > 0
        assert callback.request_metadata["resolved_provider"] == "mock"
        assert callback.request_metadata["reference_judge"]["name"] == "text_features"
    first_wave = [c for c in parsed if c.request_metadata["comparison_iteration"] == 1]
    assert {c.request_metadata["cj_request_type"] for c in first_wave} == {"cj_comparison"}
    assert len(first_wave) == 18  # 36 essays, each at most once per wave

    # Thin completion.
    completed = completed_env.data_as(CJAssessmentCompletedV1)
    assert completed_env.correlation_id == request.correlation_id
    assert completed.entity_id == batch_id
    assert completed.cj_assessment_job_id == str(state["id"])
    assert completed.status == "completed_successfully"
    summary = completed.processing_summary
    assert summary.total_essays == 24
    assert summary.successful == 24
    assert set(summary.successful_essay_ids) == {e.essay_id for e in essays}
    assert not summary.single_essay_batch

    # Rich result: students and anchors, ranked together.
    result = result_env.data_as(AssessmentResultV1)
    assert result_env.event_type == "assessment.result.published"  # not the topic name
    assert result_env.metadata == {}
    assert completed_env.event_type == COMPLETED_TOPIC
    assert completed_env.metadata == {}
    assert result_env.correlation_id == request.correlation_id
    assert result.batch_id == batch_id
    assert result.cj_assessment_job_id == str(state["id"])
    assert len(result.essay_results) == 36
    assert sorted(r.rank for r in result.essay_results) == list(range(1, 37))
    assert [r.rank for r in sorted(result.essay_results, key=lambda r: -r.bt_score)] == list(
        range(1, 37)
    )
    anchors = result.anchor_results
    assert len(anchors) == 12
    for anchor in anchors:
        assert anchor.essay_id.startswith("ANCHOR_")
        ref_id = anchor.essay_id.split("_")[1]
        assert anchor.letter_grade == anchor_grades[ref_id]
        assert anchor.display_name == f"ANCHOR GRADE {anchor.letter_grade}"
    assert result.assessment_metadata["anchor_essays_used"] == 12
    assert result.assessment_metadata["comparison_count"] == state["completed_comparisons"]
    assert result.assessment_metadata["calibration_method"] == "anchor"
    assert result.model_provider == "openai"
    assert result.model_used == "gpt-5.1"
    student_grades = {r.letter_grade for r in result.student_results}
    assert student_grades - {"U"}, "students should get projected grades"
    projections = await db.fetchval(
        "SELECT count(*) FROM grade_projections WHERE cj_batch_id = $1", state["id"]
    )
    assert projections == 24

    resource = resource_env.data_as(ResourceConsumptionV1)
    assert resource.entity_id == batch_id
    assert resource.processing_id == str(state["id"])

    # Keys per D.12 and the outbox rows all published.
    assert tap.key_of(RESULT_TOPIC, batch_id) == str(state["id"]).encode()
    assert tap.key_of(COMPLETED_TOPIC, batch_id) == batch_id.encode()
    assert tap.key_of(RESOURCE_TOPIC, batch_id) == batch_id.encode()
    unpublished = await db.fetchval(
        "SELECT count(*) FROM event_outbox WHERE aggregate_id = ANY($1::varchar[])"
        " AND published_at IS NULL",
        [batch_id, str(state["id"])],
    )
    assert unpublished == 0

    # Anchor alignment: BT order of anchors vs expert grades (text_features judge).
    by_ref = {a.essay_id.split("_")[1]: a.bt_score for a in anchors}
    refs = sorted(by_ref)
    tau = kendall_tau_b(
        [by_ref[r] for r in refs], [grade_index(anchor_grades[r], LEGACY_SCALE) for r in refs]
    )
    assert tau >= 0.6, f"anchor Kendall tau-b {tau:.3f} < 0.6"


# --------------------------------------------------------------------------- budgets


@pytest.mark.asyncio
async def test_budget_above_distinct_pairs_still_completes(
    infra: Infra, db: asyncpg.Connection, start_worker: WorkerFactory
) -> None:
    essays = await seed_students(db, SMALL_TEXTS[:4])
    await start_worker()
    request = build_request(essays, assignment_id=None, max_comparisons=50)
    batch_id = str(request.data.entity_id)
    tap = await run_batch(infra, request)

    completed = only(for_batch(tap.envelopes(COMPLETED_TOPIC), batch_id))
    assert completed.data_as(CJAssessmentCompletedV1).status == "completed_successfully"
    state = await batch_state(db, batch_id)
    assert state["total_budget"] == 50
    meta = json.loads(state["processing_metadata"])
    assert meta["comparison_budget"] == {"max_pairs_requested": 50, "source": "runner_override"}
    pairs = await db.fetch(
        "SELECT essay_a_els_id, essay_b_els_id, pair_generation_mode FROM cj_comparison_pairs"
        " WHERE cj_batch_id = $1",
        state["id"],
    )
    # Coverage (6 pairs) plus one resampling pass, then the planner has nothing left.
    assert len(pairs) == distinct_pairs(4) * (1 + max_resampling_passes(4))
    counts = Counter(frozenset((p["essay_a_els_id"], p["essay_b_els_id"])) for p in pairs)
    assert set(counts.values()) == {2}
    assert Counter(p["pair_generation_mode"] for p in pairs) == {"coverage": 6, "resampling": 6}
    result = only(for_batch(tap.envelopes(RESULT_TOPIC), batch_id)).data_as(AssessmentResultV1)
    assert result.assessment_metadata["calibration_method"] == "default"
    assert {r.letter_grade for r in result.essay_results} == {"U"}


@pytest.mark.asyncio
async def test_single_student_is_finalised_without_comparisons(
    infra: Infra, db: asyncpg.Connection, start_worker: WorkerFactory
) -> None:
    essays = await seed_students(db, SMALL_TEXTS[:1])
    await start_worker()
    request = build_request(essays, assignment_id=None)
    batch_id = str(request.data.entity_id)
    tap = await run_batch(infra, request)
    completed = only(for_batch(tap.envelopes(COMPLETED_TOPIC), batch_id))
    summary = completed.data_as(CJAssessmentCompletedV1).processing_summary
    assert summary.single_essay_batch
    assert summary.total_essays == 1
    state = await batch_state(db, batch_id)
    assert state["status"] == "COMPLETE_INSUFFICIENT_ESSAYS"
    assert not for_batch(tap.envelopes(CALLBACK_TOPIC), batch_id)
