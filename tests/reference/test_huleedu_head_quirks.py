"""The CJ API's HuleEdu HEAD quirk mode (contract H.1-H.3), switched on through its fault knob."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any

import asyncpg
import httpx
import pytest

HTTP_DATE = re.compile(r"^[A-Z][a-z]{2}, \d{2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2} GMT$")
GENERIC_500 = {
    "error": "Internal server error",
    "message": "An unexpected error occurred",
    "service": "cj_assessment_service",
}
INSTRUCTION = {
    "assignment_id": "quirk-1",
    "instructions_text": "Write an article about phones in school for a youth website.",
    "grade_scale": "eng5_np_legacy_9_step",
}
ESSAY = "Phones in school are useful for learning, but they also distract students. " * 3
DbRows = Callable[..., list[asyncpg.Record]]


@pytest.fixture
def cj(cj_url: str, clean_db: str, admin_headers: dict[str, str]) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=cj_url, headers=admin_headers, timeout=15.0) as client:
        yield client
        client.delete("/_test/faults")


def quirks(client: httpx.Client, on: bool = True) -> None:
    response = client.post(
        "/_test/faults", json={"service": "cj-api", "faults": {"huleedu_head_quirks": on}}
    )
    response.raise_for_status()


def instruction_rows(db_rows: DbRows) -> list[Any]:
    return db_rows(
        "SELECT assignment_id FROM assessment_instructions WHERE assignment_id = 'quirk-1'"
    )


def test_off_by_default_the_intended_behaviour(cj: httpx.Client, db_rows: DbRows) -> None:
    assert cj.post("/admin/v1/assessment-instructions", json=INSTRUCTION).status_code == 200
    assert len(instruction_rows(db_rows)) == 1
    missing = cj.get("/admin/v1/assessment-instructions/assignment/nope")
    assert missing.status_code == 404


def test_every_admin_error_is_the_generic_500(cj: httpx.Client, cj_url: str) -> None:
    quirks(cj)
    not_found = cj.get("/admin/v1/assessment-instructions/assignment/nope")
    unauthenticated = httpx.get(f"{cj_url}/admin/v1/assessment-instructions", timeout=15.0)
    invalid = cj.post("/admin/v1/assessment-instructions", json={"assignment_id": "x"})
    for response in (not_found, unauthenticated, invalid):
        assert response.status_code == 500, response.text
        assert response.json() == GENERIC_500


def test_admin_writes_are_accepted_but_not_persisted(cj: httpx.Client, db_rows: DbRows) -> None:
    quirks(cj)
    upserted = cj.post("/admin/v1/assessment-instructions", json=INSTRUCTION)
    assert upserted.status_code == 200
    assert upserted.json()["assignment_id"] == "quirk-1"
    assert HTTP_DATE.match(upserted.json()["created_at"])
    assert instruction_rows(db_rows) == []
    assert cj.get("/admin/v1/assessment-instructions/assignment/quirk-1").status_code == 500


def test_anchor_registration_answers_201_and_stores_nothing(
    cj: httpx.Client, db_rows: DbRows
) -> None:
    assert cj.post("/admin/v1/assessment-instructions", json=INSTRUCTION).status_code == 200
    quirks(cj)
    registered = cj.post(
        "/api/v1/anchors/register",
        json={"assignment_id": "quirk-1", "grade": "B", "essay_text": ESSAY},
    )
    assert registered.status_code == 201, registered.text
    assert registered.json()["anchor_id"]
    assert db_rows("SELECT id FROM anchor_essay_references") == []


def test_student_prompt_upload_commits_as_in_huleedu(cj: httpx.Client, db_rows: DbRows) -> None:
    assert cj.post("/admin/v1/assessment-instructions", json=INSTRUCTION).status_code == 200
    quirks(cj)
    uploaded = cj.post(
        "/admin/v1/student-prompts",
        json={"assignment_id": "quirk-1", "prompt_text": "Write about phones please."},
    )
    assert uploaded.status_code == 200, uploaded.text
    stored = db_rows(
        "SELECT student_prompt_storage_id FROM assessment_instructions"
        " WHERE assignment_id = 'quirk-1'"
    )
    assert stored[0]["student_prompt_storage_id"]


def test_reads_render_http_dates_and_clearing_restores_iso(cj: httpx.Client) -> None:
    assert cj.post("/admin/v1/assessment-instructions", json=INSTRUCTION).status_code == 200
    quirks(cj)
    quirky = cj.get("/admin/v1/assessment-instructions/assignment/quirk-1").json()
    assert HTTP_DATE.match(quirky["created_at"])
    quirks(cj, on=False)
    plain = cj.get("/admin/v1/assessment-instructions/assignment/quirk-1").json()
    assert "T" in plain["created_at"]
    assert not HTTP_DATE.match(plain["created_at"])
