"""``python -m pytest_eng5.stack``: a faithful stack a user can point any client at."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
from pathlib import Path

import asyncpg
import httpx
import pytest
from aiokafka.admin import AIOKafkaAdminClient

from pytest_eng5.core import CONTRACT_TOPICS

HULEEDU_DB_FACTS = {
    "HULEEDU_DB_HOST",
    "HULEEDU_DB_PORT",
    "HULEEDU_CJ_DB_PORT",
    "HULEEDU_DB_USER",
    "HULEEDU_DB_PASSWORD",
    "HULEEDU_CJ_DB_DSN",
    "HULEEDU_CONTENT_DB_DSN",
}


def test_stack_cli_seeds_and_prints_the_facts(stack_cli: dict[str, str]) -> None:
    assert set(stack_cli) == {
        "kafka",
        "kafka_bootstrap",
        "content_url",
        "cj_url",
        "postgres_dsn",
        "jwt_secret",
        "assignment_id",
        "evidence_dir",
        *HULEEDU_DB_FACTS,
    }
    summary = httpx.get(
        f"{stack_cli['cj_url']}/admin/v1/anchors/assignment/{stack_cli['assignment_id']}",
        timeout=5,
    )
    assert summary.status_code == 401, "admin routes need the token"
    assert httpx.get(f"{stack_cli['cj_url']}/healthz", timeout=5).status_code == 200
    logs = {p.name for p in (Path(stack_cli["evidence_dir"]) / "stack-logs").rglob("*.log")}
    assert {"tansu.log", "cj-worker.log", "cj-api.log", "content-service.log"} <= logs
    assert stack_cli["kafka"] == "tansu"
    # The printed HuleEdu database facts work over TCP with a password, as HuleEdu's DB
    # extraction uses them, and reach the CJ database the seeding just wrote to.
    assert asyncio.run(seeded_instructions_over_tcp(stack_cli)) >= 1
    assert asyncio.run(content_database_over_tcp(stack_cli)) == "huleedu_content"
    assert asyncio.run(wrong_password_is_refused(stack_cli))


async def seeded_instructions_over_tcp(facts: dict[str, str]) -> int:
    assert facts["HULEEDU_DB_HOST"] == "127.0.0.1"
    connection = await asyncpg.connect(
        host=facts["HULEEDU_DB_HOST"],
        port=int(facts["HULEEDU_DB_PORT"]),
        user=facts["HULEEDU_DB_USER"],
        password=facts["HULEEDU_DB_PASSWORD"],
        database="huleedu_cj_assessment",
        timeout=10,
    )
    try:
        assert await connection.fetchval("SELECT current_database()") == "huleedu_cj_assessment"
        count: int = await connection.fetchval(
            "SELECT count(*) FROM assessment_instructions WHERE assignment_id = $1",
            facts["assignment_id"],
        )
        return count
    finally:
        await connection.close()


async def content_database_over_tcp(facts: dict[str, str]) -> str:
    connection = await asyncpg.connect(facts["HULEEDU_CONTENT_DB_DSN"], timeout=10)
    try:
        assert await connection.fetchval("SELECT count(*) FROM stored_content") > 0  # the seed
        name: str = await connection.fetchval("SELECT current_database()")
        return name
    finally:
        await connection.close()


async def wrong_password_is_refused(facts: dict[str, str]) -> bool:
    with pytest.raises(asyncpg.InvalidPasswordError):
        await asyncpg.connect(
            host=facts["HULEEDU_DB_HOST"],
            port=int(facts["HULEEDU_DB_PORT"]),
            user=facts["HULEEDU_DB_USER"],
            password="not-the-password",
            database="huleedu_cj_assessment",
            timeout=10,
        )
    return True


@pytest.mark.skipif(shutil.which("psql") is None, reason="no psql binary on this machine")
def test_psql_over_tcp_reaches_the_cj_database(stack_cli: dict[str, str]) -> None:
    env = {
        **os.environ,
        "PGHOST": stack_cli["HULEEDU_DB_HOST"],
        "PGPORT": stack_cli["HULEEDU_DB_PORT"],
        "PGUSER": stack_cli["HULEEDU_DB_USER"],
        "PGPASSWORD": stack_cli["HULEEDU_DB_PASSWORD"],
        "PGCONNECT_TIMEOUT": "10",
    }
    done = subprocess.run(
        ["psql", "-d", "huleedu_cj_assessment", "-tAc", "SELECT current_database(), current_user"],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "huleedu_cj_assessment|huleedu_user"


# --- the Apache Kafka cluster from the command line --------------------------------------------


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pytest_eng5.stack", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        check=False,
    )


async def cluster_facts(bootstrap: str) -> tuple[int, dict[str, int]]:
    """How many brokers answer, and the partition count of each contract topic."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=10_000)
    await admin.start()
    try:
        cluster = await admin.describe_cluster()
        topics = await admin.describe_topics(list(CONTRACT_TOPICS))
    finally:
        await admin.close()
    return len(cluster["brokers"]), {t["topic"]: len(t["partitions"]) for t in topics}


@pytest.mark.timeout(600)  # JVM start-up on two shared cores (and a first Maven resolve)
@pytest.mark.skipif(
    shutil.which("java") is None or shutil.which("mvn") is None,
    reason="the Apache Kafka cluster tier needs java and mvn",
)
def test_stack_cli_starts_the_apache_kafka_cluster(apache_stack_cli: dict[str, str]) -> None:
    facts = apache_stack_cli
    assert facts["kafka"] == "apache"
    brokers, partitions = asyncio.run(cluster_facts(facts["kafka_bootstrap"]))
    assert brokers == 1, "the broker count reaches the cluster"
    assert partitions == dict.fromkeys(CONTRACT_TOPICS, 3)
    assert httpx.get(f"{facts['cj_url']}/healthz", timeout=5).status_code == 200
    logs = {p.name for p in (Path(facts["evidence_dir"]) / "stack-logs").rglob("*.log")}
    assert "kafka-1.log" in logs
    assert "tansu.log" not in logs
    assert facts["assignment_id"], "the sample assignment was seeded on the cluster's stack"


def test_stack_cli_without_java_names_what_is_missing(tmp_path: Path) -> None:
    done = run_cli(
        "--kafka",
        "apache",
        "--evidence-dir",
        str(tmp_path),
        env={**os.environ, "PATH": str(tmp_path)},  # no java, no mvn
    )
    assert done.returncode == 1, done.stderr
    assert "the Apache Kafka provider needs 'java' on PATH" in done.stderr
    assert "next step" in done.stderr


def test_stack_cli_broker_count_needs_the_apache_cluster() -> None:
    done = run_cli("--kafka-brokers", "1")
    assert done.returncode == 2
    assert "--kafka-brokers and --kafka-version need --kafka apache" in done.stderr
