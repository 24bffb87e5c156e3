"""Experiments as users run them (pytester subprocesses on the embedded stack): the README
example as written, its report rebuilt by ``python -m pytest_eng5.compare``, and the
``--eng5-fail-on-worse`` gate under ``-n 2`` with the comparison in the JUnit suite properties."""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text(encoding="utf-8")
MARK = "<!-- experiment-example"


def _readme_example() -> tuple[str, list[str]]:
    after = README[README.index(MARK) :]
    code = re.search(r"```python\n(.*?)```", after, re.S)
    commands = re.search(r"```bash\n(.*?)```", after, re.S)
    assert code is not None
    assert commands is not None
    return code.group(1), commands.group(1).strip().splitlines()


def test_the_readme_example_is_the_shipped_scenario() -> None:
    code, _ = _readme_example()
    shipped = (ROOT / "scenarios" / "test_experiment_prompts.py").read_text(encoding="utf-8")
    assert code == shipped


@pytest.mark.timeout(630)  # a whole experiment session; its inner run is bounded at 600 s
def test_the_readme_example_runs_as_written(pytester: pytest.Pytester) -> None:
    code, (session_command, compare_command) = _readme_example()
    pytester.mkdir("scenarios")
    (pytester.path / "scenarios" / "test_experiment_prompts.py").write_text(code)
    argv = shlex.split(session_command)
    assert argv[0] == "pytest"
    result = pytester.runpytest_subprocess(*argv[1:], "-p", "no:cacheprovider", timeout=600)
    result.assert_outcomes(passed=4)
    result.stdout.fnmatch_lines(
        [
            "*eng5 variant comparison*",
            "*experiment_prompts.anchor_alignment/baseline: tau-b *, 2 run(s): baseline",
            "*experiment_prompts.anchor_alignment/language-control: tau-b *, 2 run(s): *",
        ]
    )
    report = pytester.path / "eng5-evidence" / "experiments"
    session_json = (report / "comparison.json").read_text()
    session_md = (report / "comparison.md").read_text()
    data = json.loads(session_json)
    (experiment,) = data["experiments"]
    assert experiment["baseline"] == "baseline"
    variants = {v["variant"]: v for v in experiment["variants"]}
    assert variants["language-control"]["settings"] == {
        "max_comparisons": 66,
        "llm_temperature": 0.1,
        "system_prompt_file": "003_language_control.txt",
        "rubric_file": "003_language_control.txt",
    }
    assert len(variants["baseline"]["repeats"]["tau_b"]) == 2
    assert variants["language-control"]["vs_baseline"]["verdict"] in (
        "better",
        "worse",
        "no detectable difference",
    )
    for name in ("comparison.md", "comparison.png"):
        (report / name).unlink()

    argv = shlex.split(compare_command)
    assert argv[:3] == ["python", "-m", "pytest_eng5.compare"]
    done = subprocess.run(
        [sys.executable, *argv[1:]],
        cwd=pytester.path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert (report / "comparison.json").read_text() == session_json, "the same report again"
    assert (report / "comparison.md").read_text() == session_md
    assert (report / "comparison.png").is_file()


GATED_MODULE = """
    import pytest

    pytestmark = pytest.mark.eng5_variants(
        {
            "baseline": {"llm_temperature": 0.1},
            "noisy": {"llm_model": "eng5-text-features-weak", "llm_temperature": 2.0},
        },
        experiment="noise",
    )

    @pytest.mark.eng5_run(max_comparisons=132)
    def test_alignment(eng5_runner):
        assert eng5_runner.anchor_align().outcome == "completed"
"""


@pytest.mark.timeout(630)  # a whole experiment session; its inner run is bounded at 600 s
def test_a_worse_variant_fails_the_gated_session_under_xdist(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_noise=GATED_MODULE)
    result = pytester.runpytest_subprocess(
        "-n",
        "2",
        "--junitxml=junit.xml",
        "--eng5-fail-on-worse",
        "-p",
        "no:cacheprovider",
        timeout=600,
    )
    result.assert_outcomes(passed=2)
    assert result.ret == pytest.ExitCode.TESTS_FAILED, "every test passed, the gate failed"
    result.stdout.fnmatch_lines(
        ["*noise/noisy: tau-b *: worse", "*FAILED (--eng5-fail-on-worse)*noise/noisy*"]
    )
    junit = (pytester.path / "junit.xml").read_text()
    assert '<property name="eng5_compare_noise_noisy_verdict" value="worse"' in junit
    assert 'name="eng5_compare_noise_baseline_tau_b"' in junit
