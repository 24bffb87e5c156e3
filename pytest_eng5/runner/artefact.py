"""Build, redact, checksum and write the run record (``assessment_run.json``).

The record is a :class:`~pytest_eng5.runner.record.RunRecord`: pydantic validates it while it
is built, and the stored schema is generated from the same model. The checksum follows the
one convention of :data:`~pytest_eng5.runner.record.CHECKSUM_CONVENTION`.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import sys
from collections.abc import Mapping
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Final

from jsonschema import Draft202012Validator, FormatChecker
from pydantic import JsonValue

from pytest_eng5.contracts import LLMComparisonResultV1
from pytest_eng5.redact import redact
from pytest_eng5.runner.collector import CollectedRun
from pytest_eng5.runner.evidence import LOG_FILE
from pytest_eng5.runner.record import (
    CliEnvironment,
    ManifestEntry,
    ObservedEvents,
    RunInputs,
    RunMetadata,
    RunnerStatus,
    RunRecord,
    RunStatistics,
    Validation,
)
from pytest_eng5.runner.record_sections import (
    bt_summary,
    comparison_records,
    costs,
    grade_projections,
)

_FREE_TEXT_FIELDS: Final = ("justification", "failure_reason")


def build_record(
    *,
    metadata: RunMetadata,
    inputs: RunInputs,
    status: RunnerStatus,
    collected: CollectedRun | None = None,
    statistics: RunStatistics | None = None,
    post_run: Mapping[str, JsonValue] | None = None,
) -> RunRecord:
    """The record of one run, secrets redacted; :func:`write_record` stores it.

    ``status`` says how the run ended; its event counts, durations and ``result_missing``
    are filled from ``collected`` (what the collector gathered, complete or partial).
    """
    callbacks: list[LLMComparisonResultV1] = collected.callbacks if collected else []
    result = collected.result if collected is not None else None
    if collected is not None:
        status = status.model_copy(
            update={
                "observed_events": ObservedEvents(**collected.observed_events),
                "durations": dict(collected.durations),
                "result_missing": collected.result_missing,
            }
        )
    record = RunRecord(
        metadata=metadata,
        inputs=inputs,
        llm_comparisons=comparison_records(callbacks),
        bt_summary=bt_summary(result, callbacks, inputs.anchors),
        grade_projections=grade_projections(result, metadata.grade_scale),
        costs=costs(callbacks),
        statistics=statistics or RunStatistics(),
        validation=Validation(
            cli_environment=CliEnvironment(
                python=platform.python_version(),
                os=sys.platform,
                platform=platform.platform(terse=True),
            ),
            runner_status=status,
            post_run=dict(post_run or {}),
        ),
    )
    return _redacted(record)


def _redacted(record: RunRecord) -> RunRecord:
    """Secrets masked in every free-text field; the bulky wire records field by field."""
    doc = record.model_dump(mode="json")
    comparisons = doc.pop("llm_comparisons")
    for entry in comparisons:
        for key in _FREE_TEXT_FIELDS:
            if entry[key]:
                entry[key] = redact(entry[key])
    cleaned = json.loads(redact(json.dumps(doc)))
    cleaned["llm_comparisons"] = comparisons
    return RunRecord.model_validate(cleaned)


def record_document(record: RunRecord) -> dict[str, JsonValue]:
    """The record as the JSON document that is stored."""
    doc: dict[str, JsonValue] = record.model_dump(mode="json")
    return doc


def artefact_checksum(doc: Mapping[str, object]) -> str:
    """The checksum of ``doc`` under the one documented convention (field set to ``""``)."""
    copy = json.loads(json.dumps(doc))
    copy["validation"]["artefact_checksum"] = ""
    canonical = json.dumps(copy, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def verify_checksum(doc: Mapping[str, object]) -> bool:
    """True when ``validation.artefact_checksum`` matches the document's content."""
    validation = doc.get("validation")
    stored = validation.get("artefact_checksum") if isinstance(validation, Mapping) else None
    return isinstance(stored, str) and stored != "" and stored == artefact_checksum(doc)


@cache
def stored_schema() -> dict[str, JsonValue]:
    """The JSON schema shipped in the package (generated from :class:`RunRecord`)."""
    text = resources.files("pytest_eng5").joinpath("schemas/assessment_run.schema.json")
    loaded: dict[str, JsonValue] = json.loads(text.read_text(encoding="utf-8"))
    return loaded


def schema_problems(doc: Mapping[str, object]) -> list[str]:
    """Schema violations of a stored document as ``"<path>: <message>"`` (empty when valid)."""
    validator = Draft202012Validator(stored_schema(), format_checker=FormatChecker())
    problems = sorted(validator.iter_errors(doc), key=lambda error: list(error.absolute_path))
    return [
        f"{'/'.join(str(part) for part in problem.absolute_path) or '<root>'}: {problem.message}"
        for problem in problems
    ]


def write_record(record: RunRecord, path: Path) -> Path:
    """Fill the manifest and checksum, then write ``path`` (atomically: a write that breaks
    off keeps the previous file).

    The manifest lists every file beside ``path`` (recursively) except the record and run.log.
    """
    manifest = _manifest(path.parent, exclude={path.name, LOG_FILE})
    unsigned = record.validation.model_copy(update={"manifest": manifest, "artefact_checksum": ""})
    checksum = artefact_checksum(
        record_document(record.model_copy(update={"validation": unsigned}))
    )
    signed = unsigned.model_copy(update={"artefact_checksum": checksum})
    doc = record_document(record.model_copy(update={"validation": signed}))
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    partial.write_text(json.dumps(doc, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(partial, path)
    return path


def read_record(path: Path) -> RunRecord:
    """A stored record, validated (raises ``pydantic.ValidationError`` when it does not fit)."""
    return RunRecord.model_validate_json(path.read_text(encoding="utf-8"))


def _manifest(folder: Path, *, exclude: set[str]) -> list[ManifestEntry]:
    if not folder.is_dir():
        return []
    entries = []
    for file in sorted(folder.rglob("*")):
        relative = file.relative_to(folder).as_posix()
        if not file.is_file() or relative in exclude or file.name.endswith(".partial"):
            continue
        content = file.read_bytes()
        entries.append(
            ManifestEntry(
                path=relative, sha256=hashlib.sha256(content).hexdigest(), bytes=len(content)
            )
        )
    return entries
