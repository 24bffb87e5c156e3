"""R7 upload cache: Content Service storage ids by SHA-256 of the uploaded text, on disk.

File shape (schema 2)::

    {"schema_version": 2, "content_service_url": "<upload URL>",
     "entries": {"<sha256 of uploaded bytes>": {"storage_id", "file_name", "uploaded_at"}}}

Writes are atomic (temp file + ``os.replace``) under ``<path>.lock`` and merge with what is on
disk at write time, so concurrent runs sharing the file keep each other's entries.
:mod:`pytest_eng5.runner.cached_upload` records every successful upload at once, so a failed
run loses nothing it already uploaded. See docs/upload-flow.md.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import filelock

from pytest_eng5.core.urls import content_endpoint
from pytest_eng5.errors import ConfigurationError

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
