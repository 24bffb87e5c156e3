"""pytest glue for pytest-eng5: options, markers, hooks, fixtures, evidence in JUnit.

The logic lives in :mod:`pytest_eng5.runner` and :mod:`pytest_eng5.stack`; this module only
wires it into pytest.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import Any

import pytest

from pytest_eng5 import hookspecs
from pytest_eng5.core import dsn_from_env
from pytest_eng5.errors import Eng5Error
from pytest_eng5.fixtures import (
    eng5_assignment,
    eng5_runner,
    eng5_runner_factory,
    eng5_sample_assignment,
    eng5_stack_factory,
    eng5_stack_runner_factory,
)
from pytest_eng5.run_overrides import check_run_settings
from pytest_eng5.runner_handle import check_expectations
from pytest_eng5.settings import OPTIONS, OPTIONS_BY_NAME, Eng5Settings, SettingsError
from pytest_eng5.settings_sources import resolve_settings
from pytest_eng5.stack_policy import StackPolicy, StackUnavailableError
from pytest_eng5.stash import RUNS_KEY, SETTINGS_KEY, get_settings
from pytest_eng5.variants import MARKER as VARIANTS_MARKER
from pytest_eng5.variants import eng5_variant

MARKERS = (
    "eng5_execute: a real end-to-end ENG5 run on the configured stack (the main job; "
    "select with -m eng5_execute)",
    "eng5_scenario(name): an ENG5 acceptance or failure scenario (R1-R7, faults); "
    "name is the requirement or fault it covers",
    "eng5_run(*, assets=None, assignment_id=None, max_comparisons=None, batch_label=None, "
    "batch_uuid=None, expected_grade_scale=None, force_reupload=None, no_kafka=None, "
    "no_await=None, auto_extract_db=None, completion_timeout=None, "
    "**other_eng5_settings): configure the eng5_runner fixture for this test, module or "
    "class; the closest marker wins",
    "eng5_expect(*, outcome=None, error=None): the runs of eng5_runner must end with this "
    "outcome (e.g. 'completed') or raise this error type (the call then returns the result)",
    "eng5_needs_docker: the test needs a Docker engine (skipped with the reason when none answers)",
    VARIANTS_MARKER,
)


def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
    pluginmanager.add_hookspecs(hookspecs)


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("eng5", "ENG5 comparative-judgement runs (pytest-eng5)")
    for spec in OPTIONS:
        if spec.env_only:
            continue  # a credential: never on the command line or in an ini file
        sources = f"ini {spec.ini_key}" + (f", env {', '.join(spec.env)}" if spec.env else "")
        default = "" if spec.default is None else f"; default {spec.default}"
        choices = f" ({'|'.join(spec.choices)})" if spec.choices else ""
        help_text = f"{spec.help}{choices} [{sources}{default}]"
        if spec.type == "bool":
            group.addoption(
                spec.cli_flag,
                dest=f"eng5_{spec.name}",
                action="store_true",
                default=None,
                help=help_text,
            )
        else:
            group.addoption(
                spec.cli_flag,
                dest=f"eng5_{spec.name}",
                action="store",
                default=None,
                metavar=spec.type.upper(),
                help=help_text,
            )
        parser.addini(spec.ini_key, help=f"{spec.help}{choices}", type="string", default="")


def settings_from_config(config: pytest.Config) -> Eng5Settings:
    """Resolve the eng5 settings of ``config`` (CLI > env > ini > default)."""
    given = [spec for spec in OPTIONS if not spec.env_only]
    cli = {spec.name: config.getoption(f"eng5_{spec.name}") for spec in given}
    ini = {spec.name: config.getini(spec.ini_key) for spec in given}
    return resolve_settings(cli, ini, os.environ)


def pytest_configure(config: pytest.Config) -> None:
    for marker in MARKERS:
        config.addinivalue_line("markers", marker)
    settings = startup_settings(config)
    config.stash[SETTINGS_KEY] = settings
    config.stash[RUNS_KEY] = []
    config.pluginmanager.register(RunReporter(config), "eng5-run-reporter")
    config.pluginmanager.register(StackPolicy(), "eng5-stack-policy")
    from pytest_eng5.comparison_report import ComparisonReporter

    config.pluginmanager.register(ComparisonReporter(config, RUNS_KEY), "eng5-comparison-reporter")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    from pytest_eng5.variants import parametrize

    parametrize(metafunc, get_settings(metafunc.config))


def startup_settings(config: pytest.Config) -> Eng5Settings:
    """The session's settings, after every check that needs no network.

    Each problem is a :class:`pytest.UsageError` (exit 4) naming the option and the fix,
    raised before any stack starts.
    """
    try:
        settings = settings_from_config(config)
    except SettingsError as exc:
        raise pytest.UsageError(str(exc)) from None
    problems = input_problems(settings)
    if problems:
        raise pytest.UsageError(
            "invalid eng5 inputs:\n  - " + "\n  - ".join(problems) + "\n  next step: fix or "
            "remove the files named above, or point the option at another path"
        )
    if settings.stack == "testcontainers":
        from pytest_eng5.stack.docker_engine import docker_engine_available

        available, reason = docker_engine_available()
        if not available:
            raise pytest.UsageError(
                f"--eng5-stack=testcontainers needs a Docker engine ({reason}); "
                "drop the option to use the embedded stack"
            )
    return settings


def input_problems(settings: Eng5Settings) -> list[str]:
    """What is wrong with the files the settings name (asset folder, prompt files)."""
    from pytest_eng5.sample_data import SAMPLE_ASSETS

    problems: list[str] = []
    if settings.assets != SAMPLE_ASSETS:
        from pytest_eng5.runner.inventory import (
            ANCHOR_DIR,
            asset_folder_problems,
            essay_files,
            find_instructions,
        )

        where = OPTIONS_BY_NAME["assets"].where()
        problems += [f"{where}: {problem}" for problem in asset_folder_problems(settings.assets)]
        if (
            not problems
            and settings.stack != "external"
            and essay_files(settings.assets / ANCHOR_DIR)
            and find_instructions(settings.assets) is None
        ):
            problems.append(
                f"{where}: {settings.assets} holds anchors but no instructions file; the "
                "reference stack registers the folder's anchors for an assignment made from "
                "its instructions: add instructions.md"
            )
    for name in ("system_prompt_file", "rubric_file"):
        path = getattr(settings, name)
        if path is not None and not path.is_file():
            problems.append(f"{OPTIONS_BY_NAME[name].where()}: {path} is not a file")
    return problems


class RunReporter:
    """Collects the runs of finished tests on the controlling process (also under xdist) for
    the JUnit suite properties and the terminal summary."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.interrupted_dir: Path | None = None

    @pytest.hookimpl(optionalhook=True)
    def pytest_configure_node(self, node: Any) -> None:
        """Give each xdist worker the folder where it leaves its interrupted runs."""
        from pytest_eng5.summary import INTERRUPTED_DIR_INPUT

        if self.interrupted_dir is None:
            self.interrupted_dir = Path(tempfile.mkdtemp(prefix="eng5-interrupted-"))
        node.workerinput[INTERRUPTED_DIR_INPUT] = str(self.interrupted_dir)

    def pytest_unconfigure(self) -> None:
        if self.interrupted_dir is not None:
            shutil.rmtree(self.interrupted_dir, ignore_errors=True)

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        from pytest_eng5.summary import collect_report

        self.config.stash[RUNS_KEY].extend(collect_report(self.config, report))

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        from pytest_eng5.summary import interrupted_runs, write_terminal_summary

        embedded = get_settings(self.config).stack == "embedded"
        runs = self.config.stash[RUNS_KEY]
        interrupted = interrupted_runs(self.config, self.interrupted_dir)
        write_terminal_summary(
            terminalreporter, self.config, runs, interrupted, embedded_stack=embedded
        )


