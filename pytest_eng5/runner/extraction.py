"""R5: extract one CJ batch from the CJ database into ``db_extract/`` (runner §8, fixing §11.14).

Works against a HuleEdu CJ database and the reference schema alike (same tables, E.13).
Failures raise :class:`ExtractionError` with the database's own error text kept.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlsplit
from uuid import UUID

import asyncpg

from pytest_eng5.errors import ExtractionError
from pytest_eng5.redact import redact

EXTRACT_DIR: Final = "db_extract"
_CONNECT_TIMEOUT_SECONDS: Final = 10.0

_BATCH_SQL: Final = """
SELECT id, bos_batch_id, event_correlation_id, language, course_code, expected_essay_count,
       status::text AS status, created_at, updated_at, completed_at, assignment_id, user_id, org_id,
       processing_metadata
FROM cj_batch_uploads WHERE bos_batch_id = $1 ORDER BY id DESC LIMIT 1
"""
_STATE_SQL: Final = """
SELECT state::text AS state, total_budget, total_comparisons, submitted_comparisons,
       completed_comparisons, failed_comparisons, current_iteration, completion_threshold_pct,
       last_activity_at, partial_scoring_triggered
FROM cj_batch_states WHERE batch_id = $1
"""
_COMPARISONS_SQL: Final = """
SELECT id, essay_a_els_id, essay_b_els_id, winner, confidence, justification,
       request_correlation_id, submitted_at, completed_at, error_code
FROM cj_comparison_pairs WHERE cj_batch_id = $1 ORDER BY id
"""
_ESSAYS_SQL: Final = """
SELECT els_essay_id, current_bt_score, current_bt_se, comparison_count, is_anchor,
       processing_metadata
FROM cj_processed_essays WHERE cj_batch_id = $1
ORDER BY current_bt_score DESC NULLS LAST, els_essay_id
"""
_PROJECTIONS_SQL: Final = """
SELECT els_essay_id, primary_grade, confidence_score, confidence_label, normalized_score,
       grade_scale
