"""Variant runs read back from evidence folders (each run's ``assessment_run.json``)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pytest_eng5.contracts.grade_scales import get_scale
from pytest_eng5.errors import ConfigurationError
from pytest_eng5.runner.variant_record import VARIANT_SETTING_KEYS

ARTEFACT_NAME = "assessment_run.json"
DEFAULT_EXPERIMENT = "default"


class CompareInputError(ConfigurationError):
    """The evidence given to the comparison cannot be compared; the message says why."""

    kind = "compare-input"


@dataclass(frozen=True)
class Judged:
    """One successful comparison between two anchors (by anchor id)."""

    winner: str
    loser: str
    winner_was_a: bool


@dataclass(frozen=True)
class VariantRun:
    """One batch of one variant: its anchors, its judgements and what it cost."""

    experiment: str
    variant: str
    repeat: int
    baseline: str | None
    batch_uuid: str
    mode: str
    grade_order: tuple[str, ...]
    anchor_grades: dict[str, str]
    judged: tuple[Judged, ...]
    failed_comparisons: int
    ssr: float | None
    tokens: int
    cost_usd: float
    duration_s: float | None
    settings: dict[str, Any] = field(default_factory=dict)
    path: Path | None = None

    @property
    def comparisons(self) -> int:
        return len(self.judged) + self.failed_comparisons


def find_artefacts(paths: Iterable[Path]) -> list[Path]:
    """Every ``assessment_run.json`` at or below ``paths`` (sorted, no duplicates)."""
    found: set[Path] = set()
    for path in paths:
        if path.is_file() and path.name == ARTEFACT_NAME:
            found.add(path.resolve())
        elif path.is_dir():
            found.update(p.resolve() for p in path.rglob(ARTEFACT_NAME))
        else:
            raise CompareInputError(
                f"no evidence at {path}",
                next_step="pass evidence folders (or assessment_run.json files) that exist",
            )
    return sorted(found)


def _float(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) else None


def read_run(path: Path) -> VariantRun | None:
    """The variant run of one artefact, or None when the run was not part of a variant."""
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
        metadata = doc["metadata"]
        settings = metadata.get("settings") or {}
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise CompareInputError(
            f"{path} is not a readable assessment_run.json ({exc})",
            next_step="pass the evidence folders a pytest-eng5 session wrote",
        ) from exc
    variant = settings.get("variant")
    if not variant:
        return None
    anchors = doc["inputs"].get("anchors") or []
    by_essay = {a["essay_id"]: a["anchor_id"] for a in anchors}
    judged = []
    failed = 0
    for record in doc.get("llm_comparisons") or []:
        winner, loser = record.get("winner_id"), record.get("loser_id")
        if record.get("status") != "succeeded" or winner is None or loser is None:
            failed += 1
            continue
        if winner in by_essay and loser in by_essay:
            judged.append(
                Judged(by_essay[winner], by_essay[loser], winner == record.get("essay_a_id"))
            )
    scale = metadata.get("grade_scale")
    durations = doc["validation"]["runner_status"].get("durations") or {}
    return VariantRun(
        experiment=str(settings.get("experiment") or DEFAULT_EXPERIMENT),
        variant=str(variant),
        repeat=int(settings.get("variant_repeat") or 1),
        baseline=settings.get("baseline"),
        batch_uuid=str(metadata["batch_uuid"]),
        mode=str(metadata["runner_mode"]),
        grade_order=get_scale(scale).grades if scale else (),
        anchor_grades={a["anchor_id"]: a["anchor_grade"] for a in anchors if a.get("anchor_grade")},
        judged=tuple(judged),
        failed_comparisons=failed,
        ssr=_float((doc.get("statistics") or {}).get("ssr")),
        tokens=sum(
            int(r.get("tokens_prompt") or 0) + int(r.get("tokens_completion") or 0)
            for r in doc.get("llm_comparisons") or []
        ),
        cost_usd=float((doc.get("costs") or {}).get("total_usd") or 0.0),
        duration_s=_float(durations.get("wait_seconds")),
        settings={k: settings[k] for k in VARIANT_SETTING_KEYS if settings.get(k) is not None},
        path=path,
    )


def load_runs(paths: Sequence[Path]) -> list[VariantRun]:
    """The variant runs found at or below ``paths``; a clear error when there are none."""
    runs = [run for run in map(read_run, find_artefacts(paths)) if run is not None]
    if not runs:
        raise CompareInputError(
            f"no variant runs in {', '.join(str(p) for p in paths)}",
            next_step="run a scenario with the eng5_variants marker first, "
            "or pass the folders such a session wrote (e.g. eng5-evidence/experiments)",
        )
    runs.sort(key=lambda r: (r.experiment, r.variant, r.repeat, r.batch_uuid))
    return runs
