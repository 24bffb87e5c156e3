"""Reference CJ Assessment Service HTTP API (contract A): admin routes, anchor registration, health.

Wire-compatible with HuleEdu's CJ API, with its documented bugs fixed the way the contract
intends (A.4: real 400/401/403/404 bodies; A.6/H.1: every write committed). ``created_at`` is
ISO 8601 unless ``http_date_timestamps`` asks for HuleEdu's RFC 1123 rendering (A.5/H.3).
Essay, prompt and rubric texts live in the Content Service, reached over HTTP.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any, TypeVar, get_args

import asyncpg
import httpx
from pydantic import BaseModel, ValidationError
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from pytest_eng5.contracts.admin import (
    AnchorSummaryItem,
    AnchorSummaryResponse,
    AssessmentInstructionListResponse,
    AssessmentInstructionResponse,
    AssessmentInstructionUpsertRequest,
    JudgeRubricResponse,
    JudgeRubricUploadRequest,
    RegisterAnchorRequest,
    RegisterAnchorResponse,
    StudentPromptResponse,
    StudentPromptUploadRequest,
    register_anchor_error_text,
)
from pytest_eng5.contracts.grade_scales import get_scale, validate_grade_for_scale
from pytest_eng5.reference.admin_auth import (
    SERVICE_NAME,
    AdminApiError,
    JwtSettings,
    correlation_id_of,
    generic_500,
    not_found,
    require_admin,
    validation_error,
)
from pytest_eng5.reference.content_app import to_wire
from pytest_eng5.reference.db import Pool, apply_schema, create_pool
from pytest_eng5.reference.faults import FaultConfig, ServiceName, read_faults, write_faults
from pytest_eng5.reference.http_faults import HttpFaultMiddleware

logger = logging.getLogger(__name__)

FALLBACK_GRADE_SCALE = "swedish_8_anchor"
CONTENT_PATH = "/v1/content"
FAULT_SERVICES: tuple[ServiceName, ...] = get_args(ServiceName)
_INSTRUCTION_COLUMNS = (
    "id, assignment_id, course_id, instructions_text, grade_scale, context_origin, "
    "student_prompt_storage_id, judge_rubric_storage_id, created_at"
)
_RequestModel = TypeVar("_RequestModel", bound=BaseModel)
AdminHandler = Callable[[Request, uuid.UUID], Awaitable[Response]]
Handler = Callable[[Request], Awaitable[Response]]


def content_endpoint(content_url: str) -> str:
    """HuleEdu configures CJ with ``.../v1/content``; accept a bare base URL too."""
    url = content_url.rstrip("/")
    return url if url.endswith(CONTENT_PATH) else url + CONTENT_PATH


class ContentServiceError(Exception):
    """The Content Service could not store or return a blob."""


class ContentClient:
    """CJ's client of the Content Service: stores texts as ``text/plain``, fetches them back."""

    def __init__(self, endpoint: str, client: httpx.AsyncClient) -> None:
        self.endpoint = endpoint
        self._client = client

    async def store(self, text: str, correlation_id: uuid.UUID | None = None) -> str | None:
        headers = {"Content-Type": "text/plain"}
        if correlation_id is not None:
            headers["X-Correlation-ID"] = str(correlation_id)
        try:
            response = await self._client.post(
                self.endpoint, content=text.encode("utf-8"), headers=headers
            )
        except httpx.HTTPError as exc:
            raise ContentServiceError(f"Content Service unreachable: {exc}") from exc
        if response.status_code != 201:
            raise ContentServiceError(
                f"Content Service answered {response.status_code} to an upload"
            )
        body = response.json()
        storage_id = body.get("storage_id") if isinstance(body, dict) else None
        return str(storage_id) if storage_id else None

    async def fetch(self, storage_id: str, correlation_id: uuid.UUID | None = None) -> str:
        headers = {"X-Correlation-ID": str(correlation_id)} if correlation_id else {}
        try:
            response = await self._client.get(f"{self.endpoint}/{storage_id}", headers=headers)
        except httpx.HTTPError as exc:
            raise ContentServiceError(f"Content Service unreachable: {exc}") from exc
        if response.status_code != 200:
            raise ContentServiceError(
                f"Content Service answered {response.status_code} for blob {storage_id}"
            )
        return response.text


