"""The import contracts of pyproject.toml ([tool.importlinter]) hold, and they can fail."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# lint-imports through this interpreter: its script may live elsewhere (a venv on system packages)
LINT_IMPORTS = [sys.executable, "-c", "from importlinter.cli import lint_imports_command as c; c()"]


def lint_imports(project: Path) -> subprocess.CompletedProcess[str]:
    """``lint-imports`` on the package found first on the path from ``project``."""
    return subprocess.run(
        [*LINT_IMPORTS, "--no-cache", "--no-logo"],
        cwd=project,
        env={"PATH": "", "PYTHONPATH": str(project)},
        capture_output=True,
        text=True,
        timeout=120,
    )


def copy_of_the_package(target: Path) -> Path:
    shutil.copy(ROOT / "pyproject.toml", target / "pyproject.toml")
    shutil.copytree(
        ROOT / "pytest_eng5",
        target / "pytest_eng5",
        ignore=shutil.ignore_patterns("__pycache__", "sample_data"),
    )
    (target / "pytest_eng5" / "sample_data").mkdir()
    shutil.copy(
        ROOT / "pytest_eng5" / "sample_data" / "__init__.py",
        target / "pytest_eng5" / "sample_data" / "__init__.py",
    )
    return target


def test_the_package_keeps_its_import_contracts() -> None:
    result = lint_imports(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Contracts: 8 kept, 0 broken." in result.stdout


# (module that gains a deliberate import, the import, what lint-imports must say)
BROKEN_CONTRACTS = {
    "reference-imports-runner": (
        "reference/scoring.py",
        "from pytest_eng5.runner.stats import fit_bradley_terry",
        [
            "pytest_eng5.reference is not allowed to import pytest_eng5.runner",
            "pytest_eng5.reference.scoring -> pytest_eng5.runner.stats",
        ],
    ),
    "runner-imports-pytest": (
        "runner/capacity.py",
        "import pytest",
        ["pytest_eng5.runner.capacity -> pytest"],
    ),
    "comparison-imports-reference": (
        "compare/runs.py",
        "from pytest_eng5.reference.judge import make_judge",
        [
            "the comparison report reads evidence only",
            "pytest_eng5.compare.runs -> pytest_eng5.reference.judge",
        ],
    ),
    "cycle-inside-runner": (
        "runner/cj_admin.py",
        "from pytest_eng5.runner import preflight",
        ["No cycles are allowed in pytest_eng5.runner."],
    ),
    "runner-reads-pytest-settings": (
        "runner/config.py",
        "from pytest_eng5.settings import Eng5Settings",
        [
            "the runner and the reference services never read the pytest-shaped",
            "pytest_eng5.runner.config -> pytest_eng5.settings",
        ],
    ),
    "stack-reads-pytest-settings": (
        "stack/session.py",
        "from pytest_eng5.settings import Eng5Settings",
        [
            "the stack takes its own typed configuration",
            "pytest_eng5.stack.session -> pytest_eng5.settings",
        ],
    ),
}


@pytest.mark.parametrize(
    ("module", "statement", "reported"), BROKEN_CONTRACTS.values(), ids=BROKEN_CONTRACTS.keys()
)
def test_a_deliberate_bad_import_breaks_its_contract(
    tmp_path: Path, module: str, statement: str, reported: list[str]
) -> None:
    project = copy_of_the_package(tmp_path)
    path = project / "pytest_eng5" / module
    path.write_text(path.read_text() + f"\n{statement}\n")
    result = lint_imports(project)
    assert result.returncode == 1, result.stdout + result.stderr
    for line in reported:
        assert line in result.stdout
