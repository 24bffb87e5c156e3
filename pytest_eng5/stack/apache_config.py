"""The configuration of a KRaft cluster: its nodes, their ``server.properties``, the cluster id.

Every node is a combined broker and controller with a client and a controller port on
127.0.0.1; all nodes vote (``controller.quorum.voters``). Heaps are small (``-Xmx320m``, serial
GC, C1 only), so three nodes take about 900 MB.
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from pytest_eng5.stack.ports import LOOPBACK
from pytest_eng5.stack.process import ManagedProcess

CONTRACT_PARTITIONS = 3
MAX_REPLICATION = 3
JVM_OPTIONS = (
    "-Xms64m",
    "-Xmx320m",
    "-Xss512k",
    "-XX:+UseSerialGC",
    "-XX:TieredStopAtLevel=1",
    "-Djava.awt.headless=true",
    "-Dorg.slf4j.simpleLogger.showDateTime=true",
    "-Dorg.slf4j.simpleLogger.defaultLogLevel=info",
)


@dataclass
class KraftNode:
    """One combined broker/controller: its id, ports, data directory and process."""

    node_id: int
    port: int
    controller_port: int
    directory: Path
    process: ManagedProcess | None = None

    @property
    def address(self) -> str:
        return f"{LOOPBACK}:{self.port}"

    @property
    def properties_path(self) -> Path:
        return self.directory / "server.properties"

    def is_running(self) -> bool:
        return self.process is not None and self.process.is_running()


def new_cluster_id() -> str:
    """A random cluster id in Kafka's format (16 bytes, URL-safe base64, no padding).

    Like Kafka's own ``Uuid.randomUuid`` it never starts with ``-``, which the storage tool's
    argument parser would take for an option.
    """
    while True:
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()
        if not cluster_id.startswith("-"):
            return cluster_id


def node_properties(node: KraftNode, nodes: Sequence[KraftNode]) -> str:
    """The ``server.properties`` of ``node`` in a cluster of ``nodes``."""
    voters = ",".join(f"{n.node_id}@{LOOPBACK}:{n.controller_port}" for n in nodes)
    replication = min(MAX_REPLICATION, len(nodes))
    min_isr = 2 if replication >= 3 else 1
    settings = {
        "process.roles": "broker,controller",
        "node.id": str(node.node_id),
        "controller.quorum.voters": voters,
        "listeners": f"PLAINTEXT://{node.address},CONTROLLER://{LOOPBACK}:{node.controller_port}",
        "advertised.listeners": f"PLAINTEXT://{node.address}",
        "controller.listener.names": "CONTROLLER",
        "inter.broker.listener.name": "PLAINTEXT",
        "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
        "log.dirs": str(node.directory / "data"),
        "num.partitions": str(CONTRACT_PARTITIONS),
        "default.replication.factor": str(replication),
        "min.insync.replicas": str(min_isr),
        "offsets.topic.replication.factor": str(replication),
        "transaction.state.log.replication.factor": str(replication),
        "transaction.state.log.min.isr": str(min_isr),
        "group.initial.rebalance.delay.ms": "0",
        # A crashed broker is fenced (and its partitions get new leaders) after 6 s, not 9 s.
        "broker.session.timeout.ms": "6000",
        "broker.heartbeat.interval.ms": "1000",
        "auto.create.topics.enable": "false",
        "num.network.threads": "2",
        "num.io.threads": "2",
        "background.threads": "2",
        "log.segment.bytes": str(16 * 1024 * 1024),
    }
    return "".join(f"{key}={value}\n" for key, value in settings.items())
