"""Reading the CJ service's HTTP answers: JSON bodies, error bodies, response models.

Contract A.4 (structured admin errors), A.6 (flat ``{"error": str}``) and H.2 (HuleEdu's generic
500). Every failure names the URL, the status and the start of the body.
"""

from __future__ import annotations

from typing import Any, TypeVar

import httpx
from pydantic import BaseModel, ValidationError

from pytest_eng5.contracts import (
    AdminErrorBody,
    FlatErrorBody,
    GenericServerErrorBody,
    parse_admin_error,
)
from pytest_eng5.errors import PreflightError

ModelT = TypeVar("ModelT", bound=BaseModel)
ErrorBody = AdminErrorBody | GenericServerErrorBody | FlatErrorBody

BODY_EXCERPT = 200


def excerpt(text: str) -> str:
    """The start of a body, short enough for an error message."""
    return text[:BODY_EXCERPT]


def json_or_raise(response: httpx.Response, url: str, *, what: str = "CJ") -> Any:
    """The JSON body, or a :class:`PreflightError` quoting what came instead."""
    try:
        return response.json()
    except ValueError as error:
        raise PreflightError(
            f"{what}: {url} answered HTTP {response.status_code} with a body that is not JSON; "
            f"it starts: {excerpt(response.text)!r}",
            next_step="check that CJ_SERVICE_URL points at the CJ Assessment Service "
            "(not a proxy or another service)",
            url=url,
        ) from error


def validate_body(model: type[ModelT], body: Any, url: str, response: httpx.Response) -> ModelT:
    """``body`` as ``model``, or a :class:`PreflightError` naming the first mismatch."""
    try:
        return model.model_validate(body)
    except ValidationError as error:
        first = error.errors()[0]
        location = ".".join(str(part) for part in first["loc"]) or "(body)"
        raise PreflightError(
            f"{url} answered HTTP {response.status_code} with JSON that is not a "
            f"{model.__name__} ({location}: {first['msg']}); body starts: "
            f"{excerpt(response.text)!r}",
            next_step="check that CJ_SERVICE_URL points at the CJ Assessment Service and "
            "that its version matches the HuleEdu contract",
            url=url,
        ) from error


def parse_error_body(response: httpx.Response) -> ErrorBody | None:
    """The error body in one of CJ's three shapes, or None when it is none of them."""
    try:
        body = response.json()
    except ValueError:
        return None
    return parse_admin_error(body)


def error_detail(parsed: ErrorBody | None, response: httpx.Response) -> str:
    """One line for an error message: the parsed body, else the start of the raw body."""
    if isinstance(parsed, AdminErrorBody):
        error = parsed.error
        extra = f" {error.details}" if error.details else ""
        return f"{error.code}: {error.message}{extra}"
    if isinstance(parsed, GenericServerErrorBody):
        return f"{parsed.error}: {parsed.message}"
    if isinstance(parsed, FlatErrorBody):
        return parsed.error
    return repr(excerpt(response.text)) if response.text else "(empty body)"
