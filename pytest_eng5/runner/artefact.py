"""The hydrated ``assessment_run.json`` artefact (runner §7, fixing §11.1, 6, 15–17, 19, 22).

Built once from the collected events and written once, after validation against
``pytest_eng5/schemas/assessment_run.schema.json``.

Checksum convention (the only one): ``validation.artefact_checksum`` is the SHA-256 hex digest
of ``json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False)`` encoded as
UTF-8, computed while the field holds ``""``. :func:`verify_checksum` checks it.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import re
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any, Final

import numpy as np
from jsonschema import Draft202012Validator, FormatChecker

from pytest_eng5 import __version__
from pytest_eng5.contracts import AssessmentResultV1, LLMComparisonResultV1
from pytest_eng5.contracts.enums import EssayComparisonWinner
from pytest_eng5.errors import ConfigurationError
from pytest_eng5.redact import redact
from pytest_eng5.runner.collector import CollectedRun
from pytest_eng5.runner.evidence import LOG_FILE
from pytest_eng5.runner.identity import BatchIdentity

SCHEMA_VERSION: Final = "2.0.0"
RUNNER_MODES: Final[tuple[str, ...]] = ("plan", "dry-run", "execute", "anchor-align-test")
OUTCOMES: Final[tuple[str, ...]] = (
    "planned",
    "dry_run",
    "not_published",
    "published",
    "completed",
    "completed_result_missing",
    "batch_failed",
    "timeout",
    "publish_failed",
    "error",
)
PARTIAL_OUTCOMES: Final = frozenset({"batch_failed", "timeout", "error"})
CHECKSUM_CONVENTION: Final = (
    "sha256 of json.dumps(doc, sort_keys=True, separators=(',', ':'), ensure_ascii=False) "
    "in UTF-8, with validation.artefact_checksum set to ''"
)
_MAX_SCHEMA_PROBLEMS: Final = 5
_TOP_LEVEL_ORDER: Final = (
    "schema_version",
    "metadata",
    "inputs",
    "llm_comparisons",
    "bt_summary",
    "grade_projections",
    "costs",
    "statistics",
    "validation",
)
_SHA256_RE: Final = re.compile(r"[0-9a-f]{64}")


def build_artefact(
    identity: BatchIdentity,
    *,
    mode: str,
    settings_summary: Mapping[str, Any],
    inputs: Mapping[str, Any],
    collected: CollectedRun | None,
    statistics: Mapping[str, Any] | None,
    post_run: Mapping[str, Any] | None,
    outcome: str,
) -> dict[str, Any]:
    """The artefact as a dict (secrets redacted); call :func:`write_artefact` to store it.

    ``settings_summary`` may hold ``assignment_id``, ``course_id``, ``course_code``,
    ``grade_scale``, ``git_sha``, ``correlation_id``, ``llm_config_overrides``,
    ``timeout_seconds`` (and anything else, kept under ``metadata.settings``).
    ``inputs`` holds ``instructions``, ``prompt_reference``, ``anchors``, ``students``; the
    students' ``essay_id`` must be the ids sent to CJ.
    """
    if mode not in RUNNER_MODES:
        raise ConfigurationError(
            f"runner mode {mode!r} is unknown", next_step=f"use one of: {', '.join(RUNNER_MODES)}"
        )
    if outcome not in OUTCOMES:
        raise ConfigurationError(
            f"run outcome {outcome!r} is unknown", next_step=f"use one of: {', '.join(OUTCOMES)}"
        )
    settings = dict(settings_summary)
    anchors = list(inputs.get("anchors") or [])
    callbacks = collected.callbacks if collected is not None else []
    result = collected.result if collected is not None else None
    grade_scale = settings.get("grade_scale")
    doc: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "metadata": {
            "batch_uuid": identity.batch_id,
            "batch_label": identity.batch_label,
            "runner_mode": mode,
            "assignment_id": _optional_str(settings.get("assignment_id")),
            "course_id": _optional_str(settings.get("course_id")),
            "course_code": _optional_str(settings.get("course_code")),
            "grade_scale": _optional_str(grade_scale),
            "runner_version": str(settings.get("runner_version") or __version__),
            "git_sha": str(settings.get("git_sha") or "unknown"),
            "generated_at": datetime.now(UTC).isoformat(),
            "correlation_id": _optional_str(settings.get("correlation_id")),
            "llm_config_overrides": settings.get("llm_config_overrides"),
            "settings": settings,
        },
        "inputs": {
            "instructions": inputs.get("instructions"),
            "prompt_reference": inputs.get("prompt_reference"),
            "anchors": anchors,
            "students": list(inputs.get("students") or []),
        },
        "llm_comparisons": comparison_records(callbacks),
        "bt_summary": bt_summary(result, callbacks, _known_anchor_grades(anchors)),
        "grade_projections": grade_projections(result, _optional_str(grade_scale)),
        "costs": costs(callbacks),
        "statistics": dict(statistics or {}),
        "validation": {
            "artefact_checksum": "",
            "checksum_convention": CHECKSUM_CONVENTION,
            "manifest": [],
            "cli_environment": {
                "python": platform.python_version(),
                "os": sys.platform,
                "platform": platform.platform(terse=True),
            },
            "runner_status": _runner_status(collected, outcome, settings),
            "post_run": dict(post_run or {}),
        },
    }
    return _redacted(doc)


def _redacted(doc: dict[str, Any]) -> dict[str, Any]:
    """Secrets masked in every free-text field; the bulky wire records field by field."""
    comparisons = doc.pop("llm_comparisons")
    for record in comparisons:
        for key in ("justification", "failure_reason"):
            if record[key]:
                record[key] = redact(record[key])
    cleaned: dict[str, Any] = json.loads(redact(json.dumps(doc, default=str)))
    cleaned["llm_comparisons"] = comparisons
    return {key: cleaned[key] for key in _TOP_LEVEL_ORDER}


def comparison_records(callbacks: Sequence[LLMComparisonResultV1]) -> list[dict[str, Any]]:
    """One record per callback; error callbacks are ``failed`` with no winner (fix §11.6)."""
    records = []
    for sequence, callback in enumerate(callbacks, start=1):
        essay_a = str(callback.request_metadata.get("essay_a_id", ""))
        essay_b = str(callback.request_metadata.get("essay_b_id", ""))
        winner_id, loser_id = _winner_loser(callback)
        succeeded = winner_id is not None
        prompt_hash = callback.request_metadata.get("prompt_sha256")
        error = callback.error_detail
        records.append(
            {
                "sequence": sequence,
                "request_id": callback.request_id,
                "correlation_id": str(callback.correlation_id),
                "status": "succeeded" if succeeded else "failed",
                "essay_a_id": essay_a,
                "essay_b_id": essay_b,
                "winner_id": winner_id,
                "loser_id": loser_id,
                "prompt_hash": prompt_hash if _is_sha256(prompt_hash) else None,
                "provider": str(callback.provider.value),
                "model": callback.model,
                "tokens_prompt": callback.token_usage.prompt_tokens,
                "tokens_completion": callback.token_usage.completion_tokens,
                "cost_usd": round(callback.cost_estimate, 6),
                "response_time_ms": callback.response_time_ms,
                "started_at": callback.requested_at.isoformat(),
                "completed_at": callback.completed_at.isoformat(),
                "confidence": callback.confidence,
                "justification": callback.justification,
                "failure_reason": None if succeeded else _failure_reason(callback),
                "error_code": error.error_code if error is not None else None,
            }
        )
    return records


def _winner_loser(callback: LLMComparisonResultV1) -> tuple[str | None, str | None]:
    """(winner_id, loser_id) from "Essay A"/"Essay B"; (None, None) for error callbacks."""
    essay_a = str(callback.request_metadata.get("essay_a_id", ""))
    essay_b = str(callback.request_metadata.get("essay_b_id", ""))
    if callback.winner == EssayComparisonWinner.ESSAY_A:
        return essay_a, essay_b
    if callback.winner == EssayComparisonWinner.ESSAY_B:
        return essay_b, essay_a
    return None, None


@dataclass(frozen=True)
class _PairTally:
    wins: dict[str, int]
    losses: dict[str, int]
    pairs: list[tuple[str, str]]  # (winner, loser)


def _tally(callbacks: Iterable[LLMComparisonResultV1]) -> _PairTally:
    wins: dict[str, int] = {}
    losses: dict[str, int] = {}
    pairs = []
    for callback in callbacks:
        winner, loser = _winner_loser(callback)
        if winner is None or loser is None:
            continue
        wins[winner] = wins.get(winner, 0) + 1
        losses[loser] = losses.get(loser, 0) + 1
        pairs.append((winner, loser))
    return _PairTally(wins, losses, pairs)


def bt_summary(
    result: AssessmentResultV1 | None,
    callbacks: Sequence[LLMComparisonResultV1],
    known_anchor_grades: Mapping[str, str],
) -> list[dict[str, Any]]:
    """BT entries from the rich result, with SEs and counts from the callbacks (fix §11.17)."""
    if result is None:
        return []
    tally = _tally(callbacks)
    thetas = {essay.essay_id: essay.bt_score for essay in result.essay_results}
    errors = fisher_standard_errors(thetas, tally.pairs)
    entries = []
    for essay in sorted(result.essay_results, key=lambda item: item.rank):
        wins = tally.wins.get(essay.essay_id, 0)
        losses = tally.losses.get(essay.essay_id, 0)
        entries.append(
            {
                "essay_id": essay.essay_id,
                "theta": essay.bt_score,
                "standard_error": errors.get(essay.essay_id),
                "rank": essay.rank,
                "comparison_count": wins + losses,
                "wins": wins,
                "losses": losses,
                "is_anchor": essay.is_anchor,
                "anchor_grade": known_anchor_grades.get(essay.essay_id)
                if essay.is_anchor
                else None,
                "grade_projection": None if essay.is_anchor else essay.letter_grade,
            }
        )
    return entries


def fisher_standard_errors(
    thetas: Mapping[str, float], pairs: Sequence[tuple[str, str]]
) -> dict[str, float | None]:
    """BT standard errors from the Fisher information with a sum-to-zero constraint.

    ``I = Σ p(1−p)(eᵢ−eⱼ)(eᵢ−eⱼ)ᵀ`` over the judged pairs at the given abilities; the
    covariance is its pseudo-inverse. Essays never judged get ``None``.
    """
    ids = list(thetas)
    index = {essay_id: position for position, essay_id in enumerate(ids)}
    information = np.zeros((len(ids), len(ids)))
    judged: set[str] = set()
    for winner, loser in pairs:
        if winner not in index or loser not in index:
            continue
        i, j = index[winner], index[loser]
        p = 1.0 / (1.0 + np.exp(-(thetas[winner] - thetas[loser])))
        weight = p * (1.0 - p)
        information[i, i] += weight
        information[j, j] += weight
        information[i, j] -= weight
        information[j, i] -= weight
        judged.update((winner, loser))
    if not judged:
        return dict.fromkeys(ids)
    covariance = np.linalg.pinv(information)
    return {
        essay_id: round(float(np.sqrt(max(covariance[position, position], 0.0))), 6)
        if essay_id in judged
        else None
        for essay_id, position in index.items()
    }


def grade_projections(
    result: AssessmentResultV1 | None, grade_scale: str | None
) -> list[dict[str, Any]]:
    """Projections of the student essays as CJ sent them (no invented probabilities)."""
    if result is None:
        return []
    return [
        {
            "essay_id": essay.essay_id,
            "grade_scale": grade_scale,
            "grade": essay.letter_grade,
            "confidence_score": essay.confidence_score,
            "confidence_label": essay.confidence_label,
            "normalized_score": essay.normalized_score,
            "probabilities": None,
            "primary_anchor_id": None,
            "anchor_alignment": None,
        }
        for essay in sorted(result.student_results, key=lambda item: item.rank)
    ]


def costs(callbacks: Sequence[LLMComparisonResultV1]) -> dict[str, Any]:
    """Total cost and token counts per ``provider::model`` (failed callbacks included)."""
    # key -> [prompt, completion, total tokens, usd, comparisons]
    sums: dict[tuple[str, str], list[float]] = {}  # provider is a StrEnum, sortable as str
    for callback in callbacks:
        usage = callback.token_usage
        row = sums.get((callback.provider, callback.model))
        if row is None:
            row = sums[(callback.provider, callback.model)] = [0, 0, 0, 0.0, 0]
        row[0] += usage.prompt_tokens
        row[1] += usage.completion_tokens
        row[2] += usage.total_tokens
        row[3] += callback.cost_estimate
        row[4] += 1
    entries: list[dict[str, Any]] = []
    for (provider, model), row in sorted(sums.items()):
        entries.append(
            {
                "key": f"{provider}::{model}",
                "provider": str(provider),
                "model": model,
                "prompt_tokens": int(row[0]),
                "completion_tokens": int(row[1]),
                "total_tokens": int(row[2]),
                "usd": round(row[3], 6),
                "comparisons": int(row[4]),
            }
        )
    total = sum(row[3] for row in sums.values())
    return {"total_usd": round(total, 6), "token_counts": entries}


def _runner_status(
    collected: CollectedRun | None, outcome: str, settings: Mapping[str, Any]
) -> dict[str, Any]:
    observed = (
        collected.observed_events
        if collected is not None
        else {
            "llm_comparisons": 0,
            "completions": 0,
            "assessment_results": 0,
            "failures": 0,
            "foreign": 0,
            "duplicates": 0,
            "malformed": 0,
        }
    )
    failed = collected.failed if collected is not None else None
    return {
        "outcome": outcome,
        "partial_data": outcome in PARTIAL_OUTCOMES,
        "timeout_seconds": float(settings.get("timeout_seconds") or 0.0),
        "observed_events": observed,
        "result_missing": bool(collected.result_missing) if collected is not None else False,
        "failure_reason": failed.failure_reason if failed is not None else None,
        "durations": dict(collected.durations) if collected is not None else {},
    }


def artefact_checksum(doc: Mapping[str, Any]) -> str:
    """The checksum of ``doc`` under the one documented convention (field set to ``""``)."""
    copy = json.loads(json.dumps(doc))
    copy["validation"]["artefact_checksum"] = ""
    canonical = json.dumps(copy, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def verify_checksum(doc: Mapping[str, Any]) -> bool:
    """True when ``validation.artefact_checksum`` matches the document's content."""
    stored = doc.get("validation", {}).get("artefact_checksum")
    return isinstance(stored, str) and stored != "" and stored == artefact_checksum(doc)


