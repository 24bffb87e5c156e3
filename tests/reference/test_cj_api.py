"""Contract tests of the reference CJ Assessment Service HTTP API (contract A) over real HTTP."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

import httpx
import pytest

from pytest_eng5.contracts.admin import (
    AdminErrorBody,
    AnchorSummaryResponse,
    AssessmentInstructionListResponse,
    AssessmentInstructionResponse,
    GenericServerErrorBody,
    JudgeRubricResponse,
    RegisterAnchorResponse,
    StudentPromptResponse,
)
from pytest_eng5.reference.cj_app import create_cj_app

HTTP_DATE = re.compile(r"^[A-Z][a-z]{2}, \d{2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2} GMT$")
LEGACY = "eng5_np_legacy_9_step"
NATIONAL = "eng5_np_national_9_step"
INSTRUCTIONS = "Write an article about phones in school for a youth website."
ESSAY = "Phones in school are useful for learning, but they also distract students. " * 3

DbRows = Callable[..., list[Any]]


@pytest.fixture
def cj(cj_url: str, clean_db: str, admin_headers: dict[str, str]) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=cj_url, headers=admin_headers, timeout=15.0) as client:
        yield client


@pytest.fixture
def anon(cj_url: str, clean_db: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=cj_url, timeout=15.0) as client:
        yield client


def upsert(client: httpx.Client, **fields: Any) -> httpx.Response:
    body: dict[str, Any] = {
        "assignment_id": "assign-1",
        "instructions_text": INSTRUCTIONS,
        "grade_scale": LEGACY,
    }
    body.update(fields)
    return client.post("/admin/v1/assessment-instructions", json=body)


def register(client: httpx.Client, **fields: Any) -> httpx.Response:
    body: dict[str, Any] = {"assignment_id": "assign-1", "grade": "B", "essay_text": ESSAY}
    body.update(fields)
    body = {key: value for key, value in body.items() if value is not None}
    return client.post("/api/v1/anchors/register", json=body)


def admin_error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    """Assert the A.4 body and status; return ``details``."""
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body["error"]) == {
        "code",
        "message",
        "correlation_id",
        "service",
        "timestamp",
        "details",
    }
    error = AdminErrorBody.model_validate(body).error
    assert error.code == code
    assert error.service == "cj_assessment_service"
    assert error.message
    return error.details


# --- authentication (A.3) ---------------------------------------------------------------------


ADMIN_ROUTES = [
    ("GET", "/admin/v1/anchors/assignment/a"),
    ("POST", "/admin/v1/assessment-instructions"),
    ("GET", "/admin/v1/assessment-instructions"),
    ("GET", "/admin/v1/assessment-instructions/assignment/a"),
    ("DELETE", "/admin/v1/assessment-instructions/assignment/a"),
    ("DELETE", "/admin/v1/assessment-instructions/course/c"),
    ("POST", "/admin/v1/student-prompts"),
    ("GET", "/admin/v1/student-prompts/assignment/a"),
    ("POST", "/admin/v1/judge-rubrics"),
    ("GET", "/admin/v1/judge-rubrics/assignment/a"),
]


@pytest.mark.parametrize(("method", "path"), ADMIN_ROUTES)
def test_every_admin_route_requires_a_token(anon: httpx.Client, method: str, path: str) -> None:
    response = anon.request(method, path, json={})

    details = admin_error(response, 401, "AUTHENTICATION_ERROR")
    assert details["reason"] == "missing_authorization_header"


def _expired(mint: Callable[..., str]) -> str:
    return mint(exp=int(time.time()) - 10, iat=int(time.time()) - 100)


AUTH_FAILURES: list[tuple[str, Callable[[Callable[..., str]], str], str]] = [
    ("bad-format-scheme", lambda mint: f"Token {mint()}", "invalid_authorization_format"),
    ("bad-format-parts", lambda mint: f"Bearer {mint()} extra", "invalid_authorization_format"),
    ("bad-format-no-token", lambda mint: "Bearer", "invalid_authorization_format"),
    ("expired", lambda mint: f"Bearer {_expired(mint)}", "token_expired"),
    ("wrong-aud", lambda mint: f"Bearer {mint(aud='other-platform')}", "invalid_audience"),
    ("wrong-iss", lambda mint: f"Bearer {mint(iss='someone-else')}", "invalid_issuer"),
    (
        "bad-signature",
        lambda mint: f"Bearer {mint(secret='not-the-secret-' + 'x' * 32)}",
        "invalid_signature",
    ),
    ("missing-exp", lambda mint: f"Bearer {mint(exp=None)}", "missing_exp"),
    ("missing-aud", lambda mint: f"Bearer {mint(aud=None)}", "invalid_token"),
    ("garbage", lambda mint: "Bearer not.a.jwt", "invalid_token"),
    ("wrong-alg", lambda mint: f"Bearer {mint(algorithm='HS384')}", "invalid_algorithm"),
]


@pytest.mark.parametrize(
    ("header", "reason"),
    [pytest.param(make, reason, id=name) for name, make, reason in AUTH_FAILURES],
)
def test_authentication_failures_are_401_with_reason(
    anon: httpx.Client,
    mint: Callable[..., str],
    header: Callable[[Callable[..., str]], str],
    reason: str,
) -> None:
    response = anon.get(
        "/admin/v1/assessment-instructions", headers={"Authorization": header(mint)}
    )

    details = admin_error(response, 401, "AUTHENTICATION_ERROR")
    assert details["reason"] == reason


def test_bearer_scheme_is_case_insensitive(anon: httpx.Client, mint: Callable[..., str]) -> None:
    response = anon.get(
        "/admin/v1/assessment-instructions", headers={"Authorization": f"bEaReR {mint()}"}
    )

    assert response.status_code == 200


@pytest.mark.parametrize("roles", [["teacher"], [], "admin", None], ids=str)
def test_token_without_admin_role_is_403(
    anon: httpx.Client, mint: Callable[..., str], roles: Any
) -> None:
    token = mint(roles=roles)
    response = anon.get(
        "/admin/v1/assessment-instructions", headers={"Authorization": f"Bearer {token}"}
    )

    details = admin_error(response, 403, "AUTHORIZATION_ERROR")
    assert details == {"required_role": "admin"}


def test_sub_is_optional(anon: httpx.Client, mint: Callable[..., str]) -> None:
    response = anon.get(
        "/admin/v1/assessment-instructions",
        headers={"Authorization": f"Bearer {mint(sub=None)}"},
    )

    assert response.status_code == 200


def test_uuid_correlation_id_is_echoed_in_errors(anon: httpx.Client) -> None:
    cid = str(uuid.uuid4())
    response = anon.get("/admin/v1/assessment-instructions", headers={"X-Correlation-ID": cid})

    assert response.json()["error"]["correlation_id"] == cid


def test_non_uuid_correlation_id_maps_to_uuid5(anon: httpx.Client) -> None:
    response = anon.get("/admin/v1/assessment-instructions", headers={"X-Correlation-ID": "run-42"})

    expected = str(uuid.uuid5(uuid.NAMESPACE_OID, "run-42"))
    assert response.json()["error"]["correlation_id"] == expected


def test_correlation_id_query_parameter_is_used(anon: httpx.Client) -> None:
    cid = str(uuid.uuid4())
    response = anon.get("/admin/v1/assessment-instructions", params={"correlation_id": cid})

    assert response.json()["error"]["correlation_id"] == cid


# --- assessment instructions (A.5) ------------------------------------------------------------


def test_upsert_creates_and_reads_back(cj: httpx.Client, db_rows: DbRows) -> None:
    response = upsert(cj, student_prompt_storage_id="prompt-1")

    assert response.status_code == 200
    body = response.json()
    assert set(body) == {
        "id",
        "assignment_id",
        "course_id",
        "instructions_text",
        "grade_scale",
        "context_origin",
        "student_prompt_storage_id",
        "created_at",
    }
    created = AssessmentInstructionResponse.model_validate(body)
    assert created.grade_scale == LEGACY
    assert created.context_origin == "research_experiment"
    fetched = cj.get("/admin/v1/assessment-instructions/assignment/assign-1")
    assert fetched.status_code == 200
    assert fetched.json() == body
    rows = db_rows("SELECT * FROM assessment_instructions WHERE assignment_id = 'assign-1'")
    assert len(rows) == 1
    assert rows[0]["student_prompt_storage_id"] == "prompt-1"


def test_created_at_is_iso_8601_by_default(cj: httpx.Client, db_rows: DbRows) -> None:
    created_at = upsert(cj).json()["created_at"]

    stored = db_rows("SELECT created_at FROM assessment_instructions")[0]["created_at"]
    assert datetime.fromisoformat(created_at) == stored


def test_upsert_strips_whitespace(cj: httpx.Client) -> None:
    body = upsert(cj, assignment_id="  spaced  ", instructions_text=f"  {INSTRUCTIONS}  ").json()

    assert body["assignment_id"] == "spaced"
    assert body["instructions_text"] == INSTRUCTIONS


def test_upsert_overwrites_text_and_keeps_id(cj: httpx.Client) -> None:
    first = upsert(cj).json()
    second = upsert(cj, instructions_text="A brand new instructions text.").json()

    assert second["id"] == first["id"]
    assert second["instructions_text"] == "A brand new instructions text."
    read_back = cj.get("/admin/v1/assessment-instructions/assignment/assign-1").json()
    assert read_back["instructions_text"] == "A brand new instructions text."


def test_upsert_keeps_storage_id_when_not_given(cj: httpx.Client) -> None:
    upsert(cj, student_prompt_storage_id="prompt-1")
    kept = upsert(cj).json()
    replaced = upsert(cj, student_prompt_storage_id="prompt-2").json()

    assert kept["student_prompt_storage_id"] == "prompt-1"
    assert replaced["student_prompt_storage_id"] == "prompt-2"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"grade_scale": NATIONAL}, "grade_scale"),
        ({"context_origin": "canonical_national"}, "context_origin"),
    ],
)
def test_grade_scale_and_context_origin_are_immutable(
    cj: httpx.Client, change: dict[str, str], field: str
) -> None:
    upsert(cj)

    details = admin_error(upsert(cj, **change), 400, "VALIDATION_ERROR")

    assert details["field"] == field
    unchanged = cj.get("/admin/v1/assessment-instructions/assignment/assign-1").json()
    assert unchanged["grade_scale"] == LEGACY
    assert unchanged["context_origin"] == "research_experiment"


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"instructions_text": "too short"}, "instructions_text"),
        ({"grade_scale": "eng5_np_legacy_national_exam"}, "grade_scale"),
        ({"course_id": "course-1"}, ""),  # both assignment and course
        ({"assignment_id": None}, ""),  # neither
        ({"student_prompt_storage_id": "x" * 256}, "student_prompt_storage_id"),
    ],
)
def test_upsert_validation_errors(cj: httpx.Client, fields: dict[str, Any], field: str) -> None:
    details = admin_error(upsert(cj, **fields), 400, "VALIDATION_ERROR")

    assert details["field"] == field


def test_unknown_scale_message_lists_available_scales(cj: httpx.Client) -> None:
    response = upsert(cj, grade_scale="nope")

    assert "Available scales" in response.json()["error"]["message"]


@pytest.mark.parametrize("raw", [b"not json", b"[1, 2]", b""])
def test_upsert_needs_a_json_object(cj: httpx.Client, raw: bytes) -> None:
    response = cj.post(
        "/admin/v1/assessment-instructions",
        content=raw,
        headers={"Content-Type": "application/json"},
    )

    assert admin_error(response, 400, "VALIDATION_ERROR")["field"] == "body"


def test_course_scoped_instruction_and_delete_by_course(cj: httpx.Client, db_rows: DbRows) -> None:
    created = upsert(cj, assignment_id=None, course_id="ENG5").json()
    again = upsert(cj, assignment_id=None, course_id="ENG5", instructions_text="x" * 12).json()

    assert created["course_id"] == "ENG5"
    assert created["assignment_id"] is None
    assert again["id"] == created["id"]
    response = cj.delete("/admin/v1/assessment-instructions/course/ENG5")
    assert response.status_code == 200
    assert response.json() == {"status": "deleted", "course_id": "ENG5"}
    assert db_rows("SELECT id FROM assessment_instructions") == []
    missing = cj.delete("/admin/v1/assessment-instructions/course/ENG5")
    details = admin_error(missing, 404, "RESOURCE_NOT_FOUND")
    assert details == {"resource_type": "assessment_instruction_course", "resource_id": "ENG5"}


def test_delete_by_assignment_then_404(cj: httpx.Client, db_rows: DbRows) -> None:
    upsert(cj)

    response = cj.delete("/admin/v1/assessment-instructions/assignment/assign-1")

    assert response.status_code == 200
    assert response.json() == {"status": "deleted", "assignment_id": "assign-1"}
    assert db_rows("SELECT id FROM assessment_instructions") == []
    gone = cj.get("/admin/v1/assessment-instructions/assignment/assign-1")
    details = admin_error(gone, 404, "RESOURCE_NOT_FOUND")
    assert details == {"resource_type": "assessment_instruction", "resource_id": "assign-1"}
    assert gone.json()["error"]["message"] == (
        "assessment_instruction with ID 'assign-1' not found"
    )
    again = cj.delete("/admin/v1/assessment-instructions/assignment/assign-1")
    admin_error(again, 404, "RESOURCE_NOT_FOUND")


def test_list_is_newest_first_with_total_and_filter(cj: httpx.Client) -> None:
    for index in range(3):
        upsert(cj, assignment_id=f"legacy-{index}")
    upsert(cj, assignment_id="national-0", grade_scale=NATIONAL)

    everything = AssessmentInstructionListResponse.model_validate(
        cj.get("/admin/v1/assessment-instructions").json()
    )
    legacy = AssessmentInstructionListResponse.model_validate(
        cj.get("/admin/v1/assessment-instructions", params={"grade_scale": LEGACY}).json()
    )

    assert [item.assignment_id for item in everything.items] == [
        "national-0",
        "legacy-2",
        "legacy-1",
        "legacy-0",
    ]
    assert (everything.total, everything.page, everything.page_size) == (4, 1, 50)
    assert legacy.total == 3
    assert {item.grade_scale for item in legacy.items} == {LEGACY}


def test_list_pagination(cj: httpx.Client) -> None:
    for index in range(5):
        upsert(cj, assignment_id=f"a-{index}")

    page = cj.get("/admin/v1/assessment-instructions", params={"page": 2, "page_size": 2}).json()

    assert [item["assignment_id"] for item in page["items"]] == ["a-2", "a-1"]
    assert (page["total"], page["page"], page["page_size"]) == (5, 2, 2)


@pytest.mark.parametrize(
    ("params", "page", "page_size"),
    [
        ({"page": 0}, 1, 50),
        ({"page": -3}, 1, 50),
        ({"page_size": 0}, 1, 1),
        ({"page_size": 500}, 1, 200),
    ],
)
def test_list_clamps_page_and_page_size(
    cj: httpx.Client, params: dict[str, int], page: int, page_size: int
) -> None:
    body = cj.get("/admin/v1/assessment-instructions", params=params).json()

    assert (body["page"], body["page_size"]) == (page, page_size)


def test_list_rejects_non_integer_page(cj: httpx.Client) -> None:
    response = cj.get("/admin/v1/assessment-instructions", params={"page": "two"})

    assert admin_error(response, 400, "VALIDATION_ERROR")["field"] == "page"


# --- student prompts and judge rubrics --------------------------------------------------------


def test_student_prompt_needs_an_instruction(cj: httpx.Client) -> None:
    response = cj.post(
        "/admin/v1/student-prompts",
        json={"assignment_id": "nope", "prompt_text": "Write about phones please."},
    )

    details = admin_error(response, 404, "RESOURCE_NOT_FOUND")
    assert details == {"resource_type": "AssessmentInstruction", "resource_id": "nope"}


def test_student_prompt_upload_and_read_back(
    cj: httpx.Client, content_url: str, db_rows: DbRows
) -> None:
    upsert(cj)
    prompt = "Write an article called Phones in School."

    response = cj.post(
        "/admin/v1/student-prompts", json={"assignment_id": "assign-1", "prompt_text": prompt}
    )

    assert response.status_code == 200
    uploaded = StudentPromptResponse.model_validate(response.json())
    assert set(response.json()) == {
        "assignment_id",
        "student_prompt_storage_id",
        "prompt_text",
        "instructions_text",
        "grade_scale",
        "created_at",
    }
    assert uploaded.prompt_text == prompt
    assert uploaded.grade_scale == LEGACY
    blob = httpx.get(f"{content_url}/v1/content/{uploaded.student_prompt_storage_id}")
    assert blob.text == prompt
    assert blob.headers["content-type"] == "text/plain"
    stored = db_rows("SELECT student_prompt_storage_id FROM assessment_instructions")
    assert stored[0]["student_prompt_storage_id"] == uploaded.student_prompt_storage_id
    fetched = cj.get("/admin/v1/student-prompts/assignment/assign-1")
    assert fetched.status_code == 200
    assert fetched.json() == response.json()
    instruction = cj.get("/admin/v1/assessment-instructions/assignment/assign-1").json()
    assert instruction["student_prompt_storage_id"] == uploaded.student_prompt_storage_id


def test_student_prompt_get_404s(cj: httpx.Client) -> None:
    no_instruction = cj.get("/admin/v1/student-prompts/assignment/assign-1")
    assert admin_error(no_instruction, 404, "RESOURCE_NOT_FOUND")["resource_type"] == (
        "AssessmentInstruction"
    )
    upsert(cj)

    no_prompt = cj.get("/admin/v1/student-prompts/assignment/assign-1")

    details = admin_error(no_prompt, 404, "RESOURCE_NOT_FOUND")
    assert details == {"resource_type": "StudentPrompt", "resource_id": "assign-1"}
    assert no_prompt.json()["error"]["message"] == "No prompt configured for assignment"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"assignment_id": "assign-1", "prompt_text": "short"}, "prompt_text"),
        ({"assignment_id": "", "prompt_text": "long enough text"}, "assignment_id"),
        ({"prompt_text": "long enough text"}, "assignment_id"),
    ],
)
def test_student_prompt_validation(cj: httpx.Client, body: dict[str, str], field: str) -> None:
    response = cj.post("/admin/v1/student-prompts", json=body)

    assert admin_error(response, 400, "VALIDATION_ERROR")["field"] == field


def test_judge_rubric_upload_and_read_back(
    cj: httpx.Client, content_url: str, db_rows: DbRows
) -> None:
    upsert(cj, student_prompt_storage_id="prompt-1")
    rubric = "Prefer the essay with clearer structure."

    response = cj.post(
        "/admin/v1/judge-rubrics", json={"assignment_id": "assign-1", "rubric_text": rubric}
    )

    assert response.status_code == 200
    uploaded = JudgeRubricResponse.model_validate(response.json())
    assert uploaded.rubric_text == rubric
    blob = httpx.get(f"{content_url}/v1/content/{uploaded.judge_rubric_storage_id}")
    assert blob.text == rubric
    stored = db_rows("SELECT * FROM assessment_instructions")[0]
    assert stored["judge_rubric_storage_id"] == uploaded.judge_rubric_storage_id
    assert stored["student_prompt_storage_id"] == "prompt-1"  # untouched
    fetched = cj.get("/admin/v1/judge-rubrics/assignment/assign-1")
    assert fetched.json() == response.json()
    instruction = cj.get("/admin/v1/assessment-instructions/assignment/assign-1").json()
    assert "judge_rubric_storage_id" not in instruction


def test_judge_rubric_404s_and_validation(cj: httpx.Client) -> None:
    missing = cj.post(
        "/admin/v1/judge-rubrics", json={"assignment_id": "nope", "rubric_text": "long enough!"}
    )
    assert admin_error(missing, 404, "RESOURCE_NOT_FOUND")["resource_type"] == (
        "AssessmentInstruction"
    )
    upsert(cj)
    not_set = cj.get("/admin/v1/judge-rubrics/assignment/assign-1")
    details = admin_error(not_set, 404, "RESOURCE_NOT_FOUND")
    assert details == {"resource_type": "JudgeRubric", "resource_id": "assign-1"}
    short = cj.post(
        "/admin/v1/judge-rubrics", json={"assignment_id": "assign-1", "rubric_text": "short"}
    )
    assert admin_error(short, 400, "VALIDATION_ERROR")["field"] == "rubric_text"


def test_content_service_failure_is_a_502(cj: httpx.Client) -> None:
    upsert(cj)
    cj.post("/_test/faults", json={"service": "content", "faults": {"http_5xx_count": 1}})

    response = cj.post(
        "/admin/v1/student-prompts",
        json={"assignment_id": "assign-1", "prompt_text": "Write about phones please."},
    )

    admin_error(response, 502, "CONTENT_SERVICE_ERROR")


# --- anchors (A.5 summary, A.6 registration) --------------------------------------------------


def test_anchor_summary_404_without_instruction(cj: httpx.Client) -> None:
    response = cj.get("/admin/v1/anchors/assignment/assign-1")

    details = admin_error(response, 404, "RESOURCE_NOT_FOUND")
    assert details == {"resource_type": "assessment_instruction", "resource_id": "assign-1"}


def test_anchor_summary_empty(cj: httpx.Client) -> None:
    upsert(cj)

    body = cj.get("/admin/v1/anchors/assignment/assign-1").json()

    assert body == {
        "assignment_id": "assign-1",
        "grade_scale": LEGACY,
        "anchor_count": 0,
        "anchors": [],
        "anchor_count_total": 0,
        "anchor_count_by_scale": {},
    }


def test_register_anchor_and_read_back(
    cj: httpx.Client, anon: httpx.Client, content_url: str
) -> None:
    upsert(cj)

    response = register(anon, grade="C+", anchor_label="essay_007_C+")

    assert response.status_code == 201
    assert set(response.json()) == {"anchor_id", "storage_id", "grade_scale", "status"}
    registered = RegisterAnchorResponse.model_validate(response.json())
    assert registered.grade_scale == LEGACY
    assert registered.status == "registered"
    assert re.fullmatch(r"[0-9a-f]{32}", registered.storage_id)
    blob = httpx.get(f"{content_url}/v1/content/{registered.storage_id}")
    assert blob.text == ESSAY
    assert blob.headers["content-type"] == "text/plain"
    summary = AnchorSummaryResponse.model_validate(
        cj.get("/admin/v1/anchors/assignment/assign-1").json()
    )
    assert summary.anchor_count == 1
    anchor = summary.anchors[0]
    assert (anchor.id, anchor.anchor_label, anchor.grade, anchor.grade_scale) == (
        registered.anchor_id,
        "essay_007_C+",
        "C+",
        LEGACY,
    )
    assert anchor.text_storage_id == registered.storage_id
    assert anchor.assignment_id == "assign-1"


def test_register_same_label_twice_updates_in_place(
    cj: httpx.Client, anon: httpx.Client, db_rows: DbRows
) -> None:
    upsert(cj)
    first = register(anon, anchor_label="anchor-x", grade="B")
    second = register(anon, anchor_label="anchor-x", grade="A")

    assert (first.status_code, second.status_code) == (201, 201)
    assert second.json()["anchor_id"] == first.json()["anchor_id"]
    assert second.json()["storage_id"] != first.json()["storage_id"]  # a fresh blob each time
    summary = cj.get("/admin/v1/anchors/assignment/assign-1").json()
    assert summary["anchor_count"] == 1
    assert summary["anchors"][0]["grade"] == "A"
    assert summary["anchors"][0]["text_storage_id"] == second.json()["storage_id"]
    assert len(db_rows("SELECT id FROM anchor_essay_references")) == 1


def test_register_without_label_uses_the_grade(cj: httpx.Client, anon: httpx.Client) -> None:
    upsert(cj)
    first = register(anon, grade="B").json()
    second = register(anon, grade="B").json()

    summary = cj.get("/admin/v1/anchors/assignment/assign-1").json()
    assert first["anchor_id"] == second["anchor_id"]
    assert [anchor["anchor_label"] for anchor in summary["anchors"]] == ["B"]


def test_below_lowest_grade_is_accepted_for_legacy(cj: httpx.Client, anon: httpx.Client) -> None:
    upsert(cj)

    assert register(anon, grade="F").status_code == 201


def test_summary_counts_the_instruction_scale_and_totals_by_scale(
    cj: httpx.Client, anon: httpx.Client, db_rows: DbRows
) -> None:
    upsert(cj)
    register(anon, anchor_label="one", grade="B")
    register(anon, anchor_label="two", grade="A")
    db_rows(
        "INSERT INTO anchor_essay_references "
        "(assignment_id, anchor_label, grade, grade_scale, text_storage_id) "
        "VALUES ('assign-1', 'old', '5', $1, 'blob')",
        NATIONAL,
    )

    summary = AnchorSummaryResponse.model_validate(
        cj.get("/admin/v1/anchors/assignment/assign-1").json()
    )

    assert summary.anchor_count == 2
    assert {anchor.anchor_label for anchor in summary.anchors} == {"one", "two"}
    assert summary.anchor_count_total == 3
    assert summary.anchor_count_by_scale == {LEGACY: 2, NATIONAL: 1}


def _flat_error(response: httpx.Response, status: int) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"}
    assert isinstance(body["error"], str)
    return body["error"]


@pytest.mark.parametrize("raw", [b"not json", b"[1, 2]", b'"text"', b""])
def test_register_step1_invalid_json(anon: httpx.Client, raw: bytes) -> None:
    response = anon.post(
        "/api/v1/anchors/register", content=raw, headers={"Content-Type": "application/json"}
    )

    assert _flat_error(response, 400) == "Invalid JSON body"


@pytest.mark.parametrize("missing", ["assignment_id", "grade", "essay_text"])
def test_register_step2_missing_fields_before_anything_else(
    anon: httpx.Client, missing: str
) -> None:
    body = {"assignment_id": "unknown", "grade": "zz", "essay_text": "short"}
    del body[missing]

    response = anon.post("/api/v1/anchors/register", json=body)

    assert _flat_error(response, 400) == "Missing required fields"


def test_register_step3_model_errors_before_assignment_lookup(anon: httpx.Client) -> None:
    response = register(anon, assignment_id="unknown", essay_text="too short")

    message = _flat_error(response, 400)
    assert "Essay text too short (min 100 chars)" in message


def test_register_step3_joins_several_messages(anon: httpx.Client) -> None:
    response = register(anon, assignment_id="unknown", grade="   ", essay_text="too short")

    message = _flat_error(response, 400)
    assert "; " in message
    assert "Essay text too short (min 100 chars)" in message


def test_register_step4_unknown_assignment_before_grade_check(anon: httpx.Client) -> None:
    response = register(anon, assignment_id="unknown", grade="nonsense")

    assert _flat_error(response, 400) == "Unknown assignment_id 'unknown'"


def test_register_step5_unknown_scale(anon: httpx.Client, db_rows: DbRows) -> None:
    db_rows(
        "INSERT INTO assessment_instructions (assignment_id, instructions_text, grade_scale) "
        "VALUES ('odd', 'instructions here', 'retired_scale')"
    )

    response = register(anon, assignment_id="odd")

    message = _flat_error(response, 400)
    assert message.startswith("Unknown grade scale 'retired_scale'. Available scales: ")


@pytest.mark.parametrize("grade", ["e+", "G", "5"])
def test_register_step6_invalid_grade(cj: httpx.Client, anon: httpx.Client, grade: str) -> None:
    upsert(cj)

    response = register(anon, grade=grade)

    assert _flat_error(response, 400) == f"Invalid grade '{grade}' for scale '{LEGACY}'"


def test_register_step8_content_failure_is_a_flat_500(
    cj: httpx.Client, anon: httpx.Client, db_rows: DbRows
) -> None:
    upsert(cj)
    cj.post("/_test/faults", json={"service": "content", "faults": {"http_5xx_count": 1}})

    response = register(anon)

    assert _flat_error(response, 500) == "Internal server error"
    assert db_rows("SELECT id FROM anchor_essay_references") == []


def test_register_uses_the_instruction_scale_not_the_request(
    cj: httpx.Client, anon: httpx.Client
) -> None:
    upsert(cj, grade_scale=NATIONAL)

    response = register(anon, grade="7", grade_scale=LEGACY)

    assert response.status_code == 201
    assert response.json()["grade_scale"] == NATIONAL


# --- health -----------------------------------------------------------------------------------


def test_health_routes(anon: httpx.Client) -> None:
    healthz = anon.get("/healthz")
    live = anon.get("/healthz/live")
    ready = anon.get("/healthz/ready")

    assert healthz.status_code == 200
    assert healthz.json()["status"] == "ok"
    assert healthz.json()["service"] == "cj_assessment_service"
    assert live.status_code == 200
    assert live.json() == {"status": "alive", "service": "cj_assessment_service"}
    assert ready.status_code == 200
    assert ready.json()["status"] == "ready"
    assert set(ready.json()) == {"status", "service", "checks", "message"}
    assert set(ready.json()["checks"]) == {"database", "kafka", "batch_monitoring"}
    assert anon.get("/healthz/database").status_code == 200
    assert anon.get("/healthz/database/summary").status_code == 200
    assert "cj_api_database_up 1" in anon.get("/metrics").text


# --- faults -----------------------------------------------------------------------------------


def test_fault_count_two_gives_two_generic_500s_then_200(cj: httpx.Client) -> None:
    set_response = cj.post(
        "/_test/faults",
        json={"service": "cj-api", "faults": {"http_5xx_count": 2, "http_path_prefix": "/admin"}},
    )
    assert set_response.status_code == 200

    responses = [cj.get("/admin/v1/assessment-instructions") for _ in range(3)]

    assert [r.status_code for r in responses] == [500, 500, 200]
    assert GenericServerErrorBody.model_validate(responses[0].json()).service == (
        "cj_assessment_service"
    )
    assert responses[0].json() == {
        "error": "Internal server error",
        "message": "An unexpected error occurred",
        "service": "cj_assessment_service",
    }


def test_fault_on_anchor_registration_uses_its_flat_body(
    cj: httpx.Client, anon: httpx.Client
) -> None:
    upsert(cj)
    cj.post(
        "/_test/faults",
        json={"service": "cj-api", "faults": {"http_5xx_count": 1, "http_path_prefix": "/api/"}},
    )

    assert cj.get("/admin/v1/assessment-instructions").status_code == 200  # prefix not matched
    assert _flat_error(register(anon), 500) == "Internal server error"
    assert register(anon).status_code == 201


def test_faults_spare_health_and_test_routes(cj: httpx.Client) -> None:
    cj.post("/_test/faults", json={"service": "cj-api", "faults": {"http_5xx_rate": 1.0}})

    assert cj.get("/healthz").status_code == 200
    assert cj.get("/healthz/ready").status_code == 200
    assert cj.get("/_test/faults").status_code == 200
    assert cj.get("/admin/v1/assessment-instructions").status_code == 500


def test_fault_latency_is_applied(cj: httpx.Client) -> None:
    cj.post("/_test/faults", json={"service": "cj-api", "faults": {"http_latency_ms": 250}})

    response = cj.get("/admin/v1/assessment-instructions")

    assert response.status_code == 200
    assert response.headers["x-eng5-injected-latency-ms"] == "250"


def test_faults_read_back_and_delete(cj: httpx.Client) -> None:
    cj.post("/_test/faults", json={"service": "cj-worker", "faults": {"judge_error_rate": 0.5}})

    current = cj.get("/_test/faults").json()
    assert current["cj-worker"]["judge_error_rate"] == 0.5
    cleared = cj.delete("/_test/faults")
    assert cleared.status_code == 200
    assert cj.get("/_test/faults").json()["cj-worker"]["judge_error_rate"] == 0.0


@pytest.mark.parametrize(
    "body",
    [
        {"service": "llm", "faults": {}},
        {"faults": {}},
        {"service": "cj-api", "faults": {"unknown_knob": 1}},
        {"service": "cj-api", "faults": {"http_5xx_count": -1}},
    ],
)
def test_invalid_fault_requests_are_400(cj: httpx.Client, body: dict[str, Any]) -> None:
    assert cj.post("/_test/faults", json=body).status_code == 400


# --- HuleEdu-faithful HTTP-date mode ----------------------------------------------------------


@pytest.fixture(scope="module")
def http_date_cj_url(
    pg_dsn: str, content_url: str, jwt_secret: str, serve: Callable[[Any], str]
) -> str:
    return serve(create_cj_app(pg_dsn, content_url, jwt_secret, http_date_timestamps=True))


def test_http_date_mode_renders_created_at_like_huleedu(
    http_date_cj_url: str, clean_db: str, admin_headers: dict[str, str], db_rows: DbRows
) -> None:
    with httpx.Client(base_url=http_date_cj_url, headers=admin_headers, timeout=15.0) as client:
        created = upsert(client).json()
        register(client, anchor_label="a1")
        prompt = client.post(
            "/admin/v1/student-prompts",
            json={"assignment_id": "assign-1", "prompt_text": "Write about phones please."},
        ).json()
        listing = client.get("/admin/v1/assessment-instructions").json()
        summary = client.get("/admin/v1/anchors/assignment/assign-1").json()

    stamps = [
        created["created_at"],
        prompt["created_at"],
        listing["items"][0]["created_at"],
        summary["anchors"][0]["created_at"],
    ]
    assert all(HTTP_DATE.match(stamp) for stamp in stamps), stamps
    stored = db_rows("SELECT created_at FROM assessment_instructions")[0]["created_at"]
    parsed = AssessmentInstructionResponse.model_validate(created).created_at
    assert parsed == stored.replace(microsecond=0)


# --- the command line (python -m pytest_eng5.reference) ---------------------------------------


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _wait_healthy(url: str, process: subprocess.Popen[bytes], timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"service exited early with code {process.returncode}")
        try:
            if httpx.get(f"{url}/healthz", timeout=1.0).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.05)  # polling the real /healthz, bounded by the deadline
    raise AssertionError(f"{url}/healthz not healthy within {timeout_s}s")


def _stop(process: subprocess.Popen[bytes]) -> str:
    process.terminate()
    try:
        output, _ = process.communicate(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        output, _ = process.communicate(timeout=15)
    return output.decode("utf-8", "replace")


def test_command_line_serves_both_services_without_printing_the_secret(
    pg_dsn: str, clean_db: str, mint: Callable[..., str]
) -> None:
    secret = "cli-secret-" + uuid.uuid4().hex
    content_port, cj_port = _free_port(), _free_port()
    base = [sys.executable, "-m", "pytest_eng5.reference"]
    content = subprocess.Popen(
        [*base, "content", "--port", str(content_port), "--dsn", pg_dsn],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    cj_process: subprocess.Popen[bytes] | None = None
    try:
        content_url = f"http://127.0.0.1:{content_port}"
        _wait_healthy(content_url, content)
        cj_process = subprocess.Popen(
            [
                *base,
                "cj-api",
                "--port",
                str(cj_port),
                "--dsn",
                pg_dsn,
                "--content-url",
                f"{content_url}/v1/content",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env={**os.environ, "JWT_SECRET_KEY": secret},
        )
        cj_url = f"http://127.0.0.1:{cj_port}"
        _wait_healthy(cj_url, cj_process)
        headers = {"Authorization": f"Bearer {mint(secret=secret)}"}
        created = httpx.post(
            f"{cj_url}/admin/v1/assessment-instructions",
            json={"assignment_id": "cli", "instructions_text": INSTRUCTIONS, "grade_scale": LEGACY},
            headers=headers,
            timeout=15.0,
        )
        prompt = httpx.post(
            f"{cj_url}/admin/v1/student-prompts",
            json={"assignment_id": "cli", "prompt_text": "Write about phones please."},
            headers=headers,
            timeout=15.0,
        )
        assert created.status_code == 200
        assert prompt.status_code == 200
    finally:
        cj_output = _stop(cj_process) if cj_process is not None else ""
        _stop(content)
    assert "POST /admin/v1/assessment-instructions" in cj_output  # access log on stdout
    assert secret not in cj_output


def test_command_line_cj_api_without_secret_exits_with_a_hint(pg_dsn: str) -> None:
    env = {key: value for key, value in os.environ.items() if key != "JWT_SECRET_KEY"}
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest_eng5.reference",
            "cj-api",
            "--port",
            str(_free_port()),
            "--dsn",
            pg_dsn,
            "--content-url",
            "http://127.0.0.1:9/v1/content",
        ],
        capture_output=True,
        env=env,
        timeout=60,
        check=False,
    )

    assert result.returncode == 2
    assert b"JWT_SECRET_KEY" in result.stderr
