"""Bad inputs that need no network are usage errors at startup (exit 4), before any stack.

Each inner session has a main-job test that would start the stack; it must never run, and no
stack log folder may appear in the evidence folder.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from pytest_eng5.sample_data import SAMPLE_ASSETS

MAIN_JOB = """
    import pytest

    @pytest.mark.eng5_execute
    def test_would_start_the_stack(eng5_stack):
        raise AssertionError("the stack must not be reached")
"""


def run_inner(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    pytester.makepyfile(MAIN_JOB)
    result = pytester.runpytest("--eng5-evidence-dir=evidence", *args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR, result.stdout.str() + result.stderr.str()
    assert not (pytester.path / "evidence").exists(), "nothing may be written before the check"
    return result


def text(result: pytest.RunResult) -> str:
    return result.stdout.str() + result.stderr.str()


def test_budget_below_two_names_the_flag(pytester: pytest.Pytester) -> None:
    result = run_inner(pytester, "--eng5-max-comparisons=1")
    assert "--eng5-max-comparisons" in text(result)
    assert "at least 2" in text(result)


def test_ini_value_names_the_ini_key(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\neng5_max_comparisons = 1\n")
    assert "ini eng5_max_comparisons" in text(run_inner(pytester))


def test_batch_uuid_that_is_not_a_uuid(pytester: pytest.Pytester) -> None:
    result = run_inner(pytester, "--eng5-batch-uuid=not-a-uuid")
    assert "--eng5-batch-uuid" in text(result)
    assert "'not-a-uuid' is not a UUID" in text(result)


def test_missing_asset_folder(pytester: pytest.Pytester) -> None:
    missing = pytester.path / "nonexistent"
    result = run_inner(pytester, f"--eng5-assets={missing}")
    expected = f"--eng5-assets / ini eng5_assets / env ENG5_ASSETS: asset folder {missing} does"
    assert expected + " not exist" in text(result)


def test_asset_folder_without_student_essays(pytester: pytest.Pytester) -> None:
    root = pytester.mkdir("assets")
    (root / "anchor_essays").mkdir()
    assert "has no student_essays/ folder" in text(run_inner(pytester, f"--eng5-assets={root}"))


def test_anchors_without_instructions_on_the_reference_stack(pytester: pytest.Pytester) -> None:
    """The main job seeds the folder's anchors for an assignment made from its instructions."""
    root = pytester.path / "assets"
    shutil.copytree(SAMPLE_ASSETS, root)
    (root / "instructions.md").unlink()
    result = run_inner(pytester, f"--eng5-assets={root}")
    assert "holds anchors but no instructions file" in text(result)
    assert "add instructions.md" in text(result)


def test_every_bad_essay_file_is_listed_in_one_message(pytester: pytest.Pytester) -> None:
    root = pytester.path / "assets"
    shutil.copytree(SAMPLE_ASSETS, root)
    students = root / "student_essays"
    (students / "EMPTY 1 (SA24D ENG 5 WRITING 2025).txt").write_text("  \n", encoding="utf-8")
    (students / "latin1.txt").write_bytes("Jag gillar rökt lax".encode("latin-1"))
    (students / "gone.txt").symlink_to(root / "no-such-file.txt")
    (root / "anchor_essays" / "anchor_essay_x_B.md").write_bytes(b"\xff\xfe\x00bad")
    out = text(run_inner(pytester, f"--eng5-assets={root}"))
    assert "student_essays/EMPTY 1 (SA24D ENG 5 WRITING 2025).txt: is empty" in out
    assert "student_essays/latin1.txt: is not UTF-8 text" in out
    assert "student_essays/gone.txt: cannot be read" in out
    assert "anchor_essays/anchor_essay_x_B.md: is not UTF-8 text" in out


