"""R3: the assignment and its grade scale are resolved from CJ before anything is sent."""

from __future__ import annotations

import dataclasses
import time
import uuid

import jwt
import pytest

from pytest_eng5.errors import (
    ConfigurationError,
    GradeScaleMismatchError,
    PreflightAuthError,
    PreflightError,
    PreflightNotFoundError,
    ServiceUnavailableError,
)
from pytest_eng5.stack.ports import free_port

pytestmark = pytest.mark.eng5_scenario("R3")


def test_plan_shows_the_assignment_cj_resolved(eng5_runner_factory, sample) -> None:
    result = eng5_runner_factory(**sample).plan()
    assert result.grade_scale == "eng5_np_legacy_9_step"
    assert any("context_origin=research_experiment" in m for m in result.messages)
    assert any("student prompt present" in m for m in result.messages)


def test_unknown_assignment_fails_with_the_seeding_step(
    eng5_runner_factory, request_watch, sample
) -> None:
    unknown = str(uuid.uuid4())
    runner = eng5_runner_factory(**{**sample, "assignment_id": unknown})
    with pytest.raises(PreflightNotFoundError) as info:
        runner.execute()
    assert unknown in str(info.value)
    assert "/admin/v1/assessment-instructions/assignment/" in str(info.value)
    assert info.value.next_step
    assert request_watch.new_requests() == []


def test_grade_scale_mismatch_quotes_both_values(
    eng5_runner_factory, request_watch, sample
) -> None:
    runner = eng5_runner_factory(**sample, expected_grade_scale="eng5_np_national_9_step")
    with pytest.raises(GradeScaleMismatchError) as info:
        runner.execute()
    assert "eng5_np_national_9_step" in str(info.value)
    assert "eng5_np_legacy_9_step" in str(info.value)
    assert request_watch.new_requests() == []


def _token(secret: str, **claims: object) -> str:
    now = int(time.time())
    payload = {
        "sub": "scenario",
        "iat": now,
        "exp": now + 600,
        "roles": ["admin"],
        "iss": "huleedu-identity-service",
        "aud": "huleedu-platform",
        **claims,
    }
    return jwt.encode(payload, secret, algorithm="HS256")


@pytest.mark.parametrize(
    "token_kind",
    ["expired", "wrong-secret", "no-admin-role"],
)
def test_a_bad_token_is_an_auth_error_naming_the_token_env(
    eng5_runner_factory, eng5_stack, request_watch, sample, token_kind
) -> None:
    secret = eng5_stack.env["JWT_SECRET_KEY"]
    token = {
        "expired": lambda: _token(secret, exp=int(time.time()) - 60),
        "wrong-secret": lambda: _token("not-the-secret-" + "x" * 20),
        "no-admin-role": lambda: _token(secret, roles=["teacher"]),
    }[token_kind]()
    runner = eng5_runner_factory(**sample)
    runner.aio.endpoints = dataclasses.replace(
        runner.aio.endpoints, env={**eng5_stack.env, "HULEEDU_ADMIN_TOKEN": token}
    )
    with pytest.raises(PreflightAuthError) as info:
        runner.execute()
    # the variable the token came from, and every variable a token can come from
    assert "token source: huleedu_admin_token" in str(info.value).lower()
    assert "HULEEDU_ADMIN_TOKEN" in info.value.next_step
    assert token not in str(info.value)
    assert request_watch.new_requests() == []


def test_5xx_is_retried_then_recovers(eng5_runner_factory, clean_faults, sample) -> None:
    clean_faults.set_faults("cj-api", http_5xx_count=2, http_path_prefix="/admin/v1")
    result = eng5_runner_factory(**sample).plan()
    assert result.outcome == "planned"


def test_persistent_5xx_is_service_unavailable_then_recovers(
    eng5_runner_factory, clean_faults, request_watch, sample
) -> None:
    clean_faults.set_faults("cj-api", http_5xx_count=50, http_path_prefix="/admin/v1")
    with pytest.raises(ServiceUnavailableError) as info:
        eng5_runner_factory(**sample).execute()
    assert "/admin/v1/" in str(info.value)
    assert request_watch.new_requests() == []
    clean_faults.clear_faults()
    assert eng5_runner_factory(**sample).plan().outcome == "planned"


def test_verify_auth_shows_claims_never_the_token(eng5_runner_factory, eng5_stack, capsys) -> None:
    runner = eng5_runner_factory()
    report = runner.verify_auth()
    assert report["confirmed"] is True
    assert report["claims"]["roles"] == ["admin"]
    assert report["source"] == "dev-minted"
    secret = eng5_stack.env["JWT_SECRET_KEY"]
    bad = _token("not-the-secret-" + "x" * 20)
    runner.aio.endpoints = dataclasses.replace(
        runner.aio.endpoints, env={**eng5_stack.env, "HULEEDU_ADMIN_TOKEN": bad}
    )
    refused = runner.verify_auth()
    assert refused["confirmed"] is False
    assert refused["source"] == "HULEEDU_ADMIN_TOKEN"
    text = repr(report) + repr(refused) + capsys.readouterr().out
    assert bad not in text
    assert secret not in text


def test_execute_needs_a_student_prompt(
    eng5_runner_factory, request_watch, make_assignment, sample
) -> None:
    no_prompt = make_assignment(with_prompt=False)
    runner = eng5_runner_factory(**{**sample, "assignment_id": no_prompt})
    with pytest.raises(PreflightError) as info:
        runner.execute()
    assert "prompt" in str(info.value).lower()
    assert "prompt" in info.value.next_step.lower()
    assert request_watch.new_requests() == []


def test_rubric_override_is_refused_on_a_canonical_national_assignment(
    eng5_runner_factory, request_watch, make_assignment, sample, tmp_path
) -> None:
    national = make_assignment(with_anchors=False, context_origin="canonical_national")
    rubric = tmp_path / "rubric.txt"
    rubric.write_text("Reward precise vocabulary above all else.", encoding="utf-8")
    runner = eng5_runner_factory(**{**sample, "assignment_id": national}, rubric_file=rubric)
    with pytest.raises(ConfigurationError, match="canonical_national"):
        runner.execute()
    assert request_watch.new_requests() == []


def test_unreachable_cj_service_names_the_url(eng5_runner_factory, request_watch, sample) -> None:
    runner = eng5_runner_factory(**sample)
    dead = f"http://127.0.0.1:{free_port()}"
    runner.aio.endpoints = dataclasses.replace(runner.aio.endpoints, cj_url=dead)
    with pytest.raises(ServiceUnavailableError) as info:
        runner.execute()
    assert dead in str(info.value)
    assert request_watch.new_requests() == []
