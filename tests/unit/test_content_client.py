"""Content Service client: URL normalisation, upload errors, retries (contract C.1)."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
import respx

from pytest_eng5.core.urls import content_endpoint
from pytest_eng5.errors import ConfigurationError, UploadError
from pytest_eng5.runner.content import ContentClient
from pytest_eng5.runner.http_retry import RetryPolicy

UPLOAD_URL = "http://127.0.0.1:8001/v1/content"
STORAGE_ID = "0123456789abcdef0123456789abcdef"
CORRELATION = "3b0f3f4e-8a0e-4b7e-9d1c-2f6f1c1f5a10"
ATTEMPTS = 3


def _client() -> ContentClient:
    return ContentClient(
        UPLOAD_URL, retry=RetryPolicy(attempts=ATTEMPTS, base_delay=0.0), timeout=2.0
    )


@pytest.fixture
def mock() -> Iterator[respx.MockRouter]:
    with respx.mock(assert_all_called=False) as router:
        yield router


@pytest.mark.parametrize(
    "given",
    [
        "http://127.0.0.1:8001",
        "http://127.0.0.1:8001/",
        "http://127.0.0.1:8001/v1/content",
        " http://127.0.0.1:8001/v1/content/ ",
    ],
)
def test_url_normalised_with_or_without_suffix(given: str) -> None:
    assert content_endpoint(given) == UPLOAD_URL


@pytest.mark.parametrize("given", ["", "localhost:8001"])
def test_bad_url_is_configuration_error(given: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        content_endpoint(given)
    assert "CONTENT_SERVICE_URL" in caught.value.next_step


@pytest.mark.asyncio
async def test_upload_sends_raw_body_and_returns_storage_id(mock: respx.MockRouter) -> None:
    route = mock.post(UPLOAD_URL).respond(
        201, json={"storage_id": STORAGE_ID, "correlation_id": CORRELATION}
    )
    async with _client() as client:
        storage_id = await client.upload("Hej världen".encode(), name="essay_1.docx")
    assert storage_id == STORAGE_ID
    request = route.calls.last.request
    assert request.content == "Hej världen".encode()
    assert request.headers["Content-Type"] == "application/octet-stream"


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("status", "body"),
    [
        (400, {"error": {"error_code": "VALIDATION_ERROR", "message": "empty body"}}),
        (200, {"storage_id": STORAGE_ID, "correlation_id": CORRELATION}),
        (404, {"error": "nope"}),
    ],
)
async def test_non_201_is_upload_error_naming_file_status_url(
    mock: respx.MockRouter, status: int, body: dict[str, object]
) -> None:
    route = mock.post(UPLOAD_URL).respond(status, json=body)
    async with _client() as client:
        with pytest.raises(UploadError) as caught:
            await client.upload(b"text", name="essay_7.docx")
    assert route.call_count == 1  # only 5xx is retried
    message = caught.value.message
    assert "essay_7.docx" in message
    assert f"HTTP {status}" in message
    assert UPLOAD_URL in message
    assert caught.value.failed == ("essay_7.docx",)


@pytest.mark.asyncio
async def test_5xx_retried_then_recovers(mock: respx.MockRouter) -> None:
    route = mock.post(UPLOAD_URL).mock(
        side_effect=[
            httpx.Response(503),
            httpx.ConnectError("refused"),
            httpx.Response(201, json={"storage_id": STORAGE_ID, "correlation_id": CORRELATION}),
        ]
    )
    async with _client() as client:
        assert await client.upload(b"text", name="e.docx") == STORAGE_ID
    assert route.call_count == 3


@pytest.mark.asyncio
async def test_5xx_exhausted_is_upload_error(mock: respx.MockRouter) -> None:
    route = mock.post(UPLOAD_URL).respond(
        500, json={"error": {"error_code": "UNKNOWN_ERROR", "message": "disk full"}}
    )
    async with _client() as client:
        with pytest.raises(UploadError) as caught:
            await client.upload(b"text", name="e.docx")
    assert route.call_count == ATTEMPTS
    assert "HTTP 500 after 3 attempt(s)" in caught.value.message
    assert "disk full" in caught.value.message


@pytest.mark.asyncio
async def test_connection_error_exhausted_is_upload_error(mock: respx.MockRouter) -> None:
    mock.post(UPLOAD_URL).mock(side_effect=httpx.ConnectTimeout("slow"))
    async with _client() as client:
        with pytest.raises(UploadError) as caught:
            await client.upload(b"text", name="e.docx")
    assert "ConnectTimeout" in caught.value.message
    assert UPLOAD_URL in caught.value.message
    assert "CONTENT_SERVICE_URL" in caught.value.next_step


@pytest.mark.asyncio
@pytest.mark.parametrize(
    "response",
    [
        httpx.Response(201, text="created"),
        httpx.Response(201, json={"correlation_id": CORRELATION}),
        httpx.Response(201, json={"storage_id": "not-hex", "correlation_id": CORRELATION}),
    ],
)
async def test_201_without_usable_storage_id_is_upload_error(
    mock: respx.MockRouter, response: httpx.Response
) -> None:
    mock.post(UPLOAD_URL).mock(return_value=response)
    async with _client() as client:
        with pytest.raises(UploadError) as caught:
            await client.upload(b"text", name="e.docx")
    assert "no usable storage_id" in caught.value.message


@pytest.mark.asyncio
async def test_empty_content_refused_before_sending(mock: respx.MockRouter) -> None:
    route = mock.post(UPLOAD_URL).respond(201, json={})
    async with _client() as client:
        with pytest.raises(UploadError) as caught:
            await client.upload(b"", name="blank.docx")
    assert route.call_count == 0
    assert "blank.docx" in caught.value.message


@pytest.mark.asyncio
async def test_exists_maps_200_and_404(mock: respx.MockRouter) -> None:
    mock.get(f"{UPLOAD_URL}/{STORAGE_ID}").respond(200, content=b"text")
    mock.get(f"{UPLOAD_URL}/{'f' * 32}").respond(404, json={"error": {}})
    async with _client() as client:
        assert await client.exists(STORAGE_ID) is True
        assert await client.exists("f" * 32) is False
