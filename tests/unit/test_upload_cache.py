"""R7 upload cache: reuse, force, invalidation, corruption, resume, concurrent writers."""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx

from pytest_eng5.errors import ConfigurationError, UploadError
from pytest_eng5.runner.cached_upload import UploadItem, UploadOutcome, upload_with_cache
from pytest_eng5.runner.content import ContentClient
from pytest_eng5.runner.http_retry import RetryPolicy
from pytest_eng5.runner.upload_cache import SCHEMA_VERSION, CacheEntry, UploadCache

URL = "http://127.0.0.1:8001/v1/content"
OTHER_URL = "http://127.0.0.1:8002/v1/content"


class FakeContentService:
    """respx side effect: hands out fresh ids; fails the bodies listed in ``fail_bodies``."""

    def __init__(self) -> None:
        self.uploads: list[bytes] = []
        self.fail_bodies: set[bytes] = set()
        self._lock = threading.Lock()

    def __call__(self, request: httpx.Request) -> httpx.Response:
        body = request.content
        if body in self.fail_bodies:
            return httpx.Response(400, json={"error": {"error_code": "VALIDATION_ERROR"}})
        with self._lock:
            self.uploads.append(body)
            number = len(self.uploads)
        return httpx.Response(
            201,
            json={"storage_id": f"{number:032x}", "correlation_id": f"corr-{number}"},
        )


@pytest.fixture
def service() -> Iterator[FakeContentService]:
    fake = FakeContentService()
    with respx.mock(assert_all_called=False) as router:
        router.post(URL).mock(side_effect=fake)
        router.post(OTHER_URL).mock(side_effect=fake)
        yield fake


def _items(count: int, prefix: str = "essay") -> list[UploadItem]:
    return [
        UploadItem.from_text(f"{prefix}_{i}.docx", f"{prefix} text number {i}")
        for i in range(count)
    ]


def _client(url: str = URL) -> ContentClient:
    return ContentClient(url, retry=RetryPolicy(attempts=2, base_delay=0.0), timeout=2.0)


async def _run(
    path: Path,
    items: list[UploadItem],
    *,
    force: bool = False,
    url: str = URL,
    concurrency: int = 4,
    verify: bool = False,
) -> tuple[UploadCache, UploadOutcome]:
    cache = UploadCache(path, url)
    async with _client(url) as client:
        outcome = await upload_with_cache(
            cache,
            client,
            items,
            force_reupload=force,
            max_concurrency=concurrency,
            verify_cached=verify,
        )
    return cache, outcome


def _on_disk(path: Path) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return document


@pytest.mark.asyncio
async def test_first_run_uploads_second_reuses_force_reuploads(
    tmp_path: Path, service: FakeContentService
) -> None:
    path = tmp_path / "cache.json"
    items = _items(5)
    _, first = await _run(path, items)
    assert (first.uploaded, first.reused) == (5, 0)
    assert len(service.uploads) == 5
    document = _on_disk(path)
    assert document["schema_version"] == SCHEMA_VERSION
    assert document["content_service_url"] == URL
    entries = document["entries"]
    assert isinstance(entries, dict)
    assert set(entries) == {item.key_sha256 for item in items}
    assert entries[items[0].key_sha256]["file_name"] == "essay_0.docx"

    _, second = await _run(path, items)
    assert (second.uploaded, second.reused) == (0, 5)
    assert len(service.uploads) == 5
    assert second.storage_ids == first.storage_ids

    _, forced = await _run(path, items, force=True)
    assert (forced.uploaded, forced.reused) == (5, 0)
    assert len(service.uploads) == 10
    new_ids = forced.storage_ids
    assert set(new_ids.values()).isdisjoint(first.storage_ids.values())
    stored = _on_disk(path)["entries"]
    assert isinstance(stored, dict)
    assert {k: v["storage_id"] for k, v in stored.items()} == new_ids


@pytest.mark.asyncio
async def test_duplicate_content_uploaded_once(tmp_path: Path, service: FakeContentService) -> None:
    same = [
        UploadItem.from_text("a.docx", "identical"),
        UploadItem.from_text("b.docx", "identical"),
    ]
    _, outcome = await _run(tmp_path / "c.json", same)
    assert outcome.uploaded == 1
    assert len(service.uploads) == 1
    assert list(outcome.storage_ids) == [same[0].key_sha256]


