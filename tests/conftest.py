"""One embedded infrastructure per test session (from ``eng5_stack_factory``), shared by the
integration and reference tests; under xdist every worker has its own."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from pytest_eng5.contracts import EssayProcessingInputRefV1, EventEnvelope
from pytest_eng5.reference.db import apply_schema, create_pool
from pytest_eng5.runner.envelope import compose_request
from pytest_eng5.runner.identity import BatchIdentity
from pytest_eng5.stack.infra import Infrastructure
from pytest_eng5.stack.readiness import run_coroutine

#: The collector tests read topics with more than one partition on purpose.
SESSION_TOPIC_PARTITIONS = 2
SCHEMA_TIMEOUT_S = 30.0


async def apply_reference_schema(dsn: str) -> None:
    """Create the reference CJ tables (schema.sql and the fault table) in ``dsn``."""
    pool = await create_pool(dsn, max_size=2)
    try:
        await apply_schema(pool)
    finally:
        await pool.close()


@pytest.fixture(scope="session")
def session_infra(eng5_stack_factory: Any) -> Infrastructure:
    """Tansu with two partitions per contract topic, PostgreSQL with the reference schema."""
    stack = eng5_stack_factory(
        stack="embedded", kafka="tansu", partitions=SESSION_TOPIC_PARTITIONS, services=False
    )
    infra: Infrastructure = stack.infrastructure
    run_coroutine(apply_reference_schema(infra.postgres.dsn), SCHEMA_TIMEOUT_S)
    return infra


@contextmanager
def running_stack_cli(evidence_dir: Path, *args: str) -> Iterator[dict[str, str]]:
    """``python -m pytest_eng5.stack --seed --json *args`` running; yields the facts it printed
    (plus ``evidence_dir``). Stopped with Ctrl-C (SIGINT) at the end."""
    child = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "pytest_eng5.stack",
            "--seed",
            "--json",
            "--evidence-dir",
            str(evidence_dir),
            *args,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        facts: dict[str, str] = json.loads(child.stdout.readline())  # the stack is up
        facts["evidence_dir"] = str(evidence_dir)
        yield facts
    finally:
        child.send_signal(signal.SIGINT)
        try:
            code = child.wait(timeout=60)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
            raise
    assert code == 0, "the stack CLI did not stop cleanly on Ctrl-C"


@pytest.fixture
def stack_cli(tmp_path: Path) -> Iterator[dict[str, str]]:
    """The stack CLI with the sample assignment seeded (see :func:`running_stack_cli`)."""
    with running_stack_cli(tmp_path) as facts:
        yield facts


@pytest.fixture
def apache_stack_cli(tmp_path: Path) -> Iterator[dict[str, str]]:
    """The stack CLI on a one-node Apache Kafka cluster (``--kafka apache --kafka-brokers 1``)."""
    with running_stack_cli(tmp_path, "--kafka", "apache", "--kafka-brokers", "1") as facts:
        yield facts


def guest_request(identity: BatchIdentity, *essay_ids: str) -> EventEnvelope:
    """A guest (no assignment) execute request for ``essay_ids`` (default one essay)."""
    ids = essay_ids or ("E1",)
    return compose_request(
        identity,
        [
            EssayProcessingInputRefV1(essay_id=essay_id, text_storage_id=f"c{n}")
            for n, essay_id in enumerate(ids, start=1)
        ],
        language="en",
        course_code="ENG5",
        assignment_id=None,
        user_id="eng5_np_research_runner",
        org_id=None,
        llm_overrides=None,
        runner_mode="execute",
        max_comparisons=None,
        llm_batching_mode=None,
    )


@pytest.fixture
def make_guest_request() -> Callable[..., EventEnvelope]:
    """``make(identity, *essay_ids)``: a minimal guest CJ request envelope."""
    return guest_request
