"""Admin token resolution, dev minting, claims display (runner §4.5, §1.7; weakness 12)."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import jwt
import pytest

from pytest_eng5.errors import ConfigurationError
from pytest_eng5.redact import redact
from pytest_eng5.runner.auth import (
    AdminToken,
    claim_problems,
    decode_claims_unverified,
    describe_claims,
    mint_dev_token,
    resolve_admin_token,
    verify_signature_locally,
)

SECRET = "unit-test-jwt-secret-" + "0123456789abcdef" * 4  # ≥ 64 bytes, fine for HS512


def _token(claims: dict[str, object], secret: str = SECRET) -> str:
    return jwt.encode(claims, secret, algorithm="HS256")


def _valid_claims(**overrides: object) -> dict[str, object]:
    now = int(time.time())
    claims: dict[str, object] = {
        "sub": "svc",
        "iat": now,
        "exp": now + 600,
        "iss": "huleedu-identity-service",
        "aud": "huleedu-platform",
        "roles": ["admin"],
    }
    claims.update(overrides)
    return claims


def test_service_account_token_wins_over_admin_token_and_minting() -> None:
    service = _token(_valid_claims(sub="service-account"))
    admin = _token(_valid_claims(sub="admin-user"))
    env = {
        "HULEEDU_SERVICE_ACCOUNT_TOKEN": service,
        "HULEEDU_ADMIN_TOKEN": admin,
        "JWT_SECRET_KEY": SECRET,
    }
    token = resolve_admin_token(env)
    assert token.source == "HULEEDU_SERVICE_ACCOUNT_TOKEN"
    assert token.value == service
    assert token.claims is not None
    assert token.claims["sub"] == "service-account"


def test_admin_token_used_when_service_token_blank() -> None:
    admin = _token(_valid_claims(sub="admin-user"))
    env = {"HULEEDU_SERVICE_ACCOUNT_TOKEN": "   ", "HULEEDU_ADMIN_TOKEN": admin}
    token = resolve_admin_token(env)
    assert token.source == "HULEEDU_ADMIN_TOKEN"
    assert token.value == admin


def test_dev_token_minted_when_no_env_token() -> None:
    token = resolve_admin_token({"JWT_SECRET_KEY": SECRET})
    assert token.source == "dev-minted"
    assert token.claims is not None
    assert token.claims["sub"] == "cj-admin-dev-cli"


def test_minted_token_verifies_with_pyjwt_like_cj_does() -> None:
    minted = mint_dev_token({"JWT_SECRET_KEY": SECRET}, subject="tester", ttl=120)
    claims = jwt.decode(
        minted,
        SECRET,
        algorithms=["HS256"],
        audience="huleedu-platform",
        issuer="huleedu-identity-service",
        options={"require": ["exp", "iat", "iss", "aud", "sub"]},
    )
    assert claims["sub"] == "tester"
    assert claims["roles"] == ["admin"]
    assert claims["exp"] - claims["iat"] == 120


def test_minting_honours_configured_issuer_audience_algorithm() -> None:
    env = {
        "JWT_SECRET_KEY": SECRET,
        "JWT_ISSUER": "custom-issuer",
        "JWT_AUDIENCE": "custom-aud",
        "JWT_ALGORITHM": "HS512",
    }
    minted = mint_dev_token(env)
    assert jwt.get_unverified_header(minted)["alg"] == "HS512"
    claims = jwt.decode(
        minted, SECRET, algorithms=["HS512"], audience="custom-aud", issuer="custom-issuer"
    )
    assert claims["roles"] == ["admin"]
    assert verify_signature_locally(minted, env)[0] is True


def test_minting_without_secret_names_the_variable() -> None:
    with pytest.raises(ConfigurationError) as caught:
        resolve_admin_token({})
    assert "JWT_SECRET_KEY" in str(caught.value)
    assert "HULEEDU_SERVICE_ACCOUNT_TOKEN" in caught.value.next_step


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("ENVIRONMENT", "production"),
        ("ENVIRONMENT", "Staging"),
        ("HULEEDU_ENVIRONMENT", "PROD"),
    ],
)
def test_minting_refused_in_production_like_environments(variable: str, value: str) -> None:
    env = {"JWT_SECRET_KEY": SECRET, variable: value}
    with pytest.raises(ConfigurationError) as caught:
        mint_dev_token(env)
    assert f"{variable}={value}" in caught.value.message
    assert "set HULEEDU_SERVICE_ACCOUNT_TOKEN" in caught.value.next_step
    with pytest.raises(ConfigurationError):
        resolve_admin_token(env)


def test_env_token_still_used_in_production() -> None:
    service = _token(_valid_claims())
    token = resolve_admin_token({"ENVIRONMENT": "production", "HULEEDU_ADMIN_TOKEN": service})
    assert token.source == "HULEEDU_ADMIN_TOKEN"


def test_non_jwt_env_token_gives_no_claims_and_no_crash() -> None:
    token = resolve_admin_token({"HULEEDU_ADMIN_TOKEN": "opaque-service-token-xyz"})
    assert token.claims is None
    assert describe_claims(token.value)["decodable"] is False
    assert claim_problems(token.claims) == ["the token is not a JWT, so CJ cannot decode it"]


def test_repr_and_description_never_show_the_token() -> None:
    value = _token(_valid_claims(sub="who"))
    token = AdminToken(
        source="HULEEDU_ADMIN_TOKEN", value=value, claims=decode_claims_unverified(value)
    )
    assert value not in repr(token)
    assert "who" in repr(token)
    described = describe_claims(value)
    assert value not in str(described)
    assert described["subject"] == "who"
    assert described["has_admin_role"] is True
    assert described["expired"] is False


def test_resolved_tokens_are_registered_for_redaction() -> None:
    opaque = "opaque-token-to-redact-42"
    resolve_admin_token({"HULEEDU_SERVICE_ACCOUNT_TOKEN": opaque})
    assert opaque not in redact(f"header was {opaque}")


def test_claim_problems_find_expired_role_audience_issuer() -> None:
    past = int(time.time()) - 10
    claims = _valid_claims(exp=past, roles=["teacher"], aud="other", iss="someone")
    problems = " | ".join(claim_problems(claims))
    assert "expired" in problems
    assert "'admin'" in problems
    assert "'aud'" in problems
    assert "'iss'" in problems
    assert claim_problems(_valid_claims()) == []


def test_describe_claims_reports_expiry() -> None:
    exp = 2_000_000_000
    described = describe_claims(
        _token(_valid_claims(exp=exp)), now=datetime.fromtimestamp(exp + 1, UTC)
    )
    assert described["expired"] is True
    assert described["expires_at"] == datetime.fromtimestamp(exp, UTC).isoformat()


def test_local_signature_check_rejects_other_secret() -> None:
    foreign = _token(_valid_claims(), secret="a-different-secret-value-abcdef012345")
    ok, detail = verify_signature_locally(foreign, {"JWT_SECRET_KEY": SECRET})
    assert ok is False
    assert "InvalidSignature" in detail
    assert verify_signature_locally(foreign, {})[0] is None
