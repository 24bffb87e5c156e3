"""The session-end comparison report of variant runs: files, JUnit suite properties, terminal
lines and the ``--eng5-fail-on-worse`` gate. Runs on the controlling process (also under
xdist), from the evidence folders of the runs the test reports carried."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from pytest_eng5.stash import get_settings
from pytest_eng5.variants import experiments_root


def _variant_folders(runs: list[dict[str, str]], root: Path) -> list[Path]:
    resolved_root = root.resolve()
    folders = []
    for run in runs:
        evidence = run.get("evidence")
        if evidence and Path(evidence).resolve().is_relative_to(resolved_root):
            folders.append(Path(evidence))
    return sorted(set(folders))


class ComparisonReporter:
    """Builds the comparison at session end when any variant run finished."""

    def __init__(self, config: pytest.Config, runs_key: Any) -> None:
        self.config = config
        self.runs_key = runs_key
        self.lines: list[str] = []

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        if hasattr(self.config, "workerinput"):
            return
        # read now: session fixtures may have moved the evidence after configure
        settings = get_settings(self.config)
        root = experiments_root(settings)
        folders = _variant_folders(self.config.stash[self.runs_key], root)
        if not folders:
            return
        from pytest_eng5.compare import CompareInputError, compare_folders, write_report

        try:
            report = compare_folders(
                [f for f in folders if f.exists()],
                baseline=settings.baseline,
                resamples=settings.bootstrap_resamples,
            )
        except CompareInputError as exc:
            self.lines.append(f"no comparison report: {exc}")
            if settings.fail_on_worse:
                session.exitstatus = pytest.ExitCode.TESTS_FAILED
            return
        written = write_report(report, root)
        self._suite_properties(report)
        for experiment in report.experiments:
            for v in experiment.variants:
                verdict = v.vs_baseline.verdict if v.vs_baseline else "baseline"
                self.lines.append(
                    f"{experiment.experiment}/{v.variant}: tau-b {v.tau_b:.3f} "
                    f"[{v.tau_b_low:.3f}, {v.tau_b_high:.3f}], {v.runs} run(s): {verdict}"
                )
        self.lines.append(f"report: {written[0]}")
        worse = report.worse()
        if worse and settings.fail_on_worse:
            names = ", ".join(f"{e}/{v}" for e, v in worse)
            self.lines.append(f"FAILED (--eng5-fail-on-worse): worse than the baseline: {names}")
            session.exitstatus = pytest.ExitCode.TESTS_FAILED

    def _suite_properties(self, report: Any) -> None:
        from pytest_eng5.summary import junit_xml

        xml = junit_xml(self.config)
        if xml is None:
            return
        for experiment in report.experiments:
            for v in experiment.variants:
                prefix = f"eng5_compare_{experiment.experiment}_{v.variant}"
                xml.add_global_property(f"{prefix}_tau_b", f"{v.tau_b:.4f}")
                xml.add_global_property(
                    f"{prefix}_tau_b_ci", f"[{v.tau_b_low:.4f}, {v.tau_b_high:.4f}]"
                )
                xml.add_global_property(f"{prefix}_runs", str(v.runs))
                if v.vs_baseline is not None:
                    xml.add_global_property(
                        f"{prefix}_difference", f"{v.vs_baseline.difference:+.4f}"
                    )
                    xml.add_global_property(f"{prefix}_verdict", v.vs_baseline.verdict)

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if not self.lines:
            return
        terminalreporter.write_sep("=", "eng5 variant comparison")
        for line in self.lines:
            terminalreporter.write_line(line)
