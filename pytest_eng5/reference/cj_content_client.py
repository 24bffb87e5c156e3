"""CJ's client of the Content Service: stores texts as ``text/plain``, fetches them back.

The CJ API's admin routes and the worker's intake (:mod:`.intake`) both use it, as HuleEdu's CJ
Assessment Service has one content client.
"""

from __future__ import annotations

import uuid

import httpx


class ContentServiceError(Exception):
    """The Content Service could not store or return a blob."""


class ContentClient:
    """CJ's client of the Content Service: stores texts as ``text/plain``, fetches them back."""

    def __init__(self, endpoint: str, client: httpx.AsyncClient) -> None:
        self.endpoint = endpoint.rstrip("/")
        self._client = client

    async def store(self, text: str, correlation_id: uuid.UUID | None = None) -> str | None:
        """Upload ``text``; the new blob's storage id, or None when the answer names none."""
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
        """The text of blob ``storage_id`` (decoded by its charset, UTF-8 when it names none)."""
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
