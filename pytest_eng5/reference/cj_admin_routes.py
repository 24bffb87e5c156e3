"""The CJ API's ``/admin/v1`` routes (contract A.5): instructions, prompts, rubrics, anchors.

Every route needs an admin JWT and answers errors with HuleEdu's structured bodies (A.4), or
its generic 500 for anything unexpected.
"""

from __future__ import annotations

import logging
import uuid

import asyncpg
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from pytest_eng5.contracts.admin import (
    AnchorSummaryItem,
    AnchorSummaryResponse,
    AssessmentInstructionListResponse,
    AssessmentInstructionUpsertRequest,
    JudgeRubricResponse,
    JudgeRubricUploadRequest,
    StudentPromptResponse,
    StudentPromptUploadRequest,
)
from pytest_eng5.reference import cj_repository as repo
from pytest_eng5.reference.admin_auth import (
    AdminApiError,
    correlation_id_of,
    generic_500,
    not_found,
    require_admin,
    validation_error,
)
from pytest_eng5.reference.cj_content_client import ContentServiceError
from pytest_eng5.reference.cj_http import (
    AdminHandler,
    CJState,
    Handler,
    query_int,
    read_json_object,
    validate_request,
)

logger = logging.getLogger(__name__)

ADMIN_PREFIX = "/admin/v1"


def admin_route(state: CJState, operation: str, handler: AdminHandler) -> Handler:
    """Wrap ``handler`` with the admin check and the A.4 error mapping."""

    async def run(request: Request) -> Response:
        cid = correlation_id_of(request)
        try:
            require_admin(request, state.jwt, cid)
            return await handler(request, cid)
        except AdminApiError as exc:
            return exc.response()
        except ContentServiceError as exc:
            logger.warning("%s: %s", operation, exc)
            return AdminApiError("CONTENT_SERVICE_ERROR", str(exc), correlation_id=cid).response()
        except Exception:
            logger.exception("%s failed", operation)
            return generic_500()

    return run


