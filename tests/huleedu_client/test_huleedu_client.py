"""The embedded stack used the way HuleEdu's own ENG5 tools use a HuleEdu dev stack.

Written from the contract facts (request envelope D.4, collector settings of the ENG5 runner
§6.3, DB extraction §8), not with this project's runner or models: an idempotent producer
publishes the request, a consumer GROUP awaits the callbacks, the completion and the rich
result, and the extraction queries read the batch from ``huleedu_cj_assessment`` over TCP with
the ``HULEEDU_DB_*`` variables that ``python -m pytest_eng5.stack --json`` prints.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections import Counter
from datetime import UTC, datetime
from typing import Any

import asyncpg
import httpx
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

REQUEST_TOPIC = "huleedu.els.cj_assessment.requested.v1"
CALLBACK_TOPIC = "huleedu.llm_provider.comparison_result.v1"
COMPLETED_TOPIC = "huleedu.cj_assessment.completed.v1"
RESULT_TOPIC = "huleedu.assessment.result.published.v1"
CLIENT_ID = "eng5-np-runner"
BUDGET = 20
AWAIT_SECONDS = 120
ESSAYS = [
    "Phones help students find facts quickly, but they also pull attention away from lessons.",
    "I think phones should be allowed in school. Because they are useful. And fun.",
    "Mobile phones in classrooms divide opinion. On the one hand, they give instant access to "
    "information; on the other, notifications fragment concentration. A balanced policy, with "
    "phones stored during lessons and allowed at breaks, serves learning best.",
    "phones r good i like my phone school is boring without it",
    "Schools should set clear rules for phones: used for research when a teacher asks, and put "
    "away otherwise. This keeps the benefits and limits the distraction.",
    "Many pupils bring phones. Teachers disagree about them. Some rules exist.",
]


def upload(content_url: str, text: str) -> str:
    """``POST /v1/content`` with the raw bytes, as HuleEdu's runner uploads essays."""
    response = httpx.post(
        content_url,
        content=text.encode(),
        headers={"Content-Type": "application/octet-stream"},
        timeout=30,
    )
    assert response.status_code == 201, response.text
    storage_id: str = response.json()["storage_id"]
    return storage_id


def request_envelope(batch: str, assignment_id: str, essays: dict[str, str]) -> dict[str, Any]:
    now = datetime.now(UTC).isoformat()
    return {
        "event_id": str(uuid.uuid4()),
        "event_type": REQUEST_TOPIC,
        "event_timestamp": now,
        "source_service": "eng5_np_batch_runner",
        "schema_version": 1,
        "correlation_id": str(uuid.uuid4()),
        "data_schema_uri": None,
        "data": {
            "event_name": "els.cj_assessment.requested",
            "entity_id": batch,
            "entity_type": "batch",
            "parent_id": assignment_id,
            "timestamp": now,
            "system_metadata": {
                "entity_id": batch,
                "entity_type": "batch",
                "parent_id": assignment_id,
                "timestamp": now,
                "processing_stage": "pending",
                "event": "els.cj_assessment.requested",
            },
            "essays_for_cj": [
                {"essay_id": essay_id, "text_storage_id": storage_id}
                for essay_id, storage_id in essays.items()
            ],
            "language": "en",
            "course_code": "ENG5",
            "llm_config_overrides": None,
            "assignment_id": assignment_id,
            "user_id": "huleedu-client-tier",
        },
        "metadata": {"max_comparisons": BUDGET, "runner_mode": "execute", "batch_label": batch},
    }


async def publish_and_await(
    bootstrap: str, envelope: dict[str, Any], batch: str
) -> dict[str, list[dict[str, Any]]]:
    """Group consumer first (earliest, manual commits), then an idempotent acks=all publish."""
    consumer = AIOKafkaConsumer(
        CALLBACK_TOPIC,
        COMPLETED_TOPIC,
        RESULT_TOPIC,
        bootstrap_servers=bootstrap,
        group_id=f"{CLIENT_ID}-eng5np-{batch}",
        client_id=CLIENT_ID,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        session_timeout_ms=45000,
        max_poll_records=50,
    )
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, client_id=CLIENT_ID, enable_idempotence=True, acks="all"
    )
    seen: dict[str, list[dict[str, Any]]] = {"callbacks": [], "completed": [], "results": []}
    await consumer.start()
    try:
        await producer.start()
        try:
            await producer.send_and_wait(
                REQUEST_TOPIC, json.dumps(envelope).encode(), key=batch.encode()
            )
        finally:
            await producer.stop()
        async with asyncio.timeout(AWAIT_SECONDS):
            while not (seen["completed"] and seen["results"]):
                batch_records = await consumer.getmany(timeout_ms=1000, max_records=50)
                for records in batch_records.values():
                    for record in records:
                        keep(seen, record.topic, json.loads(record.value or b"{}"), batch)
                if batch_records:
                    await consumer.commit()
    finally:
        await consumer.stop()
    return seen


def keep(
    seen: dict[str, list[dict[str, Any]]], topic: str, event: dict[str, Any], batch: str
) -> None:
    """Keep the events of ``batch``, told apart by the keys the contract names (H.8)."""
    data = event.get("data") or {}
    if (
        topic == CALLBACK_TOPIC
        and (data.get("request_metadata") or {}).get("bos_batch_id") == batch
    ):
        seen["callbacks"].append(event)
    elif topic == COMPLETED_TOPIC and data.get("entity_id") == batch:
        seen["completed"].append(event)
    elif topic == RESULT_TOPIC and data.get("batch_id") == batch:
        seen["results"].append(event)


