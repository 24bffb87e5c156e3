"""Run facts into JUnit (test and suite properties), the test output and the terminal summary."""

from __future__ import annotations

from typing import Any

import pytest

from pytest_eng5.redact import redact
from pytest_eng5.runner.results import RunResult


def _junit_xml(config: pytest.Config) -> Any:
    try:
        from _pytest.junitxml import xml_key
    except ImportError:  # pragma: no cover - pytest internals moved
        return None
    return config.stash.get(xml_key, None)


def record_run(config: pytest.Config, node: Any, result: RunResult) -> None:
    """Record one run on its test: properties, evidence link, messages; call the hook.

    Suite properties and the terminal summary are built from the test reports on the
    controlling process (:func:`collect_report`), so they survive ``pytest -n``.
    """
    if node is not None and hasattr(node, "user_properties"):
        node.user_properties.extend(result.properties())
    if result.evidence_dir is not None:
        # GitLab/Jenkins pick attachments from system-out (junit_logging=system-out).
        print(f"eng5 evidence: {result.evidence_dir}")
        print(f"[[ATTACHMENT|{result.evidence_dir}]]")
    for message in result.messages:
        print(redact(f"eng5: {message}"))
    config.hook.pytest_eng5_run_finished(result=result, node=node)


def runs_in(properties: list[tuple[str, object]]) -> list[dict[str, str]]:
    """The runs recorded on one test: each starts with its ``eng5_mode`` property."""
    runs: list[dict[str, str]] = []
    for name, value in properties:
        if name == "eng5_mode":
            runs.append({})
        if runs and name.startswith("eng5_"):
            runs[-1][name.removeprefix("eng5_")] = str(value)
    return runs


SUITE_FACTS = (
    "batch_uuid",
    "comparisons",
    "ssr",
    "split_half_spearman_brown",
    "n_cr",
    "mean_se",
    "tau_b",
    "duration_s",
)


def collect_report(config: pytest.Config, report: pytest.TestReport) -> list[dict[str, str]]:
    """Runs of a finished test: into the session summary and, when completed, the suite
    properties of the JUnit XML."""
    if report.when != "teardown":
        return []
    runs = runs_in(list(report.user_properties))
    xml = _junit_xml(config)
    for run in runs:
        if xml is None or run.get("outcome") != "completed":
            continue
        prefix = f"eng5_{run['mode']}_{run['batch_uuid'][:8]}"
        for key in SUITE_FACTS:
            if key in run:
                xml.add_global_property(f"{prefix}_{key}", run[key])
    return runs


def format_summary_table(runs: list[dict[str, str]]) -> list[str]:
    """The terminal table: uuid, mode, outcome, comparisons, SSR, tau-b, duration, evidence."""
    columns = (
        ("batch_uuid", "batch_uuid"),
        ("mode", "mode"),
        ("outcome", "outcome"),
        ("comparisons", "comparisons"),
        ("SSR", "ssr"),
        ("tau-b", "tau_b"),
        ("duration_s", "duration_s"),
        ("evidence", "evidence"),
    )
    table = [tuple(title for title, _ in columns)]
    table += [tuple(run.get(key) or "-" for _, key in columns) for run in runs]
    widths = [max(len(row[i]) for row in table) for i in range(len(columns))]
    return ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)) for row in table]
