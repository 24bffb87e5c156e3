"""R7 uploads through the cache: upload what the cache lacks, reuse what it holds.

The cache file itself is :mod:`pytest_eng5.runner.upload_cache`; see docs/upload-flow.md.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from pytest_eng5.errors import ConfigurationError, UploadError
from pytest_eng5.runner.content import ContentClient
from pytest_eng5.runner.upload_cache import CacheEntry, UploadCache, sha256_hex

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class UploadItem:
    """One thing to upload: its cache key (SHA-256 of ``data``), a display name, the bytes."""

    key_sha256: str
    name: str
    data: bytes = field(repr=False)

    @classmethod
    def from_text(cls, name: str, text: str) -> UploadItem:
        """Key and bytes from extracted essay text (UTF-8)."""
        data = text.encode("utf-8")
        return cls(key_sha256=sha256_hex(data), name=name, data=data)


@dataclass(frozen=True)
class UploadOutcome:
    storage_ids: dict[str, str]
    uploaded: int
    reused: int
    ignored_reason: str | None
    dropped_stale: int = 0
    verified_missing: int = 0


async def upload_with_cache(
    cache: UploadCache,
    client: ContentClient,
    items: Sequence[UploadItem],
    *,
    force_reupload: bool,
    max_concurrency: int = 4,
    verify_cached: bool = False,
    content_type: str = "application/octet-stream",
) -> UploadOutcome:
    """Upload what the cache does not hold; return storage ids for every item key.

    Dedupes by key, reuses cached ids unless ``force_reupload`` (which re-uploads, overwrites
    those entries and drops older entries of other keys), records each success at once, and
    after a failure starts no new uploads and raises :class:`UploadError` with counts.
    ``verify_cached`` asks the Content Service whether reused ids still exist.
    """
    if max_concurrency < 1:
        raise ConfigurationError(f"max_concurrency must be at least 1, got {max_concurrency}")
    if cache.content_service_url != client.upload_url:
        raise ConfigurationError(
            f"The upload cache is for {cache.content_service_url} but the client uploads to "
            f"{client.upload_url}.",
            next_step="build the UploadCache with the same CONTENT_SERVICE_URL as the client",
        )
    unique: dict[str, UploadItem] = {}
    for item in items:
        if sha256_hex(item.data) != item.key_sha256:
            raise ConfigurationError(
                f"Upload item {item.name}: key {item.key_sha256[:12]}… is not the SHA-256 of "
                "its data.",
                next_step="build items with UploadItem.from_text(...) or sha256_hex(data)",
            )
        unique.setdefault(item.key_sha256, item)

    await asyncio.to_thread(cache.load)
    storage_ids: dict[str, str] = {}
    if not force_reupload:
        for key in unique:
            entry = cache.get(key)
            if entry is not None:
                storage_ids[key] = entry.storage_id

    verified_missing = 0
    if verify_cached and storage_ids:
        missing = await _missing_remotely(client, storage_ids, max_concurrency)
        verified_missing = len(missing)
        for key in missing:
            logger.warning(
                "cached storage id of %s is gone from the Content Service; re-uploading",
                unique[key].name,
            )
            del storage_ids[key]
    reused = len(storage_ids)
    to_upload = [item for key, item in unique.items() if key not in storage_ids]

    run_started = datetime.now(UTC)
    drop_before = run_started if force_reupload else None
    semaphore = asyncio.Semaphore(max_concurrency)
    stop = asyncio.Event()
    dropped_total = 0
    uploaded_ids: dict[str, str] = {}

    async def upload_one(item: UploadItem) -> bool:
        nonlocal dropped_total
        async with semaphore:
            if stop.is_set():
                return False
            try:
                storage_id = await client.upload(
                    item.data, content_type=content_type, name=item.name
                )
                entry = CacheEntry(storage_id, item.name, datetime.now(UTC).isoformat())
                # Recorded before anything else can fail: a re-run uploads only the rest.
                dropped_total += await asyncio.to_thread(
                    cache.record, {item.key_sha256: entry}, drop_older_than=drop_before
                )
            except BaseException:
                # Any failure (an upload, or a cache that cannot be written) stops new uploads:
                # further ids could not be cached either.
                stop.set()
                raise
            uploaded_ids[item.key_sha256] = storage_id
            return True

    results = await asyncio.gather(
        *(upload_one(item) for item in to_upload), return_exceptions=True
    )
    failed: list[str] = []
    first_error: UploadError | None = None
    skipped = 0
    for item, result in zip(to_upload, results, strict=True):
        if isinstance(result, UploadError):
            failed.append(item.name)
            first_error = first_error or result
        elif isinstance(result, BaseException):
            raise result
        elif result is False:
            skipped += 1
    storage_ids.update(uploaded_ids)
    if first_error is not None:
        raise UploadError(
            f"{len(failed)} of {len(to_upload)} upload(s) to {client.upload_url} failed "
            f"({', '.join(failed)}); {skipped} not attempted after the first failure; "
            f"{len(uploaded_ids)} uploaded and {reused} reused, all cached in {cache.path}. "
            f"First error: {first_error.message}",
            next_step=f"re-run: the {len(uploaded_ids)} uploads already done are cached "
            f"(first fix the cause: {first_error.next_step})",
            uploaded=len(uploaded_ids),
            failed=tuple(failed),
        )
    return UploadOutcome(
        storage_ids=storage_ids,
        uploaded=len(uploaded_ids),
        reused=reused,
        ignored_reason=cache.ignored_reason,
        dropped_stale=dropped_total,
        verified_missing=verified_missing,
    )


async def _missing_remotely(
    client: ContentClient, storage_ids: Mapping[str, str], max_concurrency: int
) -> list[str]:
    semaphore = asyncio.Semaphore(max_concurrency)

    async def check(key: str, storage_id: str) -> str | None:
        async with semaphore:
            return None if await client.exists(storage_id) else key

    found = await asyncio.gather(*(check(k, v) for k, v in storage_ids.items()))
    return [key for key in found if key is not None]