FROM grade_projections WHERE cj_batch_id = $1
ORDER BY normalized_score DESC NULLS LAST, els_essay_id
"""


@dataclass(frozen=True)
class ExtractionReport:
    """Where the extract went and what it held."""

    batch_uuid: str
    cj_batch_id: int
    json_path: Path
    text_path: Path
    counts: dict[str, int] = field(default_factory=dict)

    def to_post_run(self) -> dict[str, Any]:
        """The ``validation.post_run.eng5_db_extract`` payload of the artefact."""
        return {
            "status": "succeeded",
            "batch_uuid": self.batch_uuid,
            "cj_batch_id": self.cj_batch_id,
            "json_path": self.json_path.name,
            "text_path": self.text_path.name,
            "counts": self.counts,
        }


def describe_dsn(dsn: str) -> str:
    """``host:port/database`` of a DSN, never the password (unix sockets shown as such)."""
    try:
        parts = urlsplit(dsn)
        if parts.scheme not in ("postgres", "postgresql"):
            # libpq keyword form ("host=... password=...") or garbage: show none of it.
            return "a DSN that is not a postgresql:// URL"
        host = parts.hostname or "unix socket"
        port = f":{parts.port}" if parts.port else ""
        database = parts.path.lstrip("/") or "(default database)"
    except ValueError:
        return "an unparsable DSN"
    return f"{host}{port}/{database}"


async def extract_batch(dsn: str, batch_uuid: str, out_dir: Path) -> ExtractionReport:
    """Write ``db_extract/cj_results_<uuid>.json`` and ``.txt`` under ``out_dir``."""
    where = describe_dsn(dsn)
    try:
        connection = await asyncpg.connect(dsn, timeout=_CONNECT_TIMEOUT_SECONDS)
    except Exception as exc:
        raise ExtractionError(
            redact(f"could not connect to the CJ database at {where}: {type(exc).__name__}: {exc}"),
            next_step="check HULEEDU_DB_HOST/PORT/USER/PASSWORD (or the DSN) and that the "
            "database is up; the batch itself is unaffected",
        ) from exc
    try:
        extract = await _read_batch(connection, batch_uuid, where)
    except ExtractionError:
        raise
    except Exception as exc:
        raise ExtractionError(
            redact(f"reading batch {batch_uuid} from {where} failed: {type(exc).__name__}: {exc}"),
            next_step="check the database has the CJ schema (cj_batch_uploads, cj_batch_states, "
            "cj_comparison_pairs, cj_processed_essays, grade_projections)",
        ) from exc
    finally:
        await _close_quietly(connection)
    target = Path(out_dir) / EXTRACT_DIR
    json_path = target / f"cj_results_{batch_uuid}.json"
    text_path = target / f"cj_results_{batch_uuid}.txt"
    try:
        document = redact(json.dumps(extract, indent=2, default=_json_default)) + "\n"
        report_text = redact(render_text(extract))
        target.mkdir(parents=True, exist_ok=True)
        json_path.write_text(document, encoding="utf-8")
        text_path.write_text(report_text, encoding="utf-8")
    except Exception as exc:
        raise ExtractionError(
            redact(
                f"batch {batch_uuid} was read from {where}, but writing {target} failed: "
                f"{type(exc).__name__}: {exc}"
            ),
            next_step="check the evidence folder is writable and has space (an unexpected "
            "column value is a harness bug: report it with the error above); the batch "
            "itself is unaffected",
        ) from exc
    return ExtractionReport(
        batch_uuid=batch_uuid,
        cj_batch_id=int(extract["batch_info"]["id"]),
        json_path=json_path,
        text_path=text_path,
        counts={
            "comparisons": len(extract["comparisons"]),
            "essays": len(extract["bradley_terry_stats"]),
            "grade_projections": len(extract["grade_projections"]),
        },
    )


async def _close_quietly(connection: asyncpg.Connection) -> None:
    """Close the connection; a failing close must not hide the extract or its error."""
    try:
        await connection.close(timeout=_CONNECT_TIMEOUT_SECONDS)
    except Exception:  # the connection is gone either way; nothing to keep
        connection.terminate()


async def _read_batch(
    connection: asyncpg.Connection, batch_uuid: str, where: str
) -> dict[str, Any]:
    batch = await connection.fetchrow(_BATCH_SQL, batch_uuid)
    if batch is None:
        raise ExtractionError(
            f"batch {batch_uuid} not found in cj_batch_uploads (bos_batch_id) at {where}",
            next_step="check the DSN points at the CJ database the batch ran against, and that "
            "the batch uuid is the canonical one (not the label)",
        )
    cj_batch_id = batch["id"]
    state = await connection.fetchrow(_STATE_SQL, cj_batch_id)
    comparisons = [dict(row) for row in await connection.fetch(_COMPARISONS_SQL, cj_batch_id)]
    essays = [dict(row) for row in await connection.fetch(_ESSAYS_SQL, cj_batch_id)]
    projections = [dict(row) for row in await connection.fetch(_PROJECTIONS_SQL, cj_batch_id)]
    wins_losses = _wins_losses(comparisons)
    for essay in essays:
        essay["processing_metadata"] = _json_value(essay.get("processing_metadata"))
        essay.update(wins_losses.get(essay["els_essay_id"], {"wins": 0, "losses": 0, "total": 0}))
    batch_info = dict(batch)
    batch_info["processing_metadata"] = _json_value(batch_info.get("processing_metadata"))
    return {
        "batch_info": batch_info,
        "batch_state": dict(state) if state is not None else None,
        "comparisons": comparisons,
        "bradley_terry_stats": essays,
        "grade_projections": projections,
        "wins_losses": wins_losses,
    }


def _wins_losses(comparisons: list[dict[str, Any]]) -> dict[str, dict[str, int]]:
    tally: dict[str, dict[str, int]] = {}
    for row in comparisons:
        a, b, winner = row["essay_a_els_id"], row["essay_b_els_id"], row["winner"]
        if winner not in ("essay_a", "essay_b", "tie"):
            continue  # errors and pending pairs count nowhere
        for essay_id in (a, b):
            tally.setdefault(essay_id, {"wins": 0, "losses": 0, "total": 0})["total"] += 1
        if winner == "essay_a":
            tally[a]["wins"] += 1
            tally[b]["losses"] += 1
        elif winner == "essay_b":
            tally[b]["wins"] += 1
            tally[a]["losses"] += 1
    return tally


def render_text(extract: Mapping[str, Any]) -> str:
    """The readable report: header, state, ranking table, projections, summary."""
    batch = extract["batch_info"]
    state = extract["batch_state"] or {}
    essays = extract["bradley_terry_stats"]
    projections = extract["grade_projections"]
    comparisons = extract["comparisons"]
    rule = "=" * 78
    lines = [
        rule,
        f"CJ ASSESSMENT RESULTS — batch {batch['bos_batch_id']}",
        rule,
        f"CJ batch id:          {batch['id']}",
        f"Status:               {batch['status']}",
        f"Expected essays:      {batch['expected_essay_count']}",
        f"Language / course:    {batch['language']} / {batch['course_code']}",
        f"Assignment:           {batch['assignment_id'] or '-'}",
        f"Created:              {_text(batch['created_at'])}",
        f"Completed:            {_text(batch['completed_at'])}",
        "",
        "BATCH STATE",
        "-" * 78,
    ]
    n = len(essays)
    for key in (
        "state",
        "total_budget",
        "total_comparisons",
        "submitted_comparisons",
        "completed_comparisons",
        "failed_comparisons",
        "current_iteration",
        "completion_threshold_pct",
    ):
        lines.append(f"{key:<26}{_text(state.get(key))}")
    lines.append(f"{'max_possible_pairs':<26}{n * (n - 1) // 2}")
    lines += ["", "BRADLEY-TERRY RANKING", "-" * 78]
    lines.append(
        f"{'rank':>4}  {'essay_id':<36} {'score':>8} {'se':>7} {'W':>4} {'L':>4} {'N':>4}  anchor"
    )
    for rank, essay in enumerate(essays, start=1):
        metadata = essay.get("processing_metadata")
        known = metadata.get("known_grade") if isinstance(metadata, dict) else None
        anchor = f"yes ({known})" if essay["is_anchor"] and known else str(essay["is_anchor"])
        lines.append(
            f"{rank:>4}  {essay['els_essay_id']:<36} {_number(essay['current_bt_score']):>8} "
            f"{_number(essay['current_bt_se']):>7} {essay['wins']:>4} {essay['losses']:>4} "
            f"{essay['comparison_count']:>4}  {anchor}"
        )
    lines += ["", "STUDENT GRADE PROJECTIONS", "-" * 78]
    if not projections:
        lines.append("(none)")
    for row in projections:
        lines.append(
            f"{row['els_essay_id']:<36} {row['primary_grade']:<4} {row['confidence_label']:<5} "
            f"confidence {_number(row['confidence_score'])}  normalized "
            f"{_number(row['normalized_score'])}  ({row['grade_scale']})"
        )
    succeeded = sum(1 for row in comparisons if row["winner"] in ("essay_a", "essay_b"))
    errors = sum(1 for row in comparisons if row["winner"] == "error" or row["error_code"])
    lines += [
        "",
        "SUMMARY",
        "-" * 78,
        f"Essays: {n} ({sum(1 for e in essays if e['is_anchor'])} anchors)",
        f"Comparisons: {len(comparisons)} ({succeeded} succeeded, {errors} errors)",
        f"Grade projections: {len(projections)}",
        "",
    ]
    return "\n".join(lines)


def _json_value(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, Decimal):
        return float(value)
    return str(value)


def _text(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


def _number(value: Any) -> str:
    return "-" if value is None else f"{float(value):.4f}"
