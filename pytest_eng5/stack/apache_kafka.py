"""Apache Kafka in KRaft mode: 1 or 3 combined broker/controller JVMs on 127.0.0.1.

Each node gets a client port and a controller port, its own data directory under the
workdir and its log ``kafka-<id>.log`` in the log folder. Storage is formatted with the
broker's own ``StorageTool`` (all nodes at once), then the JVMs start together and the
cluster is ready when a metadata request lists every broker. The contract topics get
three partitions and a replication factor of ``min(3, brokers)``; ``min.insync.replicas``
is two on a three-node cluster, so losing one broker keeps publishing possible.

Heaps are small (``-Xmx320m``, serial GC, C1 only): three nodes take about 900 MB and start
in 6-20 s on two busy cores. Nodes can be stopped and started again by id (the fault
scenarios); their data directories persist until the cluster stops.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import shutil
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pytest_eng5.stack.apache_config import (
    CONTRACT_PARTITIONS,
    JVM_OPTIONS,
    MAX_REPLICATION,
    KraftNode,
    new_cluster_id,
    node_properties,
)
from pytest_eng5.stack.apache_jars import broker_jars, require_tool
from pytest_eng5.stack.config import KafkaSecurity, StackConfig
from pytest_eng5.stack.kafka import KafkaEndpoint
from pytest_eng5.stack.kafka_topics import ensure_topics_async
from pytest_eng5.stack.ports import LOOPBACK, free_port
from pytest_eng5.stack.process import ManagedProcess
from pytest_eng5.stack.readiness import StackStartError, log_tail_section, poll_until, run_coroutine

#: JVM start-up and KRaft elections are slow on shared cores; the session start timeout is
#: raised to at least this for the cluster.
START_TIMEOUT_FLOOR = 180.0
STOP_TIMEOUT = 30.0
METADATA_TIMEOUT = 5.0


class ApacheKafkaCluster:
    """A running KRaft cluster this session started; stop nodes, start them again, stop all."""

    name = "apache-kafka"

    def __init__(
        self, *, java: str, jars: Path, nodes: list[KraftNode], root: Path, log_dir: Path
    ) -> None:
        self._java = java
        self._classpath = str(jars / "*")
        self.nodes = {node.node_id: node for node in nodes}
        self.root = root
        self.log_dir = log_dir
        self._stopped = False

    @property
    def pid(self) -> int | None:
        pids = self.pids
        return pids[0] if pids else None

    @property
    def pids(self) -> list[int]:
        """Process ids of the running JVMs."""
        return [n.process.pid for n in self.nodes.values() if n.process and n.is_running()]

    @property
    def bootstrap(self) -> str:
        return ",".join(node.address for node in self.nodes.values())

    def endpoint(self, idempotence: bool) -> KafkaEndpoint:
        return KafkaEndpoint(self.bootstrap, KafkaSecurity(), idempotence, provider="apache")

    def is_running(self) -> bool:
        """True while every node runs (a node stopped on purpose counts as not running)."""
        return not self._stopped and all(node.is_running() for node in self.nodes.values())

    def running_nodes(self) -> list[int]:
        return [node_id for node_id, node in self.nodes.items() if node.is_running()]

    def _java_argv(self, main: str, *args: str) -> list[str]:
        return [self._java, *JVM_OPTIONS, "-cp", self._classpath, main, *args]

    def format_storage(self, cluster_id: str, deadline: float) -> None:
        """Format every node's data directory (one StorageTool JVM per node, in parallel)."""
        formats = [
            ManagedProcess(
                f"kafka-{node.node_id}-format",
                self._java_argv(
                    "kafka.tools.StorageTool",
                    "format",
                    "--cluster-id",
                    cluster_id,
                    "--config",
                    str(node.properties_path),
                ),
                self.log_dir,
            )
            for node in self.nodes.values()
        ]
        try:
            for process in formats:
                death = process.wait_for_exit(max(deadline - time.monotonic(), 0.001))
                if death is None or process.returncode != 0:
                    raise StackStartError(
                        f"formatting the KRaft storage failed: "
                        f"{death or f'{process.name} did not finish in time'}"
                        + log_tail_section(process.log_path, process.log_offset),
                        next_step=f"read {process.log_path}",
                    )
        finally:
            for process in formats:
                process.stop(timeout=5)

    def launch_node(self, node_id: int) -> ManagedProcess:
        """Start the JVM of ``node_id`` (not waiting for it); its log is ``kafka-<id>.log``."""
        node = self.nodes[node_id]
        if node.is_running():
            raise StackStartError(
                f"Kafka node {node_id} is already running",
                next_step="stop it before starting it again",
            )
        node.process = ManagedProcess(
            f"kafka-{node_id}",
            self._java_argv("kafka.Kafka", str(node.properties_path)),
            self.log_dir,
        )
        return node.process

    def wait_for_brokers(self, node_ids: Sequence[int], timeout: float) -> None:
        """Wait until a metadata request lists every broker of ``node_ids``."""
        wanted = set(node_ids)
        processes = [self.nodes[i].process for i in wanted if self.nodes[i].process]

        def died(seconds: float) -> str | None:
            # Wait on the first node's exit for the pause, then look at the others.
            for index, process in enumerate(processes):
                assert process is not None
                death = process.wait_for_exit(seconds if index == 0 else 0.0)
                if death is not None:
                    return death
            return None

        async def listed() -> bool:
            # A plain connect first keeps the polls before the JVMs listen quiet (a failed
            # aiokafka bootstrap logs an error each time).
            for node_id in wanted:
                if not await _accepts_connections(self.nodes[node_id]):
                    return False
            return wanted <= set(await broker_ids(self.endpoint(False)))

        first = processes[0] if processes else None
        poll_until(
            listed,
            timeout=timeout,
            what=f"the Apache Kafka cluster (brokers {sorted(wanted)})",
            next_step=f"read the kafka-<id>.log files in {self.log_dir}",
            wait_or_died=died,
            poll_interval=0.25,
            log_path=first.log_path if first else None,
            log_offset=first.log_offset if first else 0,
        )

    def start_node(self, node_id: int, timeout: float = START_TIMEOUT_FLOOR) -> None:
        """Start a stopped node again and wait until the cluster lists it."""
        self.launch_node(node_id)
        self.wait_for_brokers([node_id], timeout)

    def stop_node(self, node_id: int, timeout: float = STOP_TIMEOUT, *, kill: bool = False) -> None:
        """Stop one node: SIGTERM (a controlled shutdown hands its leaderships over), or with
        ``kill`` SIGKILL (a crash: the controller fences it after the broker session timeout)."""
        process = self.nodes[node_id].process
        if process is None:
            return
        if kill:
            process.kill(timeout)
        else:
            process.stop(timeout)

    def stop(self, timeout: float = STOP_TIMEOUT) -> None:
        """Kill every node at once and remove the data directories; safe to call twice.

        The data is thrown away, so a controlled shutdown (seconds per node while the others
        take over its partitions) would buy nothing.
        """
        if self._stopped:
            return
        self._stopped = True
        try:
            with concurrent.futures.ThreadPoolExecutor(max_workers=len(self.nodes)) as pool:
                stops = [pool.submit(self.stop_node, i, timeout, kill=True) for i in self.nodes]
                for stopping in stops:
                    stopping.result()
        finally:
            shutil.rmtree(self.root, ignore_errors=True)