def test_unknown_grade_scale_lists_the_valid_names(pytester: pytest.Pytester) -> None:
    out = text(run_inner(pytester, "--eng5-expected-grade-scale=wrong"))
    assert "unknown grade scale 'wrong'" in out
    assert "eng5_np_legacy_9_step, eng5_np_national_9_step, swedish_8_anchor" in out


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--eng5-cj-url=http://127.0.0.1:9"], "--eng5-cj-url applies to --eng5-stack=external"),
        (
            ["--eng5-stack=external", "--eng5-judge=coin_flip"],
            "--eng5-judge applies to --eng5-stack=embedded or testcontainers only",
        ),
    ],
)
def test_setting_of_another_stack(
    pytester: pytest.Pytester, args: list[str], fragment: str
) -> None:
    assert fragment in text(run_inner(pytester, *args))


def test_all_problems_are_named_at_once(pytester: pytest.Pytester) -> None:
    out = text(
        run_inner(
            pytester, "--eng5-max-comparisons=1", "--eng5-batch-uuid=x", "--eng5-judge=nonsense"
        )
    )
    for flag in ("--eng5-max-comparisons", "--eng5-batch-uuid", "--eng5-judge"):
        assert flag in out


@pytest.mark.parametrize(
    ("marker", "named"),
    [
        ('eng5_run(judge="nonsense")', "--eng5-judge"),
        ('eng5_expect(outcome="finished")', "eng5_expect: unknown outcome 'finished'"),
        ('eng5_expect(status="completed")', "eng5_expect takes outcome=... and/or error=..."),
    ],
)
def test_bad_marker_is_a_usage_error_before_the_stack(
    pytester: pytest.Pytester, marker: str, named: str
) -> None:
    pytester.makepyfile(
        f"""
        import pytest

        @pytest.mark.eng5_execute
        @pytest.mark.{marker}
        def test_marked(eng5_runner):
            raise AssertionError("must not run")
        """
    )
    result = pytester.runpytest("--eng5-evidence-dir=evidence")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "test_marked" in text(result)
    assert named in text(result)
    assert not (pytester.path / "evidence").exists()


def test_lower_case_env_choice_does_not_break_an_unrelated_suite(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KAFKA_SECURITY_PROTOCOL", "nonsense")
    monkeypatch.setenv("CJ_SERVICE_URL", "http://127.0.0.1:9")
    pytester.makepyfile("def test_plain():\n    assert True\n")
    pytester.runpytest().assert_outcomes(passed=1)


def test_env_choices_ignore_case_for_the_external_stack(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KAFKA_SECURITY_PROTOCOL", "sasl_ssl")
    pytester.makepyfile(
        "def test_show(eng5_settings):\n"
        "    print('PROTO=' + eng5_settings.kafka_security_protocol)\n"
    )
    result = pytester.runpytest("-s", "--eng5-stack=external")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*PROTO=SASL_SSL*"])


def test_usage_errors_do_not_import_the_stack(tmp_path: Path) -> None:
    """In a fresh interpreter: the check fails without loading the stack or the runner."""
    (tmp_path / "conftest.py").write_text(
        "import atexit, sys\n"
        "HEAVY = ('pytest_eng5.stack', 'pytest_eng5.runner.orchestrator')\n"
        "atexit.register(lambda: print('STACK_LOADED=' + str(any(m in HEAVY or m.startswith("
        "'pytest_eng5.stack.') for m in sys.modules))))\n",
        encoding="utf-8",
    )
    (tmp_path / "test_x.py").write_text("def test_x():\n    pass\n", encoding="utf-8")
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--eng5-max-comparisons=1"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 4, done.stderr
    assert "STACK_LOADED=False" in done.stdout


@pytest.mark.parametrize(
    "flag", ["--eng5-admin-token", "--eng5-jwt-secret", "--eng5-kafka-sasl-password"]
)
def test_a_credential_has_no_command_line_option(pytester: pytest.Pytester, flag: str) -> None:
    out = text(run_inner(pytester, "--eng5-stack=external", f"{flag}=not-on-argv-1"))
    assert "unrecognized arguments" in out
    help_text = pytester.runpytest("--help").stdout.str()
    assert flag not in help_text
    assert "--eng5-postgres-dsn" in help_text