async def extract(facts: dict[str, str], batch: str) -> dict[str, Any]:
    """The ENG5 DB extraction's reads, over TCP as ``HULEEDU_DB_*`` describe it."""
    connection = await asyncpg.connect(
        host=facts["HULEEDU_DB_HOST"],
        port=int(facts["HULEEDU_CJ_DB_PORT"] or facts["HULEEDU_DB_PORT"]),
        user=facts["HULEEDU_DB_USER"],
        password=facts["HULEEDU_DB_PASSWORD"],
        database="huleedu_cj_assessment",
        timeout=10,
    )
    try:
        upload_row = await connection.fetchrow(
            "SELECT id, bos_batch_id, status, expected_essay_count, created_at"
            " FROM cj_batch_uploads WHERE bos_batch_id = $1",
            batch,
        )
        assert upload_row is not None, f"no cj_batch_uploads row for {batch}"
        cj_batch_id = upload_row["id"]
        state = await connection.fetchrow(
            "SELECT state, total_budget, total_comparisons, submitted_comparisons,"
            " completed_comparisons, failed_comparisons, current_iteration,"
            " completion_threshold_pct FROM cj_batch_states WHERE batch_id = $1",
            cj_batch_id,
        )
        comparisons = await connection.fetch(
            "SELECT id, essay_a_els_id, essay_b_els_id, winner, confidence, justification,"
            " request_correlation_id, submitted_at, completed_at, error_code"
            " FROM cj_comparison_pairs WHERE cj_batch_id = $1 ORDER BY id",
            cj_batch_id,
        )
        essays = await connection.fetch(
            "SELECT els_essay_id, current_bt_score, current_bt_se, comparison_count, is_anchor,"
            " processing_metadata FROM cj_processed_essays WHERE cj_batch_id = $1"
            " ORDER BY current_bt_score DESC NULLS LAST",
            cj_batch_id,
        )
        projections = await connection.fetch(
            "SELECT els_essay_id, primary_grade, confidence_score, confidence_label,"
            " normalized_score, grade_scale FROM grade_projections WHERE cj_batch_id = $1"
            " ORDER BY normalized_score DESC",
            cj_batch_id,
        )
    finally:
        await connection.close()
    return {
        "batch_info": upload_row,
        "batch_state": state,
        "comparisons": comparisons,
        "essays": essays,
        "projections": projections,
    }


def wins_and_losses(comparisons: list[asyncpg.Record]) -> Counter[str]:
    """Wins per essay as the extraction derives them (``essay_a`` / ``essay_b`` winners)."""
    wins: Counter[str] = Counter()
    for row in comparisons:
        if row["winner"] == "essay_a":
            wins[row["essay_a_els_id"]] += 1
        elif row["winner"] == "essay_b":
            wins[row["essay_b_els_id"]] += 1
    return wins


def test_huleedu_style_client_runs_a_batch_and_extracts_it(stack_cli: dict[str, str]) -> None:
    batch = str(uuid.uuid4())
    students = {str(uuid.uuid4()): upload(stack_cli["content_url"], text) for text in ESSAYS}
    envelope = request_envelope(batch, stack_cli["assignment_id"], students)

    seen = asyncio.run(publish_and_await(stack_cli["kafka_bootstrap"], envelope, batch))

    (completed,) = seen["completed"]
    (result,) = seen["results"]
    assert completed["data"]["status"] == "completed_successfully"
    assert completed["event_type"] == COMPLETED_TOPIC
    assert result["event_type"] == "assessment.result.published"
    assert result["metadata"] == {}
    ranked = {essay["essay_id"] for essay in result["data"]["essay_results"]}
    assert set(students) <= ranked
    assert seen["callbacks"], "no callback of the batch reached the group consumer"
    for callback in seen["callbacks"]:
        data = callback["data"]
        assert callback["event_type"] == "LLMComparisonResultV1"
        assert (data["provider"], data["model"]) == ("openai", "gpt-5.1")
        assert data["cost_estimate"] > 0

    extracted = asyncio.run(extract(stack_cli, batch))

    assert extracted["batch_info"]["bos_batch_id"] == batch
    assert extracted["batch_info"]["expected_essay_count"] >= len(students)  # + CJ's anchors
    assert extracted["batch_state"]["total_budget"] == BUDGET
    comparisons = extracted["comparisons"]
    assert 0 < len(comparisons) <= BUDGET
    callback_ids = {c["data"]["correlation_id"] for c in seen["callbacks"]}
    assert {str(row["request_correlation_id"]) for row in comparisons} == callback_ids
    essay_ids = {row["els_essay_id"] for row in extracted["essays"]}
    assert set(students) <= essay_ids
    assert any(row["is_anchor"] for row in extracted["essays"]), "CJ adds the assignment's anchors"
    assert set(students) <= {row["els_essay_id"] for row in extracted["projections"]}
    decided = sum(row["winner"] in ("essay_a", "essay_b") for row in comparisons)
    assert sum(wins_and_losses(comparisons).values()) == decided
