"""``python -m pytest_eng5.compare``: report files from evidence folders, exit codes, errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from matplotlib import image
from simulate import simulate_run, write_evidence

from pytest_eng5.compare import REPORT_FILES
from pytest_eng5.compare.__main__ import main


@pytest.fixture
def evidence(tmp_path: Path) -> Path:
    root = tmp_path / "experiments"
    write_evidence(simulate_run("baseline", noise=1.0, seed=1, rounds=3), root)
    write_evidence(simulate_run("baseline", noise=1.0, seed=2, rounds=3, repeat=2), root)
    write_evidence(simulate_run("noisy", noise=12.0, seed=3, rounds=3), root)
    return root


def test_writes_the_three_files_and_names_the_worse_variant(
    evidence: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([str(evidence), "--resamples", "300"]) == 0
    out = capsys.readouterr().out
    assert "worse than the baseline: simulated/noisy" in out
    for name in REPORT_FILES:
        assert (evidence / name).is_file()
    data = json.loads((evidence / "comparison.json").read_text())
    assert data["worse_than_baseline"] == ["simulated/noisy"]
    (experiment,) = data["experiments"]
    baseline, noisy = experiment["variants"]
    assert baseline["runs"] == 2
    assert len(baseline["repeats"]["tau_b"]) == 2
    assert noisy["vs_baseline"]["verdict"] == "worse"
    assert noisy["tokens"] == 740 * 3 * 66
    markdown = (evidence / "comparison.md").read_text()
    assert "**worse**" in markdown
    assert "| noisy |" in markdown
    height, width = image.imread(evidence / "comparison.png").shape[:2]
    assert width == 900
    assert height > 200


def test_fail_on_worse_exits_1_and_out_writes_elsewhere(evidence: Path, tmp_path: Path) -> None:
    out = tmp_path / "report"
    assert main([str(evidence), "--resamples", "200", "--fail-on-worse", "--out", str(out)]) == 1
    assert (out / "comparison.json").is_file()
    assert not (evidence / "comparison.json").exists()


def test_an_explicit_baseline_turns_the_verdict_around(evidence: Path) -> None:
    assert main([str(evidence), "--resamples", "200", "--baseline", "noisy"]) == 0
    data = json.loads((evidence / "comparison.json").read_text())
    variants = {v["variant"]: v for v in data["experiments"][0]["variants"]}
    assert variants["baseline"]["vs_baseline"]["verdict"] == "better"


def test_folders_without_variant_runs_are_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "no variant runs" in err
    assert "eng5_variants" in err
    assert main([str(tmp_path / "missing")]) == 2
    assert "no evidence at" in capsys.readouterr().err


def test_runs_as_a_module(evidence: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "pytest_eng5.compare", str(evidence), "--resamples", "100"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "comparison.md" in done.stdout


def test_the_compare_package_does_not_import_the_reference_services() -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, pytest_eng5.compare, pytest_eng5.compare.__main__, "
            "pytest_eng5.compare.plot; "
            "bad = [m for m in sys.modules if m.startswith(('pytest_eng5.reference', 'pytest'))"
            " and not m.startswith('pytest_eng5')]; "
            "ref = [m for m in sys.modules if m.startswith('pytest_eng5.reference')]; "
            "print(bad + ref)",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
