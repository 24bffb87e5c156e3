"""R5 extraction over a real embedded PostgreSQL with the reference CJ schema."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from uuid import uuid4

import asyncpg
import pytest

from pytest_eng5.core import dsn_from_env
from pytest_eng5.errors import ExtractionError
from pytest_eng5.runner.extraction import describe_dsn, extract_batch


async def _seed_batch(dsn: str, batch_uuid: str) -> int:
    connection = await asyncpg.connect(dsn)
    try:
        cj_batch_id: int = await connection.fetchval(
            """INSERT INTO cj_batch_uploads (bos_batch_id, event_correlation_id, language,
                   course_code, expected_essay_count, status, assignment_id, user_id)
               VALUES ($1, $2, 'en', 'ENG5', 3, 'COMPLETE_STABLE', 'assign-1', 'runner')
               RETURNING id""",
            batch_uuid,
            str(uuid4()),
        )
        await connection.execute(
            """INSERT INTO cj_batch_states (batch_id, state, total_budget, total_comparisons,
                   submitted_comparisons, completed_comparisons, failed_comparisons)
               VALUES ($1, 'COMPLETED', 3, 3, 3, 2, 1)""",
            cj_batch_id,
        )
        essays = [
            (f"S1-{batch_uuid[:8]}", 0.9, 0.4, 2, False, None),
            (f"S2-{batch_uuid[:8]}", -0.2, 0.5, 2, False, None),
            (f"A1-{batch_uuid[:8]}", -0.7, 0.6, 2, True, json.dumps({"known_grade": "B"})),
        ]
        for essay_id, score, se, count, is_anchor, metadata in essays:
            await connection.execute(
                """INSERT INTO cj_processed_essays (els_essay_id, cj_batch_id, text_storage_id,
                       assessment_input_text, current_bt_score, current_bt_se, comparison_count,
                       is_anchor, processing_metadata)
                   VALUES ($1, $2, 'content', 'text', $3, $4, $5, $6, $7::jsonb)""",
                essay_id,
                cj_batch_id,
                score,
                se,
                count,
                is_anchor,
                metadata,
            )
        s1, s2, a1 = (essay[0] for essay in essays)
        for a, b, winner, error_code in (
            (s1, s2, "essay_a", None),
            (a1, s1, "essay_b", None),
            (s2, a1, "error", "EXTERNAL_SERVICE_ERROR"),
        ):
            await connection.execute(
                """INSERT INTO cj_comparison_pairs (cj_batch_id, essay_a_els_id, essay_b_els_id,
                       prompt_text, request_correlation_id, winner, error_code)
                   VALUES ($1, $2, $3, 'prompt', $4, $5, $6)""",
                cj_batch_id,
                a,
                b,
                uuid4(),
                winner,
                error_code,
            )
        for essay_id, grade, normalized in ((s1, "B", 0.8), (s2, "C", 0.6)):
            await connection.execute(
                """INSERT INTO grade_projections (els_essay_id, cj_batch_id, primary_grade,
                       grade_scale, confidence_score, confidence_label, normalized_score)
                   VALUES ($1, $2, $3, 'eng5_np_legacy_9_step', 0.7, 'HIGH', $4)""",
                essay_id,
                cj_batch_id,
                grade,
                normalized,
            )
        return cj_batch_id
    finally:
        await connection.close()


@pytest.mark.asyncio
async def test_extract_batch_writes_json_and_text(postgres_dsn: str, tmp_path: Path) -> None:
    batch_uuid = str(uuid4())
    cj_batch_id = await _seed_batch(postgres_dsn, batch_uuid)
    await _seed_batch(postgres_dsn, str(uuid4()))  # another batch in the same database

    report = await extract_batch(postgres_dsn, batch_uuid, tmp_path)

    assert report.json_path == tmp_path / "db_extract" / f"cj_results_{batch_uuid}.json"
    assert report.text_path == tmp_path / "db_extract" / f"cj_results_{batch_uuid}.txt"
    assert report.cj_batch_id == cj_batch_id
    assert report.counts == {"comparisons": 3, "essays": 3, "grade_projections": 2}
    extract = json.loads(report.json_path.read_text())
    assert set(extract) == {
        "batch_info",
        "batch_state",
        "comparisons",
        "bradley_terry_stats",
        "grade_projections",
        "wins_losses",
    }
    assert extract["batch_info"]["bos_batch_id"] == batch_uuid
    assert extract["batch_info"]["status"] == "COMPLETE_STABLE"
    assert extract["batch_state"]["state"] == "COMPLETED"
    ranking = [row["els_essay_id"][:2] for row in extract["bradley_terry_stats"]]
    assert ranking == ["S1", "S2", "A1"]
    s1 = extract["bradley_terry_stats"][0]
    assert (s1["wins"], s1["losses"], s1["current_bt_se"]) == (2, 0, 0.4)
    anchor = extract["bradley_terry_stats"][2]
    assert anchor["processing_metadata"] == {"known_grade": "B"}
    assert [row["primary_grade"] for row in extract["grade_projections"]] == ["B", "C"]
    text = report.text_path.read_text()
    assert batch_uuid in text
    for heading in ("BATCH STATE", "BRADLEY-TERRY RANKING", "STUDENT GRADE PROJECTIONS", "SUMMARY"):
        assert heading in text
    assert "Comparisons: 3 (2 succeeded, 1 errors)" in text
    assert "yes (B)" in text


@pytest.mark.asyncio
async def test_unknown_batch_raises_extraction_error(postgres_dsn: str, tmp_path: Path) -> None:
    missing = str(uuid4())
    with pytest.raises(ExtractionError) as caught:
        await extract_batch(postgres_dsn, missing, tmp_path)
    assert missing in str(caught.value)
    assert describe_dsn(postgres_dsn) in str(caught.value)
    assert not (tmp_path / "db_extract").exists()


@pytest.mark.asyncio
async def test_bad_dsn_keeps_the_error_text_and_hides_the_password(tmp_path: Path) -> None:
    secret = "s3cret-pw-extraction"
    dsn = dsn_from_env(
        {
            "HULEEDU_DB_HOST": "127.0.0.1",
            "HULEEDU_CJ_DB_PORT": "9",  # nothing listens on the discard port
            "HULEEDU_DB_USER": "huleedu_user",
            "HULEEDU_DB_PASSWORD": secret,
        }
    )
    assert dsn == f"postgresql://huleedu_user:{secret}@127.0.0.1:9/huleedu_cj_assessment"
    with pytest.raises(ExtractionError) as caught:
        await extract_batch(dsn, str(uuid4()), tmp_path)
    message = str(caught.value)
    assert "127.0.0.1:9/huleedu_cj_assessment" in message
    assert "Error" in message  # the connection error's own type and text are kept
    assert secret not in message
    assert not (tmp_path / "db_extract").exists()


def test_dsn_from_env_needs_a_host_and_prefers_the_cj_port() -> None:
    assert dsn_from_env({}) is None
    dsn = dsn_from_env({"HULEEDU_DB_HOST": "db", "HULEEDU_DB_PORT": "5432"})
    assert dsn == "postgresql://huleedu_user@db:5432/huleedu_cj_assessment"
    both = dsn_from_env(
        {"HULEEDU_DB_HOST": "db", "HULEEDU_DB_PORT": "5432", "HULEEDU_CJ_DB_PORT": "5434"}
    )
    assert both is not None
    assert both.endswith("@db:5434/huleedu_cj_assessment")


def test_dsn_from_env_takes_the_database_name_of_huleedus_cj_service() -> None:
    env = {"HULEEDU_DB_HOST": "db", "HULEEDU_DB_USER": "cj", "HULEEDU_DB_PASSWORD": "p w"}
    named = dsn_from_env({**env, "CJ_ASSESSMENT_SERVICE_DB_NAME": "cj_staging"})
    assert named == "postgresql://cj:p%20w@db:5434/cj_staging"
    blank = dsn_from_env({**env, "CJ_ASSESSMENT_SERVICE_DB_NAME": " "})
    assert blank == "postgresql://cj:p%20w@db:5434/huleedu_cj_assessment"


def test_describe_dsn_never_shows_a_keyword_dsn_password() -> None:
    described = describe_dsn("host=db port=5432 user=u password=hunter2-kw dbname=cj")
    assert "hunter2-kw" not in described


@pytest.mark.asyncio
async def test_keyword_dsn_error_does_not_leak_its_password(tmp_path: Path) -> None:
    with pytest.raises(ExtractionError) as caught:
        await extract_batch("host=127.0.0.1 port=9 password=hunter2-kw", str(uuid4()), tmp_path)
    assert "hunter2-kw" not in str(caught.value)


@pytest.mark.asyncio
async def test_non_object_processing_metadata_still_renders(
    postgres_dsn: str, tmp_path: Path
) -> None:
    """A JSON list in processing_metadata (any JSON is allowed there) must not crash the text."""
    batch_uuid = str(uuid4())
    cj_batch_id = await _seed_batch(postgres_dsn, batch_uuid)
    connection = await asyncpg.connect(postgres_dsn)
    try:
        await connection.execute(
            "UPDATE cj_processed_essays SET processing_metadata = '[\"x\"]'::jsonb "
            "WHERE cj_batch_id = $1 AND is_anchor",
            cj_batch_id,
        )
    finally:
        await connection.close()
    report = await extract_batch(postgres_dsn, batch_uuid, tmp_path)
    assert "BRADLEY-TERRY RANKING" in report.text_path.read_text()


@pytest.mark.asyncio
async def test_unwritable_output_is_an_extraction_error(postgres_dsn: str, tmp_path: Path) -> None:
    batch_uuid = str(uuid4())
    await _seed_batch(postgres_dsn, batch_uuid)
    (tmp_path / "db_extract").write_text("a file where the folder should be")
    with pytest.raises(ExtractionError) as caught:
        await extract_batch(postgres_dsn, batch_uuid, tmp_path)
    assert "writing" in caught.value.message
    assert "batch itself is unaffected" in caught.value.next_step


@pytest.mark.asyncio
async def test_failing_close_does_not_lose_a_good_extract(
    postgres_dsn: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    batch_uuid = str(uuid4())
    await _seed_batch(postgres_dsn, batch_uuid)
    original_close = asyncpg.Connection.close

    async def close_then_fail(self: asyncpg.Connection, **kwargs: Any) -> None:
        await original_close(self, **kwargs)
        raise ConnectionResetError("connection reset while closing")

    monkeypatch.setattr(asyncpg.Connection, "close", close_then_fail)
    report = await extract_batch(postgres_dsn, batch_uuid, tmp_path)
    assert report.json_path.exists()
