"""Compare prompt, model and temperature variants of ENG5 runs from their evidence folders.

``python -m pytest_eng5.compare EVIDENCE_DIR...`` (or :func:`compare_folders` and
:func:`write_report`) reads every variant run below the folders and writes ``comparison.md``,
``comparison.png`` and ``comparison.json``. The plugin builds the same report at session end.
This package is client-side: it reads evidence only and never imports the reference services.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from pytest_eng5.compare.analysis import (
    BETTER,
    DEFAULT_RESAMPLES,
    DEFAULT_SEED,
    NO_DIFFERENCE,
    WORSE,
    ComparisonReport,
    Difference,
    ExperimentComparison,
    VariantSummary,
    compare_experiment,
    compare_runs,
)
from pytest_eng5.compare.render import render_markdown, report_dict
from pytest_eng5.compare.runs import CompareInputError, VariantRun, find_artefacts, load_runs

REPORT_FILES = ("comparison.md", "comparison.png", "comparison.json")


def compare_folders(
    paths: Sequence[Path],
    *,
    baseline: str | None = None,
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = DEFAULT_SEED,
) -> ComparisonReport:
    """The comparison of every variant run at or below ``paths``."""
    return compare_runs(load_runs(paths), baseline=baseline, resamples=resamples, seed=seed)


def write_report(report: ComparisonReport, out_dir: Path) -> list[Path]:
    """Write ``comparison.md``, ``comparison.png`` and ``comparison.json`` into ``out_dir``."""
    from pytest_eng5.compare.plot import render_forest_plot

    out_dir.mkdir(parents=True, exist_ok=True)
    markdown, png, data = (out_dir / name for name in REPORT_FILES)
    markdown.write_text(render_markdown(report), encoding="utf-8")
    data.write_text(json.dumps(report_dict(report), indent=2) + "\n", encoding="utf-8")
    render_forest_plot(report, png)
    return [markdown, png, data]


__all__ = [
    "BETTER",
    "DEFAULT_RESAMPLES",
    "DEFAULT_SEED",
    "NO_DIFFERENCE",
    "REPORT_FILES",
    "WORSE",
    "CompareInputError",
    "ComparisonReport",
    "Difference",
    "ExperimentComparison",
    "VariantRun",
    "VariantSummary",
    "compare_experiment",
    "compare_folders",
    "compare_runs",
    "find_artefacts",
    "load_runs",
    "render_markdown",
    "report_dict",
    "write_report",
]
