"""Seeding through the runner's CJ client, over real HTTP against the reference CJ API."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from pytest_eng5.contracts.grade_scales import grade_from_filename
from pytest_eng5.errors import InventoryError, PreflightAuthError
from pytest_eng5.runner.seeding import SeedResult, seed_assignment_at
from pytest_eng5.sample_data import SAMPLE_ASSETS, read_sample_text

LEGACY = "eng5_np_legacy_9_step"


async def seed(cj_url: str, token: str, assets: Path, assignment_id: str) -> SeedResult:
    return await seed_assignment_at(
        cj_url, {"HULEEDU_ADMIN_TOKEN": token}, assets, assignment_id=assignment_id
    )


@pytest.mark.asyncio
async def test_seeding_the_sample_set_is_idempotent(
    cj_url: str, clean_db: str, mint: Callable[..., str], db_rows: Callable[..., list[Any]]
) -> None:
    token = mint()

    first = await seed(cj_url, token, SAMPLE_ASSETS, "eng5-sample")
    second = await seed(cj_url, token, SAMPLE_ASSETS, "eng5-sample")

    assert first.anchors_registered == 12
    assert (first.anchor_count, second.anchor_count) == (12, 12)
    assert second.anchor_count_total == 12
    assert second.anchor_ids == first.anchor_ids
    assert second.instruction_id == first.instruction_id
    assert second.grade_scale == LEGACY
    rows = db_rows(
        "SELECT anchor_label, grade, grade_scale FROM anchor_essay_references "
        "WHERE assignment_id = 'eng5-sample'"
    )
    assert len(rows) == 12
    assert {row["grade_scale"] for row in rows} == {LEGACY}
    assert {row["anchor_label"]: row["grade"] for row in rows} == {
        path.stem: grade_from_filename(path.name)
        for path in (SAMPLE_ASSETS / "anchor_essays").iterdir()
    }


@pytest.mark.asyncio
async def test_seeding_stores_instructions_prompt_and_anchor_texts(
    cj_url: str, content_url: str, clean_db: str, mint: Callable[..., str]
) -> None:
    token = mint()
    result = await seed(cj_url, token, SAMPLE_ASSETS, "eng5-texts")
    instructions = (SAMPLE_ASSETS / "instructions.md").read_text(encoding="utf-8")
    headers = {"Authorization": f"Bearer {token}"}

    async with httpx.AsyncClient(base_url=cj_url, headers=headers, timeout=15.0) as client:
        instruction = await client.get("/admin/v1/assessment-instructions/assignment/eng5-texts")
        prompt = await client.get("/admin/v1/student-prompts/assignment/eng5-texts")
        summary = await client.get("/admin/v1/anchors/assignment/eng5-texts")
        docx_anchor = next(
            anchor
            for anchor in summary.json()["anchors"]
            if anchor["anchor_label"].endswith("009_B")
        )
        blob = await client.get(f"{content_url}/v1/content/{docx_anchor['text_storage_id']}")

    assert instruction.json()["instructions_text"] == instructions.strip()
    assert instruction.json()["context_origin"] == "research_experiment"
    assert prompt.json()["prompt_text"] == instructions.strip()
    assert prompt.json()["student_prompt_storage_id"] == result.student_prompt_storage_id
    docx_path = SAMPLE_ASSETS / "anchor_essays" / f"{docx_anchor['anchor_label']}.docx"
    assert blob.text == read_sample_text(docx_path)


@pytest.mark.asyncio
async def test_seeding_with_a_bad_token_is_an_auth_error(
    cj_url: str, clean_db: str, mint: Callable[..., str]
) -> None:
    with pytest.raises(PreflightAuthError, match="HTTP 401"):
        await seed(cj_url, mint(secret="wrong-secret-" + "x" * 32), SAMPLE_ASSETS, "x")


@pytest.mark.asyncio
async def test_an_invalid_anchor_grade_stops_before_anything_is_sent(
    cj_url: str,
    clean_db: str,
    mint: Callable[..., str],
    tmp_path: Path,
    db_rows: Callable[..., list[Any]],
) -> None:
    assets = tmp_path / "assets"
    (assets / "anchor_essays").mkdir(parents=True)
    shutil.copy(SAMPLE_ASSETS / "instructions.md", assets / "instructions.md")
    essay = read_sample_text(SAMPLE_ASSETS / "anchor_essays" / "anchor_essay_eng_5_17_vt_010_B.txt")
    (assets / "anchor_essays" / "a_01_B.txt").write_text(essay, encoding="utf-8")
    (assets / "anchor_essays" / "a_02_Q.txt").write_text(essay, encoding="utf-8")

    with pytest.raises(InventoryError, match=r"a_02_Q\.txt: no valid eng5_np_legacy_9_step grade"):
        await seed(cj_url, mint(), assets, "broken")

    assert db_rows("SELECT 1 FROM assessment_instructions WHERE assignment_id = 'broken'") == []
    assert db_rows("SELECT 1 FROM anchor_essay_references WHERE assignment_id = 'broken'") == []


@pytest.mark.asyncio
async def test_an_unsupported_anchor_file_type_is_an_inventory_error(
    cj_url: str, clean_db: str, mint: Callable[..., str], tmp_path: Path
) -> None:
    shutil.copy(SAMPLE_ASSETS / "instructions.md", tmp_path / "instructions.md")
    (tmp_path / "anchor_essays").mkdir()
    (tmp_path / "anchor_essays" / "a_01_B.pdf").write_bytes(b"%PDF")

    with pytest.raises(InventoryError, match=r"a_01_B\.pdf"):
        await seed(cj_url, mint(), tmp_path, "pdf")
