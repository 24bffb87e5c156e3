"""Selecting the Apache Kafka provider: a skip with the reason without java; bad values."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

NEEDS_STACK = """
    def test_needs_the_stack(eng5_stack):
        pass
"""


def path_without(tmp_path: Path, missing: str) -> str:
    """A PATH with every executable of this one except ``missing`` (as on a machine without)."""
    folder = tmp_path / f"bin-without-{missing}"
    folder.mkdir()
    for directory in os.environ["PATH"].split(os.pathsep):
        if not os.path.isdir(directory):
            continue
        for entry in os.scandir(directory):
            target = folder / entry.name
            if entry.name != missing and not target.exists() and os.access(entry.path, os.X_OK):
                target.symlink_to(entry.path)
    return str(folder)


@pytest.mark.parametrize("require", [False, True])
def test_without_java_the_stack_is_skipped_with_the_reason(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, require: bool
) -> None:
    monkeypatch.setenv("PATH", path_without(tmp_path, "java"))
    pytester.makepyfile(test_stack=NEEDS_STACK)
    args = ["--eng5-kafka=apache", "--eng5-evidence-dir=evidence", "-p", "no:cacheprovider", "-rs"]
    if require:
        args.append("--eng5-require-services")
    result = pytester.runpytest_subprocess(*args, timeout=240)
    if require:
        result.assert_outcomes(errors=1)
        result.stdout.fnmatch_lines(["*needs 'java' on PATH*"])
    else:
        result.assert_outcomes(skipped=1)
        result.stdout.fnmatch_lines(["*eng5 stack unavailable*needs 'java' on PATH*"])


@pytest.mark.parametrize(
    ("flag", "named"),
    [("--eng5-kafka-brokers=2", "kafka-brokers"), ("--eng5-kafka-version=3.9.0", "kafka-version")],
)
def test_bad_cluster_settings_are_usage_errors(
    pytester: pytest.Pytester, flag: str, named: str
) -> None:
    pytester.makepyfile(test_stack=NEEDS_STACK)
    result = pytester.runpytest_subprocess(flag, "-p", "no:cacheprovider", timeout=120)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert named in result.stderr.str() + result.stdout.str()
