"""Admin tokens for the CJ admin API (contract A.3, runner §4.5, §1.7).

Priority: ``HULEEDU_SERVICE_ACCOUNT_TOKEN``, then ``HULEEDU_ADMIN_TOKEN``, then a development token
minted with ``JWT_SECRET_KEY``. Minting is refused in production-like environments. Every token
and key handled here is registered with :mod:`pytest_eng5.redact`; nothing returned for display
contains the token itself.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

import jwt

from pytest_eng5.errors import ConfigurationError
from pytest_eng5.redact import register_secret

logger = logging.getLogger(__name__)

TokenSource = Literal["HULEEDU_SERVICE_ACCOUNT_TOKEN", "HULEEDU_ADMIN_TOKEN", "dev-minted"]

ENV_TOKEN_VARIABLES: tuple[TokenSource, ...] = (
    "HULEEDU_SERVICE_ACCOUNT_TOKEN",
    "HULEEDU_ADMIN_TOKEN",
)
DEFAULT_JWT_ISSUER = "huleedu-identity-service"
DEFAULT_JWT_AUDIENCE = "huleedu-platform"
DEFAULT_JWT_ALGORITHM = "HS256"
DEV_SUBJECT = "cj-admin-dev-cli"
ADMIN_ROLE = "admin"
_PRODUCTION_LIKE = frozenset({"PRODUCTION", "STAGING", "PROD"})
_ENVIRONMENT_VARIABLES = ("ENVIRONMENT", "HULEEDU_ENVIRONMENT")
_TOKEN_NEXT_STEP = "set HULEEDU_SERVICE_ACCOUNT_TOKEN"


@dataclass(frozen=True)
class AdminToken:
    """A bearer token for ``/admin/v1/*`` plus where it came from; ``repr`` never shows it."""

    source: TokenSource
    value: str = field(repr=False)
    claims: dict[str, Any] | None = None

    def __repr__(self) -> str:
        subject = self.claims.get("sub") if self.claims else None
        return f"AdminToken(source={self.source!r}, subject={subject!r}, value=<redacted>)"

    def authorization_header(self) -> dict[str, str]:
        """``{"Authorization": "Bearer <token>"}`` for an httpx request."""
        return {"Authorization": f"Bearer {self.value}"}


def production_environment(env: Mapping[str, str]) -> str | None:
    """``"ENVIRONMENT=production"`` (the variable that blocks dev minting) or ``None``."""
    for name in _ENVIRONMENT_VARIABLES:
        value = env.get(name, "").strip()
        if value.upper() in _PRODUCTION_LIKE:
            return f"{name}={value}"
    return None


def resolve_admin_token(env: Mapping[str, str]) -> AdminToken:
    """The admin token by HuleEdu's priority: service-account token, admin token, dev-minted.

    Blank variables count as unset. Raises :class:`ConfigurationError` when no env token is set
    and minting is refused or impossible.
    """
    for name in ENV_TOKEN_VARIABLES:
        value = env.get(name, "").strip()
        if value:
            register_secret(value)
            return AdminToken(source=name, value=value, claims=decode_claims_unverified(value))
    minted = mint_dev_token(env)
    return AdminToken(source="dev-minted", value=minted, claims=decode_claims_unverified(minted))


def mint_dev_token(env: Mapping[str, str], *, subject: str = DEV_SUBJECT, ttl: int = 3600) -> str:
    """A development admin JWT signed with ``JWT_SECRET_KEY`` (claims as in contract A.3).

    Refused when ``ENVIRONMENT``/``HULEEDU_ENVIRONMENT`` is production, staging or prod.
    """
    blocked_by = production_environment(env)
    if blocked_by is not None:
        raise ConfigurationError(
            f"Refusing to mint a development admin token because {blocked_by} "
            "(dev tokens are blocked in production, staging and prod).",
            next_step=f"{_TOKEN_NEXT_STEP} (or HULEEDU_ADMIN_TOKEN) to a real admin token",
        )
    secret = env.get("JWT_SECRET_KEY", "")
    if not secret:
        raise ConfigurationError(
            "No admin token: HULEEDU_SERVICE_ACCOUNT_TOKEN and HULEEDU_ADMIN_TOKEN are unset, and "
            "a development token cannot be minted because JWT_SECRET_KEY is not set.",
            next_step=(
                f"{_TOKEN_NEXT_STEP}, or set JWT_SECRET_KEY to the value the CJ service uses"
            ),
        )
    register_secret(secret)
    algorithm = env.get("JWT_ALGORITHM", "").strip() or DEFAULT_JWT_ALGORITHM
    if not algorithm.upper().startswith("HS"):
        raise ConfigurationError(
            f"JWT_ALGORITHM={algorithm} needs a private key; development minting only signs "
            "HS* tokens with JWT_SECRET_KEY.",
            next_step=_TOKEN_NEXT_STEP,
        )
    if ttl <= 0:
        raise ConfigurationError(f"Token lifetime must be positive, got ttl={ttl}")
    now = int(time.time())
    claims = {
        "sub": subject,
        "iat": now,
        "exp": now + ttl,
        "iss": env.get("JWT_ISSUER", "").strip() or DEFAULT_JWT_ISSUER,
        "aud": env.get("JWT_AUDIENCE", "").strip() or DEFAULT_JWT_AUDIENCE,
        "roles": [ADMIN_ROLE],
    }
    try:
        token = jwt.encode(claims, secret, algorithm=algorithm)
    except (NotImplementedError, jwt.PyJWTError) as error:
        raise ConfigurationError(
            f"Cannot sign a development token with JWT_ALGORITHM={algorithm}: {error}",
            next_step=f"set JWT_ALGORITHM to HS256 or {_TOKEN_NEXT_STEP}",
        ) from error
    register_secret(token)
    logger.warning(
        "minted a development admin token (sub=%s, expires in %ds); not for production use",
        subject,
        ttl,
    )
    return token


def decode_claims_unverified(token: str) -> dict[str, Any] | None:
    """The token's claims without checking signature, expiry or audience; ``None`` if not a JWT."""
    try:
        claims = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError:
        return None
    return claims if isinstance(claims, dict) else None


def verify_signature_locally(token: str, env: Mapping[str, str]) -> tuple[bool | None, str]:
    """Check the token the way CJ does when ``JWT_SECRET_KEY`` is known here.

    Returns ``(None, why)`` when it cannot be checked locally, else ``(ok, detail)``.
    """
    secret = env.get("JWT_SECRET_KEY", "")
    algorithm = env.get("JWT_ALGORITHM", "").strip() or DEFAULT_JWT_ALGORITHM
    if not secret or not algorithm.upper().startswith("HS"):
        return None, "not checked locally (JWT_SECRET_KEY unset or not an HS* algorithm)"
    register_secret(secret)
    try:
        jwt.decode(
            token,
            secret,
            algorithms=[algorithm],
            audience=env.get("JWT_AUDIENCE", "").strip() or DEFAULT_JWT_AUDIENCE,
            issuer=env.get("JWT_ISSUER", "").strip() or DEFAULT_JWT_ISSUER,
            options={"require": ["exp", "iss", "aud"]},
        )
    except jwt.PyJWTError as error:
        return False, f"rejected with the local JWT_SECRET_KEY: {type(error).__name__}: {error}"
    return True, "signature, expiry, audience and issuer verified with the local JWT_SECRET_KEY"


def describe_claims(token: str, *, now: datetime | None = None) -> dict[str, Any]:
    """Display-safe facts (subject, roles, issuer, audience, expiry); never the token itself."""
    claims = decode_claims_unverified(token)
    if claims is None:
        return {"decodable": False, "reason": "not a JWT (cannot decode header/payload)"}
    current = now or datetime.now(UTC)
    exp = claims.get("exp")
    expires_at = (
        datetime.fromtimestamp(exp, UTC).isoformat() if isinstance(exp, int | float) else None
    )
    expired = isinstance(exp, int | float) and exp <= current.timestamp()
    roles = claims.get("roles")
    return {
        "decodable": True,
        "subject": claims.get("sub"),
        "roles": roles,
        "issuer": claims.get("iss"),
        "audience": claims.get("aud"),
        "expires_at": expires_at,
        "expired": expired,
        "has_admin_role": isinstance(roles, list) and ADMIN_ROLE in roles,
    }


def claim_problems(
    claims: Mapping[str, Any] | None,
    env: Mapping[str, str] | None = None,
    *,
    now: datetime | None = None,
) -> list[str]:
    """What CJ would reject in these claims (contract A.3), as short sentences; [] if none.

    Audience and issuer are compared with ``JWT_AUDIENCE``/``JWT_ISSUER`` from ``env`` (or the
    HuleEdu defaults). The signature cannot be judged from claims alone.
    """
    if claims is None:
        return ["the token is not a JWT, so CJ cannot decode it"]
    settings = env or {}
    problems: list[str] = []
    current = (now or datetime.now(UTC)).timestamp()
    exp = claims.get("exp")
    if not isinstance(exp, int | float):
        problems.append("no 'exp' claim (CJ requires one)")
    elif exp <= current:
        expired_at = datetime.fromtimestamp(exp, UTC).isoformat()
        problems.append(f"the token expired at {expired_at}")
    roles = claims.get("roles")
    if not (isinstance(roles, list) and ADMIN_ROLE in roles):
        problems.append(f"'roles' is {roles!r}, which does not contain 'admin'")
    audience = settings.get("JWT_AUDIENCE", "").strip() or DEFAULT_JWT_AUDIENCE
    aud = claims.get("aud")
    audiences = aud if isinstance(aud, list) else [aud]
    if audience not in audiences:
        problems.append(f"'aud' is {aud!r}, expected {audience!r}")
    issuer = settings.get("JWT_ISSUER", "").strip() or DEFAULT_JWT_ISSUER
    if claims.get("iss") != issuer:
        problems.append(f"'iss' is {claims.get('iss')!r}, expected {issuer!r}")
    return problems
