"""The layering the package promises: the stack starts without the runner's maths, and the
names shared by the layers have one definition in the core."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from pytest_eng5 import core, settings
from pytest_eng5.reference import finalisation, intake
from pytest_eng5.runner import orchestrator, preflight
from pytest_eng5.stack import config as stack_config


@pytest.mark.parametrize(
    "module", ["pytest_eng5.stack", "pytest_eng5.stack.session", "pytest_eng5.stack.__main__"]
)
def test_importing_the_stack_loads_neither_numpy_nor_scipy(module: str) -> None:
    probe = (
        f"import json, sys, importlib; importlib.import_module({module!r}); "
        "print(json.dumps(sorted(m for m in ('numpy', 'scipy', 'choix') if m in sys.modules)))"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True
    )
    assert json.loads(result.stdout) == []


def test_the_whole_stack_loads_without_the_pytest_shaped_settings() -> None:
    modules = ("session", "factory", "external", "request", "config")
    probe = (
        "import json, sys, importlib; "
        f"[importlib.import_module('pytest_eng5.stack.' + m) for m in {modules!r}]; "
        "print(json.dumps(sorted(m for m in sys.modules if m.startswith('pytest_eng5.settings'))))"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True
    )
    assert json.loads(result.stdout) == []


def test_the_layers_share_one_definition_of_each_name() -> None:
    assert orchestrator.RUNNER_FALLBACK_GRADE_SCALE is core.RUNNER_FALLBACK_GRADE_SCALE
    assert intake.DEFAULT_GRADE_SCALE is core.DEFAULT_GRADE_SCALE
    assert finalisation.DEFAULT_GRADE_SCALE is core.DEFAULT_GRADE_SCALE
    assert orchestrator.Endpoints is core.Endpoints
    assert preflight.PreflightMode is core.PreflightMode
    assert stack_config.DEFAULT_TOPICS is core.CONTRACT_TOPICS
    assert settings.OPTIONS_BY_NAME["stack"].choices == core.STACK_KINDS
    assert settings.OPTIONS_BY_NAME["judge"].choices == core.JUDGE_NAMES


def test_the_cj_default_and_the_runner_fallback_are_huleedus_two_defaults() -> None:
    # contracts E.11: CJ takes the instruction row's scale, else the course row's, else
    # swedish_8_anchor; HuleEdu's ENG5 runner assumes eng5_np_legacy_9_step until CJ answers.
    assert core.DEFAULT_GRADE_SCALE == "swedish_8_anchor"
    assert core.RUNNER_FALLBACK_GRADE_SCALE == "eng5_np_legacy_9_step"
