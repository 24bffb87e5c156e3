"""Admin authentication of the reference CJ API (contract A.3) and its error bodies (A.4).

Errors carry the body HuleEdu's error handlers are meant to send (HuleEdu HEAD collapses them
to a generic 500; the reference answers with the intended status, see docs/reference-services.md).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jwt
from jwt import exceptions as jwt_exceptions
from starlette.requests import Request
from starlette.responses import JSONResponse

SERVICE_NAME = "cj_assessment_service"
DEFAULT_ALGORITHM = "HS256"
DEFAULT_AUDIENCE = "huleedu-platform"
DEFAULT_ISSUER = "huleedu-identity-service"

STATUS_BY_CODE: Mapping[str, int] = {
    "VALIDATION_ERROR": 400,
    "AUTHENTICATION_ERROR": 401,
    "AUTHORIZATION_ERROR": 403,
    "RESOURCE_NOT_FOUND": 404,
    "PROCESSING_ERROR": 500,
    "UNKNOWN_ERROR": 500,
    "EXTERNAL_SERVICE_ERROR": 502,
    "CONTENT_SERVICE_ERROR": 502,
}

GENERIC_500_BODY: Mapping[str, str] = {
    "error": "Internal server error",
    "message": "An unexpected error occurred",
    "service": SERVICE_NAME,
}


def generic_500() -> JSONResponse:
    """The CJ service's catch-all 500 (A.4): what any unexpected failure looks like."""
    return JSONResponse(dict(GENERIC_500_BODY), status_code=500)


def correlation_id_of(request: Request) -> uuid.UUID:
    """``X-Correlation-ID`` header or ``correlation_id`` query; non-UUIDs map via uuid5 (A.3)."""
    raw = request.headers.get("x-correlation-id") or request.query_params.get("correlation_id")
    if not raw:
        return uuid.uuid4()
    try:
        return uuid.UUID(raw)
    except ValueError:
        return uuid.uuid5(uuid.NAMESPACE_OID, raw)


