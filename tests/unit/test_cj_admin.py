"""CJ admin client error mapping, preflights (R3/R4) and register-anchors, against respx mocks."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
import pytest_asyncio
import respx

from pytest_eng5.errors import (
    AnchorRegistrationError,
    AnchorsMissingError,
    ConfigurationError,
    GradeScaleMismatchError,
    InventoryError,
    PreflightAuthError,
    PreflightError,
    PreflightNotFoundError,
    ServiceUnavailableError,
)
from pytest_eng5.runner.anchor_registration import AnchorFile, register_anchors
from pytest_eng5.runner.auth import AdminToken, decode_claims_unverified, mint_dev_token
from pytest_eng5.runner.cj_admin import CJAdminClient
from pytest_eng5.runner.http_retry import RetryPolicy
from pytest_eng5.runner.preflight import anchor_preflight, assignment_preflight

BASE = "http://127.0.0.1:9095"
ASSIGNMENT = "00000000-0000-4000-8000-000000000001"
INSTRUCTION_URL = f"{BASE}/admin/v1/assessment-instructions/assignment/{ASSIGNMENT}"
ANCHORS_URL = f"{BASE}/admin/v1/anchors/assignment/{ASSIGNMENT}"
LIST_URL = f"{BASE}/admin/v1/assessment-instructions"
REGISTER_URL = f"{BASE}/api/v1/anchors/register"
SECRET = "cj-admin-unit-test-secret-" + "x" * 40
ENV = {"JWT_SECRET_KEY": SECRET}
GENERIC_500 = {
    "error": "Internal server error",
    "message": "An unexpected error occurred",
    "service": "cj_assessment_service",
}
HTTP_DATE = "Wed, 25 Nov 2026 02:38:26 GMT"
ATTEMPTS = 3


def _instruction(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": 7,
        "assignment_id": ASSIGNMENT,
        "course_id": None,
        "instructions_text": "Compare the two essays carefully.",
        "grade_scale": "eng5_np_legacy_9_step",
        "context_origin": "research_experiment",
        "student_prompt_storage_id": "a" * 32,
        "created_at": HTTP_DATE,
    }
    body.update(overrides)
    return body


def _anchor_item(index: int, label: str, storage_id: str, grade: str = "B") -> dict[str, Any]:
    return {
        "id": index,
        "assignment_id": ASSIGNMENT,
        "anchor_label": label,
        "grade": grade,
        "grade_scale": "eng5_np_legacy_9_step",
        "text_storage_id": storage_id,
        "created_at": HTTP_DATE,
    }


def _summary(items: list[dict[str, Any]], *, other_scales: int = 0) -> dict[str, Any]:
    by_scale = {"eng5_np_legacy_9_step": len(items)}
    if other_scales:
        by_scale["swedish_8_anchor"] = other_scales
    return {
        "assignment_id": ASSIGNMENT,
        "grade_scale": "eng5_np_legacy_9_step",
        "anchor_count": len(items),
        "anchors": items,
        "anchor_count_total": len(items) + other_scales,
        "anchor_count_by_scale": by_scale,
    }


def _listing() -> dict[str, Any]:
    return {"items": [_instruction()], "total": 1, "page": 1, "page_size": 1}


def _admin_error(status_code: str, message: str, details: dict[str, Any]) -> dict[str, Any]:
    return {
        "error": {
            "code": status_code,
            "message": message,
            "correlation_id": "7f4e9a43-0f0e-4a70-9d59-4c1e16a7c3b1",
            "service": "cj_assessment_service",
            "timestamp": HTTP_DATE,
            "details": details,
        }
    }


def _token(env: dict[str, str] | None = None, **claims: Any) -> AdminToken:
    value = jwt.encode(claims, SECRET, algorithm="HS256") if claims else mint_dev_token(env or ENV)
    return AdminToken(source="dev-minted", value=value, claims=decode_claims_unverified(value))


def _client(token: AdminToken | None = None, env: dict[str, str] | None = None) -> CJAdminClient:
    return CJAdminClient(
        BASE + "/",
        token=token if token is not None else _token(),
        env=env if env is not None else ENV,
        retry=RetryPolicy(attempts=ATTEMPTS, base_delay=0.0),
        timeout=2.0,
    )


@pytest_asyncio.fixture
async def client() -> AsyncIterator[CJAdminClient]:
    async with _client() as cj:
        yield cj


@pytest.fixture
def mock() -> Iterator[respx.MockRouter]:
    with respx.mock(assert_all_called=False) as router:
        yield router


# --- error mapping -----------------------------------------------------------------------


@pytest.mark.asyncio
@pytest.mark.parametrize("status", [401, 403])
async def test_auth_statuses_map_to_preflight_auth_error(
    client: CJAdminClient, mock: respx.MockRouter, status: int
) -> None:
    mock.get(INSTRUCTION_URL).respond(
        status, json=_admin_error("AUTHENTICATION_ERROR", "bad token", {"reason": "token_expired"})
    )
    with pytest.raises(PreflightAuthError) as caught:
        await client.get_assignment(ASSIGNMENT)
    error = caught.value
    assert INSTRUCTION_URL in error.message
    assert f"HTTP {status}" in error.message
    assert "token_expired" in error.message
    assert error.url == INSTRUCTION_URL
    assert "verify-auth" in error.next_step
    assert "HULEEDU_SERVICE_ACCOUNT_TOKEN" in error.next_step


@pytest.mark.asyncio
async def test_typed_404_maps_to_not_found(client: CJAdminClient, mock: respx.MockRouter) -> None:
    route = mock.get(INSTRUCTION_URL).respond(
        404,
        json=_admin_error(
            "RESOURCE_NOT_FOUND",
            f"assessment_instructions with ID '{ASSIGNMENT}' not found",
            {"resource_type": "assessment_instructions", "resource_id": ASSIGNMENT},
        ),
    )
    with pytest.raises(PreflightNotFoundError) as caught:
        await client.get_assignment(ASSIGNMENT)
    assert route.call_count == 1  # a 404 is the final word, no retries
    assert INSTRUCTION_URL in caught.value.message
    assert "cj-admin instructions upsert" in caught.value.next_step
    assert "ENVIRONMENT=production" not in caught.value.message


@pytest.mark.asyncio
async def test_untyped_404_hints_that_admin_routes_may_be_disabled(
    client: CJAdminClient, mock: respx.MockRouter
) -> None:
    mock.get(ANCHORS_URL).respond(404, text="<h1>Not Found</h1>")
    with pytest.raises(PreflightNotFoundError) as caught:
        await client.get_anchor_summary(ASSIGNMENT)
    assert "ENVIRONMENT=production" in caught.value.message


@pytest.mark.asyncio
async def test_typed_500_retried_then_service_unavailable(
    client: CJAdminClient, mock: respx.MockRouter
) -> None:
    route = mock.get(INSTRUCTION_URL).respond(
        500, json=_admin_error("PROCESSING_ERROR", "database exploded", {})
    )
    with pytest.raises(ServiceUnavailableError) as caught:
        await client.get_assignment(ASSIGNMENT)
    assert route.call_count == ATTEMPTS
    assert "database exploded" in caught.value.message
    assert INSTRUCTION_URL in caught.value.message
    assert "one of: auth" not in caught.value.message


@pytest.mark.asyncio
async def test_generic_500_with_good_token_and_working_listing_means_not_found(
    client: CJAdminClient, mock: respx.MockRouter
) -> None:
    mock.get(INSTRUCTION_URL).respond(500, json=GENERIC_500)
    listing = mock.get(LIST_URL).respond(200, json=_listing())
    with pytest.raises(PreflightNotFoundError) as caught:
        await client.get_assignment(ASSIGNMENT)
    message = caught.value.message
    assert "one of: auth, not found, server fault" in message
    assert "listing instructions with the same token succeeded" in message
    assert listing.call_count == 1
    assert listing.calls.last.request.url.params["page_size"] == "1"
    assert "cj-admin instructions upsert" in caught.value.next_step


@pytest.mark.asyncio
async def test_generic_500_with_expired_token_is_explained_as_auth(mock: respx.MockRouter) -> None:
    now = int(time.time())
    expired = _token(
        sub="x",
        iat=now - 7200,
        exp=now - 3600,
        iss="huleedu-identity-service",
        aud="huleedu-platform",
        roles=["admin"],
    )
    mock.get(ANCHORS_URL).respond(500, json=GENERIC_500)
    listing = mock.get(LIST_URL).respond(200, json=_listing())
    async with _client(expired) as cj:
        with pytest.raises(PreflightAuthError) as caught:
            await cj.get_anchor_summary(ASSIGNMENT)
    assert "one of: auth, not found, server fault" in caught.value.message
    assert "expired" in caught.value.message
    assert listing.call_count == 0  # the claims already told them apart
    assert expired.value not in str(caught.value)


@pytest.mark.asyncio
async def test_generic_500_with_foreign_signature_is_auth(mock: respx.MockRouter) -> None:
    other = AdminToken(
        source="HULEEDU_ADMIN_TOKEN",
        value=mint_dev_token({"JWT_SECRET_KEY": "some-other-secret-" + "y" * 40}),
    )
    other = AdminToken(
        source=other.source, value=other.value, claims=decode_claims_unverified(other.value)
    )
    mock.get(INSTRUCTION_URL).respond(500, json=GENERIC_500)
    async with _client(other) as cj:
        with pytest.raises(PreflightAuthError) as caught:
            await cj.get_assignment(ASSIGNMENT)
    assert "InvalidSignature" in caught.value.message


@pytest.mark.asyncio
async def test_generic_500_everywhere_is_auth_or_server_fault(mock: respx.MockRouter) -> None:
    mock.get(INSTRUCTION_URL).respond(500, json=GENERIC_500)
    mock.get(LIST_URL).respond(500, json=GENERIC_500)
    async with _client(env={}) as cj:  # no secret here: the signature cannot be checked
        with pytest.raises(ServiceUnavailableError) as caught:
            await cj.get_assignment(ASSIGNMENT)
    message = caught.value.message
    assert "one of: auth, not found, server fault" in message
    assert "listing instructions with the same token failed too" in message
    assert "verify-auth" in caught.value.next_step


@pytest.mark.asyncio
async def test_5xx_then_recovery_within_retries(
    client: CJAdminClient, mock: respx.MockRouter
) -> None:
    route = mock.get(INSTRUCTION_URL).mock(
        side_effect=[
            httpx.Response(502, text="bad gateway"),
            httpx.Response(503, text="unavailable"),
            httpx.Response(200, json=_instruction()),
        ]
    )
    row = await client.get_assignment(ASSIGNMENT)
    assert route.call_count == 3
    assert row.grade_scale == "eng5_np_legacy_9_step"
    assert row.created_at.year == 2026  # the HTTP-date parsed


@pytest.mark.asyncio
async def test_exhausted_retries_raise_service_unavailable(
    client: CJAdminClient, mock: respx.MockRouter
) -> None:
    route = mock.get(INSTRUCTION_URL).respond(503, text="still starting")
    with pytest.raises(ServiceUnavailableError) as caught:
        await client.get_assignment(ASSIGNMENT)
    assert route.call_count == ATTEMPTS
    assert "HTTP 503" in caught.value.message
    assert "still starting" in caught.value.message


@pytest.mark.asyncio
async def test_connect_error_names_the_url(client: CJAdminClient, mock: respx.MockRouter) -> None:
    route = mock.get(INSTRUCTION_URL).mock(side_effect=httpx.ConnectError("connection refused"))
    with pytest.raises(ServiceUnavailableError) as caught:
        await client.get_assignment(ASSIGNMENT)
    assert route.call_count == ATTEMPTS
    assert INSTRUCTION_URL in caught.value.message
    assert "ConnectError" in caught.value.message
    assert caught.value.url == INSTRUCTION_URL


@pytest.mark.asyncio
async def test_timeout_names_the_url(client: CJAdminClient, mock: respx.MockRouter) -> None:
    mock.get(ANCHORS_URL).mock(side_effect=httpx.ReadTimeout("read timed out"))
    with pytest.raises(ServiceUnavailableError) as caught:
        await client.get_anchor_summary(ASSIGNMENT)
    assert "timed out" in caught.value.message
    assert ANCHORS_URL in caught.value.message


@pytest.mark.asyncio
async def test_invalid_json_quotes_first_200_chars(
    client: CJAdminClient, mock: respx.MockRouter
) -> None:
    body = "<html>" + "a" * 194 + "TAIL-BEYOND-200"
    mock.get(INSTRUCTION_URL).respond(200, text=body)
    with pytest.raises(PreflightError) as caught:
        await client.get_assignment(ASSIGNMENT)
    assert type(caught.value) is PreflightError
    assert body[:200] in caught.value.message
    assert "TAIL-BEYOND-200" not in caught.value.message
    assert INSTRUCTION_URL in caught.value.message


@pytest.mark.asyncio
async def test_schema_mismatch_is_a_preflight_error(
    client: CJAdminClient, mock: respx.MockRouter
) -> None:
    mock.get(ANCHORS_URL).respond(200, json={"assignment_id": ASSIGNMENT})
    with pytest.raises(PreflightError) as caught:
        await client.get_anchor_summary(ASSIGNMENT)
    assert "AnchorSummaryResponse" in caught.value.message
    assert ANCHORS_URL in caught.value.message


@pytest.mark.asyncio
async def test_bearer_header_sent_and_base_url_slash_stripped(
    client: CJAdminClient, mock: respx.MockRouter
) -> None:
    route = mock.get(INSTRUCTION_URL).respond(200, json=_instruction())
    await client.get_assignment(ASSIGNMENT)
    assert client.base_url == BASE
    assert client.token is not None
    sent = route.calls.last.request.headers["Authorization"]
    assert sent == f"Bearer {client.token.value}"


def test_empty_base_url_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError) as caught:
        CJAdminClient("  ", token=None)
    assert "CJ_SERVICE_URL" in caught.value.next_step


@pytest.mark.asyncio
async def test_admin_call_without_token_is_configuration_error(mock: respx.MockRouter) -> None:
    route = mock.get(INSTRUCTION_URL).respond(200, json=_instruction())
    async with CJAdminClient(BASE, token=None) as cj:
        with pytest.raises(ConfigurationError):
            await cj.get_assignment(ASSIGNMENT)
    assert route.call_count == 0


# --- verify-auth -------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_verify_token_confirms_against_admin_api(
    client: CJAdminClient, mock: respx.MockRouter
) -> None:
    mock.get(LIST_URL).respond(200, json=_listing())
    result = await client.verify_token()
    assert result["confirmed"] is True
    assert result["claims"]["subject"] == "cj-admin-dev-cli"
    assert result["claims"]["has_admin_role"] is True
    assert result["claim_problems"] == []
    assert result["signature"]["verified"] is True
    assert client.token is not None
    assert client.token.value not in json.dumps(result)


@pytest.mark.asyncio
async def test_verify_token_reports_rejection_without_raising(
    client: CJAdminClient, mock: respx.MockRouter
) -> None:
    mock.get(LIST_URL).respond(401, json=_admin_error("AUTHENTICATION_ERROR", "no", {}))
    result = await client.verify_token()
    assert result["confirmed"] is False
    assert "HTTP 401" in result["detail"]


@pytest.mark.asyncio
async def test_verify_token_with_opaque_token_does_not_crash(mock: respx.MockRouter) -> None:
    mock.get(LIST_URL).respond(200, json=_listing())
    opaque = AdminToken(source="HULEEDU_ADMIN_TOKEN", value="opaque-service-token", claims=None)
    async with _client(opaque) as cj:
        result = await cj.verify_token()
    assert result["claims"]["decodable"] is False
    assert result["confirmed"] is True


# --- assignment preflight (R3) -----------------------------------------------------------


@pytest.mark.asyncio
async def test_preflight_returns_assignment_info(
    client: CJAdminClient, mock: respx.MockRouter
) -> None:
    mock.get(INSTRUCTION_URL).respond(200, json=_instruction())
    info = await assignment_preflight(
        client,
        ASSIGNMENT,
        expected_grade_scale="eng5_np_legacy_9_step",
        mode="execute",
        rubric_override=False,
    )
    assert info.grade_scale == "eng5_np_legacy_9_step"
    assert info.context_origin == "research_experiment"
    assert info.student_prompt_present is True
    assert info.instructions_id == 7


@pytest.mark.asyncio
async def test_grade_scale_mismatch_quotes_both_values(
    client: CJAdminClient, mock: respx.MockRouter
) -> None:
    mock.get(INSTRUCTION_URL).respond(200, json=_instruction())
    with pytest.raises(GradeScaleMismatchError) as caught:
        await assignment_preflight(
            client,
            ASSIGNMENT,
            expected_grade_scale="swedish_8_anchor",
            mode="plan",
            rubric_override=False,
        )
    assert "'swedish_8_anchor'" in caught.value.message
    assert "'eng5_np_legacy_9_step'" in caught.value.message


@pytest.mark.asyncio
async def test_blank_expected_scale_is_rejected(
    client: CJAdminClient, mock: respx.MockRouter
) -> None:
    mock.get(INSTRUCTION_URL).respond(200, json=_instruction())
    with pytest.raises(ConfigurationError):
        await assignment_preflight(
            client, ASSIGNMENT, expected_grade_scale=" ", mode="plan", rubric_override=False
        )


@pytest.mark.asyncio
async def test_execute_requires_student_prompt(
    client: CJAdminClient, mock: respx.MockRouter
) -> None:
    mock.get(INSTRUCTION_URL).respond(200, json=_instruction(student_prompt_storage_id=None))
    with pytest.raises(PreflightError) as caught:
        await assignment_preflight(
            client, ASSIGNMENT, expected_grade_scale=None, mode="execute", rubric_override=False
        )
    assert "cj-admin prompts upload" in caught.value.next_step
    info = await assignment_preflight(
        client, ASSIGNMENT, expected_grade_scale=None, mode="dry-run", rubric_override=False
    )
    assert info.student_prompt_present is False


@pytest.mark.asyncio
async def test_execute_rubric_override_on_canonical_is_refused(
    client: CJAdminClient, mock: respx.MockRouter
) -> None:
    mock.get(INSTRUCTION_URL).respond(200, json=_instruction(context_origin="canonical_national"))
    with pytest.raises(ConfigurationError) as caught:
        await assignment_preflight(
            client, ASSIGNMENT, expected_grade_scale=None, mode="execute", rubric_override=True
        )
    assert "canonical_national" in caught.value.message
    info = await assignment_preflight(
        client, ASSIGNMENT, expected_grade_scale=None, mode="execute", rubric_override=False
    )
    assert info.context_origin == "canonical_national"


# --- anchor preflight (R4) ---------------------------------------------------------------


@pytest.mark.asyncio
async def test_zero_anchors_is_anchors_missing(
    client: CJAdminClient, mock: respx.MockRouter
) -> None:
    mock.get(ANCHORS_URL).respond(200, json=_summary([], other_scales=4))
    with pytest.raises(AnchorsMissingError) as caught:
        await anchor_preflight(client, ASSIGNMENT)
    assert "register anchors first" in caught.value.next_step
    assert "4 anchor(s) exist for other scales" in caught.value.message
    assert caught.value.url == ANCHORS_URL


@pytest.mark.asyncio
async def test_anchor_preflight_reports_labels(
    client: CJAdminClient, mock: respx.MockRouter
) -> None:
    items = [_anchor_item(1, "anchor_A", "1" * 32, "A"), _anchor_item(2, "anchor_B", "2" * 32)]
    mock.get(ANCHORS_URL).respond(200, json=_summary(items, other_scales=1))
    info = await anchor_preflight(client, ASSIGNMENT)
    assert info.anchor_count == 2
    assert info.total == 3
    assert info.labels == ("anchor_A", "anchor_B")
    assert info.by_scale["swedish_8_anchor"] == 1


# --- register-anchors --------------------------------------------------------------------

TEXT = "This anchor essay is long enough for CJ's registration rule. " * 3
GRADES = ["A", "B", "C+", "D-", "F+"]


def _anchors(grades: list[str] | None = None) -> list[AnchorFile]:
    return [
        AnchorFile(
            path=Path(f"anchors/anchor_{i}_{g}.docx"), label=f"anchor_{i}_{g}", grade=g, text=TEXT
        )
        for i, g in enumerate(grades or GRADES)
    ]


def _registered(counter: list[int]) -> Callable[[httpx.Request], httpx.Response]:
    def respond(request: httpx.Request) -> httpx.Response:
        counter.append(1)
        n = len(counter)
        body = json.loads(request.content)
        assert body["assignment_id"] == ASSIGNMENT
        return httpx.Response(
            201,
            json={
                "anchor_id": 100 + n,
                "storage_id": f"{n:032x}",
                "grade_scale": "eng5_np_legacy_9_step",
                "status": "registered",
            },
        )

    return respond


@pytest.mark.asyncio
async def test_partial_failure_reports_registered_and_pending(
    client: CJAdminClient, mock: respx.MockRouter
) -> None:
    mock.get(INSTRUCTION_URL).respond(200, json=_instruction())
    mock.get(ANCHORS_URL).respond(200, json=_summary([]))
    ok = {"anchor_id": 1, "storage_id": "f" * 32, "grade_scale": "eng5_np_legacy_9_step"}
    register = mock.post(REGISTER_URL).mock(
        side_effect=[
            httpx.Response(201, json=ok),
            httpx.Response(201, json=ok),
            httpx.Response(400, json={"error": "Invalid grade 'C+' for scale 'x'"}),
            httpx.Response(201, json=ok),
            httpx.Response(201, json=ok),
        ]
    )
    anchors = _anchors()
    with pytest.raises(AnchorRegistrationError) as caught:
        await register_anchors(client, ASSIGNMENT, anchors)
    error = caught.value
    assert register.call_count == 3  # sequential: nothing after the failure was sent
    assert error.registered == tuple(a.label for a in anchors[:2])
    assert error.pending == tuple(a.label for a in anchors[2:])
    assert "anchor_2_C+.docx" in error.message
    assert "Invalid grade" in error.message
    assert REGISTER_URL in error.message


@pytest.mark.asyncio
async def test_invalid_grade_caught_before_any_request(
    client: CJAdminClient, mock: respx.MockRouter
) -> None:
    mock.get(INSTRUCTION_URL).respond(200, json=_instruction())
    summary = mock.get(ANCHORS_URL).respond(200, json=_summary([]))
    register = mock.post(REGISTER_URL).respond(201, json={})
    anchors = _anchors(["A", "E", "B"])  # "E" is not on the legacy 9-step scale
    with pytest.raises(InventoryError) as caught:
        await register_anchors(client, ASSIGNMENT, anchors)
    assert register.call_count == 0
    assert summary.call_count == 0
    message = caught.value.message
    assert "anchor_1_E.docx" in message
    assert "F+, E-, E+, D-, D+, C-, C+, B, A" in message


@pytest.mark.asyncio
async def test_duplicate_labels_and_short_text_caught_before_sending(
    client: CJAdminClient, mock: respx.MockRouter
) -> None:
    mock.get(INSTRUCTION_URL).respond(200, json=_instruction())
    register = mock.post(REGISTER_URL).respond(201, json={})
    anchors = [
        AnchorFile(Path("a/x_A.txt"), "same", "A", TEXT),
        AnchorFile(Path("b/y_B.txt"), "same", "B", "too short"),
    ]
    with pytest.raises(InventoryError) as caught:
        await register_anchors(client, ASSIGNMENT, anchors)
    assert register.call_count == 0
    assert "also used by x_A.txt" in caught.value.message
    assert "y_B.txt: text has 9 characters" in caught.value.message


@pytest.mark.asyncio
async def test_read_back_distinguishes_inserted_updated_not_persisted(
    client: CJAdminClient, mock: respx.MockRouter
) -> None:
    anchors = _anchors(["A", "B", "C+"])
    labels = [a.label for a in anchors]
    mock.get(INSTRUCTION_URL).respond(200, json=_instruction())
    before = _summary([_anchor_item(1, labels[1], "0" * 32, "B")])
    # storage ids handed out in order: 1, 2, 3 (see _registered)
    after = _summary(
        [
            _anchor_item(2, labels[0], f"{1:032x}", "A"),  # inserted and persisted
            _anchor_item(1, labels[1], f"{2:032x}", "B"),  # updated and persisted
            # labels[2] accepted (201) but absent: not persisted
        ]
    )
    mock.get(ANCHORS_URL).mock(
        side_effect=[httpx.Response(200, json=before), httpx.Response(200, json=after)]
    )
    mock.post(REGISTER_URL).mock(side_effect=_registered([]))
    report = await register_anchors(
        client, ASSIGNMENT, anchors, expected_grade_scale="eng5_np_legacy_9_step"
    )
    assert report.inserted == (labels[0],)
    assert report.updated == (labels[1],)
    assert report.not_persisted == (labels[2],)
    assert report.all_persisted is False
    assert "ACCEPTED BUT NOT PERSISTED" in report.summary()
    assert len(report.registered) == 3


@pytest.mark.asyncio
async def test_rolled_back_update_counts_as_not_persisted(
    client: CJAdminClient, mock: respx.MockRouter
) -> None:
    anchors = _anchors(["A"])
    old = _summary([_anchor_item(1, anchors[0].label, "0" * 32, "A")])
    mock.get(INSTRUCTION_URL).respond(200, json=_instruction())
    mock.get(ANCHORS_URL).respond(200, json=old)  # unchanged after the 201
    mock.post(REGISTER_URL).mock(side_effect=_registered([]))
    report = await register_anchors(client, ASSIGNMENT, anchors)
    assert report.not_persisted == (anchors[0].label,)
    assert report.updated == ()


@pytest.mark.asyncio
async def test_register_anchors_checks_expected_scale_first(
    client: CJAdminClient, mock: respx.MockRouter
) -> None:
    mock.get(INSTRUCTION_URL).respond(200, json=_instruction())
    register = mock.post(REGISTER_URL).respond(201, json={})
    with pytest.raises(GradeScaleMismatchError):
        await register_anchors(
            client, ASSIGNMENT, _anchors(), expected_grade_scale="eng5_np_national_9_step"
        )
    assert register.call_count == 0


@pytest.mark.asyncio
async def test_register_connection_error_mid_way(
    client: CJAdminClient, mock: respx.MockRouter
) -> None:
    mock.get(INSTRUCTION_URL).respond(200, json=_instruction())
    mock.get(ANCHORS_URL).respond(200, json=_summary([]))
    ok = httpx.Response(
        201, json={"anchor_id": 1, "storage_id": "e" * 32, "grade_scale": "eng5_np_legacy_9_step"}
    )
    refused = httpx.ConnectError("refused")
    mock.post(REGISTER_URL).mock(side_effect=[ok, refused, refused, refused])
    anchors = _anchors(["A", "B"])
    with pytest.raises(AnchorRegistrationError) as caught:
        await register_anchors(client, ASSIGNMENT, anchors)
    assert caught.value.registered == (anchors[0].label,)
    assert caught.value.pending == (anchors[1].label,)
    assert "cannot reach" in caught.value.message


def test_anchor_file_from_path_reads_grade_and_rejects_bad_names() -> None:
    anchor = AnchorFile.from_path(Path("anchors/anchor_007_C+2.docx"), TEXT)
    assert (anchor.label, anchor.grade) == ("anchor_007_C+2", "C+")
    with pytest.raises(InventoryError) as caught:
        AnchorFile.from_path(Path("anchors/anchor_12.docx"), TEXT)
    assert "anchor_12.docx" in caught.value.message
