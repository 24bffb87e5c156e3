"""Reference CJ Assessment Service HTTP API (contract A): the app factory, health, test-only routes.

Wire-compatible with HuleEdu's CJ API, with its documented bugs fixed the way the contract
intends (A.4: real 400/401/403/404 bodies; A.6/H.1: every write committed). ``created_at`` is
ISO 8601 unless ``http_date_timestamps`` asks for HuleEdu's RFC 1123 rendering (A.5/H.3).
Essay, prompt and rubric texts live in the Content Service, reached over HTTP.

The routes live in :mod:`.cj_admin_routes` (``/admin/v1``) and :mod:`.cj_anchor_routes`
(anchor registration); the names they used to share with this module are re-exported here.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
from pydantic import ValidationError
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from pytest_eng5.core.names import FAULT_SERVICES, FaultService
from pytest_eng5.core.urls import CONTENT_PATH, content_endpoint
from pytest_eng5.reference.admin_auth import SERVICE_NAME, JwtSettings, generic_500
from pytest_eng5.reference.cj_admin_routes import admin_routes
from pytest_eng5.reference.cj_anchor_routes import (
    ANCHOR_ROUTES_PREFIX,
    FALLBACK_GRADE_SCALE,
    INTERNAL_ERROR,
    anchor_routes,
)
from pytest_eng5.reference.cj_content_client import (
    ContentClient,
    ContentServiceError,
)
from pytest_eng5.reference.cj_http import (
    AdminHandler,
    CJState,
    Handler,
    flat_error,
    query_int,
    read_json,
    read_json_object,
    validate_request,
)
from pytest_eng5.reference.cj_repository import (
    ImmutableFieldError,
    count_rows,
    fetch_instruction,
    instruction_response,
    set_instruction_storage_id,
    upsert_anchor,
    upsert_instruction,
)
from pytest_eng5.reference.db import apply_schema, create_pool
from pytest_eng5.reference.faults import FaultConfig, read_faults, write_faults
from pytest_eng5.reference.http_faults import HttpFaultMiddleware
from pytest_eng5.reference.huleedu_head import HuleeduHeadQuirks

__all__ = [
    "CONTENT_PATH",
    "FALLBACK_GRADE_SCALE",
    "FAULT_SERVICES",
    "AdminHandler",
    "ContentClient",
    "ContentServiceError",
    "Handler",
    "ImmutableFieldError",
    "content_endpoint",
    "create_cj_app",
    "fetch_instruction",
    "instruction_response",
    "query_int",
    "read_json_object",
    "set_instruction_storage_id",
    "upsert_anchor",
    "upsert_instruction",
    "validate_request",
]

logger = logging.getLogger(__name__)


def create_cj_app(
    dsn: str,
    content_url: str,
    jwt_secret: str,
    *,
    http_date_timestamps: bool = False,
    jwt_settings: JwtSettings | None = None,
    apply_schema_on_start: bool = True,
) -> Starlette:
    """Build the reference CJ Assessment Service HTTP API.

    ``content_url`` is the Content Service's ``.../v1/content`` URL (or its base URL).
    ``jwt_settings`` overrides algorithm/audience/issuer; by default they come from the
    environment (``JWT_ALGORITHM``, ``JWT_AUDIENCE``, ``JWT_ISSUER``) with HuleEdu's defaults,
    and the key is ``jwt_secret``.
    """
    state = CJState(
        jwt_settings or JwtSettings.from_env(secret_key=jwt_secret),
        http_dates=http_date_timestamps,
    )
    endpoint = content_endpoint(content_url)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        state.pool = await create_pool(dsn)
        client = httpx.AsyncClient(timeout=httpx.Timeout(15.0))
        state.content = ContentClient(endpoint, client)
        try:
            if apply_schema_on_start:
                await apply_schema(state.pool)
            yield
        finally:
            pool, state.pool, state.content = state.pool, None, None
            await client.aclose()
            await pool.close()

    def fault_500(path: str) -> Response:
        """An injected 500 in the body style of the route it hits."""
        if path.startswith(ANCHOR_ROUTES_PREFIX):
            return flat_error(INTERNAL_ERROR, 500)
        return generic_500()

    routes = [
        *anchor_routes(state),
        *admin_routes(state),
        *health_routes(state),
        *fault_control_routes(state),
    ]
    middleware = [
        Middleware(
            HttpFaultMiddleware,
            service="cj-api",
            pool=lambda: state.pool,
            error_response=fault_500,
        ),
        Middleware(HuleeduHeadQuirks, pool=lambda: state.pool),
    ]
    return Starlette(routes=routes, middleware=middleware, lifespan=lifespan)


def health_routes(state: CJState) -> list[Route]:
    """``/healthz*`` in HuleEdu's shapes, and a Prometheus ``/metrics`` gauge."""

    async def database_ok() -> bool:
        try:
            await state.require_pool().fetchval("SELECT 1")
        except Exception:
            logger.warning("database check failed", exc_info=True)
            return False
        return True

    async def healthz(request: Request) -> Response:
        ok = await database_ok()
        body = {
            "status": "ok" if ok else "unhealthy",
            "message": "CJ Assessment Service is healthy" if ok else "Database unreachable",
            "service": SERVICE_NAME,
            "checks": {"service_responsive": True, "database_connected": ok},
        }
        return JSONResponse(body, status_code=200 if ok else 503)

    async def healthz_live(request: Request) -> Response:
        return JSONResponse({"status": "alive", "service": SERVICE_NAME})

    async def healthz_ready(request: Request) -> Response:
        ok = await database_ok()
        body = {
            "status": "ready" if ok else "not_ready",
            "service": SERVICE_NAME,
            "checks": {
                "database": "healthy" if ok else "unhealthy",
                # This process serves HTTP only; Kafka and batch monitoring run in the worker.
                "kafka": "not_applicable",
                "batch_monitoring": "not_applicable",
            },
            "message": "Service is ready" if ok else "Database unreachable",
        }
        return JSONResponse(body, status_code=200 if ok else 503)

    async def healthz_database(request: Request) -> Response:
        ok = await database_ok()
        body = {"status": "healthy" if ok else "unhealthy", "service": SERVICE_NAME}
        return JSONResponse(body, status_code=200 if ok else 503)

    async def healthz_database_summary(request: Request) -> Response:
        ok = await database_ok()
        body: dict[str, Any] = {"status": "healthy" if ok else "unhealthy", "service": SERVICE_NAME}
        if ok:
            body["tables"] = await count_rows(state.require_pool())
        return JSONResponse(body, status_code=200 if ok else 503)

    async def metrics(request: Request) -> Response:
        ok = 1 if await database_ok() else 0
        text = f"# TYPE cj_api_database_up gauge\ncj_api_database_up {ok}\n"
        return PlainTextResponse(text, media_type="text/plain; version=0.0.4")

    return [
        Route("/healthz", healthz, methods=["GET"]),
        Route("/healthz/live", healthz_live, methods=["GET"]),
        Route("/healthz/ready", healthz_ready, methods=["GET"]),
        Route("/healthz/database", healthz_database, methods=["GET"]),
        Route("/healthz/database/summary", healthz_database_summary, methods=["GET"]),
        Route("/metrics", metrics, methods=["GET"]),
    ]