async def _accepts_connections(node: KraftNode) -> bool:
    try:
        _, writer = await asyncio.open_connection(LOOPBACK, node.port)
    except OSError:
        return False
    writer.close()
    await writer.wait_closed()
    return True


async def broker_ids(
    endpoint: KafkaEndpoint, request_timeout: float = METADATA_TIMEOUT
) -> list[int]:
    """The ids of the brokers a metadata request lists (the live, unfenced ones)."""
    cluster = await _admin_call(endpoint, "describe_cluster", request_timeout)
    return sorted(int(broker["node_id"]) for broker in cluster["brokers"])


async def partition_states(
    endpoint: KafkaEndpoint, topic: str, request_timeout: float = METADATA_TIMEOUT
) -> dict[int, dict[str, Any]]:
    """Per partition of ``topic``: ``leader``, ``replicas`` and ``isr`` from fresh metadata."""
    topics = await _admin_call(endpoint, "describe_topics", request_timeout, [topic])
    states: dict[int, dict[str, Any]] = {}
    for entry in topics:
        for partition in entry["partitions"]:
            states[int(partition["partition"])] = {
                "leader": int(partition["leader"]),
                "replicas": list(partition["replicas"]),
                "isr": list(partition["isr"]),
            }
    return states


async def _admin_call(
    endpoint: KafkaEndpoint, method: str, request_timeout: float, *args: Any
) -> Any:
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(
        **endpoint.admin_kwargs(), request_timeout_ms=max(int(request_timeout * 1000), 1)
    )
    try:
        await admin.start()
        return await getattr(admin, method)(*args)
    finally:
        await admin.close()


