"""Whole pytest sessions on the embedded stack, seen from outside (pytester subprocesses).

- a run's facts reach valid JUnit XML (checked against the JUnit XSD) as test and suite
  properties, also under ``-n 2``, with no secret in it, nor in the evidence or the stack logs;
- ``-n 2`` gives each worker its own stack, and no started process outlives the session.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest
import xmlschema

XSD = Path(__file__).resolve().parents[1] / "data" / "junit.xsd"
JWT_LIKE = re.compile(r"eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}")
SECRET = "scenario-jwt-secret-" + "s3cr3t" * 6

RUN_MODULE = """
    import pytest

    def test_skipped_with_output():
        print("captured before the skip")
        pytest.skip("a skip, whose captured output pytest reports per phase")

    def test_execute(eng5_runner_factory, eng5_sample_assignment):
        runner = eng5_runner_factory(
            assignment_id=eng5_sample_assignment.assignment_id,
            course_id=eng5_sample_assignment.course_id,
            max_comparisons=72,
        )
        result = runner.execute()
        assert result.outcome == "completed"
        assert runner.verify_auth()["confirmed"]
"""


# Each of these starts two stacks in an inner ``pytest -n 2``: on a loaded 2-core machine that
# alone can take minutes, so their bounds are wider than the suite's 300 s.
INNER_TIMEOUT = 540


@pytest.mark.timeout(INNER_TIMEOUT + 30)
def test_junit_is_valid_and_no_secret_leaks(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ENG5_REFERENCE_JWT_SECRET", SECRET)
    pytester.makepyfile(test_run=RUN_MODULE)
    result = pytester.runpytest_subprocess(
        "-n",
        "2",
        "--junitxml=junit.xml",
        "--eng5-evidence-dir=evidence",
        "-o",
        "junit_logging=system-out",
        "-p",
        "no:cacheprovider",
        timeout=INNER_TIMEOUT,
    )
    result.assert_outcomes(passed=1, skipped=1)
    result.stdout.fnmatch_lines(
        ["*eng5 runs*", "*batch_uuid*mode*outcome*N_CR*components*", "*execute*completed*"]
    )

    junit = pytester.path / "junit.xml"
    xmlschema.XMLSchema(XSD).validate(junit)
    text = junit.read_text()
    names = ("eng5_batch_uuid", "eng5_outcome", "eng5_ssr", "eng5_evidence", "eng5_n_cr")
    for name in (*names, "eng5_graph_components"):
        assert f'name="{name}"' in text
    suite_properties = re.search(r"<testsuite [^>]*>\s*<properties>(.*?)</properties>", text, re.S)
    assert suite_properties is not None, "run-level facts reach the suite (also under -n 2)"
    assert re.search(r'name="eng5_execute_[0-9a-f]{8}_ssr"', suite_properties.group(1))

    scanned = 0
    for path in [junit, *(pytester.path / "evidence").rglob("*")]:
        if path.is_file() and path.suffix != ".png":
            content = path.read_text(encoding="utf-8", errors="replace")
            assert SECRET not in content, f"the JWT secret leaked into {path.name}"
            assert not JWT_LIKE.search(content), f"a token leaked into {path.name}"
            scanned += 1
    assert scanned >= 8, "the evidence, the stack logs and the JUnit XML were all scanned"
    assert SECRET not in result.stdout.str()


PID_MODULE = """
    import json, os

    def test_a(eng5_stack):
        record(eng5_stack)

    def test_b(eng5_stack):
        record(eng5_stack)

    def record(stack):
        worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
        with open(f"pids-{worker}.json", "w") as handle:
            json.dump({"pids": stack.pids, "bootstrap": stack.kafka.bootstrap}, handle)
"""


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    status = Path(f"/proc/{pid}/status")
    return not (status.exists() and "State:\tZ" in status.read_text())


@pytest.mark.timeout(INNER_TIMEOUT + 30)
def test_xdist_workers_get_their_own_stack_and_nothing_outlives_it(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(test_pids=PID_MODULE)
    result = pytester.runpytest_subprocess(
        "-n",
        "2",
        "--dist",
        "each",
        "--eng5-evidence-dir=evidence",
        "-p",
        "no:cacheprovider",
        timeout=INNER_TIMEOUT,
    )
    result.assert_outcomes(passed=4)
    records = [json.loads(p.read_text()) for p in pytester.path.glob("pids-gw*.json")]
    assert len(records) == 2
    assert records[0]["bootstrap"] != records[1]["bootstrap"], "one stack per worker"
    pids = [pid for record in records for pid in record["pids"]]
    assert len(pids) >= 8, "broker, postgres and three services per worker"
    assert [pid for pid in pids if alive(pid)] == []
