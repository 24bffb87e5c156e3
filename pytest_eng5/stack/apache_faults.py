"""Faults only a real cluster has, on an :class:`ApacheKafkaCluster`, each waited out on metadata.

Every fault and what the cluster did about it is appended to ``cluster-events.jsonl`` in the
cluster's log folder (part of the evidence): which node stopped or started, and each leader
change as metadata reported it. Waits poll fresh metadata (a real signal), never a fixed
sleep, and are bounded.
"""

from __future__ import annotations

import asyncio
import json
import time
from datetime import UTC, datetime
from typing import Any

from pytest_eng5.stack.apache_kafka import (
    ApacheKafkaCluster,
    broker_ids,
    partition_states,
    wait_fully_replicated,
)
from pytest_eng5.stack.readiness import StackStartError, run_coroutine

EVENTS_FILE = "cluster-events.jsonl"
METADATA_POLL_S = 0.1
FAULT_TIMEOUT = 60.0


def record(cluster: ApacheKafkaCluster, event: str, **fields: Any) -> dict[str, Any]:
    """Append one event to ``cluster-events.jsonl`` and return it."""
    line = {"at": datetime.now(UTC).isoformat(), "event": event, **fields}
    cluster.log_dir.mkdir(parents=True, exist_ok=True)
    with (cluster.log_dir / EVENTS_FILE).open("a", encoding="utf-8") as handle:
        handle.write(json.dumps(line) + "\n")
    return line


def read_events(cluster: ApacheKafkaCluster) -> list[dict[str, Any]]:
    path = cluster.log_dir / EVENTS_FILE
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def leader_of(cluster: ApacheKafkaCluster, topic: str, partition: int) -> int:
    """The node that leads ``topic[partition]`` now (fresh metadata)."""
    states = run_coroutine(partition_states(cluster.endpoint(False), topic), FAULT_TIMEOUT)
    return int(states[partition]["leader"])


def crash_node(cluster: ApacheKafkaCluster, node_id: int, why: str) -> None:
    """SIGKILL one node: no controlled shutdown, its leaderships are lost with it."""
    cluster.stop_node(node_id, kill=True)
    record(cluster, "node-killed", node=node_id, why=why)


def stop_node(cluster: ApacheKafkaCluster, node_id: int, why: str) -> None:
    """Stop one node with a controlled shutdown (its leaderships move first)."""
    cluster.stop_node(node_id)
    record(cluster, "node-stopped", node=node_id, why=why)


def start_node(cluster: ApacheKafkaCluster, node_id: int, why: str) -> None:
    """Start a stopped node again; return once metadata lists it."""
    cluster.start_node(node_id)
    record(cluster, "node-started", node=node_id, why=why)


def wait_for_new_leader(
    cluster: ApacheKafkaCluster,
    topic: str,
    partition: int,
    old_leader: int,
    timeout: float = FAULT_TIMEOUT,
) -> int:
    """Wait until metadata names a live leader other than ``old_leader``; record the change."""

    async def new_leader() -> int:
        endpoint = cluster.endpoint(False)
        while True:
            try:
                states = await partition_states(endpoint, topic)
                leader = int(states[partition]["leader"])
                if leader not in (old_leader, -1) and leader in cluster.running_nodes():
                    return leader
            except Exception:  # a request to the dead node fails until metadata moves on
                pass
            await asyncio.sleep(METADATA_POLL_S)  # polling pause between metadata requests

    started = time.monotonic()
    try:
        leader = run_coroutine(new_leader(), timeout)
    except TimeoutError as exc:
        raise StackStartError(
            f"no new leader for {topic}[{partition}] within {timeout:.0f} s after node "
            f"{old_leader} went away",
            next_step=f"read the kafka-<id>.log files in {cluster.log_dir}",
        ) from exc
    record(
        cluster,
        "leader-change",
        topic=topic,
        partition=partition,
        old_leader=old_leader,
        new_leader=leader,
        seconds=round(time.monotonic() - started, 3),
    )
    return leader


def wait_for_isr(
    cluster: ApacheKafkaCluster, topic: str, size: int, timeout: float = FAULT_TIMEOUT
) -> None:
    """Wait until every partition of ``topic`` has exactly ``size`` in-sync replicas."""

    async def shrunk() -> None:
        endpoint = cluster.endpoint(False)
        while True:
            states = await partition_states(endpoint, topic)
            if states and all(len(s["isr"]) == size for s in states.values()):
                return
            await asyncio.sleep(METADATA_POLL_S)  # polling pause between metadata requests

    run_coroutine(shrunk(), timeout)
    record(cluster, "isr", topic=topic, size=size)


def restore(cluster: ApacheKafkaCluster, topics: tuple[str, ...], timeout: float = 180.0) -> None:
    """Start every stopped node and wait until all topics are fully replicated again."""
    for node_id, node in cluster.nodes.items():
        if not node.is_running():
            start_node(cluster, node_id, "restore the cluster after a fault")
    endpoint = cluster.endpoint(False)

    async def healthy() -> None:
        while True:
            if set(await broker_ids(endpoint)) == set(cluster.nodes):
                break
            await asyncio.sleep(METADATA_POLL_S)  # polling pause between metadata requests
        await wait_fully_replicated(endpoint, topics, len(cluster.nodes))

    run_coroutine(healthy(), timeout)


async def set_topic_config(cluster: ApacheKafkaCluster, topic: str, **configs: str) -> None:
    """Alter topic configs (e.g. ``min.insync.replicas``) and record it."""
    from aiokafka.admin import AIOKafkaAdminClient
    from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

    admin = AIOKafkaAdminClient(**cluster.endpoint(False).admin_kwargs())
    try:
        await admin.start()
        names = {key.replace("_", "."): value for key, value in configs.items()}
        await admin.alter_configs([ConfigResource(ConfigResourceType.TOPIC, topic, names)])
    finally:
        await admin.close()
    record(cluster, "topic-config", topic=topic, configs=names)
