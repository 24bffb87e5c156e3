"""Reference Content Service (contract C): raw blobs in PostgreSQL ``stored_content``.

``POST /v1/content`` stores the raw body under a fresh ``uuid4().hex``; ``GET /v1/content/<id>``
returns the bytes with the stored Content-Type. Test-only routes under ``/_test/`` expose an
upload counter and the fault knobs.
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any

from pydantic import BaseModel, TypeAdapter, ValidationError
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from pytest_eng5.reference.db import Pool, apply_schema, create_pool
from pytest_eng5.reference.faults import FaultConfig, write_faults
from pytest_eng5.reference.http_faults import HttpFaultMiddleware

logger = logging.getLogger(__name__)

SERVICE_NAME = "content_service"
DEFAULT_CONTENT_TYPE = "text/plain"
MAX_CONTENT_TYPE_LENGTH = 100
_CONTENT_ID = re.compile(r"[0-9a-fA-F]{32}")
_DATETIME_JSON: TypeAdapter[datetime] = TypeAdapter(datetime)


def http_date(value: datetime) -> str:
    """RFC 1123 form, as Flask/Quart's JSON provider renders datetimes (H.3)."""
    aware = value if value.tzinfo else value.replace(tzinfo=UTC)
    return format_datetime(aware.astimezone(UTC), usegmt=True)


