"""Run facts into JUnit (test and suite properties), the test output and the terminal summary."""

from __future__ import annotations

import json
import shlex
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pytest

from pytest_eng5.core.outcome import Outcome
from pytest_eng5.errors import Eng5Error
from pytest_eng5.redact import redact
from pytest_eng5.runner.results import RunResult


@dataclass(frozen=True)
class InterruptedRun:
    """A run stopped by Ctrl-C/SIGTERM: its test never reports, so it is kept here."""

    nodeid: str
    facts: dict[str, str]


INTERRUPTED_KEY = pytest.StashKey[list[InterruptedRun]]()
#: the ``workerinput`` key naming the folder where xdist workers leave their interrupted runs:
#: an interrupted test sends no report, so the controller would not know the batch otherwise
INTERRUPTED_DIR_INPUT = "eng5_interrupted_runs_dir"


def share_interrupted_run(config: pytest.Config, run: InterruptedRun) -> None:
    """On an xdist worker, leave ``run`` where the controlling process reads it."""
    workerinput = getattr(config, "workerinput", {})
    folder = workerinput.get(INTERRUPTED_DIR_INPUT)
    if folder is None:
        return
    path = Path(folder) / f"{workerinput.get('workerid', 'worker')}.jsonl"
    with path.open("a", encoding="utf-8") as file:
        file.write(json.dumps(asdict(run)) + "\n")


def interrupted_runs(config: pytest.Config, shared_dir: Path | None) -> list[InterruptedRun]:
    """This process's interrupted runs and those its xdist workers left in ``shared_dir``."""
    here: list[InterruptedRun] = config.stash.get(INTERRUPTED_KEY, [])
    runs = list(here)
    if shared_dir is not None:
        for path in sorted(shared_dir.glob("*.jsonl")):
            for line in path.read_text(encoding="utf-8").splitlines():
                runs.append(InterruptedRun(**json.loads(line)))
    return runs


def junit_xml(config: pytest.Config) -> Any:
    """The session's JUnit XML writer (``--junitxml``), None without one."""
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
    if result.outcome is Outcome.INTERRUPTED:
        nodeid = str(getattr(node, "nodeid", ""))
        run = InterruptedRun(nodeid, runs_in(list(result.properties()))[0])
        config.stash.setdefault(INTERRUPTED_KEY, []).append(run)
        share_interrupted_run(config, run)
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
    "graph_components",
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
    xml = junit_xml(config)
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
        ("N_CR", "n_cr"),
        ("components", "graph_components"),
        ("SSR", "ssr"),
        ("tau-b", "tau_b"),
        ("duration_s", "duration_s"),
        ("evidence", "evidence"),
    )
    table = [tuple(title for title, _ in columns)]
    table += [tuple(run.get(key) or "-" for _, key in columns) for run in runs]
    widths = [max(len(row[i]) for row in table) for i in range(len(columns))]
    return ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)) for row in table]


def write_terminal_summary(
    reporter: Any,
    config: pytest.Config,
    runs: list[dict[str, str]],
    interrupted: list[InterruptedRun],
    *,
    embedded_stack: bool,
) -> None:
    """The ``eng5 runs`` table, plus how to re-attach to every interrupted batch."""
    reported = {run.get("batch_uuid") for run in runs}
    rows = runs + [i.facts for i in interrupted if i.facts.get("batch_uuid") not in reported]
    if not rows:
        return
    reporter.write_sep("=", "eng5 runs")
    for line in format_summary_table(rows):
        reporter.write_line(line)
    for run in interrupted:
        batch_uuid = run.facts.get("batch_uuid", "")
        reporter.write_line(f"eng5: batch {batch_uuid} was interrupted; re-attach to it with:")
        reporter.write_line("  " + reattach_command(config, run.nodeid, batch_uuid))
        if embedded_stack:
            reporter.write_line(
                "  (the embedded stack stopped with this session: re-attaching needs a stack "
                "that keeps running, e.g. --eng5-stack=external)"
            )


def reattach_command(config: pytest.Config, nodeid: str, batch_uuid: str) -> str:
    """This session's command for one test with ``--eng5-batch-uuid`` (its execute run then
    re-attaches: the batch's record says it was published). Secrets given as arguments (a
    ``--eng5-postgres-dsn`` with its password) are masked, as in every other output."""
    positional = set(config.args)
    kept: list[str] = []
    skip_next = False
    for arg in config.invocation_params.args:
        if skip_next:
            skip_next = False
            continue
        if arg == "--eng5-batch-uuid":
            skip_next = True
            continue
        if arg.startswith("--eng5-batch-uuid=") or arg in positional:
            continue
        kept.append(arg)
    return redact(shlex.join(["pytest", *kept, nodeid, f"--eng5-batch-uuid={batch_uuid}"]))


def short_failure(error: Eng5Error, properties: list[tuple[str, object]]) -> str:
    """A few lines for a test that failed with an ``Eng5Error``: what, the next step, where."""
    lines = [f"{type(error).__name__} [{error.kind}]: {error.message}"]
    if error.next_step:
        lines.append(f"  next step: {error.next_step}")
    runs = runs_in(properties)
    evidence = runs[-1].get("evidence") if runs else None
    where = f"the full traceback is in {evidence}/run.log; " if evidence else ""
    lines.append(f"  ({where}--tb=long prints it here)")
    return redact("\n".join(lines))
