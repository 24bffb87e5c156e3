"""R7 upload cache: Content Service storage ids by SHA-256 of the uploaded text, on disk.

File shape (schema 2)::

    {"schema_version": 2, "content_service_url": "<upload URL>",
     "entries": {"<sha256 of uploaded bytes>": {"storage_id", "file_name", "uploaded_at"}}}

Writes are atomic (temp file + ``os.replace``) under ``<path>.lock`` and merge with what is on
disk at write time, so concurrent runs sharing the file keep each other's entries. Every
successful upload is recorded at once, so a failed run loses nothing it already uploaded.
See docs/upload-flow.md.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
import threading
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import filelock

from pytest_eng5.core.urls import content_endpoint
from pytest_eng5.errors import ConfigurationError, UploadError
from pytest_eng5.runner.content import ContentClient

logger = logging.getLogger(__name__)

SCHEMA_VERSION = 2
CACHE_FILE_NAME = "content_upload_cache.json"
DEFAULT_LOCK_TIMEOUT_SECONDS = 30.0


def sha256_hex(data: bytes) -> str:
    """The cache key of an upload: SHA-256 of exactly the bytes sent."""
    return hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class CacheEntry:
    storage_id: str
    file_name: str
    uploaded_at: str  # ISO 8601, UTC

    def to_json(self) -> dict[str, str]:
        return {
            "storage_id": self.storage_id,
            "file_name": self.file_name,
            "uploaded_at": self.uploaded_at,
        }


@dataclass(frozen=True)
class _DiskState:
    entries: dict[str, CacheEntry]
    ignored_reason: str | None


class UploadCache:
    """The on-disk storage-id cache of one Content Service URL.

    ``ignored_reason`` says why the file's entries were not used at load time (``None`` when
    they were, or when there was no file).
    """

    def __init__(
        self,
        path: Path,
        content_service_url: str,
        *,
        lock_timeout: float = DEFAULT_LOCK_TIMEOUT_SECONDS,
    ) -> None:
        self.path = Path(path)
        self.content_service_url = content_endpoint(content_service_url)
        self.ignored_reason: str | None = None
        self._entries: dict[str, CacheEntry] = {}
        self._loaded = False
        self._file_lock = filelock.FileLock(f"{self.path}.lock", timeout=lock_timeout)
        self._thread_lock = threading.Lock()

    # --- reading -------------------------------------------------------------------------

    def load(self) -> None:
        """Read the file (moving a corrupt one aside to ``<name>.corrupt``)."""
        with self._locked():
            state = self._read_disk()
            self._entries = dict(state.entries)
            self.ignored_reason = state.ignored_reason
            self._loaded = True
        if self.ignored_reason:
            logger.warning(
                "upload cache %s ignored (%s); starting fresh", self.path, self.ignored_reason
            )

    def get(self, key: str) -> CacheEntry | None:
        """The cached entry for ``key`` as of the last load or write."""
        self._ensure_loaded()
        return self._entries.get(key)

    @property
    def entries(self) -> dict[str, CacheEntry]:
        """A copy of the entries as of the last load or write."""
        self._ensure_loaded()
        return dict(self._entries)

    # --- writing -------------------------------------------------------------------------

    def record(
        self,
        new_entries: Mapping[str, CacheEntry],
        *,
        drop_older_than: datetime | None = None,
    ) -> int:
        """Merge ``new_entries`` into the file (they win) and write it atomically.

        ``drop_older_than`` removes other entries uploaded before that instant (after a forced
        re-upload their storage ids are suspect). Returns how many entries were dropped.
        """
        with self._locked():
            state = self._read_disk()
            merged = dict(state.entries)
            dropped = 0
            if drop_older_than is not None:
                for key, entry in list(merged.items()):
                    if key not in new_entries and _uploaded_before(entry, drop_older_than):
                        del merged[key]
                        dropped += 1
            merged.update(new_entries)
            self._write(merged)
            self._entries = merged
            self._loaded = True
        return dropped

    # --- internals -----------------------------------------------------------------------

    def _ensure_loaded(self) -> None:
        if not self._loaded:
            self.load()

    def _locked(self) -> _CacheLock:
        return _CacheLock(self)

    def _read_disk(self) -> _DiskState:
        try:
            raw = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return _DiskState({}, None)
        except OSError as error:
            raise ConfigurationError(
                f"Cannot read the upload cache {self.path}: {error}",
                next_step="check the file's permissions, or delete it to start fresh",
            ) from error
        try:
            document: Any = json.loads(raw)
        except ValueError as error:
            return self._move_aside(f"cache_file_invalid_json ({error})")
        if not isinstance(document, dict):
            return self._move_aside("cache_file_invalid_format (top level is not an object)")
        version = document.get("schema_version")
        if version != SCHEMA_VERSION:
            # An older runner's cache (schema 1 keyed by raw-file hash): not corrupt, just unusable.
            return _DiskState(
                {}, f"cache_file_schema_mismatch (found {version!r}, expected {SCHEMA_VERSION})"
            )
        raw_entries = document.get("entries")
        if not isinstance(raw_entries, dict):
            return self._move_aside("cache_file_missing_entries ('entries' is not an object)")
        stored_url = document.get("content_service_url")
        if stored_url != self.content_service_url:
            return _DiskState(
                {},
                f"content_service_url_changed (cache: {stored_url!r}, "
                f"now: {self.content_service_url!r})",
            )
        entries: dict[str, CacheEntry] = {}
        for key, value in raw_entries.items():
            entry = _entry_from_json(value)
            if isinstance(key, str) and entry is not None:
                entries[key] = entry
        if len(entries) != len(raw_entries):
            logger.warning(
                "upload cache %s: dropped %d malformed entr(y/ies)",
                self.path,
                len(raw_entries) - len(entries),
            )
        return _DiskState(entries, None)

    def _move_aside(self, reason: str) -> _DiskState:
        corrupt = self.path.with_name(self.path.name + ".corrupt")
        try:
            os.replace(self.path, corrupt)
        except OSError as error:
            raise ConfigurationError(
                f"The upload cache {self.path} is unreadable ({reason}) and cannot be moved "
                f"aside to {corrupt.name}: {error}",
                next_step=f"delete {self.path} by hand and re-run",
            ) from error
        logger.warning(
            "upload cache %s is unreadable (%s); moved it to %s and starting fresh",
            self.path,
            reason,
            corrupt.name,
        )
        return _DiskState({}, f"{reason}; moved to {corrupt.name}")

    def _write(self, entries: Mapping[str, CacheEntry]) -> None:
        document = {
            "schema_version": SCHEMA_VERSION,
            "content_service_url": self.content_service_url,
            "entries": {key: entries[key].to_json() for key in sorted(entries)},
        }
        temp = self.path.with_name(f".{self.path.name}.{os.getpid()}.{uuid.uuid4().hex}.tmp")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with temp.open("w", encoding="utf-8") as handle:
                json.dump(document, handle, indent=2, sort_keys=True)
                handle.write("\n")
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temp, self.path)
        except OSError as error:
            temp.unlink(missing_ok=True)
            raise ConfigurationError(
                f"Cannot write the upload cache {self.path}: {error}",
                next_step="make the output folder writable (or point the cache elsewhere)",
            ) from error


class _CacheLock:
    """Thread lock (same process) + file lock (other processes) around a read-merge-write."""

    def __init__(self, cache: UploadCache) -> None:
        self._cache = cache

    def __enter__(self) -> None:
        self._cache._thread_lock.acquire()
        try:
            self._cache.path.parent.mkdir(parents=True, exist_ok=True)
            self._cache._file_lock.acquire()
        except filelock.Timeout as error:
            self._cache._thread_lock.release()
            raise ConfigurationError(
                f"Another run holds the upload cache lock {self._cache.path}.lock.",
                next_step="wait for the other run to finish, or remove a stale lock file",
            ) from error
        except BaseException:
            self._cache._thread_lock.release()
            raise

    def __exit__(self, *exc_info: object) -> None:
        try:
            self._cache._file_lock.release()
        finally:
            self._cache._thread_lock.release()


def _entry_from_json(value: Any) -> CacheEntry | None:
    if not isinstance(value, dict):
        return None
    storage_id = value.get("storage_id")
    if not isinstance(storage_id, str) or not storage_id:
        return None
    return CacheEntry(
        storage_id=storage_id,
        file_name=str(value.get("file_name", "")),
        uploaded_at=str(value.get("uploaded_at", "")),
    )


def _uploaded_before(entry: CacheEntry, instant: datetime) -> bool:
    try:
        uploaded = datetime.fromisoformat(entry.uploaded_at)
    except ValueError:
        return True  # no usable timestamp: treat as old
    if uploaded.tzinfo is None:
        uploaded = uploaded.replace(tzinfo=UTC)
    return uploaded < instant


# --- upload with cache -------------------------------------------------------------------


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
