"""When the stack cannot be reached: the main job errors, other tests may skip, and every
eng5 skip is listed in the terminal summary (no ``-rs`` needed).

A test marked ``eng5_execute`` is a real run: a stack that is down or misconfigured is an
error there, naming every missing or failing setting. Other tests that need the stack are
skipped with that reason, unless ``--eng5-require-services`` makes them errors too.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

import pytest

from pytest_eng5.errors import ConfigurationError, Eng5Error
from pytest_eng5.stash import get_settings

SKIP_PREFIX = "eng5 stack unavailable: "


class StackUnavailableError(ConfigurationError):
    """The configured stack cannot be used; the message names every problem found."""

    kind = "stack-unavailable"


class StackPolicy:
    """Turns a stack failure into a skip where allowed, and reports eng5 skips at the end."""

    def __init__(self) -> None:
        self.skips: list[tuple[str, str]] = []

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(
        self, item: pytest.Item, call: pytest.CallInfo[None]
    ) -> Generator[None, pytest.TestReport, pytest.TestReport]:
        error = call.excinfo.value if call.excinfo is not None else None
        if isinstance(error, Eng5Error):
            item.user_properties.append(("eng5_error_kind", error.kind))
        report = yield
        if (
            report.when == "setup"
            and report.failed
            and isinstance(error, StackUnavailableError)
            and item.get_closest_marker("eng5_execute") is None
            and not get_settings(item.config).require_services
        ):
            report.outcome = "skipped"
            _, line, _ = item.location
            report.longrepr = (str(item.path), (line or 0) + 1, SKIP_PREFIX + error.message)
        return report

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if not report.skipped or not isinstance(report.longrepr, tuple):
            return
        reason = str(report.longrepr[2]).removeprefix("Skipped: ")
        eng5_marked = any(str(k).startswith("eng5_") for k in report.keywords)
        if eng5_marked or "eng5" in reason:
            self.skips.append((report.nodeid, reason))

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if not self.skips:
            return
        terminalreporter.write_sep("=", f"eng5: {len(self.skips)} skipped, and why")
        for nodeid, reason in self.skips:
            terminalreporter.write_line(f"SKIPPED {nodeid}: {reason}")