@cache
def _schema() -> dict[str, Any]:
    text = resources.files("pytest_eng5").joinpath("schemas/assessment_run.schema.json")
    loaded: dict[str, Any] = json.loads(text.read_text(encoding="utf-8"))
    return loaded


def schema_problems(doc: Mapping[str, Any]) -> list[str]:
    """Schema violations of ``doc`` as ``"<path>: <message>"`` lines (empty when valid)."""
    validator = Draft202012Validator(_schema(), format_checker=FormatChecker())
    problems = sorted(validator.iter_errors(doc), key=lambda error: list(error.absolute_path))
    return [
        f"{'/'.join(str(part) for part in problem.absolute_path) or '<root>'}: {problem.message}"
        for problem in problems
    ]


def write_artefact(doc: dict[str, Any], path: Path) -> Path:
    """Fill the manifest and checksum, validate against the schema, then write ``path`` once.

    The manifest lists every file beside ``path`` (recursively) except the artefact and run.log.
    """
    doc["validation"]["manifest"] = _manifest(path.parent, exclude={path.name, LOG_FILE})
    doc["validation"]["artefact_checksum"] = ""
    problems = schema_problems(doc)
    if problems:
        shown = "; ".join(problems[:_MAX_SCHEMA_PROBLEMS])
        more = f" (+{len(problems) - _MAX_SCHEMA_PROBLEMS} more)" if len(problems) > 5 else ""
        raise ConfigurationError(
            f"the artefact for {path.name} does not match assessment_run.schema.json: "
            f"{shown}{more}",
            next_step="nothing was written; fix the inputs/settings named above (this is a bug "
            "in the harness if they came from the run itself)",
        )
    doc["validation"]["artefact_checksum"] = artefact_checksum(doc)
    path.parent.mkdir(parents=True, exist_ok=True)
    # Written beside the target, then renamed over it: a crash mid-write keeps the old artefact.
    partial = path.with_name(f".{path.name}.partial")
    partial.write_text(json.dumps(doc, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(partial, path)
    return path


def _manifest(folder: Path, *, exclude: set[str]) -> list[dict[str, Any]]:
    if not folder.is_dir():
        return []
    entries = []
    for file in sorted(folder.rglob("*")):
        relative = file.relative_to(folder).as_posix()
        if not file.is_file() or relative in exclude:
            continue
        content = file.read_bytes()
        entries.append(
            {
                "path": relative,
                "sha256": hashlib.sha256(content).hexdigest(),
                "bytes": len(content),
            }
        )
    return entries


def _known_anchor_grades(anchors: Iterable[Mapping[str, Any]]) -> dict[str, str]:
    grades: dict[str, str] = {}
    for anchor in anchors:
        grade = anchor.get("grade")
        if not grade:
            continue
        for key in ("essay_id", "anchor_id"):
            if anchor.get(key):
                grades[str(anchor[key])] = str(grade)
    return grades


def _failure_reason(callback: LLMComparisonResultV1) -> str:
    if callback.error_detail is not None:
        return f"{callback.error_detail.error_code}: {callback.error_detail.message}"
    return "callback carried no winner"


def _is_sha256(value: object) -> bool:
    return isinstance(value, str) and _SHA256_RE.fullmatch(value) is not None


def _optional_str(value: object) -> str | None:
    return None if value is None or value == "" else str(value)