async def wait_fully_replicated(
    endpoint: KafkaEndpoint, topics: Sequence[str], replication: int
) -> None:
    """Wait until every partition of ``topics`` has a leader and ``replication`` replicas in
    sync."""
    while True:
        states = [await partition_states(endpoint, topic) for topic in topics]
        if all(
            states_of
            and all(s["leader"] >= 0 and len(s["isr"]) >= replication for s in states_of.values())
            for states_of in states
        ):
            return
        await asyncio.sleep(0.1)  # polling pause between metadata requests


def _plan_nodes(count: int, root: Path) -> list[KraftNode]:
    nodes = []
    for node_id in range(1, count + 1):
        directory = root / f"node-{node_id}"
        directory.mkdir(parents=True)
        nodes.append(KraftNode(node_id, free_port(), free_port(), directory))
    return nodes


def start_apache_kafka(config: StackConfig) -> tuple[KafkaEndpoint, ApacheKafkaCluster]:
    """Resolve the jars, format storage, start the nodes and create the contract topics."""
    java = require_tool("java")
    timeout = max(config.start_timeout, START_TIMEOUT_FLOOR)
    jars = broker_jars(config.kafka_version, config.log_dir)
    deadline = time.monotonic() + timeout
    root = config.workdir / f"apache-kafka-{uuid.uuid4().hex[:8]}"
    nodes = _plan_nodes(config.kafka_brokers, root)
    for node in nodes:
        node.properties_path.write_text(node_properties(node, nodes))
    cluster = ApacheKafkaCluster(
        java=java, jars=jars, nodes=nodes, root=root, log_dir=config.log_dir
    )
    idempotence = True if config.kafka_idempotence is None else config.kafka_idempotence
    endpoint = cluster.endpoint(idempotence)
    try:
        cluster.format_storage(new_cluster_id(), deadline)
        for node in nodes:
            cluster.launch_node(node.node_id)
        cluster.wait_for_brokers(list(cluster.nodes), max(deadline - time.monotonic(), 0.001))
        replication = min(MAX_REPLICATION, len(nodes))
        remaining = max(deadline - time.monotonic(), 0.001)
        run_coroutine(
            _create_contract_topics(endpoint, config.topics, replication, remaining), remaining
        )
    except TimeoutError as exc:
        cluster.stop()
        raise StackStartError(
            f"the Apache Kafka topics were not fully replicated within {timeout:.0f} s",
            next_step=f"read the kafka-<id>.log files in {config.log_dir}",
        ) from exc
    except BaseException:
        cluster.stop()
        raise
    return endpoint, cluster


async def _create_contract_topics(
    endpoint: KafkaEndpoint, topics: Sequence[str], replication: int, request_timeout: float
) -> None:
    """Create the topics (three partitions each), then wait on metadata until every broker
    serves them replicated."""
    await ensure_topics_async(
        endpoint,
        topics,
        partitions=CONTRACT_PARTITIONS,
        replication_factor=replication,
        request_timeout=min(request_timeout, 30.0),
        check_listed=False,
    )
    await wait_fully_replicated(endpoint, topics, replication)
