"""CJ Assessment Service HTTP models: admin routes (A.5), anchor registration (A.6), errors (A.4).

Response models are read from a live HuleEdu, so their datetimes accept HTTP-dates (H.3) and
unknown fields are ignored. Request models validate the way HuleEdu does.
"""

from __future__ import annotations

from typing import Any, Self
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from pytest_eng5.contracts.enums import ContextOrigin
from pytest_eng5.contracts.grade_scales import get_scale
from pytest_eng5.contracts.timeparse import TolerantDatetime

REGISTER_ANCHOR_MIN_TEXT = 100


class _Response(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)


class _Request(BaseModel):
    """HuleEdu's admin request models strip whitespace on every string."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True, str_strip_whitespace=True)


# --- assessment instructions --------------------------------------------------------------


class AssessmentInstructionUpsertRequest(_Request):
    """Body of ``POST /admin/v1/assessment-instructions``."""

    assignment_id: str | None = None
    course_id: str | None = None
    instructions_text: str = Field(min_length=10)
    grade_scale: str
    context_origin: str = ContextOrigin.RESEARCH_EXPERIMENT.value
    student_prompt_storage_id: str | None = Field(default=None, max_length=255)

    @field_validator("grade_scale")
    @classmethod
    def _registered_scale(cls, value: str) -> str:
        get_scale(value)  # ValueError names the available scales
        return value

    @model_validator(mode="after")
    def _assignment_xor_course(self) -> Self:
        if bool(self.assignment_id) == bool(self.course_id):
            raise ValueError("Provide exactly one of assignment_id or course_id")
        return self


class AssessmentInstructionResponse(_Response):
    id: int
    assignment_id: str | None = None
    course_id: str | None = None
    instructions_text: str
    grade_scale: str
    context_origin: str = ContextOrigin.RESEARCH_EXPERIMENT.value
    student_prompt_storage_id: str | None = None
    created_at: TolerantDatetime


class AssessmentInstructionListResponse(_Response):
    items: list[AssessmentInstructionResponse]
    total: int = Field(ge=0)
    page: int = Field(ge=1)
    page_size: int = Field(ge=1, le=200)


class InstructionDeletedResponse(_Response):
    """``DELETE .../assignment/<id>`` or ``.../course/<id>`` → ``{"status": "deleted", ...}``."""

    status: str
    assignment_id: str | None = None
    course_id: str | None = None


# --- student prompts and judge rubrics ----------------------------------------------------


class StudentPromptUploadRequest(_Request):
    assignment_id: str = Field(min_length=1)
    prompt_text: str = Field(min_length=10)


class StudentPromptResponse(_Response):
    assignment_id: str
    student_prompt_storage_id: str
    prompt_text: str
    instructions_text: str
    grade_scale: str
    created_at: TolerantDatetime


class JudgeRubricUploadRequest(_Request):
    assignment_id: str = Field(min_length=1)
    rubric_text: str = Field(min_length=10)


class JudgeRubricResponse(_Response):
    assignment_id: str
    judge_rubric_storage_id: str
    rubric_text: str
    instructions_text: str
    grade_scale: str
    created_at: TolerantDatetime


# --- anchors ------------------------------------------------------------------------------


class AnchorSummaryItem(_Response):
    id: int
    assignment_id: str | None = None
    anchor_label: str
    grade: str
    grade_scale: str
    text_storage_id: str
    created_at: TolerantDatetime


class AnchorSummaryResponse(_Response):
    """``GET /admin/v1/anchors/assignment/<id>``; counts are for the instruction's scale only."""

    assignment_id: str = Field(min_length=1)
    grade_scale: str
    anchor_count: int = Field(ge=0)
    anchors: list[AnchorSummaryItem]
    anchor_count_total: int = Field(ge=0)
    anchor_count_by_scale: dict[str, int] = Field(default_factory=dict)


class RegisterAnchorRequest(BaseModel):
    """Body of ``POST /api/v1/anchors/register`` (no whitespace stripping, as upstream)."""

    model_config = ConfigDict(extra="ignore")

    assignment_id: str
    grade: str
    anchor_label: str | None = None
    essay_text: str

    @field_validator("assignment_id", "grade")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("Value cannot be empty")
        return value

    @field_validator("essay_text")
    @classmethod
    def _long_enough(cls, value: str) -> str:
        if len(value) < REGISTER_ANCHOR_MIN_TEXT:
            raise ValueError(f"Essay text too short (min {REGISTER_ANCHOR_MIN_TEXT} chars)")
        return value

    @property
    def effective_label(self) -> str:
        """The label CJ stores: ``anchor_label`` or, when absent, the grade."""
        return self.anchor_label or self.grade


def register_anchor_error_text(error: ValidationError) -> str:
    """The ``{"error": ...}`` text of a 400 from step 3 of A.6: messages joined by ``"; "``."""
    return "; ".join(str(item["msg"]) for item in error.errors())


class RegisterAnchorResponse(_Response):
    anchor_id: int
    storage_id: str
    grade_scale: str
    status: str = "registered"


# --- error bodies (A.4) -------------------------------------------------------------------


class FlatErrorBody(_Response):
    """``{"error": "<message>"}`` — anchor registration's own 400/500 body."""

    error: str


class AdminErrorDetail(_Response):
    code: str
    message: str
    correlation_id: UUID | str | None = Field(default=None, union_mode="left_to_right")
    service: str | None = None
    timestamp: TolerantDatetime | None = None
    details: dict[str, Any] = Field(default_factory=dict)


class AdminErrorBody(_Response):
    """HuleEduError body the admin routes are meant to return (mapped 400/401/403/404/5xx)."""

    error: AdminErrorDetail


class GenericServerErrorBody(_Response):
    """The catch-all 500 every admin error collapses to at HuleEdu HEAD (A.4, H.2)."""

    error: str = "Internal server error"
    message: str = "An unexpected error occurred"
    service: str = "cj_assessment_service"


def parse_admin_error(body: Any) -> AdminErrorBody | GenericServerErrorBody | FlatErrorBody | None:
    """Classify an error response body; ``None`` when it matches none of the known shapes."""
    for model in (AdminErrorBody, GenericServerErrorBody, FlatErrorBody):
        if model is GenericServerErrorBody and not (
            isinstance(body, dict) and isinstance(body.get("error"), str) and "message" in body
        ):
            continue
        try:
            return model.model_validate(body)
        except ValidationError:
            continue
    return None