def fault_control_routes(state: CJState) -> list[Route]:
    """``/_test/faults``: read, set and clear the fault configuration of every service."""

    async def get_faults(request: Request) -> Response:
        pool = state.require_pool()
        current = {name: (await read_faults(pool, name)).model_dump() for name in FAULT_SERVICES}
        return JSONResponse(current)

    async def set_faults(request: Request) -> Response:
        payload = await read_json(request)
        if not isinstance(payload, dict) or payload.get("service") not in FAULT_SERVICES:
            expected = f"{{'service': one of {list(FAULT_SERVICES)}, 'faults': {{...}}}}"
            return flat_error(f"Body must be {expected}", 400)
        service: FaultService = payload["service"]
        try:
            faults = FaultConfig.model_validate(payload.get("faults") or {})
        except ValidationError as exc:
            errors = json.loads(exc.json())
            return JSONResponse({"error": "Invalid FaultConfig", "details": errors}, 400)
        await write_faults(state.require_pool(), service, faults)
        return JSONResponse({"service": service, "faults": faults.model_dump()})

    async def clear_faults(request: Request) -> Response:
        requested = request.query_params.get("service")
        if requested is not None and requested not in FAULT_SERVICES:
            return flat_error(f"Unknown service '{requested}'", 400)
        services = [s for s in FAULT_SERVICES if requested in (None, s)]
        for service in services:
            await write_faults(state.require_pool(), service, FaultConfig())
        return JSONResponse({"status": "cleared", "services": services})

    return [
        Route("/_test/faults", get_faults, methods=["GET"]),
        Route("/_test/faults", set_faults, methods=["POST"]),
        Route("/_test/faults", clear_faults, methods=["DELETE"]),
    ]