def admin_routes(state: CJState) -> list[Route]:
    """The ``/admin/v1`` routes, served from ``state``'s pool and Content Service client."""

    # --- assessment instructions ----------------------------------------------------------

    async def upsert_instructions(request: Request, cid: uuid.UUID) -> Response:
        payload = await read_json_object(request, cid)
        req = validate_request(AssessmentInstructionUpsertRequest, payload, cid)
        try:
            row = await repo.upsert_instruction(state.require_pool(), req)
        except repo.ImmutableFieldError as exc:
            raise validation_error(exc.field, str(exc), cid) from None
        return state.render(repo.instruction_response(row))

    async def list_instructions(request: Request, cid: uuid.UUID) -> Response:
        page = max(1, query_int(request, "page", 1, cid))
        page_size = max(1, min(200, query_int(request, "page_size", 50, cid)))
        grade_scale = request.query_params.get("grade_scale") or None
        total, rows = await repo.list_instructions(
            state.require_pool(), grade_scale, limit=page_size, offset=(page - 1) * page_size
        )
        return state.render(
            AssessmentInstructionListResponse(
                items=[repo.instruction_response(row) for row in rows],
                total=total,
                page=page,
                page_size=page_size,
            )
        )

    async def get_instruction(request: Request, cid: uuid.UUID) -> Response:
        assignment_id = str(request.path_params["assignment_id"])
        row = await repo.fetch_instruction(state.require_pool(), assignment_id)
        if row is None:
            raise not_found("assessment_instruction", assignment_id, cid)
        return state.render(repo.instruction_response(row))

    async def delete_by_assignment(request: Request, cid: uuid.UUID) -> Response:
        assignment_id = str(request.path_params["assignment_id"])
        if not await repo.delete_instruction_of_assignment(state.require_pool(), assignment_id):
            raise not_found("assessment_instruction", assignment_id, cid)
        return JSONResponse({"status": "deleted", "assignment_id": assignment_id})

    async def delete_by_course(request: Request, cid: uuid.UUID) -> Response:
        course_id = str(request.path_params["course_id"])
        if not await repo.delete_instructions_of_course(state.require_pool(), course_id):
            raise not_found("assessment_instruction_course", course_id, cid)
        return JSONResponse({"status": "deleted", "course_id": course_id})

    # --- student prompts and judge rubrics ------------------------------------------------

    async def store_for_instruction(
        assignment_id: str, text: str, column: str, cid: uuid.UUID
    ) -> asyncpg.Record:
        pool = state.require_pool()
        if await repo.fetch_instruction(pool, assignment_id) is None:
            raise not_found("AssessmentInstruction", assignment_id, cid)
        storage_id = await state.require_content().store(text, cid)
        if not storage_id:
            raise AdminApiError(
                "PROCESSING_ERROR", "Content Service did not return storage_id", correlation_id=cid
            )
        row = await repo.set_instruction_storage_id(pool, assignment_id, column, storage_id)
        if row is None:  # deleted between the check and the update
            raise not_found("AssessmentInstruction", assignment_id, cid)
        return row

    async def load_for_instruction(
        assignment_id: str, column: str, resource_type: str, message: str, cid: uuid.UUID
    ) -> tuple[asyncpg.Record, str]:
        row = await repo.fetch_instruction(state.require_pool(), assignment_id)
        if row is None:
            raise not_found("AssessmentInstruction", assignment_id, cid)
        if not row[column]:
            raise not_found(resource_type, assignment_id, cid, message)
        return row, await state.require_content().fetch(row[column], cid)

    def prompt_response(row: asyncpg.Record, text: str) -> Response:
        return state.render(
            StudentPromptResponse(
                assignment_id=row["assignment_id"],
                student_prompt_storage_id=row["student_prompt_storage_id"],
                prompt_text=text,
                instructions_text=row["instructions_text"],
                grade_scale=row["grade_scale"],
                created_at=row["created_at"],
            )
        )

    def rubric_response(row: asyncpg.Record, text: str) -> Response:
        return state.render(
            JudgeRubricResponse(
                assignment_id=row["assignment_id"],
                judge_rubric_storage_id=row["judge_rubric_storage_id"],
                rubric_text=text,
                instructions_text=row["instructions_text"],
                grade_scale=row["grade_scale"],
                created_at=row["created_at"],
            )
        )

    async def upload_prompt(request: Request, cid: uuid.UUID) -> Response:
        payload = await read_json_object(request, cid)
        req = validate_request(StudentPromptUploadRequest, payload, cid)
        row = await store_for_instruction(
            req.assignment_id, req.prompt_text, "student_prompt_storage_id", cid
        )
        return prompt_response(row, req.prompt_text)

    async def get_prompt(request: Request, cid: uuid.UUID) -> Response:
        assignment_id = str(request.path_params["assignment_id"])
        row, text = await load_for_instruction(
            assignment_id,
            "student_prompt_storage_id",
            "StudentPrompt",
            "No prompt configured for assignment",
            cid,
        )
        return prompt_response(row, text)

    async def upload_rubric(request: Request, cid: uuid.UUID) -> Response:
        payload = await read_json_object(request, cid)
        req = validate_request(JudgeRubricUploadRequest, payload, cid)
        row = await store_for_instruction(
            req.assignment_id, req.rubric_text, "judge_rubric_storage_id", cid
        )
        return rubric_response(row, req.rubric_text)

    async def get_rubric(request: Request, cid: uuid.UUID) -> Response:
        assignment_id = str(request.path_params["assignment_id"])
        row, text = await load_for_instruction(
            assignment_id,
            "judge_rubric_storage_id",
            "JudgeRubric",
            "No rubric configured for assignment",
            cid,
        )
        return rubric_response(row, text)

    # --- anchor summary -------------------------------------------------------------------

    async def anchor_summary(request: Request, cid: uuid.UUID) -> Response:
        assignment_id = str(request.path_params["assignment_id"])
        pool = state.require_pool()
        instruction = await repo.fetch_instruction(pool, assignment_id)
        if instruction is None:
            raise not_found("assessment_instruction", assignment_id, cid)
        rows = await repo.fetch_anchors(pool, assignment_id)
        scale = instruction["grade_scale"]
        by_scale: dict[str, int] = {}
        for row in rows:
            by_scale[row["grade_scale"]] = by_scale.get(row["grade_scale"], 0) + 1
        items = [AnchorSummaryItem(**dict(row)) for row in rows if row["grade_scale"] == scale]
        return state.render(
            AnchorSummaryResponse(
                assignment_id=assignment_id,
                grade_scale=scale,
                anchor_count=len(items),
                anchors=items,
                anchor_count_total=len(rows),
                anchor_count_by_scale=by_scale,
            )
        )

    def route(path: str, method: str, operation: str, handler: AdminHandler) -> Route:
        return Route(
            f"{ADMIN_PREFIX}{path}", admin_route(state, operation, handler), methods=[method]
        )

    by_assignment = "assignment/{assignment_id}"
    return [
        route(f"/anchors/{by_assignment}", "GET", "anchor_summary", anchor_summary),
        route(
            "/assessment-instructions", "POST", "upsert_assessment_instruction", upsert_instructions
        ),
        route("/assessment-instructions", "GET", "list_assessment_instructions", list_instructions),
        route(
            f"/assessment-instructions/{by_assignment}",
            "GET",
            "get_assessment_instruction",
            get_instruction,
        ),
        route(
            f"/assessment-instructions/{by_assignment}",
            "DELETE",
            "delete_assessment_instruction",
            delete_by_assignment,
        ),
        route(
            "/assessment-instructions/course/{course_id}",
            "DELETE",
            "delete_assessment_instruction",
            delete_by_course,
        ),
        route("/student-prompts", "POST", "upload_student_prompt", upload_prompt),
        route(f"/student-prompts/{by_assignment}", "GET", "get_student_prompt", get_prompt),
        route("/judge-rubrics", "POST", "upload_judge_rubric", upload_rubric),
        route(f"/judge-rubrics/{by_assignment}", "GET", "get_judge_rubric", get_rubric),
    ]
