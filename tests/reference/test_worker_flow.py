"""The reference CJ worker end to end over Tansu, embedded PostgreSQL and the Content Service."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
import pytest_asyncio
from worker_support import (
    LEGACY_SCALE,
    EventTap,
    Infra,
    build_request,
    for_batch,
    free_port,
    load_sample_set,
    publish,
    publish_raw,
    seed_assignment,
    seed_students,
    set_faults,
    start_infra,
    stop_infra,
)

from pytest_eng5.contracts.envelope import EventEnvelope
from pytest_eng5.contracts.events import (
    AssessmentResultV1,
    CJAssessmentCompletedV1,
    CJAssessmentFailedV1,
    EssayProcessingInputRefV1,
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
from pytest_eng5.reference.faults import FaultConfig
from pytest_eng5.reference.pairing import distinct_pairs, max_resampling_passes
from pytest_eng5.reference.worker import CJWorker
from pytest_eng5.reference.worker_settings import WorkerSettings
from pytest_eng5.runner.stats import kendall_tau_b

EVENT_TIMEOUT_S = 60.0
SMALL_TEXTS = [
    "Phones are bad. I think so.",
    "Phones in school can help learning, however they also distract students in class.",
    "In my opinion phones should be allowed during breaks. For example, students can call "
    "their parents. On the other hand, lessons need focus, therefore a fair rule is needed.",
    "phones good i like",
    "Mobile phones are useful tools. Although some teachers disagree, they can help us search "
    "for information quickly and practise vocabulary.",
    "I dont think phones is good becaus we play games.",
]

WorkerFactory = Callable[..., Awaitable[CJWorker]]


@pytest.fixture(scope="module")
def infra(eng5_stack_factory: Any) -> Iterator[Infra]:
    stack = eng5_stack_factory(stack="embedded", kafka="tansu", services=False)
    started = start_infra(stack.infrastructure)
    try:
        yield started
    finally:
        stop_infra(started)


@pytest_asyncio.fixture
async def db(infra: Infra) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(infra.dsn)
    try:
        yield conn
    finally:
        await conn.close()


@pytest_asyncio.fixture
async def start_worker(infra: Infra) -> AsyncIterator[WorkerFactory]:
    """Start in-process workers (faults cleared first); all are stopped at the end."""
    workers: list[CJWorker] = []

    async def factory(**overrides: Any) -> CJWorker:
        settings = WorkerSettings(
            bootstrap_servers=infra.bootstrap,
            dsn=infra.dsn,
            content_url=infra.content_url,
            **overrides,
        )
        worker = CJWorker(settings)
        workers.append(worker)
        await worker.__aenter__()
        return worker

    await set_faults(infra.dsn, FaultConfig())
    try:
        yield factory
    finally:
        for worker in workers:
            await worker.__aexit__(None, None, None)
        await set_faults(infra.dsn, FaultConfig())


async def _run_batch(
    infra: Infra, request: EventEnvelope, *, terminal: tuple[str, ...] = (RESULT_TOPIC,)
) -> EventTap:
    """Publish ``request`` and wait until its batch has an event on one of ``terminal``."""
    batch_id = str(request.data.entity_id)
    tap = EventTap(infra.bootstrap)
    await tap.start()
    try:
        await publish(infra.bootstrap, request)
        await tap.wait_for(
            lambda t: any(for_batch(t.envelopes(topic), batch_id) for topic in terminal),
            EVENT_TIMEOUT_S,
            f"terminal event for batch {batch_id}",
        )
        if RESULT_TOPIC in terminal and for_batch(tap.envelopes(RESULT_TOPIC), batch_id):
            await tap.wait_for(
                lambda t: bool(for_batch(t.envelopes(RESOURCE_TOPIC), batch_id)),
                EVENT_TIMEOUT_S,
                "resource event",
            )
    finally:
        await tap.stop()
    return tap


def _only(envelopes: list[EventEnvelope]) -> EventEnvelope:
    assert len(envelopes) == 1, f"expected exactly one event, got {len(envelopes)}"
    return envelopes[0]


async def _state(db: asyncpg.Connection, bos_batch_id: str) -> asyncpg.Record:
    row = await db.fetchrow(
        "SELECT u.id, u.status, u.completed_at, s.state, s.total_budget,"
        " s.submitted_comparisons, s.completed_comparisons, s.failed_comparisons,"
        " s.processing_metadata FROM cj_batch_uploads u JOIN cj_batch_states s"
        " ON s.batch_id = u.id WHERE u.bos_batch_id = $1",
        bos_batch_id,
    )
    assert row is not None, f"no cj batch rows for {bos_batch_id}"
    return row


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
    tap = await _run_batch(infra, request)

    callbacks = for_batch(tap.envelopes(CALLBACK_TOPIC), batch_id)
    completed_env = _only(for_batch(tap.envelopes(COMPLETED_TOPIC), batch_id))
    result_env = _only(for_batch(tap.envelopes(RESULT_TOPIC), batch_id))
    resource_env = _only(for_batch(tap.envelopes(RESOURCE_TOPIC), batch_id))
    assert not for_batch(tap.envelopes(FAILED_TOPIC), batch_id)

    state = await _state(db, batch_id)
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


# --------------------------------------------------------------------------- intake failures


async def _expect_intake_failure(infra: Infra, request: EventEnvelope) -> CJAssessmentFailedV1:
    batch_id = str(request.data.entity_id)
    tap = await _run_batch(infra, request, terminal=(FAILED_TOPIC, COMPLETED_TOPIC))
    assert not for_batch(tap.envelopes(COMPLETED_TOPIC), batch_id)
    envelope = _only(for_batch(tap.envelopes(FAILED_TOPIC), batch_id))
    assert envelope.correlation_id == request.correlation_id
    failed = envelope.data_as(CJAssessmentFailedV1)
    assert failed.cj_assessment_job_id == "INITIALIZATION_FAILED"
    assert failed.status == "failed_critically"
    info = failed.system_metadata.error_info
    assert set(info) >= {"error_code", "error_message", "correlation_id", "timestamp", "service"}
    assert info["correlation_id"] == str(request.correlation_id)
    return failed


@pytest.mark.asyncio
async def test_unknown_assignment_publishes_failed_event(
    infra: Infra, db: asyncpg.Connection, start_worker: WorkerFactory
) -> None:
    essays = await seed_students(db, SMALL_TEXTS[:3])
    await start_worker()
    failed = await _expect_intake_failure(
        infra, build_request(essays, assignment_id=f"missing-{uuid.uuid4().hex[:6]}")
    )
    assert failed.system_metadata.error_info["error_code"] == "RESOURCE_NOT_FOUND"
    assert "assessment_instructions" in failed.system_metadata.error_info["error_message"]


@pytest.mark.asyncio
async def test_empty_user_id_publishes_failed_event(
    infra: Infra, db: asyncpg.Connection, start_worker: WorkerFactory
) -> None:
    essays = await seed_students(db, SMALL_TEXTS[:3])
    await start_worker()
    failed = await _expect_intake_failure(
        infra, build_request(essays, assignment_id=None, user_id="")
    )
    assert "user_id" in failed.system_metadata.error_info["error_message"]


@pytest.mark.asyncio
async def test_force_failure_publishes_failed_event(
    infra: Infra, db: asyncpg.Connection, start_worker: WorkerFactory
) -> None:
    essays = await seed_students(db, SMALL_TEXTS[:3])
    await start_worker()
    await set_faults(infra.dsn, FaultConfig(force_failure=True))
    failed = await _expect_intake_failure(infra, build_request(essays, assignment_id=None))
    assert "force_failure" in failed.system_metadata.error_info["error_message"]


@pytest.mark.asyncio
async def test_invalid_request_fails_and_garbage_is_skipped(
    infra: Infra, db: asyncpg.Connection, start_worker: WorkerFactory
) -> None:
    await start_worker()
    await publish_raw(infra.bootstrap, b"not json at all")
    bad = build_request([], assignment_id=None).to_json_dict()
    bad["data"]["course_code"] = "NOT_A_COURSE"
    batch_id = bad["data"]["entity_id"]
    tap = EventTap(infra.bootstrap)
    async with tap:
        await publish_raw(infra.bootstrap, json.dumps(bad).encode())
        await tap.wait_for(
            lambda t: bool(for_batch(t.envelopes(FAILED_TOPIC), batch_id)),
            EVENT_TIMEOUT_S,
            "failed",
        )
    failed = _only(for_batch(tap.envelopes(FAILED_TOPIC), batch_id)).data_as(CJAssessmentFailedV1)
    assert failed.system_metadata.error_info["error_code"] == "VALIDATION_ERROR"
    # The worker survived both and still processes a good request.
    essays = await seed_students(db, SMALL_TEXTS[:2])
    tap = await _run_batch(infra, build_request(essays, assignment_id=None))
    assert tap.envelopes(RESULT_TOPIC)


# --------------------------------------------------------------------------- budgets


@pytest.mark.asyncio
async def test_budget_above_distinct_pairs_still_completes(
    infra: Infra, db: asyncpg.Connection, start_worker: WorkerFactory
) -> None:
    essays = await seed_students(db, SMALL_TEXTS[:4])
    await start_worker()
    request = build_request(essays, assignment_id=None, max_comparisons=50)
    batch_id = str(request.data.entity_id)
    tap = await _run_batch(infra, request)

    completed = _only(for_batch(tap.envelopes(COMPLETED_TOPIC), batch_id))
    assert completed.data_as(CJAssessmentCompletedV1).status == "completed_successfully"
    state = await _state(db, batch_id)
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
    result = _only(for_batch(tap.envelopes(RESULT_TOPIC), batch_id)).data_as(AssessmentResultV1)
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
    tap = await _run_batch(infra, request)
    completed = _only(for_batch(tap.envelopes(COMPLETED_TOPIC), batch_id))
    summary = completed.data_as(CJAssessmentCompletedV1).processing_summary
    assert summary.single_essay_batch
    assert summary.total_essays == 1
    state = await _state(db, batch_id)
    assert state["status"] == "COMPLETE_INSUFFICIENT_ESSAYS"
    assert not for_batch(tap.envelopes(CALLBACK_TOPIC), batch_id)


# --------------------------------------------------------------------------- callback faults


def _fixed_essays(
    refs: list[EssayProcessingInputRefV1], tag: str
) -> list[EssayProcessingInputRefV1]:
    """Same texts, fixed ids: fault draws are keyed by batch/essay ids, so runs repeat."""
    return [
        EssayProcessingInputRefV1(essay_id=f"{tag}-{i:02d}", text_storage_id=r.text_storage_id)
        for i, r in enumerate(refs)
    ]


@pytest.mark.asyncio
async def test_dropped_duplicated_and_malformed_callbacks_still_complete(
    infra: Infra, db: asyncpg.Connection, start_worker: WorkerFactory
) -> None:
    refs = _fixed_essays(await seed_students(db, SMALL_TEXTS), "fault")
    await start_worker(callback_timeout_s=1.0)
    await set_faults(
        infra.dsn,
        FaultConfig(
            drop_callback_rate=0.06,
            duplicate_callback_rate=0.3,
            malformed_callback_rate=0.06,
            seed=37,
        ),
    )
    # With seed 37 and these ids: one callback lost, one garbled, several duplicated.
    batch_id = "00000000-0000-4000-8000-000000000020"
    request = build_request(refs, assignment_id=None, max_comparisons=15, batch_id=batch_id)
    tap = await _run_batch(infra, request, terminal=(RESULT_TOPIC, FAILED_TOPIC))

    completed = _only(for_batch(tap.envelopes(COMPLETED_TOPIC), batch_id))
    assert completed.data_as(CJAssessmentCompletedV1).status == "completed_successfully"
    state = await _state(db, batch_id)
    timed_out = await db.fetchval(
        "SELECT count(*) FROM cj_comparison_pairs WHERE cj_batch_id = $1"
        " AND error_code = 'CALLBACK_TIMEOUT'",
        state["id"],
    )
    callbacks = for_batch(tap.envelopes(CALLBACK_TOPIC), batch_id)
    per_pair = Counter(str(c.correlation_id) for c in callbacks)
    malformed = len(tap.raw(CALLBACK_TOPIC)) - len(tap.envelopes(CALLBACK_TOPIC))
    assert timed_out >= 1, "this seed drops or garbles at least one callback"
    assert malformed >= 1, "this seed garbles at least one callback"
    assert max(per_pair.values()) == 2, "this seed duplicates at least one callback"
    # Duplicates are counted once; every submitted pair has exactly one recorded outcome.
    assert (
        state["completed_comparisons"] + state["failed_comparisons"]
        == state["submitted_comparisons"]
    )
    assert state["failed_comparisons"] == timed_out


@pytest.mark.asyncio
async def test_all_callbacks_dropped_ends_with_low_success_failure(
    infra: Infra, db: asyncpg.Connection, start_worker: WorkerFactory
) -> None:
    essays = await seed_students(db, SMALL_TEXTS[:4])
    await start_worker(callback_timeout_s=0.5)
    await set_faults(infra.dsn, FaultConfig(drop_callback_rate=1.0))
    request = build_request(essays, assignment_id=None, max_comparisons=6)
    batch_id = str(request.data.entity_id)
    tap = await _run_batch(infra, request, terminal=(FAILED_TOPIC, COMPLETED_TOPIC))
    assert not for_batch(tap.envelopes(COMPLETED_TOPIC), batch_id)
    failed = _only(for_batch(tap.envelopes(FAILED_TOPIC), batch_id)).data_as(CJAssessmentFailedV1)
    info = failed.system_metadata.error_info
    assert info["reason"] == "low_success_rate"
    assert info["details"]["completed_comparisons"] == 0
    assert info["details"]["callbacks_received"] == 6
    state = await _state(db, batch_id)
    assert (state["status"], state["state"]) == ("ERROR_PROCESSING", "FAILED")


@pytest.mark.asyncio
async def test_judge_errors_become_error_callbacks(
    infra: Infra, db: asyncpg.Connection, start_worker: WorkerFactory
) -> None:
    essays = await seed_students(db, SMALL_TEXTS[:4])
    await start_worker()
    await set_faults(infra.dsn, FaultConfig(judge_error_rate=1.0))
    request = build_request(essays, assignment_id=None, max_comparisons=6)
    batch_id = str(request.data.entity_id)
    tap = await _run_batch(infra, request, terminal=(FAILED_TOPIC, COMPLETED_TOPIC))
    callbacks = [
        c.data_as(LLMComparisonResultV1) for c in for_batch(tap.envelopes(CALLBACK_TOPIC), batch_id)
    ]
    assert len(callbacks) == 6
    assert all(c.is_error and c.model == "unknown" for c in callbacks)
    failed = _only(for_batch(tap.envelopes(FAILED_TOPIC), batch_id)).data_as(CJAssessmentFailedV1)
    assert failed.failure_reason == "low_success_rate"


# --------------------------------------------------------------------------- as a process


@pytest.mark.asyncio
async def test_worker_as_a_process(infra: Infra, db: asyncpg.Connection, tmp_path: Path) -> None:
    """``python -m pytest_eng5.reference cj-worker``: /healthz, one batch, clean SIGTERM."""
    await set_faults(infra.dsn, FaultConfig())
    port = free_port()
    log_path = tmp_path / "cj-worker.log"
    log = log_path.open("wb")
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "pytest_eng5.reference", "cj-worker",
        "--bootstrap", infra.bootstrap,
        "--dsn", infra.dsn,
        "--content-url", infra.content_url,
        "--health-port", str(port),
        "--judge", "coin_flip",
        "--max-pairwise-comparisons", "6",
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )  # fmt: skip
    try:
        async with httpx.AsyncClient() as client:
            deadline = asyncio.get_running_loop().time() + 60
            status = None
            while status != 200:
                assert process.returncode is None, log_path.read_text()
                assert asyncio.get_running_loop().time() < deadline, "worker never became healthy"
                try:
                    status = (await client.get(f"http://127.0.0.1:{port}/healthz")).status_code
                except httpx.TransportError:
                    status = None
                if status != 200:
                    await asyncio.sleep(0.1)
        essays = await seed_students(db, SMALL_TEXTS[:4])
        request = build_request(essays, assignment_id=None)
        batch_id = str(request.data.entity_id)
        tap = await _run_batch(infra, request)
        callbacks = for_batch(tap.envelopes(CALLBACK_TOPIC), batch_id)
        assert len(callbacks) == 6  # --max-pairwise-comparisons caps the budget
        result = _only(for_batch(tap.envelopes(RESULT_TOPIC), batch_id))
        assert result.data_as(AssessmentResultV1).batch_id == batch_id
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
        try:
            code = await asyncio.wait_for(process.wait(), 20)
        except TimeoutError:
            process.kill()
            await asyncio.wait_for(process.wait(), 10)
            raise
        finally:
            log.close()
    assert code == 0, log_path.read_text()


# --------------------------------------------------------------------------- no silent stalls


@pytest.mark.asyncio
async def test_database_error_at_intake_publishes_failed_event(
    infra: Infra, db: asyncpg.Connection, start_worker: WorkerFactory
) -> None:
    essays = await seed_students(db, SMALL_TEXTS[:3])
    await start_worker()
    request = build_request(essays, assignment_id=None)
    request.data.language = "english-please"  # cj_batch_uploads.language is varchar(10)
    failed = await _expect_intake_failure(infra, request)
    assert failed.system_metadata.error_info["error_code"] == "PROCESSING_ERROR"


@pytest.mark.asyncio
async def test_batch_that_raises_mid_flight_fails_instead_of_stalling(
    infra: Infra, db: asyncpg.Connection, start_worker: WorkerFactory
) -> None:
    """Batch 2 re-uses an essay id of batch 1 while batch 1 waits for callbacks (essay ids
    are a global key, §G.7): batch 1 cannot be scored any more and must say so."""
    first = await seed_students(db, SMALL_TEXTS[:4])
    others = await seed_students(db, SMALL_TEXTS[4:6])
    await start_worker()
    await set_faults(infra.dsn, FaultConfig(judge_delay_ms=1500))
    request_1 = build_request(first, assignment_id=None, max_comparisons=6)
    request_2 = build_request([first[0], *others], assignment_id=None, max_comparisons=3)
    batch_1, batch_2 = str(request_1.data.entity_id), str(request_2.data.entity_id)
    async with EventTap(infra.bootstrap) as tap:
        await publish(infra.bootstrap, request_1)
        deadline = asyncio.get_running_loop().time() + EVENT_TIMEOUT_S
        while (
            await db.fetchval(
                "SELECT s.state::text FROM cj_batch_states s JOIN cj_batch_uploads u"
                " ON u.id = s.batch_id WHERE u.bos_batch_id = $1",
                batch_1,
            )
            != "WAITING_CALLBACKS"
        ):
            assert asyncio.get_running_loop().time() < deadline, "batch 1 never submitted"
            await asyncio.sleep(0.05)
        await publish(infra.bootstrap, request_2)
        await tap.wait_for(
            lambda t: (
                bool(for_batch(t.envelopes(FAILED_TOPIC), batch_1))
                and bool(for_batch(t.envelopes(RESULT_TOPIC), batch_2))
            ),
            30.0,
            "failure of batch 1 and result of batch 2",
        )
    failed = _only(for_batch(tap.envelopes(FAILED_TOPIC), batch_1)).data_as(CJAssessmentFailedV1)
    assert failed.failure_reason == "processing_error"
    assert failed.cj_assessment_job_id == str((await _state(db, batch_1))["id"])
    assert not for_batch(tap.envelopes(COMPLETED_TOPIC), batch_1)
    state = await _state(db, batch_1)
    assert (state["status"], state["state"]) == ("ERROR_PROCESSING", "FAILED")


@pytest.mark.asyncio
async def test_batch_that_raises_while_finalising_fails_instead_of_stalling(
    infra: Infra, db: asyncpg.Connection, start_worker: WorkerFactory
) -> None:
    """Finalisation marks the batch COMPLETE_* before it publishes; a failure after that
    (here: an instruction row written behind the API's back with an unknown scale) must
    still end in a failure event."""
    assignment_id = f"bad-scale-{uuid.uuid4().hex[:8]}"
    await seed_assignment(db, assignment_id, [], grade_scale="no_such_scale")
    essays = await seed_students(db, SMALL_TEXTS[:3])
    await start_worker()
    request = build_request(essays, assignment_id=assignment_id, max_comparisons=3)
    batch_id = str(request.data.entity_id)
    tap = await _run_batch(infra, request, terminal=(FAILED_TOPIC, COMPLETED_TOPIC))
    assert not for_batch(tap.envelopes(COMPLETED_TOPIC), batch_id)
    failed = _only(for_batch(tap.envelopes(FAILED_TOPIC), batch_id)).data_as(CJAssessmentFailedV1)
    assert failed.failure_reason == "processing_error"
    assert "no_such_scale" in failed.system_metadata.error_info["details"]["error"]
    state = await _state(db, batch_id)
    assert (state["status"], state["state"]) == ("ERROR_PROCESSING", "FAILED")


@pytest.mark.asyncio
async def test_event_that_failed_to_publish_is_relayed_again(
    infra: Infra, db: asyncpg.Connection, start_worker: WorkerFactory
) -> None:
    essays = await seed_students(db, SMALL_TEXTS[:3])
    worker = await start_worker()
    producer = worker._producer
    assert producer is not None
    send_and_wait = producer.send_and_wait
    refused: list[str] = []

    async def flaky_send(topic: str, *args: Any, **kwargs: Any) -> Any:
        if topic == COMPLETED_TOPIC and not refused:
            refused.append(topic)
            raise ConnectionError("injected: broker unavailable for this send")
        return await send_and_wait(topic, *args, **kwargs)

    producer.send_and_wait = flaky_send  # type: ignore[method-assign]
    request = build_request(essays, assignment_id=None)
    batch_id = str(request.data.entity_id)
    tap = await _run_batch(infra, request, terminal=(COMPLETED_TOPIC,))
    assert refused == [COMPLETED_TOPIC]
    _only(for_batch(tap.envelopes(COMPLETED_TOPIC), batch_id))
    unpublished = await db.fetchval(
        "SELECT count(*) FROM event_outbox WHERE aggregate_id = $1 AND published_at IS NULL",
        batch_id,
    )
    assert unpublished == 0


# --------------------------------------------------------------------------- atomic counters


@pytest.mark.asyncio
async def test_callback_and_timeout_write_outcome_and_counter_together(
    infra: Infra, db: asyncpg.Connection
) -> None:
    """If the batch counter cannot be updated, the pair outcome must not be stored either: a
    pair with an outcome but an uncounted callback would keep the wave open for ever."""
    from pytest_eng5.contracts.enums import EssayComparisonWinner, LLMProviderType
    from pytest_eng5.contracts.topics import CALLBACK_EVENT_TYPE
    from pytest_eng5.reference.batch_flow import BatchFlow
    from pytest_eng5.reference.db import create_pool
    from pytest_eng5.reference.judge import CoinFlipJudge

    cj_batch_id = await db.fetchval(
        "INSERT INTO cj_batch_uploads (bos_batch_id, event_correlation_id, language, course_code,"
        " expected_essay_count, processing_metadata) VALUES ($1, $2, 'en', 'ENG5', 4, '{}')"
        " RETURNING id",
        str(uuid.uuid4()),
        str(uuid.uuid4()),
    )
    await db.execute(
        "INSERT INTO cj_batch_states (batch_id, state, total_budget, submitted_comparisons,"
        " total_comparisons, current_iteration, processing_metadata)"
        " VALUES ($1, 'WAITING_CALLBACKS', 2, 2, 2, 1, '{}')",
        cj_batch_id,
    )
    correlation_ids = [uuid.uuid4(), uuid.uuid4()]
    for index, correlation_id in enumerate(correlation_ids):
        await db.execute(
            "INSERT INTO cj_comparison_pairs (cj_batch_id, essay_a_els_id, essay_b_els_id,"
            " prompt_text, request_correlation_id, submitted_at) VALUES ($1, $2, $3, 'p', $4,"
            " now())",
            cj_batch_id,
            f"atomic-a{index}",
            f"atomic-b{index}",
            correlation_id,
        )
    trigger = f"eng5_test_fail_state_{cj_batch_id}"
    await db.execute(
        "CREATE OR REPLACE FUNCTION eng5_test_fail_state_update() RETURNS trigger AS"
        " $$ BEGIN RAISE EXCEPTION 'injected: batch state not writable'; END $$"
        " LANGUAGE plpgsql"
    )
    await db.execute(
        f"CREATE TRIGGER {trigger} BEFORE UPDATE ON cj_batch_states FOR EACH ROW"
        f" WHEN (OLD.batch_id = {int(cj_batch_id)}) EXECUTE FUNCTION eng5_test_fail_state_update()"
    )
    settings = WorkerSettings(infra.bootstrap, infra.dsn, infra.content_url)
    pool = await create_pool(infra.dsn)
    # the failing paths use the pool only: no producer, no HTTP client
    flow = BatchFlow(pool, None, None, CoinFlipJudge(), settings)  # type: ignore[arg-type]
    try:
        callback = LLMComparisonResultV1(
            request_id=str(uuid.uuid4()),
            correlation_id=correlation_ids[0],
            winner=EssayComparisonWinner.ESSAY_A,
            justification="A is better.",
            confidence=3.0,
            provider=LLMProviderType.MOCK,
            model="m",
            response_time_ms=1,
            cost_estimate=0.0,
            requested_at=datetime.now(UTC),
            completed_at=datetime.now(UTC),
        )
        envelope = EventEnvelope(
            event_type=CALLBACK_EVENT_TYPE,
            source_service="llm_provider_service",
            correlation_id=correlation_ids[0],
            data=callback,
        )
        with pytest.raises(asyncpg.RaiseError, match="injected"):
            await flow.handle_callback(envelope.to_bytes())
        await flow.on_wave_timeout(cj_batch_id)  # the counter update fails here too

        winners = await db.fetch(
            "SELECT winner FROM cj_comparison_pairs WHERE cj_batch_id = $1", cj_batch_id
        )
        assert [w["winner"] for w in winners] == [None, None], "outcome stored, counter not"
    finally:
        flow.runtimes.cancel_all()
        await db.execute(f"DROP TRIGGER IF EXISTS {trigger} ON cj_batch_states")
        await pool.close()