@pytest.mark.asyncio
async def test_changed_service_url_invalidates(tmp_path: Path, service: FakeContentService) -> None:
    path = tmp_path / "cache.json"
    items = _items(3)
    await _run(path, items, url=URL)
    _, outcome = await _run(path, items, url=OTHER_URL)
    assert outcome.uploaded == 3
    assert outcome.ignored_reason is not None
    assert outcome.ignored_reason.startswith("content_service_url_changed")
    assert URL in str(outcome.ignored_reason)
    assert _on_disk(path)["content_service_url"] == OTHER_URL
    assert len(service.uploads) == 6


@pytest.mark.asyncio
async def test_corrupt_file_moved_aside_and_rebuilt(
    tmp_path: Path, service: FakeContentService, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "cache.json"
    path.write_text('{"schema_version": 2, "entries": {', encoding="utf-8")
    with caplog.at_level(logging.WARNING, logger="pytest_eng5.runner.upload_cache"):
        _, outcome = await _run(path, _items(2))
    corrupt = tmp_path / "cache.json.corrupt"
    assert corrupt.read_text(encoding="utf-8") == '{"schema_version": 2, "entries": {'
    assert "cache_file_invalid_json" in str(outcome.ignored_reason)
    assert any("cache.json.corrupt" in record.getMessage() for record in caplog.records)
    entries = _on_disk(path)["entries"]
    assert isinstance(entries, dict)
    assert len(entries) == 2


@pytest.mark.asyncio
async def test_non_object_file_is_corrupt_too(tmp_path: Path, service: FakeContentService) -> None:
    path = tmp_path / "cache.json"
    path.write_text("[1, 2]", encoding="utf-8")
    _, outcome = await _run(path, _items(1))
    assert "cache_file_invalid_format" in str(outcome.ignored_reason)
    assert (tmp_path / "cache.json.corrupt").exists()


@pytest.mark.asyncio
async def test_old_schema_ignored_not_moved(tmp_path: Path, service: FakeContentService) -> None:
    path = tmp_path / "cache.json"
    path.write_text(
        json.dumps({"schema_version": 1, "content_service_url": URL, "entries": {"x": "y"}}),
        encoding="utf-8",
    )
    _, outcome = await _run(path, _items(1))
    assert "cache_file_schema_mismatch" in str(outcome.ignored_reason)
    assert not (tmp_path / "cache.json.corrupt").exists()
    assert _on_disk(path)["schema_version"] == SCHEMA_VERSION


@pytest.mark.asyncio
async def test_partial_failure_then_resume_uploads_only_the_rest(
    tmp_path: Path, service: FakeContentService
) -> None:
    path = tmp_path / "cache.json"
    items = _items(5)
    service.fail_bodies = {items[2].data}
    with pytest.raises(UploadError) as caught:
        await _run(path, items, concurrency=1)
    error = caught.value
    assert error.uploaded == 2
    assert error.failed == ("essay_2.docx",)
    assert "re-run: the 2 uploads already done are cached" in error.next_step
    assert "2 not attempted" in error.message
    entries = _on_disk(path)["entries"]
    assert isinstance(entries, dict)
    assert set(entries) == {items[0].key_sha256, items[1].key_sha256}

    service.fail_bodies = set()
    _, outcome = await _run(path, items, concurrency=1)
    assert (outcome.uploaded, outcome.reused) == (3, 2)
    assert sorted(service.uploads) == sorted(item.data for item in items)


@pytest.mark.asyncio
async def test_failure_with_concurrency_keeps_every_success(
    tmp_path: Path, service: FakeContentService
) -> None:
    path = tmp_path / "cache.json"
    items = _items(8)
    service.fail_bodies = {items[0].data}
    with pytest.raises(UploadError) as caught:
        await _run(path, items, concurrency=4)
    entries = _on_disk(path)["entries"] if path.exists() else {}
    assert isinstance(entries, dict)
    assert len(entries) == caught.value.uploaded == len(service.uploads)
    assert items[0].key_sha256 not in entries


def test_two_writers_with_separate_objects_keep_all_entries(tmp_path: Path) -> None:
    path = tmp_path / "shared.json"
    per_writer = 40
    start = threading.Barrier(2)

    def writer(tag: str) -> Callable[[], None]:
        def run() -> None:
            cache = UploadCache(path, URL)
            cache.load()
            start.wait(timeout=10)
            for i in range(per_writer):
                entry = CacheEntry(f"{i:032x}", f"{tag}_{i}.docx", datetime.now(UTC).isoformat())
                cache.record({f"{tag}-{i}": entry})

        return run

    threads = [threading.Thread(target=writer(tag)) for tag in ("left", "right")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
        assert not thread.is_alive()
    entries = _on_disk(path)["entries"]
    assert isinstance(entries, dict)
    assert len(entries) == 2 * per_writer


@pytest.mark.asyncio
async def test_two_concurrent_runs_keep_each_others_entries(
    tmp_path: Path, service: FakeContentService
) -> None:
    path = tmp_path / "shared.json"
    left, right = _items(6, "left"), _items(6, "right")
    await asyncio.gather(_run(path, left, concurrency=3), _run(path, right, concurrency=3))
    entries = _on_disk(path)["entries"]
    assert isinstance(entries, dict)
    assert set(entries) == {item.key_sha256 for item in left + right}


@pytest.mark.asyncio
async def test_force_drops_older_unrelated_entries(
    tmp_path: Path, service: FakeContentService
) -> None:
    path = tmp_path / "cache.json"
    old = (datetime.now(UTC) - timedelta(days=1)).isoformat()
    seeded = UploadCache(path, URL)
    seeded.record({"stale-key": CacheEntry("9" * 32, "old.docx", old)})

    _, normal = await _run(path, _items(1))
    assert normal.dropped_stale == 0
    assert "stale-key" in _on_disk(path)["entries"]

    _, forced = await _run(path, _items(1), force=True)
    assert forced.dropped_stale == 1
    assert "stale-key" not in _on_disk(path)["entries"]


@pytest.mark.asyncio
async def test_verify_cached_reuploads_ids_gone_from_service(
    tmp_path: Path, service: FakeContentService
) -> None:
    path = tmp_path / "cache.json"
    items = _items(2)
    _, first = await _run(path, items)
    gone = first.storage_ids[items[0].key_sha256]
    kept = first.storage_ids[items[1].key_sha256]
    with respx.mock(assert_all_called=False) as router:
        router.post(URL).mock(side_effect=service)
        router.get(f"{URL}/{gone}").respond(404, json={"error": {}})
        router.get(f"{URL}/{kept}").respond(200, content=b"x")
        _, second = await _run(path, items, verify=True)
    assert second.verified_missing == 1
    assert (second.uploaded, second.reused) == (1, 1)
    assert second.storage_ids[items[0].key_sha256] != gone


@pytest.mark.asyncio
async def test_key_must_be_sha256_of_data(tmp_path: Path, service: FakeContentService) -> None:
    bad = UploadItem(key_sha256="0" * 64, name="x.docx", data=b"abc")
    with pytest.raises(ConfigurationError):
        await _run(tmp_path / "c.json", [bad])
    assert service.uploads == []


@pytest.mark.asyncio
async def test_cache_and_client_urls_must_agree(tmp_path: Path) -> None:
    cache = UploadCache(tmp_path / "c.json", "http://127.0.0.1:8001")  # normalised to URL
    assert cache.content_service_url == URL
    async with _client(OTHER_URL) as client:
        with pytest.raises(ConfigurationError):
            await upload_with_cache(cache, client, _items(1), force_reupload=False)


@pytest.mark.asyncio
async def test_unwritable_cache_stops_further_uploads(
    tmp_path: Path, service: FakeContentService, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ids that cannot be cached would be lost: after the first failing write, upload no more."""

    def refuse(self: UploadCache, *args: Any, **kwargs: Any) -> int:
        raise ConfigurationError(f"Cannot write the upload cache {self.path}: disk full")

    monkeypatch.setattr(UploadCache, "record", refuse)
    with pytest.raises(ConfigurationError, match="disk full"):
        await _run(tmp_path / "cache.json", _items(4), concurrency=1)
    assert len(service.uploads) == 1
