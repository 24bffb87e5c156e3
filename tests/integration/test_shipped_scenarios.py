"""The R1-R7 scenarios ship in the wheel and run from it with ``pytest --pyargs``.

The wheel is built offline (``pip wheel --no-build-isolation``: hatchling is a dev extra) and
unpacked into a folder of its own that comes first on ``PYTHONPATH``, so the collecting pytest
imports ``pytest_eng5`` from the wheel, not from this checkout, and sees no file of tests/.
"""

from __future__ import annotations

import ast
import importlib.util
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from pytest_eng5.sample_data import SAMPLE_ASSETS

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = ROOT / "pytest_eng5" / "scenarios"
R_MODULES = sorted(path.name for path in SHIPPED.glob("test_r[1-7]_*.py"))


def test_the_shipped_scenarios_are_r1_to_r7() -> None:
    assert [name[:8] for name in R_MODULES] == [f"test_r{n}_" for n in range(1, 8)]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if importlib.util.find_spec("hatchling") is None:
        pytest.fail(
            "building the wheel offline needs hatchling in this environment; "
            "install the dev extras: pip install -e '.[dev]'"
        )
    out = tmp_path_factory.mktemp("wheel")
    result = subprocess.run(
        [
            *(sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation"),
            *("--no-index", "--quiet", "--wheel-dir", str(out), str(ROOT)),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    (built,) = out.glob("pytest_eng5-*.whl")
    return built


def test_the_wheel_contains_the_scenarios_and_no_repository_tests(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    wanted = {f"pytest_eng5/scenarios/{name}" for name in R_MODULES} | {
        "pytest_eng5/scenarios/__init__.py",
        "pytest_eng5/scenarios/conftest.py",
        "pytest_eng5/scenarios/support.py",
    }
    assert wanted <= names, f"missing from {wheel.name}: {sorted(wanted - names)}"
    assert not [name for name in names if name.startswith(("tests/", "scenarios/"))]


def defined_tests(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return {
        node.name
        for node in tree.body
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and node.name.startswith("test_")
    }


def test_pyargs_collects_r1_to_r7_from_the_unpacked_wheel(wheel: Path, tmp_path: Path) -> None:
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    elsewhere = tmp_path / "user-project"
    elsewhere.mkdir()
    env = {key: value for key, value in os.environ.items() if not key.startswith("PYTEST_")}
    env["PYTHONPATH"] = os.pathsep.join([str(site), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)

    imported = subprocess.run(
        [sys.executable, "-c", "import pytest_eng5.plugin as p; print(p.__file__)"],
        cwd=elsewhere,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert Path(imported.stdout.strip()).is_relative_to(site), imported.stdout + imported.stderr

    result = subprocess.run(
        [
            *(sys.executable, "-m", "pytest", "--pyargs", "pytest_eng5.scenarios"),
            *("--collect-only", "-q", "-p", "no:cacheprovider"),
        ],
        cwd=elsewhere,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    collected: dict[str, set[str]] = {}
    for line in result.stdout.splitlines():
        match = re.fullmatch(r"(?:.*/)?(test_r\d_\w+\.py)::(test_\w+)(?:\[.*\])?", line.strip())
        if match:
            collected.setdefault(match.group(1), set()).add(match.group(2))
    assert sorted(collected) == R_MODULES, result.stdout
    for name in R_MODULES:
        assert collected[name] == defined_tests(SHIPPED / name), name


# The scenarios' fixtures over a stack that is never reached (the runs are only built).
SAMPLE_RUNS_CONFTEST = """
from types import SimpleNamespace

import pytest
from pytest_eng5.runner import Endpoints
from pytest_eng5.runner_handle import SampleAssignment
from pytest_eng5.scenarios.support import *

@pytest.fixture(scope="session")
def eng5_stack():
    return SimpleNamespace(endpoints=lambda: Endpoints(None, None, {}, {}))

@pytest.fixture(scope="session")
def eng5_sample_assignment():
    return SampleAssignment("sample-assignment", "sample-course", "", 12)
"""


def test_the_sample_runs_use_the_sample_set_whatever_assets_are_configured(
    pytester: pytest.Pytester,
) -> None:
    """The shipped scenarios count the sample set's 24 students and 12 anchors: a project's own
    ``--eng5-assets`` (or ini / env) is for the main job and must not reach their runs."""
    own = pytester.path / "my-class"
    shutil.copytree(SAMPLE_ASSETS, own)
    pytester.makeconftest(SAMPLE_RUNS_CONFTEST)
    pytester.makepyfile(
        """
        from pytest_eng5.sample_data import SAMPLE_ASSETS

        def test_sample_runs(eng5_settings, eng5_runner_factory, sample, asset_folder):
            assert eng5_settings.assets.name == "my-class"
            assert eng5_runner_factory(**sample).config.assets == SAMPLE_ASSETS
            cut = asset_folder(students=1)
            assert eng5_runner_factory(**{**sample, "assets": cut}).config.assets == cut
        """
    )
    result = pytester.runpytest("-p", "no:cacheprovider", f"--eng5-assets={own}")
    result.assert_outcomes(passed=1)