def to_wire(value: Any, *, http_dates: bool) -> Any:
    """JSON-ready form of a model/dict/list: datetimes as ISO 8601, or HTTP-dates when asked."""
    if isinstance(value, BaseModel):
        value = value.model_dump(mode="python")
    if isinstance(value, datetime):
        return http_date(value) if http_dates else _DATETIME_JSON.dump_python(value, mode="json")
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, dict):
        return {key: to_wire(item, http_dates=http_dates) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [to_wire(item, http_dates=http_dates) for item in value]
    return value


def _error_detail(
    code: str,
    message: str,
    *,
    operation: str,
    correlation_id: uuid.UUID,
    details: dict[str, Any],
    http_dates: bool,
) -> dict[str, Any]:
    """HuleEdu's ErrorDetail dump (C.2) as ``{"error": {...}}``."""
    detail = {
        "error_code": code,
        "message": message,
        "correlation_id": correlation_id,
        "timestamp": datetime.now(UTC),
        "service": SERVICE_NAME,
        "operation": operation,
        "details": details,
        "stack_trace": None,
        "trace_id": None,
        "span_id": None,
    }
    return {"error": to_wire(detail, http_dates=http_dates)}


def unknown_error(message: str, **extra: str) -> JSONResponse:
    """The Content Service's 500 body (C.1/C.2)."""
    body = {"error_code": "UNKNOWN_ERROR", "message": message, "correlation_id": str(uuid.uuid4())}
    return JSONResponse({"error": {**body, **extra}}, status_code=500)


def _correlation_id(request: Request) -> uuid.UUID:
    raw = request.headers.get("x-correlation-id")
    if not raw:
        return uuid.uuid4()
    try:
        return uuid.UUID(raw)
    except ValueError:
        return uuid.uuid5(uuid.NAMESPACE_OID, raw)


class _ContentState:
    """Per-app state: the pool (set at start-up) and the upload counters for /_test/stats."""

    def __init__(self) -> None:
        self.pool: Pool | None = None
        #: where the fault knobs live (the CJ database when the content has its own)
        self.faults_pool: Pool | None = None
        self.uploads = 0
        self.upload_requests = 0

    def require_pool(self) -> Pool:
        if self.pool is None:
            raise RuntimeError("the Content Service pool is not open (lifespan not started)")
        return self.pool


Handler = Callable[[Request], Awaitable[Response]]


def create_content_app(
    dsn: str,
    *,
    http_date_timestamps: bool = False,
    apply_schema_on_start: bool = True,
    faults_dsn: str | None = None,
) -> Starlette:
    """Build the reference Content Service for the database at ``dsn``.

    ``faults_dsn`` is where the fault knobs live when they are not in ``dsn`` (the embedded
    stack keeps content in ``huleedu_content`` and every service's faults in the CJ database,
    so the CJ API's ``/_test/faults`` reaches the Content Service too).

    ``http_date_timestamps`` renders ErrorDetail timestamps as HuleEdu does on the wire
    (RFC 1123); the default is ISO 8601.
    """
    state = _ContentState()
    http_dates = http_date_timestamps

    def guarded(operation: str, handler: Handler) -> Handler:
        async def run(request: Request) -> Response:
            try:
                return await handler(request)
            except Exception:
                logger.exception("content service: %s failed", operation)
                extra = {}
                if "content_id" in request.path_params:
                    extra["content_id"] = str(request.path_params["content_id"])
                return unknown_error(f"Unexpected error during {operation}", **extra)

        return run

    async def upload(request: Request) -> Response:
        state.upload_requests += 1
        cid = _correlation_id(request)
        data = await request.body()
        if not data:
            return JSONResponse(
                _error_detail(
                    "VALIDATION_ERROR",
                    "No data provided in request body.",
                    operation="upload_content",
                    correlation_id=cid,
                    details={"field": "request_body"},
                    http_dates=http_dates,
                ),
                status_code=400,
            )
        content_type = request.headers.get("content-type") or DEFAULT_CONTENT_TYPE
        if len(content_type) > MAX_CONTENT_TYPE_LENGTH:
            return JSONResponse(
                _error_detail(
                    "VALIDATION_ERROR",
                    f"Content-Type header longer than {MAX_CONTENT_TYPE_LENGTH} characters.",
                    operation="upload_content",
                    correlation_id=cid,
                    details={"field": "content_type"},
                    http_dates=http_dates,
                ),
                status_code=400,
            )
        storage_id = uuid.uuid4().hex
        await state.require_pool().execute(
            "INSERT INTO stored_content "
            "(content_id, content_data, content_size, correlation_id, content_type) "
            "VALUES ($1, $2, $3, $4, $5)",
            storage_id,
            data,
            len(data),
            cid,
            content_type,
        )
        state.uploads += 1
        return JSONResponse({"storage_id": storage_id, "correlation_id": str(cid)}, status_code=201)

    async def download(request: Request) -> Response:
        content_id = str(request.path_params["content_id"])
        cid = _correlation_id(request)
        if not _CONTENT_ID.fullmatch(content_id):  # `$` would let a trailing \n through
            return JSONResponse(
                _error_detail(
                    "VALIDATION_ERROR",
                    "Invalid content ID format: expected 32 hexadecimal characters.",
                    operation="download_content",
                    correlation_id=cid,
                    details={"field": "content_id", "value": content_id},
                    http_dates=http_dates,
                ),
                status_code=400,
            )
        row = await state.require_pool().fetchrow(
            "SELECT content_data, content_type FROM stored_content WHERE content_id = $1",
            content_id.lower(),
        )
        if row is None:
            return JSONResponse(
                _error_detail(
                    "RESOURCE_NOT_FOUND",
                    f"content with ID '{content_id}' not found",
                    operation="download_content",
                    correlation_id=cid,
                    details={"resource_type": "content", "resource_id": content_id},
                    http_dates=http_dates,
                ),
                status_code=404,
            )
        media = row["content_type"] or "application/octet-stream"
        # Set the header directly: Starlette would append a charset to text/* media types.
        return Response(content=bytes(row["content_data"]), headers={"content-type": media})

    async def healthz(request: Request) -> Response:
        try:
            await state.require_pool().fetchval("SELECT 1")
        except Exception as exc:
            body = {"status": "unhealthy", "service": SERVICE_NAME, "message": str(exc)}
            return JSONResponse(body, status_code=503)
        return JSONResponse(
            {
                "status": "ok",
                "message": "Content Service is healthy",
                "service": SERVICE_NAME,
                "checks": {"service_responsive": True, "database": True},
            }
        )

    async def metrics(request: Request) -> Response:
        lines = [
            "# TYPE content_uploads_total counter",
            f"content_uploads_total {state.uploads}",
        ]
        return PlainTextResponse("\n".join(lines) + "\n", media_type="text/plain; version=0.0.4")

    async def test_stats(request: Request) -> Response:
        stored = await state.require_pool().fetchval("SELECT count(*) FROM stored_content")
        return JSONResponse(
            {"uploads": state.uploads, "upload_requests": state.upload_requests, "stored": stored}
        )

    async def test_set_faults(request: Request) -> Response:
        try:
            faults = FaultConfig.model_validate_json(await request.body() or b"{}")
        except ValidationError as exc:
            return JSONResponse({"error": "Invalid FaultConfig", "details": exc.errors()}, 400)
        await write_faults(state.faults_pool or state.require_pool(), "content", faults)
        return JSONResponse({"service": "content", "faults": faults.model_dump(mode="json")})

    async def test_clear_faults(request: Request) -> Response:
        await write_faults(state.faults_pool or state.require_pool(), "content", FaultConfig())
        return JSONResponse({"service": "content", "faults": FaultConfig().model_dump()})

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        state.pool = await create_pool(dsn)
        state.faults_pool = state.pool if faults_dsn is None else await create_pool(faults_dsn)
        try:
            if apply_schema_on_start:
                await apply_schema(state.pool)
                if state.faults_pool is not state.pool:
                    await apply_schema(state.faults_pool)
            yield
        finally:
            pools = {id(p): p for p in (state.pool, state.faults_pool) if p is not None}
            state.pool = state.faults_pool = None
            for pool in pools.values():
                await pool.close()

    routes = [
        Route("/v1/content", guarded("upload_content", upload), methods=["POST"]),
        Route("/v1/content/{content_id}", guarded("download_content", download), methods=["GET"]),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/metrics", metrics, methods=["GET"]),
        Route("/_test/stats", test_stats, methods=["GET"]),
        Route("/_test/faults", test_set_faults, methods=["POST"]),
        Route("/_test/faults", test_clear_faults, methods=["DELETE"]),
    ]
    middleware = [
        Middleware(
            HttpFaultMiddleware,
            service="content",
            pool=lambda: state.faults_pool,
            error_response=lambda path: unknown_error("Injected fault: simulated server error"),
        )
    ]
    return Starlette(routes=routes, middleware=middleware, lifespan=lifespan)
