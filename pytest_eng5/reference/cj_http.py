"""Plumbing shared by the CJ API's routes: app state, JSON request bodies, response bodies.

``created_at`` is rendered ISO 8601 unless the app asks for HuleEdu's RFC 1123 dates (A.5/H.3)
or the HuleEdu HEAD quirk mode is on (:mod:`.huleedu_head`).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from pytest_eng5.reference.admin_auth import JwtSettings, validation_error
from pytest_eng5.reference.cj_content_client import ContentClient
from pytest_eng5.reference.content_app import to_wire
from pytest_eng5.reference.db import Pool
from pytest_eng5.reference.huleedu_head import pool_for_request, quirks_active

_RequestModel = TypeVar("_RequestModel", bound=BaseModel)
Handler = Callable[[Request], Awaitable[Response]]
AdminHandler = Callable[[Request, uuid.UUID], Awaitable[Response]]


class CJState:
    """What the routes share: JWT settings, date rendering, and the pool/client of the lifespan."""

    def __init__(self, jwt_settings: JwtSettings, *, http_dates: bool) -> None:
        self.jwt = jwt_settings
        self.http_dates = http_dates
        self.pool: Pool | None = None
        self.content: ContentClient | None = None

    def require_pool(self) -> Pool:
        """The pool (or, in a HuleEdu-HEAD-quirk write, the connection that is rolled back)."""
        if self.pool is None:
            raise RuntimeError("the CJ API pool is not open (lifespan not started)")
        return pool_for_request(self.pool)

    def require_content(self) -> ContentClient:
        if self.content is None:
            raise RuntimeError("the CJ API content client is not open (lifespan not started)")
        return self.content

    def render(self, model: BaseModel, status_code: int = 200) -> JSONResponse:
        """``model`` as its wire JSON, dates rendered the way this app was configured (or as
        HuleEdu HEAD does, in quirk mode)."""
        http_dates = self.http_dates or quirks_active.get()
        return JSONResponse(to_wire(model, http_dates=http_dates), status_code=status_code)


def flat_error(message: str, status_code: int) -> JSONResponse:
    """The ``{"error": str}`` body of the anchor and test-only routes."""
    return JSONResponse({"error": message}, status_code=status_code)


async def read_json(request: Request) -> Any:
    """The parsed JSON body, or None when it is not JSON."""
    try:
        return json.loads(await request.body())
    except ValueError:
        return None


async def read_json_object(request: Request, cid: uuid.UUID) -> dict[str, Any]:
    """The JSON object body, or the A.5 validation error (field ``body``)."""
    raw = await request.body()
    try:
        payload = json.loads(raw) if raw else None
    except ValueError:
        payload = None
    if not isinstance(payload, dict):
        raise validation_error("body", "JSON body required", cid)
    return payload


def validate_request(
    model: type[_RequestModel], payload: dict[str, Any], cid: uuid.UUID
) -> _RequestModel:
    """Validate like HuleEdu: the first pydantic error's dotted location becomes ``field``."""
    try:
        return model.model_validate(payload)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(part) for part in first.get("loc", ("body",)))
        raise validation_error(field, str(first.get("msg", "Invalid payload")), cid) from None


def query_int(request: Request, name: str, default: int, cid: uuid.UUID) -> int:
    """Integer query parameter ``name`` (``default`` when absent), else a validation error."""
    raw = request.query_params.get(name, str(default))
    try:
        return int(raw)
    except ValueError:
        raise validation_error(name, f"{name} must be an integer, got '{raw}'", cid) from None
