"""The same scenario module runs unchanged against an external stack.

The "external" stack here is this project's own stack started with ``python -m
pytest_eng5.stack``; the inner session only gets the URLs, as it would for a HuleEdu dev stack.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

SCENARIO = Path(__file__).resolve().parents[2] / "scenarios" / "test_execute_end_to_end.py"


def test_main_job_runs_unchanged_against_an_external_stack(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, stack_cli: dict[str, str]
) -> None:
    facts = stack_cli
    shutil.copy(SCENARIO, pytester.path / SCENARIO.name)
    monkeypatch.setenv("JWT_SECRET_KEY", facts["jwt_secret"])
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", facts["kafka_bootstrap"])
    monkeypatch.setenv("CJ_SERVICE_URL", facts["cj_url"])
    monkeypatch.setenv("CONTENT_SERVICE_URL", facts["content_url"])
    result = pytester.runpytest_subprocess(
        "-m",
        "eng5_execute",
        "--eng5-stack=external",
        "--eng5-require-services",
        f"--eng5-assignment-id={facts['assignment_id']}",
        "--eng5-course-id=external-course",
        f"--eng5-postgres-dsn={facts['postgres_dsn']}",
        "--eng5-kafka-idempotence=off",
        "--eng5-evidence-dir=evidence",
        "-p",
        "no:cacheprovider",
        timeout=180,
    )
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*eng5: stack=external*", "*execute*completed*"])
