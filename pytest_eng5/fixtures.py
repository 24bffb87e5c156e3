"""The fixtures built on the stacks: the ENG5 runner, its factories, and extra stacks."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pytest

from pytest_eng5.errors import ConfigurationError
from pytest_eng5.redact import redact
from pytest_eng5.run_overrides import RUN_OVERRIDES_KEY, apply_overrides, run_overrides
from pytest_eng5.runner.config import Endpoints, RunConfig, RunHooks
from pytest_eng5.runner.interrupts import sigterm_as_interrupt
from pytest_eng5.runner.results import OUTCOMES, RunResult
from pytest_eng5.sample_data import SAMPLE_ASSETS, SAMPLE_ASSIGNMENT_ID, SAMPLE_COURSE_ID
from pytest_eng5.settings import Eng5Settings
from pytest_eng5.stash import get_settings
from pytest_eng5.summary import record_run

if TYPE_CHECKING:
    from pytest_eng5.runner.orchestrator import Eng5Runner
    from pytest_eng5.stack_requests import Eng5StackFactory
    from pytest_eng5.variants import VariantParam


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


def run_config(settings: Eng5Settings) -> RunConfig:
    """The runner's configuration from the session's pytest settings."""
    return RunConfig.from_values(settings.run_values())


def _hooks(config: pytest.Config, extra: RunHooks | None = None) -> RunHooks:
    """The plugin's ``pytest_eng5_*`` hooks, then the test's own ``extra`` callbacks."""
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    extra = extra or RunHooks()

    def progress(info: Any) -> None:
        if reporter is not None:
            reporter.write_line(
                f"eng5: {info.comparisons} comparisons received, {info.elapsed_seconds:.1f} s"
            )
        if extra.on_progress is not None:
            extra.on_progress(info)

    def before_publish(envelope: Any, identity: Any) -> None:
        config.hook.pytest_eng5_before_publish(envelope=envelope, identity=identity)
        if extra.before_publish is not None:
            extra.before_publish(envelope, identity)

    def on_event(event: Any, identity: Any) -> None:
        config.hook.pytest_eng5_event_received(event=event, identity=identity)
        if extra.on_event is not None:
            extra.on_event(event, identity)

    return RunHooks(before_publish=before_publish, on_event=on_event, on_progress=progress)


def _runner_factory(
    request: pytest.FixtureRequest, source: str, variant: VariantParam | None
) -> Callable[..., RunnerHandle]:
    config = request.config
    node = request.node

    def record(result: RunResult) -> None:
        record_run(config, node, result)

    def factory(stack: Any, *, hooks: RunHooks | None = None, **overrides: Any) -> RunnerHandle:
        # markers, variant and hooks were validated at collection
        session = get_settings(config)
        earlier = node.stash.get(RUN_OVERRIDES_KEY, None)
        if earlier is None:
            earlier = run_overrides(node, session)
        settings = apply_overrides(session, earlier, "eng5_run marker, variant or hook")
        if variant is not None:
            # derived now: session fixtures may have moved the evidence since collection
            paths = {
                "evidence_dir": variant.evidence_folder(session),
                "cache_file": run_config(session).upload_cache_path,  # shared by the variants
            }
            where = f"eng5_variants variant {variant.variant!r}"
            settings = apply_overrides(settings, paths, where)
        settings = apply_overrides(settings, overrides, source)
        # imported here: the runner pulls in aiokafka, numpy and scipy, which pytest start-up
        # (every session that loads the plugin) does not need
        from pytest_eng5.runner.orchestrator import Eng5Runner

        runner = Eng5Runner(run_config(settings), stack.endpoints(), _hooks(config, hooks))
        return RunnerHandle(runner, record, Expectation.from_node(node), settings)

    return factory


@pytest.fixture
def eng5_stack_runner_factory(
    request: pytest.FixtureRequest, eng5_variant: VariantParam | None
) -> Callable[..., RunnerHandle]:
    """``factory(stack, *, hooks=None, **settings) -> RunnerHandle`` bound to ``stack`` (one
    from ``eng5_stack_factory``); settings as for ``eng5_runner_factory``. It does not start
    the session stack."""
    return _runner_factory(request, "eng5_stack_runner_factory", eng5_variant)


@pytest.fixture
def eng5_runner_factory(
    request: pytest.FixtureRequest, eng5_stack: Any, eng5_variant: VariantParam | None
) -> Callable[..., RunnerHandle]:
    """``factory(*, hooks=None, **settings) -> RunnerHandle`` bound to the session stack.

    Settings come from the session (CLI/env/ini), then ``eng5_run`` markers, then the
    ``eng5_variants`` variant, then ``pytest_eng5_adjust_settings`` hooks, then the factory's
    keyword arguments. ``hooks`` (a ``RunHooks``) adds the test's own callbacks after the
    plugin's hooks.
    """

    make = _runner_factory(request, "eng5_runner_factory", eng5_variant)

    def factory(**overrides: Any) -> RunnerHandle:
        return make(eng5_stack, **overrides)

    return factory


@pytest.fixture(scope="session")
def eng5_stack_factory(
    pytestconfig: pytest.Config, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Eng5StackFactory]:
    """``factory(*, partitions=None, judge=None, faults=None, kafka=None, brokers=None,
    services=True, **settings) -> StackContext``: an extra stack beside the session's, with
    these settings (``services=False``: Kafka and PostgreSQL only, no reference services).

    Arguments are validated like every setting. The same arguments give the same running
    stack (fault knobs reset to ``faults``); ``factory.stop(stack)`` stops one early, and every
    stack stops at session end. Work directories and logs are under pytest's tmp dirs.
    """
    from pytest_eng5.stack_requests import Eng5StackFactory

    root = tmp_path_factory.mktemp("eng5-stacks")
    factory = Eng5StackFactory(get_settings(pytestconfig), root)
    try:
        yield factory
    finally:
        factory.close()


@pytest.fixture
def eng5_runner(eng5_runner_factory: Callable[..., RunnerHandle]) -> RunnerHandle:
    """The ENG5 runner configured by the session settings and ``eng5_run`` markers."""
    return eng5_runner_factory()


@pytest.fixture(scope="session")
def eng5_sample_assignment(eng5_stack: Any, eng5_settings: Eng5Settings) -> SampleAssignment:
    """The sample assignment with its 12 anchors, seeded once on the reference stack.

    On an external stack nothing is seeded: the assignment comes from the settings.
    """
    if not eng5_stack.is_reference:
        if not eng5_settings.assignment_id or not eng5_settings.course_id:
            raise ConfigurationError(
                "on an external stack the runs need an existing assignment",
                next_step="set --eng5-assignment-id and --eng5-course-id",
            )
        return SampleAssignment(
            eng5_settings.assignment_id,
            eng5_settings.course_id,
            eng5_settings.expected_grade_scale or "",
            -1,
        )
    from pytest_eng5.runner.seeding import seed_assignment_at

    seeded = asyncio.run(
        seed_assignment_at(
            eng5_stack.cj_url, eng5_stack.env, SAMPLE_ASSETS, assignment_id=SAMPLE_ASSIGNMENT_ID
        )
    )
    return SampleAssignment(
        SAMPLE_ASSIGNMENT_ID, SAMPLE_COURSE_ID, seeded.grade_scale, seeded.anchor_count
    )
