"""The main job on an external stack: unchanged against a conforming one (whatever its judge),
an error naming every problem against a misconfigured one.

The "external" stack here is this project's own stack, from ``eng5_stack_factory``; the inner
session only gets the URLs and ``HULEEDU_DB_*``, as it would for a HuleEdu dev stack,
credentials included.
"""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path
from typing import Any

import pytest

from pytest_eng5.runner.auth import mint_dev_token
from pytest_eng5.runner.seeding import seed_assignment_at
from pytest_eng5.sample_data import SAMPLE_ASSETS

ASSIGNMENT = "external-stack-assignment"
SCENARIO = Path(__file__).resolve().parents[2] / "scenarios" / "test_execute_end_to_end.py"
EXTERNAL_ENV = (
    "KAFKA_BOOTSTRAP_SERVERS",
    "CJ_SERVICE_URL",
    "CONTENT_SERVICE_URL",
    "ENG5_POSTGRES_DSN",
    "HULEEDU_DB_HOST",
)


def files_holding(roots: list[Path], secrets: dict[str, str]) -> list[str]:
    """``"<file>: <secret name>"`` for every file below ``roots`` that holds a secret."""
    found = []
    for root in roots:
        for path in (p for p in root.rglob("*") if p.is_file()):
            data = path.read_bytes()
            found += [
                f"{path}: {name}" for name, value in secrets.items() if value.encode() in data
            ]
    return found


@pytest.fixture(scope="module")
def coin_flip_stack(eng5_stack_factory: Any) -> Any:
    """Started before the test's pytester, which drops the modules first imported after it."""
    stack = eng5_stack_factory(judge="coin_flip")
    asyncio.run(
        seed_assignment_at(stack.cj_url, stack.env, SAMPLE_ASSETS, assignment_id=ASSIGNMENT)
    )
    return stack


def test_main_job_passes_unchanged_on_a_coin_flip_stack_with_the_db_from_huleedu_env(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, coin_flip_stack: Any
) -> None:
    """Also: every credential is set (environment only, as a HuleEdu developer does), and none
    of them is in the JUnit XML, the evidence, the stack's service logs or the output."""
    stack = coin_flip_stack
    facts = stack.huleedu_facts()
    shutil.copy(SCENARIO, pytester.path / SCENARIO.name)
    secrets = {
        "HULEEDU_ADMIN_TOKEN": mint_dev_token(stack.env),
        "JWT_SECRET_KEY": stack.env["JWT_SECRET_KEY"],
        "KAFKA_SASL_PASSWORD": "sasl-password-for-the-scan-5150",
        "HULEEDU_DB_PASSWORD": facts["HULEEDU_DB_PASSWORD"],
    }
    for name, value in secrets.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("KAFKA_SASL_USERNAME", "scan-user")
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", stack.kafka.bootstrap)
    monkeypatch.setenv("CJ_SERVICE_URL", stack.cj_url)
    monkeypatch.setenv("CONTENT_SERVICE_URL", stack.content_url)
    for name in ("HOST", "PORT", "USER"):
        monkeypatch.setenv(f"HULEEDU_DB_{name}", facts[f"HULEEDU_DB_{name}"])
    monkeypatch.delenv("ENG5_POSTGRES_DSN", raising=False)
    result = pytester.runpytest_subprocess(
        "-m",
        "eng5_execute",
        "--eng5-stack=external",
        f"--eng5-assignment-id={ASSIGNMENT}",
        "--eng5-course-id=external-course",
        "--eng5-auto-extract-db",
        "--eng5-evidence-dir=evidence",
        "--junitxml=junit.xml",
        "-p",
        "no:cacheprovider",
        timeout=240,
    )
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*eng5: stack=external*", "*execute*completed*"])
    extracts = list((pytester.path / "evidence").glob("*/db_extract/cj_results_*.json"))
    assert len(extracts) == 1, "HULEEDU_DB_* alone gave the runner the CJ database"
    assert (pytester.path / "junit.xml").is_file()
    assert list(stack.log_dir.rglob("*.log")), "the stack wrote its service logs"
    assert files_holding([pytester.path, stack.log_dir], secrets) == []
    output = result.stdout.str() + result.stderr.str()
    assert [name for name, value in secrets.items() if value in output] == []


MIXED = """
    import pytest

    @pytest.mark.eng5_execute
    def test_real_run(eng5_stack):
        pass

    def test_needs_the_stack(eng5_stack):
        pass
"""


def test_misconfigured_external_main_job_errors_naming_every_problem(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in EXTERNAL_ENV:
        monkeypatch.delenv(name, raising=False)
    pytester.makepyfile(MIXED)
    result = pytester.runpytest_subprocess(
        "--eng5-stack=external",
        "--eng5-cj-url=http://127.0.0.1:9",
        "--eng5-start-timeout=2",
        "-p",
        "no:cacheprovider",
        timeout=120,
    )
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.assert_outcomes(errors=1, skipped=1)
    out = result.stdout.str()
    assert "--eng5-kafka-bootstrap / KAFKA_BOOTSTRAP_SERVERS is not set" in out
    assert "--eng5-content-url / CONTENT_SERVICE_URL is not set" in out
    assert "--eng5-cj-url / CJ_SERVICE_URL: nothing answers at http://127.0.0.1:9/healthz" in out
    assert "no CJ database configured: DB-backed steps (R5 extraction) are off" in out
    result.stdout.fnmatch_lines(
        [
            "*eng5: 1 skipped, and why*",
            "SKIPPED *test_needs_the_stack: eng5 stack unavailable: the external stack cannot*",
        ]
    )


def test_a_kafka_security_error_does_not_hide_the_other_problems(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in (*EXTERNAL_ENV, "KAFKA_SASL_USERNAME", "KAFKA_SASL_PASSWORD"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("KAFKA_SECURITY_PROTOCOL", "SASL_SSL")
    monkeypatch.setenv("KAFKA_SASL_MECHANISM", "PLAIN")
    pytester.makepyfile(MIXED)
    result = pytester.runpytest_subprocess(
        "--eng5-stack=external",
        "--eng5-cj-url=http://127.0.0.1:9",
        "--eng5-kafka-bootstrap=127.0.0.1:9",
        "-p",
        "no:cacheprovider",
        timeout=120,
    )
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    out = result.stdout.str()
    assert "Kafka security protocol SASL_SSL needs a SASL username and password" in out
    assert "--eng5-content-url / CONTENT_SERVICE_URL is not set" in out
    assert "--eng5-cj-url / CJ_SERVICE_URL: nothing answers at http://127.0.0.1:9/healthz" in out


def test_require_services_makes_every_stack_test_an_error(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in EXTERNAL_ENV:
        monkeypatch.delenv(name, raising=False)
    pytester.makepyfile(MIXED)
    result = pytester.runpytest_subprocess(
        "--eng5-stack=external", "--eng5-require-services", "-p", "no:cacheprovider"
    )
    result.assert_outcomes(errors=2)
