"""Content Service client (contract C): ``POST /v1/content`` with a raw body → ``storage_id``.

HuleEdu's ``CONTENT_SERVICE_URL`` is the full upload URL (``http://host:8001/v1/content``); a
base URL without the suffix is accepted too and normalised.
"""

from __future__ import annotations

from types import TracebackType
from typing import Self

import httpx
from pydantic import ValidationError

from pytest_eng5.contracts import ContentUploadResponse
from pytest_eng5.core.urls import content_endpoint
from pytest_eng5.errors import UploadError
from pytest_eng5.runner.http_retry import RetryPolicy, send_with_retries

DEFAULT_UPLOAD_TIMEOUT_SECONDS = 60.0
_BODY_EXCERPT = 200
_UPLOAD_NEXT_STEP = (
    "check that the Content Service is running and CONTENT_SERVICE_URL points at it "
    "(e.g. http://localhost:8001/v1/content), then re-run"
)


class ContentClient:
    """Async Content Service client (use ``async with``); uploads return the ``storage_id``."""

    def __init__(
        self,
        url: str,
        *,
        timeout: float = DEFAULT_UPLOAD_TIMEOUT_SECONDS,
        retry: RetryPolicy | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.upload_url = content_endpoint(url)
        self.retry = retry or RetryPolicy()
        self._http = httpx.AsyncClient(timeout=httpx.Timeout(timeout), transport=transport)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the underlying HTTP connection pool."""
        await self._http.aclose()

    async def upload(
        self, data: bytes, *, content_type: str = "application/octet-stream", name: str
    ) -> str:
        """Store ``data`` and return its 32-hex ``storage_id`` (201 required).

        Retries 5xx answers and transport errors within the policy; every failure is an
        :class:`UploadError` naming ``name``, the status and the URL.
        """
        url = self.upload_url
        if not data:
            raise self._error(name, "the content is empty (the Content Service rejects it)", url)

        async def attempt() -> httpx.Response:
            return await self._http.post(url, content=data, headers={"Content-Type": content_type})

        try:
            response = await send_with_retries(attempt, self.retry, description=f"upload {name}")
        except httpx.TransportError as error:
            raise self._error(
                name,
                f"no answer after {self.retry.attempts} attempt(s) "
                f"({type(error).__name__}: {error})",
                url,
            ) from error
        if response.status_code != 201:
            tries = (
                f" after {self.retry.attempts} attempt(s)" if response.status_code >= 500 else ""
            )
            raise self._error(
                name,
                f"HTTP {response.status_code}{tries}: {response.text[:_BODY_EXCERPT]!r}",
                url,
            )
        try:
            body = ContentUploadResponse.model_validate(response.json())
        except ValueError as error:  # JSON decode errors and ValidationError alike
            reason = (
                f"{error.errors()[0]['msg']} at {error.errors()[0]['loc']}"
                if isinstance(error, ValidationError)
                else "not JSON"
            )
            raise self._error(
                name,
                f"HTTP 201 but the body has no usable storage_id ({reason}): "
                f"{response.text[:_BODY_EXCERPT]!r}",
                url,
            ) from error
        return body.storage_id

    async def exists(self, storage_id: str) -> bool:
        """``GET /v1/content/<id>``: True on 200, False on 404 (R7 phase 3 verification)."""
        url = f"{self.upload_url}/{storage_id}"
        try:
            response = await send_with_retries(
                lambda: self._http.get(url), self.retry, description=f"GET {url}"
            )
        except httpx.TransportError as error:
            raise self._error(
                storage_id, f"cannot check it ({type(error).__name__})", url
            ) from error
        if response.status_code == 200:
            return True
        if response.status_code in (400, 404):
            return False
        raise self._error(
            storage_id,
            f"checking it answered HTTP {response.status_code}: {response.text[:_BODY_EXCERPT]!r}",
            url,
        )

    @staticmethod
    def _error(name: str, reason: str, url: str) -> UploadError:
        return UploadError(
            f"Upload of {name} to {url} failed: {reason}",
            next_step=_UPLOAD_NEXT_STEP,
            failed=(name,),
        )
