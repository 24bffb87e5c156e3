"""The import contracts of pyproject.toml ([tool.importlinter]) hold, and they can fail."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def lint_imports(project: Path) -> subprocess.CompletedProcess[str]:
    """``lint-imports`` on the package found first on the path from ``project``."""
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache", "--no-logo"],
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
    assert "Contracts: 7 kept, 0 broken." in result.stdout


def test_a_reference_module_importing_the_runner_breaks_the_layers(tmp_path: Path) -> None:
    project = copy_of_the_package(tmp_path)
    scoring = project / "pytest_eng5" / "reference" / "scoring.py"
    scoring.write_text(
        scoring.read_text() + "\nfrom pytest_eng5.runner.stats import fit_bradley_terry\n"
    )
    result = lint_imports(project)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "pytest_eng5.reference is not allowed to import pytest_eng5.runner" in result.stdout
    assert "pytest_eng5.reference.scoring -> pytest_eng5.runner.stats" in result.stdout


def test_the_runner_importing_pytest_breaks_its_contract(tmp_path: Path) -> None:
    project = copy_of_the_package(tmp_path)
    capacity = project / "pytest_eng5" / "runner" / "capacity.py"
    capacity.write_text(capacity.read_text() + "\nimport pytest\n")
    result = lint_imports(project)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "pytest_eng5.runner.capacity -> pytest" in result.stdout


def test_the_comparison_importing_the_reference_breaks_its_contract(tmp_path: Path) -> None:
    project = copy_of_the_package(tmp_path)
    runs = project / "pytest_eng5" / "compare" / "runs.py"
    runs.write_text(runs.read_text() + "\nfrom pytest_eng5.reference.judge import make_judge\n")
    result = lint_imports(project)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "the comparison report reads evidence only" in result.stdout
    assert "pytest_eng5.compare.runs -> pytest_eng5.reference.judge" in result.stdout


def test_a_cycle_inside_the_runner_breaks_the_acyclic_contract(tmp_path: Path) -> None:
    project = copy_of_the_package(tmp_path)
    cj_admin = project / "pytest_eng5" / "runner" / "cj_admin.py"
    cj_admin.write_text(cj_admin.read_text() + "\nfrom pytest_eng5.runner import preflight\n")
    result = lint_imports(project)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "No cycles are allowed in pytest_eng5.runner." in result.stdout


def test_the_runner_reading_the_pytest_settings_breaks_its_contract(tmp_path: Path) -> None:
    project = copy_of_the_package(tmp_path)
    config = project / "pytest_eng5" / "runner" / "config.py"
    config.write_text(config.read_text() + "\nfrom pytest_eng5.settings import Eng5Settings\n")
    result = lint_imports(project)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "the runner and the reference services never read the pytest-shaped" in result.stdout
    assert "pytest_eng5.runner.config -> pytest_eng5.settings" in result.stdout
