"""What a test holds while it runs the ENG5 runner: the runner handles (sync and async faces
that record every run on the test) and the ``eng5_expect`` expectation they check."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pytest

from pytest_eng5.redact import redact
from pytest_eng5.runner.config import Endpoints, RunConfig
from pytest_eng5.runner.interrupts import sigterm_as_interrupt
from pytest_eng5.runner.results import OUTCOMES, RunResult
from pytest_eng5.settings import Eng5Settings

if TYPE_CHECKING:
    from pytest_eng5.runner.orchestrator import Eng5Runner


@dataclass(frozen=True)
class SampleAssignment:
    """The assignment the runs use: seeded on the reference stack, given on an external one."""

    assignment_id: str
    course_id: str
    grade_scale: str
    anchors: int


@dataclass(frozen=True)
class Expectation:
    """What an ``eng5_expect`` marker says a run must end with."""

    outcome: str | None = None
    error: type[Exception] | None = None

    @classmethod
    def from_node(cls, node: pytest.Item) -> Expectation | None:
        marker = node.get_closest_marker("eng5_expect")
        if marker is None:
            return None
        unknown = set(marker.kwargs) - {"outcome", "error"}
        if marker.args or unknown:
            raise pytest.UsageError("eng5_expect takes outcome=... and/or error=... only")
        expectation = cls(**marker.kwargs)
        if expectation.outcome is not None and expectation.outcome not in OUTCOMES:
            raise pytest.UsageError(
                f"eng5_expect: unknown outcome {expectation.outcome!r}; "
                f"one of {', '.join(OUTCOMES)}"
            )
        return expectation

    def check(self, result: RunResult) -> None:
        if self.error is not None:
            raise AssertionError(
                f"eng5_expect: expected {self.error.__name__}, but the run ended "
                f"{result.outcome.value}"
            )
        if self.outcome is not None and result.outcome != self.outcome:
            raise AssertionError(
                f"eng5_expect: expected outcome {self.outcome!r}, got {result.outcome.value!r} "
                f"(batch {result.batch_uuid})"
            )


def check_expectations(items: list[pytest.Item]) -> None:
    """Read every ``eng5_expect`` marker at collection: a bad one is a usage error naming each
    test before any stack starts, not an error of its test after the stack started."""
    problems = []
    for item in items:
        try:
            Expectation.from_node(item)
        except pytest.UsageError as exc:
            problems.append(f"{item.nodeid}: {exc}")
    if problems:
        raise pytest.UsageError("\n".join(problems))


class AsyncRunnerHandle:
    """Async face of :class:`Eng5Runner` for async tests (``await eng5_runner.aio.execute()``).

    Records every call like the synchronous face: JUnit properties, the evidence link, the
    ``pytest_eng5_run_finished`` hook and the ``eng5_expect`` marker.
    """

    def __init__(
        self,
        runner: Eng5Runner,
        record: Callable[[RunResult], None],
        expect: Expectation | None = None,
    ) -> None:
        self.runner = runner
        self._record = record
        self._expect = expect

    @property
    def endpoints(self) -> Endpoints:
        return self.runner.endpoints

    @endpoints.setter
    def endpoints(self, endpoints: Endpoints) -> None:
        self.runner.endpoints = endpoints

    @property
    def last_result(self) -> RunResult | None:
        return self.runner.last_result

    async def run(self, mode: str) -> RunResult:
        """Run one mode by name (``plan``, ``dry_run``, ``execute``, ...) and record it."""
        method: Callable[[], Awaitable[RunResult]] = getattr(self.runner, mode)
        try:
            result = await method()
        except Exception as exc:
            if self._expect is None or self._expect.error is None:
                raise
            if not isinstance(exc, self._expect.error) or self.runner.last_result is None:
                raise AssertionError(
                    f"eng5_expect: expected {self._expect.error.__name__} from a started run, "
                    f"got {type(exc).__name__}: {exc}"
                ) from exc
            return self.runner.last_result
        finally:
            if self.runner.last_result is not None:
                self._record(self.runner.last_result)
        if self._expect is not None:
            self._expect.check(result)
        return result

    async def plan(self) -> RunResult:
        return await self.run("plan")

    async def dry_run(self) -> RunResult:
        return await self.run("dry_run")

    async def execute(self) -> RunResult:
        return await self.run("execute")

    async def anchor_align(self) -> RunResult:
        return await self.run("anchor_align")

    async def register_anchors(self) -> RunResult:
        return await self.run("register_anchors")

    async def attach(self) -> RunResult:
        return await self.run("attach")

    async def verify_auth(self) -> dict[str, Any]:
        """The token's claims (never the token) and whether CJ accepts it."""
        return await self.runner.verify_auth()


class RunnerHandle:
    """Synchronous face of :class:`Eng5Runner` for test modules; ``aio`` is the async one.

    Every call records the result on the test item (JUnit properties, evidence link) and in
    the session summary, also when the call raises. While a call runs, SIGTERM stops it like
    Ctrl-C (the run is recorded as interrupted).
    """

    def __init__(
        self,
        runner: Eng5Runner,
        record: Callable[[RunResult], None],
        expect: Expectation | None = None,
        settings: Eng5Settings | None = None,
    ) -> None:
        self.aio = AsyncRunnerHandle(runner, record, expect)
        self._settings = settings

    @property
    def settings(self) -> Eng5Settings | None:
        """The pytest settings this runner was configured from."""
        return self._settings

    @property
    def config(self) -> RunConfig:
        return self.aio.runner.config

    @property
    def last_result(self) -> RunResult | None:
        return self.aio.last_result

    def _run(self, name: str) -> RunResult:
        with sigterm_as_interrupt():
            return asyncio.run(self.aio.run(name))

    def plan(self) -> RunResult:
        return self._run("plan")

    def dry_run(self) -> RunResult:
        return self._run("dry_run")

    def execute(self) -> RunResult:
        return self._run("execute")

    def anchor_align(self) -> RunResult:
        return self._run("anchor_align")

    def register_anchors(self) -> RunResult:
        return self._run("register_anchors")

    def attach(self) -> RunResult:
        return self._run("attach")

    def verify_auth(self) -> dict[str, Any]:
        """Print and return the token's claims (never the token) and whether CJ accepts it."""
        report: dict[str, Any] = asyncio.run(self.aio.verify_auth())
        claims = report.get("claims") or {}
        print(
            redact(
                f"eng5 verify-auth: token from {report.get('source')}, claims "
                f"{json.dumps(claims, default=str, sort_keys=True)}, "
                f"{'accepted' if report.get('confirmed') else 'REFUSED'}: {report.get('detail')}"
            )
        )
        return report
