"""Content Service HTTP models (contract C.1, C.2)."""

from __future__ import annotations

from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from pytest_eng5.contracts.events import ErrorDetail

STORAGE_ID_PATTERN = r"^[0-9a-f]{32}$"


class ContentUploadResponse(BaseModel):
    """201 body of ``POST /v1/content``: a fresh ``uuid4().hex`` per upload."""

    model_config = ConfigDict(extra="ignore")

    storage_id: str = Field(pattern=STORAGE_ID_PATTERN)
    correlation_id: UUID | str = Field(union_mode="left_to_right")


class ContentErrorDetail(ErrorDetail):
    """The ErrorDetail dump in Content Service error bodies; 500s may add ``content_id``."""

    content_id: str | None = None


class ContentErrorBody(BaseModel):
    """``{"error": ContentErrorDetail}`` for 400/404/500."""

    model_config = ConfigDict(extra="ignore")

    error: ContentErrorDetail