class ImmutableFieldError(Exception):
    """An upsert tried to change grade_scale or context_origin of an existing instruction."""

    def __init__(self, field: str, stored: str, requested: str) -> None:
        super().__init__(
            f"{field} is immutable for existing assessment instructions "
            f"(stored '{stored}', requested '{requested}'); delete the instruction and "
            "create it again to change it"
        )
        self.field = field


# --- repository (all writes commit before the response is sent) ---------------------------


async def fetch_instruction(pool: Pool, assignment_id: str) -> asyncpg.Record | None:
    return await pool.fetchrow(
        f"SELECT {_INSTRUCTION_COLUMNS} FROM assessment_instructions WHERE assignment_id = $1",
        assignment_id,
    )


async def upsert_instruction(pool: Pool, req: AssessmentInstructionUpsertRequest) -> asyncpg.Record:
    """A.5 upsert: scale and origin immutable, text overwritten, storage ids kept unless given."""
    scope_key = (
        f"assignment:{req.assignment_id}" if req.assignment_id else f"course:{req.course_id}"
    )
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(hashtext($1))", scope_key)
        if req.assignment_id:
            existing = await conn.fetchrow(
                f"SELECT {_INSTRUCTION_COLUMNS} FROM assessment_instructions "
                "WHERE assignment_id = $1",
                req.assignment_id,
            )
        else:
            existing = await conn.fetchrow(
                f"SELECT {_INSTRUCTION_COLUMNS} FROM assessment_instructions "
                "WHERE course_id = $1 AND assignment_id IS NULL ORDER BY id LIMIT 1",
                req.course_id,
            )
        if existing is not None:
            if existing["grade_scale"] != req.grade_scale:
                raise ImmutableFieldError("grade_scale", existing["grade_scale"], req.grade_scale)
            if existing["context_origin"] != req.context_origin:
                raise ImmutableFieldError(
                    "context_origin", existing["context_origin"], req.context_origin
                )
            row = await conn.fetchrow(
                "UPDATE assessment_instructions SET instructions_text = $2, "
                "student_prompt_storage_id = COALESCE($3, student_prompt_storage_id) "
                f"WHERE id = $1 RETURNING {_INSTRUCTION_COLUMNS}",
                existing["id"],
                req.instructions_text,
                req.student_prompt_storage_id,
            )
        else:
            row = await conn.fetchrow(
                "INSERT INTO assessment_instructions (assignment_id, course_id, "
                "instructions_text, grade_scale, context_origin, student_prompt_storage_id) "
                f"VALUES ($1, $2, $3, $4, $5, $6) RETURNING {_INSTRUCTION_COLUMNS}",
                req.assignment_id,
                None if req.assignment_id else req.course_id,
                req.instructions_text,
                req.grade_scale,
                req.context_origin,
                req.student_prompt_storage_id,
            )
    assert row is not None  # RETURNING always yields the row written
    return row


async def set_instruction_storage_id(
    pool: Pool, assignment_id: str, column: str, storage_id: str
) -> asyncpg.Record | None:
    """Point the instruction at a new prompt/rubric blob; grade scale and origin untouched."""
    if column not in ("student_prompt_storage_id", "judge_rubric_storage_id"):
        raise ValueError(f"not a storage-id column: {column}")
    return await pool.fetchrow(
        f"UPDATE assessment_instructions SET {column} = $2 WHERE assignment_id = $1 "
        f"RETURNING {_INSTRUCTION_COLUMNS}",
        assignment_id,
        storage_id,
    )


async def upsert_anchor(
    pool: Pool, *, assignment_id: str, label: str, grade: str, grade_scale: str, storage_id: str
) -> int:
    """A.6 upsert on (assignment_id, anchor_label, grade_scale); the id is stable."""
    anchor_id = await pool.fetchval(
        "INSERT INTO anchor_essay_references "
        "(assignment_id, anchor_label, grade, grade_scale, text_storage_id) "
        "VALUES ($1, $2, $3, $4, $5) "
        "ON CONFLICT (assignment_id, anchor_label, grade_scale) DO UPDATE "
        "SET text_storage_id = EXCLUDED.text_storage_id, grade = EXCLUDED.grade RETURNING id",
        assignment_id,
        label,
        grade,
        grade_scale,
        storage_id,
    )
    return int(anchor_id)


