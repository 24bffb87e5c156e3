"""The fixtures built on the stacks: the ENG5 runner, its factories, and extra stacks."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from pytest_eng5.errors import ConfigurationError
from pytest_eng5.run_overrides import RUN_OVERRIDES_KEY, apply_overrides, run_overrides
from pytest_eng5.runner.config import RunConfig, RunHooks
from pytest_eng5.runner.inventory import ANCHOR_DIR, essay_files
from pytest_eng5.runner.results import RunResult
from pytest_eng5.runner_handle import Expectation, RunnerHandle, SampleAssignment
from pytest_eng5.sample_data import (
    OWN_ASSETS_ASSIGNMENT_ID,
    SAMPLE_ASSETS,
    SAMPLE_ASSIGNMENT_ID,
    SAMPLE_COURSE_ID,
)
from pytest_eng5.settings import Eng5Settings
from pytest_eng5.stash import get_settings
from pytest_eng5.summary import record_run

if TYPE_CHECKING:
    from pytest_eng5.stack_requests import Eng5StackFactory
    from pytest_eng5.variants import VariantParam


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
        return _assignment_from_settings(eng5_settings)
    return _seed(eng5_stack, SAMPLE_ASSETS, SAMPLE_ASSIGNMENT_ID)


@pytest.fixture(scope="session")
def eng5_assignment(
    eng5_stack: Any, eng5_settings: Eng5Settings, request: pytest.FixtureRequest
) -> SampleAssignment:
    """The assignment of the asset folder (``--eng5-assets``), which execute runs use.

    On the reference stack it is seeded once with the folder's anchors and instructions, as
    the operator's own assignment holds theirs in CJ; the sample assignment serves the sample
    set and a folder without anchors. On an external stack it comes from the settings.
    """
    if not eng5_stack.is_reference:
        return _assignment_from_settings(eng5_settings)
    assets = eng5_settings.assets
    if assets.resolve() == SAMPLE_ASSETS.resolve() or not essay_files(assets / ANCHOR_DIR):
        sample: SampleAssignment = request.getfixturevalue("eng5_sample_assignment")
        return sample
    return _seed(
        eng5_stack,
        assets,
        OWN_ASSETS_ASSIGNMENT_ID,
        grade_scale=eng5_settings.expected_grade_scale,
    )


def _assignment_from_settings(settings: Eng5Settings) -> SampleAssignment:
    if not settings.assignment_id or not settings.course_id:
        raise ConfigurationError(
            "on an external stack the runs need an existing assignment",
            next_step="set --eng5-assignment-id and --eng5-course-id",
        )
    return SampleAssignment(
        settings.assignment_id, settings.course_id, settings.expected_grade_scale or "", -1
    )


def _seed(
    stack: Any, assets: Path, assignment_id: str, *, grade_scale: str | None = None
) -> SampleAssignment:
    """Seed ``assets``' instructions and anchors as ``assignment_id`` on the reference CJ."""
    from pytest_eng5.runner.seeding import seed_assignment_at

    scale = {"grade_scale": grade_scale} if grade_scale else {}
    seeded = asyncio.run(
        seed_assignment_at(stack.cj_url, stack.env, assets, assignment_id=assignment_id, **scale)
    )
    return SampleAssignment(
        assignment_id, SAMPLE_COURSE_ID, seeded.grade_scale, seeded.anchor_count
    )
