"""Run facts into JUnit (test and suite properties), the test output and the terminal summary."""

from __future__ import annotations

from typing import Any

import pytest

from pytest_eng5.runner.results import RunResult


def _junit_xml(config: pytest.Config) -> Any:
    try:
        from _pytest.junitxml import xml_key
    except ImportError:  # pragma: no cover - pytest internals moved
        return None
    return config.stash.get(xml_key, None)


def record_run(config: pytest.Config, node: Any, result: RunResult) -> None:
    """Record one run: item properties, evidence link, suite properties, summary row, hook."""
    from pytest_eng5.plugin import RUNS_KEY

    if node is not None and hasattr(node, "user_properties"):
        node.user_properties.extend(result.properties())
    if result.evidence_dir is not None:
        # GitLab/Jenkins pick attachments from system-out (junit_logging=system-out).
        print(f"eng5 evidence: {result.evidence_dir}")
        print(f"[[ATTACHMENT|{result.evidence_dir}]]")
    for message in result.messages:
        print(f"eng5: {message}")
    xml = _junit_xml(config)
    if xml is not None and result.outcome == "completed":
        prefix = f"eng5_{result.mode}_{result.batch_uuid[:8]}"
        for key in ("n_cr", "ssr", "split_half_spearman_brown", "mean_se"):
            if result.statistics.get(key) is not None:
                xml.add_global_property(f"{prefix}_{key}", str(result.statistics[key]))
        if "tau_b" in result.alignment:
            xml.add_global_property(f"{prefix}_tau_b", str(result.alignment["tau_b"]))
        xml.add_global_property(f"{prefix}_batch_uuid", result.batch_uuid)
    config.stash.setdefault(RUNS_KEY, []).append(result.summary_row())
    config.hook.pytest_eng5_run_finished(result=result, node=node)


def _fmt(value: Any, digits: int = 3) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def format_summary_table(rows: list[dict[str, Any]]) -> list[str]:
    """The terminal table: uuid, mode, outcome, comparisons, SSR, tau-b, duration, evidence."""
    header = (
        "batch_uuid",
        "mode",
        "outcome",
        "comparisons",
        "SSR",
        "tau-b",
        "duration",
        "evidence",
    )
    table = [header] + [
        (
            row["batch_uuid"],
            row["mode"],
            row["outcome"],
            str(row["comparisons"]),
            _fmt(row.get("ssr")),
            _fmt(row.get("tau_b")),
            f"{row['duration_s']:.2f}s",
            row["evidence"] or "-",
        )
        for row in rows
    ]
    widths = [max(len(r[i]) for r in table) for i in range(len(header))]
    return ["  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)) for r in table]
