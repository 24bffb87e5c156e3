"""The Apache Kafka KRaft provider: configuration, jar resolution and a real cluster."""

from __future__ import annotations

import asyncio
import os
import shutil
import stat
from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer

from pytest_eng5.stack.apache_config import (
    CONTRACT_PARTITIONS,
    KraftNode,
    new_cluster_id,
    node_properties,
)
from pytest_eng5.stack.apache_jars import (
    ApacheKafkaUnavailable,
    broker_jars,
    check_version,
    require_tool,
)
from pytest_eng5.stack.apache_kafka import broker_ids, partition_states
from pytest_eng5.stack.config import DEFAULT_TOPICS, StackConfig
from pytest_eng5.stack.infra import running_infrastructure
from pytest_eng5.stack.readiness import StackStartError, run_coroutine

needs_java_and_maven = pytest.mark.skipif(
    shutil.which("java") is None or shutil.which("mvn") is None,
    reason="the Apache Kafka provider needs java and mvn",
)


def nodes(count: int, tmp_path: Path) -> list[KraftNode]:
    return [KraftNode(i, 9000 + i, 9100 + i, tmp_path / f"n{i}") for i in range(1, count + 1)]


def parse(properties: str) -> dict[str, str]:
    return dict(line.split("=", 1) for line in properties.splitlines())


def test_three_nodes_vote_together_and_replicate_three_times(tmp_path: Path) -> None:
    cluster = nodes(3, tmp_path)
    settings = parse(node_properties(cluster[1], cluster))
    assert settings["node.id"] == "2"
    assert settings["process.roles"] == "broker,controller"
    voters = "1@127.0.0.1:9101,2@127.0.0.1:9102,3@127.0.0.1:9103"
    assert settings["controller.quorum.voters"] == voters
    assert settings["listeners"] == "PLAINTEXT://127.0.0.1:9002,CONTROLLER://127.0.0.1:9102"
    assert settings["default.replication.factor"] == "3"
    assert settings["min.insync.replicas"] == "2"
    assert settings["log.dirs"] == str(tmp_path / "n2" / "data")


def test_a_single_node_replicates_once(tmp_path: Path) -> None:
    single = nodes(1, tmp_path)
    settings = parse(node_properties(single[0], single))
    assert settings["default.replication.factor"] == "1"
    assert settings["min.insync.replicas"] == "1"
    assert settings["offsets.topic.replication.factor"] == "1"


def test_cluster_ids_are_kafka_uuids_that_never_look_like_an_option() -> None:
    ids = {new_cluster_id() for _ in range(2000)}  # about 30 would start with "-" unfiltered
    assert len(ids) == 2000
    assert all(len(i) == 22 and "=" not in i for i in ids)
    assert not any(i.startswith("-") for i in ids)


@pytest.mark.parametrize("version", ["3.9.1", "4.4", "latest", "4.4.0; rm -rf /"])
def test_only_plain_4x_versions_are_accepted(version: str) -> None:
    with pytest.raises(StackStartError, match=r"4\.x"):
        check_version(version)
    assert check_version("4.4.0") == "4.4.0"


def test_missing_java_is_unavailable_not_broken(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "")
    with pytest.raises(ApacheKafkaUnavailable, match="'java'") as info:
        require_tool("java")
    assert info.value.kind == "stack-unavailable"
    assert "--eng5-kafka=tansu" in (info.value.next_step or "")


def fake_mvn(folder: Path, script: str) -> None:
    folder.mkdir()
    path = folder / "mvn"
    path.write_text("#!/bin/sh\n" + script)
    path.chmod(path.stat().st_mode | stat.S_IEXEC)


def test_a_failing_maven_is_a_clear_error_and_leaves_no_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_mvn(tmp_path / "bin", 'echo "[ERROR] Could not resolve dependencies for kafka"\nexit 1\n')
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("ENG5_CACHE_DIR", str(tmp_path / "cache"))
    with pytest.raises(StackStartError, match="Could not resolve dependencies") as info:
        broker_jars("4.4.0", tmp_path / "logs")
    assert "maven-resolve.log" in (info.value.next_step or "")
    assert not (tmp_path / "cache" / "apache-kafka" / "4.4.0").exists()
    assert (tmp_path / "logs" / "maven-resolve.log").is_file(), "the Maven log is evidence"


def test_a_hanging_maven_is_stopped_at_the_deadline(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_mvn(tmp_path / "bin", "exec sleep 60\n")
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("ENG5_CACHE_DIR", str(tmp_path / "cache"))
    with pytest.raises(StackStartError, match="within 1 s"):
        broker_jars("4.4.0", tmp_path / "logs", timeout=1.0)


@needs_java_and_maven
@pytest.mark.timeout(900)  # a cold Maven cache resolves the jars first (bounded at 600 s)
def test_a_three_node_cluster_serves_replicated_contract_topics(tmp_path: Path) -> None:
    config = StackConfig(
        "embedded",
        workdir=tmp_path / "work",
        log_dir=tmp_path / "logs",
        kafka_provider="apache",
        kafka_brokers=3,
    )
    with running_infrastructure(config) as infra:
        cluster = infra.kafka_cluster
        assert cluster is not None
        assert infra.kafka.provider == "apache"
        assert infra.kafka.idempotence, "idempotent producers on a real cluster"
        assert len(infra.pids) == 4, "three JVMs and the postmaster"
        assert cluster.is_running()
        assert run_coroutine(broker_ids(infra.kafka), 30) == [1, 2, 3]
        states = run_coroutine(partition_states(infra.kafka, DEFAULT_TOPICS[1]), 30)
        assert sorted(states) == list(range(CONTRACT_PARTITIONS))
        assert all(len(s["replicas"]) == 3 and len(s["isr"]) == 3 for s in states.values())

        async def produce() -> int:
            producer = AIOKafkaProducer(**infra.kafka.producer_kwargs())
            await producer.start()
            try:
                metadata = await producer.send_and_wait(DEFAULT_TOPICS[0], b"x", partition=2)
            finally:
                await producer.stop()
            return int(metadata.offset)

        assert asyncio.run(produce()) == 0
        root = cluster.root
    assert not root.exists(), "the data directories are removed at stop"
    assert cluster.pids == []
    assert not cluster.is_running()
    for node in (1, 2, 3):
        assert (tmp_path / "logs" / f"kafka-{node}.log").stat().st_size > 0