class AdminApiError(Exception):
    """A HuleEduError as the admin routes raise it; ``response()`` renders the A.4 body."""

    def __init__(
        self,
        code: str,
        message: str,
        *,
        correlation_id: uuid.UUID,
        details: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.correlation_id = correlation_id
        self.details = dict(details or {})
        self.status_code = STATUS_BY_CODE.get(code, 500)

    def body(self) -> dict[str, Any]:
        return {
            "error": {
                "code": self.code,
                "message": self.message,
                "correlation_id": str(self.correlation_id),
                "service": SERVICE_NAME,
                "timestamp": datetime.now(UTC).isoformat(),
                "details": self.details,
            }
        }

    def response(self) -> JSONResponse:
        return JSONResponse(self.body(), status_code=self.status_code)


def validation_error(field: str, message: str, correlation_id: uuid.UUID) -> AdminApiError:
    return AdminApiError(
        "VALIDATION_ERROR", message, correlation_id=correlation_id, details={"field": field}
    )


def not_found(
    resource_type: str, resource_id: str, correlation_id: uuid.UUID, message: str | None = None
) -> AdminApiError:
    return AdminApiError(
        "RESOURCE_NOT_FOUND",
        message or f"{resource_type} with ID '{resource_id}' not found",
        correlation_id=correlation_id,
        details={"resource_type": resource_type, "resource_id": resource_id},
    )


@dataclass(frozen=True)
class JwtSettings:
    """How admin tokens are verified; the defaults are HuleEdu's."""

    secret_key: str | None
    algorithm: str = DEFAULT_ALGORITHM
    audience: str = DEFAULT_AUDIENCE
    issuer: str = DEFAULT_ISSUER
    public_key: str | None = None

    @classmethod
    def from_env(
        cls, secret_key: str | None = None, env: Mapping[str, str] | None = None
    ) -> JwtSettings:
        """Explicit ``secret_key`` wins; the rest from HuleEdu's un-prefixed env vars."""
        env = os.environ if env is None else env
        public_key = env.get("JWT_PUBLIC_KEY")
        key_path = env.get("JWT_PUBLIC_KEY_PATH")
        if not public_key and key_path:
            public_key = Path(key_path).read_text("utf-8")
        return cls(
            secret_key=secret_key or env.get("JWT_SECRET_KEY"),
            algorithm=env.get("JWT_ALGORITHM") or DEFAULT_ALGORITHM,
            audience=env.get("JWT_AUDIENCE") or DEFAULT_AUDIENCE,
            issuer=env.get("JWT_ISSUER") or DEFAULT_ISSUER,
            public_key=public_key or None,
        )

    def verification_key(self) -> str | None:
        if self.algorithm.upper().startswith("HS"):
            return self.secret_key or None
        return self.public_key


def _auth_error(message: str, cid: uuid.UUID, reason: str, **extra: Any) -> AdminApiError:
    return AdminApiError(
        "AUTHENTICATION_ERROR", message, correlation_id=cid, details={"reason": reason, **extra}
    )


def decode_admin_token(token: str, settings: JwtSettings, cid: uuid.UUID) -> dict[str, Any]:
    """Decode and validate like HuleEdu's ``decode_and_validate_jwt``; AdminApiError on failure."""
    key = settings.verification_key()
    if not key:
        raise _auth_error("JWT verification key not configured", cid, "jwt_key_missing")
    try:
        payload: dict[str, Any] = jwt.decode(
            token,
            key,
            algorithms=[settings.algorithm],
            audience=settings.audience,
            issuer=settings.issuer,
        )
    except jwt_exceptions.ExpiredSignatureError:
        raise _auth_error("Token has expired", cid, "token_expired") from None
    except jwt_exceptions.InvalidAudienceError as exc:
        raise _auth_error(
            "Invalid token audience",
            cid,
            "invalid_audience",
            expected_audience=settings.audience,
            error=str(exc),
        ) from None
    except jwt_exceptions.InvalidIssuerError as exc:
        raise _auth_error(
            "Invalid token issuer",
            cid,
            "invalid_issuer",
            expected_issuer=settings.issuer,
            error=str(exc),
        ) from None
    except jwt_exceptions.InvalidSignatureError as exc:
        raise _auth_error(
            "Invalid token signature", cid, "invalid_signature", error=str(exc)
        ) from None
    except jwt_exceptions.InvalidAlgorithmError as exc:
        raise _auth_error(
            "Algorithm not allowed", cid, "invalid_algorithm", error=str(exc)
        ) from None
    except jwt_exceptions.InvalidSubjectError as exc:
        raise _auth_error(
            "Subject must be a string", cid, "invalid_subject", error=str(exc)
        ) from None
    except jwt_exceptions.InvalidTokenError as exc:
        raise _auth_error("Invalid token", cid, "invalid_token", error=str(exc)) from None
    except Exception as exc:  # any other decoding failure still means "not authenticated"
        raise _auth_error(
            "Failed to validate token", cid, "jwt_validation_failure", error=str(exc)
        ) from None

    exp = payload.get("exp")
    if exp is None:
        raise _auth_error("Token missing expiration claim", cid, "missing_exp")
    if datetime.now(UTC).timestamp() >= float(exp):
        raise _auth_error("Token has expired", cid, "token_expired")
    return payload


def require_admin(request: Request, settings: JwtSettings, cid: uuid.UUID) -> dict[str, Any]:
    """Check ``Authorization: Bearer <jwt>`` and the admin role (A.3); return the claims."""
    authorization = request.headers.get("authorization")
    if not authorization:
        raise _auth_error("Authorization header required", cid, "missing_authorization_header")
    parts = authorization.split()
    if len(parts) != 2 or parts[0].lower() != "bearer":
        raise _auth_error(
            "Expected 'Authorization: Bearer <token>'", cid, "invalid_authorization_format"
        )
    payload = decode_admin_token(parts[1], settings, cid)
    roles = payload.get("roles")
    if not isinstance(roles, list) or "admin" not in roles:
        raise AdminApiError(
            "AUTHORIZATION_ERROR",
            "Admin role required",
            correlation_id=cid,
            details={"required_role": "admin"},
        )
    return payload