def instruction_response(row: asyncpg.Record) -> AssessmentInstructionResponse:
    return AssessmentInstructionResponse(
        id=row["id"],
        assignment_id=row["assignment_id"],
        course_id=row["course_id"],
        instructions_text=row["instructions_text"],
        grade_scale=row["grade_scale"],
        context_origin=row["context_origin"],
        student_prompt_storage_id=row["student_prompt_storage_id"],
        created_at=row["created_at"],
    )


# --- request helpers ---------------------------------------------------------------------


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
    raw = request.query_params.get(name, str(default))
    try:
        return int(raw)
    except ValueError:
        raise validation_error(name, f"{name} must be an integer, got '{raw}'", cid) from None


class _CJState:
    def __init__(self, jwt_settings: JwtSettings) -> None:
        self.jwt = jwt_settings
        self.pool: Pool | None = None
        self.content: ContentClient | None = None

    def require_pool(self) -> Pool:
        if self.pool is None:
            raise RuntimeError("the CJ API pool is not open (lifespan not started)")
        return self.pool

    def require_content(self) -> ContentClient:
        if self.content is None:
            raise RuntimeError("the CJ API content client is not open (lifespan not started)")
        return self.content


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
    state = _CJState(jwt_settings or JwtSettings.from_env(secret_key=jwt_secret))
    http_dates = http_date_timestamps
    endpoint = content_endpoint(content_url)

    def render(model: BaseModel, status_code: int = 200) -> JSONResponse:
        return JSONResponse(to_wire(model, http_dates=http_dates), status_code=status_code)

    def admin(operation: str, handler: AdminHandler) -> Handler:
        async def run(request: Request) -> Response:
            cid = correlation_id_of(request)
            try:
                require_admin(request, state.jwt, cid)
                return await handler(request, cid)
            except AdminApiError as exc:
                return exc.response()
            except ContentServiceError as exc:
                logger.warning("%s: %s", operation, exc)
                return AdminApiError(
                    "CONTENT_SERVICE_ERROR", str(exc), correlation_id=cid
                ).response()
            except Exception:
                logger.exception("%s failed", operation)
                return generic_500()

        return run

    # --- assessment instructions ----------------------------------------------------------

    async def upsert_instructions(request: Request, cid: uuid.UUID) -> Response:
        payload = await read_json_object(request, cid)
        req = validate_request(AssessmentInstructionUpsertRequest, payload, cid)
        try:
            row = await upsert_instruction(state.require_pool(), req)
        except ImmutableFieldError as exc:
            raise validation_error(exc.field, str(exc), cid) from None
        return render(instruction_response(row))

    async def list_instructions(request: Request, cid: uuid.UUID) -> Response:
        page = max(1, query_int(request, "page", 1, cid))
        page_size = max(1, min(200, query_int(request, "page_size", 50, cid)))
        grade_scale = request.query_params.get("grade_scale") or None
        pool = state.require_pool()
        where = "WHERE grade_scale = $1" if grade_scale else "WHERE $1::text IS NULL"
        total = await pool.fetchval(
            f"SELECT count(*) FROM assessment_instructions {where}", grade_scale
        )
        rows = await pool.fetch(
            f"SELECT {_INSTRUCTION_COLUMNS} FROM assessment_instructions {where} "
            "ORDER BY created_at DESC, id DESC LIMIT $2 OFFSET $3",
            grade_scale,
            page_size,
            (page - 1) * page_size,
        )
        return render(
            AssessmentInstructionListResponse(
                items=[instruction_response(row) for row in rows],
                total=total,
                page=page,
                page_size=page_size,
            )
        )

    async def get_instruction(request: Request, cid: uuid.UUID) -> Response:
        assignment_id = str(request.path_params["assignment_id"])
        row = await fetch_instruction(state.require_pool(), assignment_id)
        if row is None:
            raise not_found("assessment_instruction", assignment_id, cid)
        return render(instruction_response(row))

    async def delete_by_assignment(request: Request, cid: uuid.UUID) -> Response:
        assignment_id = str(request.path_params["assignment_id"])
        deleted = await state.require_pool().fetchval(
            "DELETE FROM assessment_instructions WHERE assignment_id = $1 RETURNING id",
            assignment_id,
        )
        if deleted is None:
            raise not_found("assessment_instruction", assignment_id, cid)
        return JSONResponse({"status": "deleted", "assignment_id": assignment_id})

    async def delete_by_course(request: Request, cid: uuid.UUID) -> Response:
        course_id = str(request.path_params["course_id"])
        deleted = await state.require_pool().fetch(
            "DELETE FROM assessment_instructions "
            "WHERE course_id = $1 AND assignment_id IS NULL RETURNING id",
            course_id,
        )
        if not deleted:
            raise not_found("assessment_instruction_course", course_id, cid)
        return JSONResponse({"status": "deleted", "course_id": course_id})

    # --- student prompts and judge rubrics ------------------------------------------------

    async def store_for_instruction(
        assignment_id: str, text: str, column: str, cid: uuid.UUID
    ) -> asyncpg.Record:
        pool = state.require_pool()
        if await fetch_instruction(pool, assignment_id) is None:
            raise not_found("AssessmentInstruction", assignment_id, cid)
        storage_id = await state.require_content().store(text, cid)
        if not storage_id:
            raise AdminApiError(
                "PROCESSING_ERROR", "Content Service did not return storage_id", correlation_id=cid
            )
        row = await set_instruction_storage_id(pool, assignment_id, column, storage_id)
        if row is None:  # deleted between the check and the update
            raise not_found("AssessmentInstruction", assignment_id, cid)
        return row

    async def load_for_instruction(
        assignment_id: str, column: str, resource_type: str, message: str, cid: uuid.UUID
    ) -> tuple[asyncpg.Record, str]:
        row = await fetch_instruction(state.require_pool(), assignment_id)
        if row is None:
            raise not_found("AssessmentInstruction", assignment_id, cid)
        if not row[column]:
            raise not_found(resource_type, assignment_id, cid, message)
        return row, await state.require_content().fetch(row[column], cid)

    async def upload_prompt(request: Request, cid: uuid.UUID) -> Response:
        req = validate_request(
            StudentPromptUploadRequest, await read_json_object(request, cid), cid
        )
        row = await store_for_instruction(
            req.assignment_id, req.prompt_text, "student_prompt_storage_id", cid
        )
        return render(
            StudentPromptResponse(
                assignment_id=row["assignment_id"],
                student_prompt_storage_id=row["student_prompt_storage_id"],
                prompt_text=req.prompt_text,
                instructions_text=row["instructions_text"],
                grade_scale=row["grade_scale"],
                created_at=row["created_at"],
            )
        )

    async def get_prompt(request: Request, cid: uuid.UUID) -> Response:
        assignment_id = str(request.path_params["assignment_id"])
        row, text = await load_for_instruction(
            assignment_id,
            "student_prompt_storage_id",
            "StudentPrompt",
            "No prompt configured for assignment",
            cid,
        )
        return render(
            StudentPromptResponse(
                assignment_id=row["assignment_id"],
                student_prompt_storage_id=row["student_prompt_storage_id"],
                prompt_text=text,
                instructions_text=row["instructions_text"],
                grade_scale=row["grade_scale"],
                created_at=row["created_at"],
            )
        )

    async def upload_rubric(request: Request, cid: uuid.UUID) -> Response:
        req = validate_request(JudgeRubricUploadRequest, await read_json_object(request, cid), cid)
        row = await store_for_instruction(
            req.assignment_id, req.rubric_text, "judge_rubric_storage_id", cid
        )
        return render(
            JudgeRubricResponse(
                assignment_id=row["assignment_id"],
                judge_rubric_storage_id=row["judge_rubric_storage_id"],
                rubric_text=req.rubric_text,
                instructions_text=row["instructions_text"],
                grade_scale=row["grade_scale"],
                created_at=row["created_at"],
            )
        )

    async def get_rubric(request: Request, cid: uuid.UUID) -> Response:
        assignment_id = str(request.path_params["assignment_id"])
        row, text = await load_for_instruction(
            assignment_id,
            "judge_rubric_storage_id",
            "JudgeRubric",
            "No rubric configured for assignment",
            cid,
        )
        return render(
            JudgeRubricResponse(
                assignment_id=row["assignment_id"],
                judge_rubric_storage_id=row["judge_rubric_storage_id"],
                rubric_text=text,
                instructions_text=row["instructions_text"],
                grade_scale=row["grade_scale"],
                created_at=row["created_at"],
            )
        )

    # --- anchors ----------------------------------------------------------------------------

    async def anchor_summary(request: Request, cid: uuid.UUID) -> Response:
        assignment_id = str(request.path_params["assignment_id"])
        pool = state.require_pool()
        instruction = await fetch_instruction(pool, assignment_id)
        if instruction is None:
            raise not_found("assessment_instruction", assignment_id, cid)
        rows = await pool.fetch(
            "SELECT id, assignment_id, anchor_label, grade, grade_scale, text_storage_id, "
            "created_at FROM anchor_essay_references WHERE assignment_id = $1 ORDER BY id",
            assignment_id,
        )
        scale = instruction["grade_scale"]
        by_scale: dict[str, int] = {}
        for row in rows:
            by_scale[row["grade_scale"]] = by_scale.get(row["grade_scale"], 0) + 1
        items = [AnchorSummaryItem(**dict(row)) for row in rows if row["grade_scale"] == scale]
        return render(
            AnchorSummaryResponse(
                assignment_id=assignment_id,
                grade_scale=scale,
                anchor_count=len(items),
                anchors=items,
                anchor_count_total=len(rows),
                anchor_count_by_scale=by_scale,
            )
        )

    async def register_anchor(request: Request) -> Response:
        """A.6, step by step; its own flat ``{"error": str}`` bodies."""
        try:
            try:
                data = json.loads(await request.body())
            except ValueError:
                data = None
            if not isinstance(data, dict):
                return JSONResponse({"error": "Invalid JSON body"}, status_code=400)
            if not all(key in data for key in ("assignment_id", "grade", "essay_text")):
                return JSONResponse({"error": "Missing required fields"}, status_code=400)
            try:
                req = RegisterAnchorRequest.model_validate(data)
            except ValidationError as exc:
                return JSONResponse({"error": register_anchor_error_text(exc)}, status_code=400)
            pool = state.require_pool()
            instruction = await fetch_instruction(pool, req.assignment_id)
            if instruction is None:
                return JSONResponse(
                    {"error": f"Unknown assignment_id '{req.assignment_id}'"}, status_code=400
                )
            scale_id = instruction["grade_scale"] or FALLBACK_GRADE_SCALE
            try:
                get_scale(scale_id)
            except ValueError as exc:
                return JSONResponse({"error": str(exc)}, status_code=400)
            if not validate_grade_for_scale(req.grade, scale_id):
                return JSONResponse(
                    {"error": f"Invalid grade '{req.grade}' for scale '{scale_id}'"},
                    status_code=400,
                )
            storage_id = await state.require_content().store(req.essay_text)
            if not storage_id:
                return JSONResponse({"error": "Failed to store essay content"}, status_code=500)
            anchor_id = await upsert_anchor(
                pool,
                assignment_id=req.assignment_id,
                label=req.effective_label,
                grade=req.grade,
                grade_scale=scale_id,
                storage_id=storage_id,
            )
        except Exception:
            logger.exception("anchor registration failed")
            return JSONResponse({"error": "Internal server error"}, status_code=500)
        return render(
            RegisterAnchorResponse(
                anchor_id=anchor_id,
                storage_id=storage_id,
                grade_scale=scale_id,
                status="registered",
            ),
            status_code=201,
        )

    # --- health, metrics, test-only ---------------------------------------------------------

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
            pool = state.require_pool()
            body["tables"] = {
                "assessment_instructions": await pool.fetchval(
                    "SELECT count(*) FROM assessment_instructions"
                ),
                "anchor_essay_references": await pool.fetchval(
                    "SELECT count(*) FROM anchor_essay_references"
                ),
            }
        return JSONResponse(body, status_code=200 if ok else 503)

    async def metrics(request: Request) -> Response:
        ok = 1 if await database_ok() else 0
        text = f"# TYPE cj_api_database_up gauge\ncj_api_database_up {ok}\n"
        return PlainTextResponse(text, media_type="text/plain; version=0.0.4")

    async def test_get_faults(request: Request) -> Response:
        pool = state.require_pool()
        current = {name: (await read_faults(pool, name)).model_dump() for name in FAULT_SERVICES}
        return JSONResponse(current)

    async def test_set_faults(request: Request) -> Response:
        try:
            payload = json.loads(await request.body())
        except ValueError:
            payload = None
        if not isinstance(payload, dict) or payload.get("service") not in FAULT_SERVICES:
            expected = f"{{'service': one of {list(FAULT_SERVICES)}, 'faults': {{...}}}}"
            return JSONResponse({"error": f"Body must be {expected}"}, status_code=400)
        service: ServiceName = payload["service"]
        try:
            faults = FaultConfig.model_validate(payload.get("faults") or {})
        except ValidationError as exc:
            errors = json.loads(exc.json())
            return JSONResponse({"error": "Invalid FaultConfig", "details": errors}, 400)
        await write_faults(state.require_pool(), service, faults)
        return JSONResponse({"service": service, "faults": faults.model_dump()})

    async def test_clear_faults(request: Request) -> Response:
        requested = request.query_params.get("service")
        if requested is not None and requested not in FAULT_SERVICES:
            return JSONResponse({"error": f"Unknown service '{requested}'"}, status_code=400)
        services = [s for s in FAULT_SERVICES if requested in (None, s)]
        for service in services:
            await write_faults(state.require_pool(), service, FaultConfig())
        return JSONResponse({"status": "cleared", "services": services})

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
        if path.startswith("/api/v1/anchors"):
            return JSONResponse({"error": "Internal server error"}, status_code=500)
        return generic_500()

    prefix = "/admin/v1"
    routes = [
        Route("/api/v1/anchors/register", register_anchor, methods=["POST"]),
        Route(
            f"{prefix}/anchors/assignment/{{assignment_id}}",
            admin("anchor_summary", anchor_summary),
            methods=["GET"],
        ),
        Route(
            f"{prefix}/assessment-instructions",
            admin("upsert_assessment_instruction", upsert_instructions),
            methods=["POST"],
        ),
        Route(
            f"{prefix}/assessment-instructions",
            admin("list_assessment_instructions", list_instructions),
            methods=["GET"],
        ),
        Route(
            f"{prefix}/assessment-instructions/assignment/{{assignment_id}}",
            admin("get_assessment_instruction", get_instruction),
            methods=["GET"],
        ),
        Route(
            f"{prefix}/assessment-instructions/assignment/{{assignment_id}}",
            admin("delete_assessment_instruction", delete_by_assignment),
            methods=["DELETE"],
        ),
        Route(
            f"{prefix}/assessment-instructions/course/{{course_id}}",
            admin("delete_assessment_instruction", delete_by_course),
            methods=["DELETE"],
        ),
        Route(
            f"{prefix}/student-prompts",
            admin("upload_student_prompt", upload_prompt),
            methods=["POST"],
        ),
        Route(
            f"{prefix}/student-prompts/assignment/{{assignment_id}}",
            admin("get_student_prompt", get_prompt),
            methods=["GET"],
        ),
        Route(
            f"{prefix}/judge-rubrics",
            admin("upload_judge_rubric", upload_rubric),
            methods=["POST"],
        ),
        Route(
            f"{prefix}/judge-rubrics/assignment/{{assignment_id}}",
            admin("get_judge_rubric", get_rubric),
            methods=["GET"],
        ),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/healthz/live", healthz_live, methods=["GET"]),
        Route("/healthz/ready", healthz_ready, methods=["GET"]),
        Route("/healthz/database", healthz_database, methods=["GET"]),
        Route("/healthz/database/summary", healthz_database_summary, methods=["GET"]),
        Route("/metrics", metrics, methods=["GET"]),
        Route("/_test/faults", test_get_faults, methods=["GET"]),
        Route("/_test/faults", test_set_faults, methods=["POST"]),
        Route("/_test/faults", test_clear_faults, methods=["DELETE"]),
    ]
    middleware = [
        Middleware(
            HttpFaultMiddleware,
            service="cj-api",
            pool=lambda: state.pool,
            error_response=fault_500,
        )
    ]
    return Starlette(routes=routes, middleware=middleware, lifespan=lifespan)