def pytest_report_header(config: pytest.Config) -> str:
    settings = config.stash.get(SETTINGS_KEY, None)
    if settings is None:
        return "eng5: settings unresolved"
    header = (
        f"eng5: stack={settings.stack}, assets={settings.assets.name}, "
        f"evidence={settings.evidence_dir}"
    )
    if settings.stack == "external" and not (settings.dsn() or dsn_from_env(os.environ)):
        from pytest_eng5.stack_requests import NO_DATABASE

        header += f"\neng5: {NO_DATABASE}"
    return header


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    settings = config.stash.get(SETTINGS_KEY, None)
    if settings is not None:
        check_run_settings(config, settings, items)
    check_expectations(items)
    needing_docker = [i for i in items if i.get_closest_marker("eng5_needs_docker") is not None]
    if not needing_docker:
        return
    from pytest_eng5.stack.docker_engine import docker_engine_available

    available, reason = docker_engine_available()  # asked once per session
    if not available:
        for item in needing_docker:
            item.add_marker(pytest.mark.skip(reason=reason))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """A test failing with an ``Eng5Error`` shows its message and next step in a few lines
    (``--tb=long`` shows the traceback; the run's run.log always has it)."""
    if call.excinfo is not None and isinstance(call.excinfo.value, Eng5Error):
        item.user_properties.append(("eng5_error_kind", call.excinfo.value.kind))
    report: pytest.TestReport = yield
    error = call.excinfo.value if call.excinfo is not None else None
    if isinstance(error, Eng5Error) and report.failed and item.config.option.tbstyle in _SHORT_TB:
        from pytest_eng5.summary import short_failure

        report.longrepr = short_failure(error, list(item.user_properties))
    return report


_SHORT_TB = ("auto", "short")


@pytest.fixture(scope="session")
def eng5_settings(pytestconfig: pytest.Config) -> Eng5Settings:
    """The resolved eng5 settings of this session."""
    return get_settings(pytestconfig)


@pytest.fixture(scope="session")
def eng5_stack(
    pytestconfig: pytest.Config, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Any]:
    """The session's stack: Kafka, PostgreSQL and the CJ/Content services (or external ones).

    One stack per xdist worker; every process it starts is stopped at the end.
    """
    from pytest_eng5.stack_requests import session_stack

    settings = get_settings(pytestconfig)
    try:
        with session_stack(settings, tmp_path_factory) as stack:
            yield stack
    except StackUnavailableError:
        raise  # the main job errors; other tests skip (see stack_policy)
    except Eng5Error as exc:
        if exc.kind == "stack-unavailable":  # a provider this machine cannot run (no java)
            raise StackUnavailableError(exc.message, next_step=exc.next_step) from exc
        if settings.stack != "external":
            raise  # the reference stack must always start
        raise StackUnavailableError(exc.message, next_step=exc.next_step) from exc


__all__ = [
    "RUNS_KEY",
    "SETTINGS_KEY",
    "eng5_assignment",
    "eng5_runner",
    "eng5_runner_factory",
    "eng5_sample_assignment",
    "eng5_settings",
    "eng5_stack",
    "eng5_stack_factory",
    "eng5_stack_runner_factory",
    "eng5_variant",
    "get_settings",
    "settings_from_config",
]
