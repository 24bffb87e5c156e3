"""The CJ API's unauthenticated ``POST /api/v1/anchors/register`` (contract A.6).

Unlike ``/admin/v1`` it answers errors with its own flat ``{"error": str}`` bodies.
"""

from __future__ import annotations

import logging

from pydantic import ValidationError
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from pytest_eng5.contracts.admin import (
    RegisterAnchorRequest,
    RegisterAnchorResponse,
    register_anchor_error_text,
)
from pytest_eng5.contracts.grade_scales import get_scale, validate_grade_for_scale
from pytest_eng5.reference.cj_http import CJState, flat_error, read_json
from pytest_eng5.reference.cj_repository import fetch_instruction, upsert_anchor

logger = logging.getLogger(__name__)

FALLBACK_GRADE_SCALE = "swedish_8_anchor"
REGISTER_PATH = "/api/v1/anchors/register"
ANCHOR_ROUTES_PREFIX = "/api/v1/anchors"
INTERNAL_ERROR = "Internal server error"


def anchor_routes(state: CJState) -> list[Route]:
    """The anchor registration route, served from ``state``'s pool and Content Service client."""

    async def register_anchor(request: Request) -> Response:
        """A.6, step by step."""
        try:
            data = await read_json(request)
            if not isinstance(data, dict):
                return flat_error("Invalid JSON body", 400)
            if not all(key in data for key in ("assignment_id", "grade", "essay_text")):
                return flat_error("Missing required fields", 400)
            try:
                req = RegisterAnchorRequest.model_validate(data)
            except ValidationError as exc:
                return flat_error(register_anchor_error_text(exc), 400)
            pool = state.require_pool()
            instruction = await fetch_instruction(pool, req.assignment_id)
            if instruction is None:
                return flat_error(f"Unknown assignment_id '{req.assignment_id}'", 400)
            scale_id = instruction["grade_scale"] or FALLBACK_GRADE_SCALE
            try:
                get_scale(scale_id)
            except ValueError as exc:
                return flat_error(str(exc), 400)
            if not validate_grade_for_scale(req.grade, scale_id):
                return flat_error(f"Invalid grade '{req.grade}' for scale '{scale_id}'", 400)
            storage_id = await state.require_content().store(req.essay_text)
            if not storage_id:
                return flat_error("Failed to store essay content", 500)
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
            return flat_error(INTERNAL_ERROR, 500)
        return state.render(
            RegisterAnchorResponse(
                anchor_id=anchor_id,
                storage_id=storage_id,
                grade_scale=scale_id,
                status="registered",
            ),
            status_code=201,
        )

    return [Route(REGISTER_PATH, register_anchor, methods=["POST"])]
