"""The evidence folder of one run: ``<root>/<batch_uuid>/`` (architecture: Evidence).

``request.json`` is written before publishing, ``events.jsonl`` grows one flushed line per event
received for the batch, ``run.log`` holds JSON-lines logs. Every byte goes through ``redact()``.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any, Final

from pytest_eng5.contracts import EventEnvelope
from pytest_eng5.redact import RedactingFilter, redact
from pytest_eng5.runner.identity import BatchIdentity

REQUEST_FILE: Final = "request.json"
EVENTS_FILE: Final = "events.jsonl"
LOG_FILE: Final = "run.log"
ARTEFACT_FILE: Final = "assessment_run.json"

_STANDARD_RECORD_KEYS = frozenset(
    logging.LogRecord("", 0, "", 0, "", None, None).__dict__.keys() | {"message", "asctime"}
)


class JsonLinesFormatter(logging.Formatter):
    """One JSON object per record: time, level, event (the message) and any ``extra`` fields."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname,
            "event": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD_RECORD_KEYS:
                line[key] = value
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        return redact(json.dumps(line, default=str))


class EvidenceFolder:
    """Files of one batch run; ``close()`` releases the log handler and the events file."""

    def __init__(self, root: Path, identity: BatchIdentity) -> None:
        self.identity = identity
        self.folder = Path(root) / identity.batch_id
        self.folder.mkdir(parents=True, exist_ok=True)
        self._events: IO[str] | None = None
        self._event_keys: set[tuple[str, int, int]] | None = None
        self.events_written = 0
        self.log = logging.getLogger(f"pytest_eng5.run.{identity.batch_id}")
        self.log.setLevel(logging.DEBUG)
        self._handler = logging.FileHandler(self.folder / LOG_FILE, encoding="utf-8")
        self._handler.setFormatter(JsonLinesFormatter())
        self._filter = RedactingFilter()
        self._handler.addFilter(self._filter)
        self.log.addFilter(self._filter)
        self.log.addHandler(self._handler)

    def path(self, name: str) -> Path:
        """A path inside the folder (``name`` may contain sub-folders)."""
        return self.folder / name

    def write_request(self, envelope: EventEnvelope) -> Path:
        """Write the exact envelope that will be published (call this BEFORE publishing)."""
        target = self.path(REQUEST_FILE)
        text = json.dumps(envelope.to_json_dict(), indent=2, ensure_ascii=False)
        target.write_text(redact(text) + "\n", encoding="utf-8")
        return target

    def append_event(
        self,
        kind: str,
        raw: bytes | dict[str, Any],
        *,
        topic: str,
        partition: int,
        offset: int,
        malformed_reason: str | None = None,
        duplicate: bool = False,
    ) -> None:
        """Append one received event to ``events.jsonl`` and flush it at once.

        Idempotent by (topic, partition, offset): a record already in the file (a re-attach
        reading the topics again) is not written a second time.
        """
        if self._event_keys is None:
            self._event_keys = self._recorded_keys()
        key = (topic, partition, offset)
        if key in self._event_keys:
            return
        self._event_keys.add(key)
        line: dict[str, Any] = {
            "received_at": datetime.now(UTC).isoformat(),
            "kind": kind,
            "topic": topic,
            "partition": partition,
            "offset": offset,
        }
        if duplicate:
            line["duplicate"] = True
        if malformed_reason is not None:
            line["malformed_reason"] = malformed_reason
        line.update(_payload_fields(raw))
        if self._events is None:
            self._events = self.path(EVENTS_FILE).open("a", encoding="utf-8")
        self._events.write(redact(json.dumps(line, ensure_ascii=False, default=str)) + "\n")
        self._events.flush()
        self.events_written += 1

    def _recorded_keys(self) -> set[tuple[str, int, int]]:
        """(topic, partition, offset) of every line already in ``events.jsonl``; a line cut
        off by a crash is skipped."""
        target = self.path(EVENTS_FILE)
        if not target.exists():
            return set()
        keys: set[tuple[str, int, int]] = set()
        with target.open(encoding="utf-8") as handle:
            for text in handle:
                try:
                    line = json.loads(text)
                    keys.add((str(line["topic"]), int(line["partition"]), int(line["offset"])))
                except (ValueError, KeyError, TypeError):
                    continue
        return keys

    def read_events(self) -> list[dict[str, Any]]:
        """The lines of ``events.jsonl`` written so far (for reports and tests)."""
        target = self.path(EVENTS_FILE)
        if not target.exists():
            return []
        with target.open(encoding="utf-8") as handle:
            return [json.loads(line) for line in handle if line.strip()]

    def close(self) -> None:
        """Close the events file and detach the log handler (idempotent)."""
        if self._events is not None:
            self._events.close()
            self._events = None
        self.log.removeHandler(self._handler)
        self.log.removeFilter(self._filter)
        self._handler.close()

    def __enter__(self) -> EvidenceFolder:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _payload_fields(raw: bytes | dict[str, Any]) -> dict[str, Any]:
    """The envelope as JSON when it parses, else the raw text, so nothing is lost."""
    if isinstance(raw, dict):
        return {"envelope": raw}
    try:
        parsed = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return {"raw": raw.decode("utf-8", errors="replace")}
    if isinstance(parsed, dict):
        return {"envelope": parsed}
    return {"raw": raw.decode("utf-8", errors="replace")}
