"""The cluster tier: the main job and the faults only a real cluster has, on Apache Kafka.

One three-node KRaft cluster (with the embedded PostgreSQL and the reference services) serves
this module. Each fault is waited out on metadata and recorded in ``cluster-events.jsonl``
among the stack logs; after each test every node runs again and every partition is fully
replicated before the next one starts. Needs ``java`` and ``mvn`` (else skipped, or an error
under ``--eng5-require-services``).
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from pytest_eng5.core import CALLBACK_TOPIC, REQUEST_TOPIC
from pytest_eng5.errors import PublishError
from pytest_eng5.runner.config import RunHooks
from pytest_eng5.runner.seeding import seed_assignment_at
from pytest_eng5.sample_data import SAMPLE_ASSETS, SAMPLE_COURSE_ID
from pytest_eng5.scenarios.support import FAST_BUDGET
from pytest_eng5.stack import apache_faults as faults
from pytest_eng5.stack.config import DEFAULT_TOPICS
from pytest_eng5.stack.session import StackContext

HERE = Path(__file__).resolve().parent
pytestmark = [
    pytest.mark.eng5_scenario("apache-cluster"),
    pytest.mark.timeout(900),  # JVMs start slowly on two shared cores; every wait is bounded
    # one cluster for the module under --dist loadgroup; plain -n 2 may start one per worker
    pytest.mark.xdist_group("apache-cluster"),
    pytest.mark.skipif(
        shutil.which("java") is None or shutil.which("mvn") is None,
        reason="the Apache Kafka cluster tier needs java and mvn",
    ),
]
#: ``ENG5_LEADER_LOSS_RUNS=10`` runs the leader-loss scenario ten times in a row on one cluster
LEADER_LOSS_RUNS = int(os.environ.get("ENG5_LEADER_LOSS_RUNS", "1"))
JUDGE_DELAY_MS = 120  # the await lasts seconds, so a fault lands in the middle of it


@pytest.fixture(scope="module")
def cluster_stack(eng5_stack_factory: Any) -> Iterator[StackContext]:
    stack = eng5_stack_factory(kafka="apache", brokers=3)
    asyncio.run(
        seed_assignment_at(stack.cj_url, stack.env, SAMPLE_ASSETS, assignment_id="apache-cluster")
    )
    yield stack
    eng5_stack_factory.stop(stack)  # three JVMs: not kept for the rest of the session


@pytest.fixture
def cluster(cluster_stack: StackContext) -> Iterator[Any]:
    """The cluster handle; every node runs and all topics are replicated again afterwards."""
    assert cluster_stack.infrastructure is not None
    handle = cluster_stack.infrastructure.kafka_cluster
    assert handle is not None
    yield handle
    cluster_stack.clear_faults()
    faults.restore(handle, DEFAULT_TOPICS)


@pytest.fixture
def runner_for(eng5_stack_runner_factory: Any, cluster_stack: StackContext, tmp_path: Path) -> Any:
    """``make(hooks, **settings)``: a runner for the seeded assignment on the cluster."""

    def make(hooks: RunHooks | None = None, **overrides: Any) -> Any:
        settings = {
            "assignment_id": "apache-cluster",
            "course_id": SAMPLE_COURSE_ID,
            "assets": SAMPLE_ASSETS,  # the seeded assignment's essays, whatever is configured
            "max_comparisons": FAST_BUDGET,
            "completion_timeout": 150,
            "cache_file": tmp_path / "cache.json",
            **overrides,
        }
        return eng5_stack_runner_factory(cluster_stack, hooks=hooks, **settings)

    return make


def callbacks(result: Any) -> list[dict[str, Any]]:
    lines = (result.evidence_dir / "events.jsonl").read_text().splitlines()
    return [e for e in map(json.loads, lines) if e["kind"] == "callback"]


async def pair_counts(stack: StackContext, batch_uuid: str) -> dict[str, int]:
    """What the reference CJ recorded for the batch: pairs sent, pairs completed, counter."""
    connection = await stack.connect()
    try:
        row = await connection.fetchrow(
            """
            SELECT count(p.id) AS pairs,
                   count(p.id) FILTER (WHERE p.completed_at IS NOT NULL) AS completed,
                   max(s.completed_comparisons) AS counted
            FROM cj_batch_uploads b
            JOIN cj_batch_states s ON s.batch_id = b.id
            LEFT JOIN cj_comparison_pairs p ON p.cj_batch_id = b.id
            WHERE b.bos_batch_id = $1
            """,
            batch_uuid,
        )
    finally:
        await connection.close()
    return dict(row)


def assert_every_callback_counted_once(stack: StackContext, result: Any) -> None:
    assert result.outcome == "completed"
    assert result.ignored_events.get("duplicates", 0) == 0, "no callback arrived twice"
    seen = callbacks(result)
    request_ids = [e["envelope"]["data"]["request_id"] for e in seen]
    assert len(set(request_ids)) == len(request_ids), "each comparison has one callback"
    counts = asyncio.run(pair_counts(stack, result.batch_uuid))
    assert counts["pairs"] == counts["completed"], "no callback was lost"
    assert counts["counted"] == counts["completed"], "CJ counted each completed pair once"
    assert result.comparisons == counts["completed"]


async def end_offsets(stack: StackContext, topic: str) -> dict[TopicPartition, int]:
    consumer = AIOKafkaConsumer(**stack.kafka.consumer_kwargs(), enable_auto_commit=False)
    await consumer.start()
    try:
        partitions = [TopicPartition(topic, p) for p in range(3)]
        return dict(await consumer.end_offsets(partitions))
    finally:
        await consumer.stop()


# --- the main job -----------------------------------------------------------------------------


def test_main_job_runs_unchanged_on_a_three_node_cluster(tmp_path: Path) -> None:
    """``pytest -m eng5_execute --eng5-kafka=apache``: the main job, as a user runs it."""
    completed = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            str(HERE / "test_execute_end_to_end.py"),
            "-m",
            "eng5_execute",
            "--eng5-kafka=apache",
            "--eng5-require-services",
            f"--eng5-evidence-dir={tmp_path / 'evidence'}",
            "-p",
            "no:cacheprovider",
            "-q",
        ],
        cwd=HERE.parent,
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
    )
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-2000:]
    assert "1 passed" in completed.stdout
    logs = sorted(p.name for p in (tmp_path / "evidence" / "stack-logs").glob("*/kafka-?.log"))
    assert logs == [f"kafka-{i}.log" for i in (1, 2, 3)], "it ran on the three-node cluster"


# --- faults -----------------------------------------------------------------------------------


@pytest.mark.parametrize("run", range(LEADER_LOSS_RUNS))
def test_leader_of_the_callback_partition_dies_mid_await(
    cluster_stack: StackContext, cluster: Any, runner_for: Any, run: int
) -> None:
    cluster_stack.set_faults("cj-worker", judge_delay_ms=JUDGE_DELAY_MS)
    change: dict[str, Any] = {}
    failures: list[BaseException] = []

    def crash_the_leader(partition: int) -> None:
        try:
            leader = faults.leader_of(cluster, CALLBACK_TOPIC, partition)
            faults.crash_node(cluster, leader, f"leader of {CALLBACK_TOPIC}[{partition}]")
            new = faults.wait_for_new_leader(cluster, CALLBACK_TOPIC, partition, leader)
            change.update(partition=partition, old=leader, new=new)
        except BaseException as exc:
            failures.append(exc)

    crasher: list[threading.Thread] = []

    def on_event(event: Any, identity: Any) -> None:
        if event.kind == "callback" and not crasher:
            crasher.append(threading.Thread(target=crash_the_leader, args=(event.partition,)))
            crasher[0].start()

    runner = runner_for(RunHooks(on_event=on_event))
    result = runner.execute()
    assert crasher, "a callback arrived"
    crasher[0].join(120)
    assert not failures, failures
    assert change["new"] != change["old"]
    assert_every_callback_counted_once(cluster_stack, result)
    recorded = [e for e in faults.read_events(cluster) if e["event"] == "leader-change"]
    assert {"old_leader": change["old"], "new_leader": change["new"]}.items() <= recorded[
        -1
    ].items()
    elected = datetime.fromisoformat(recorded[-1]["at"])
    after = [
        e
        for e in callbacks(result)
        if e["partition"] == change["partition"]
        and datetime.fromisoformat(e["received_at"]) > elected
    ]
    assert after, "callbacks kept arriving on that partition under its new leader"


def test_broker_restart_between_publish_and_completion(
    cluster_stack: StackContext, cluster: Any, runner_for: Any
) -> None:
    cluster_stack.set_faults("cj-worker", judge_delay_ms=JUDGE_DELAY_MS)
    restarted: list[int] = []
    failures: list[BaseException] = []

    def restart_callback_leader(partition: int) -> None:
        try:
            node = faults.leader_of(cluster, CALLBACK_TOPIC, partition)
            faults.stop_node(cluster, node, "restart between publish and completion")
            faults.start_node(cluster, node, "restart between publish and completion")
            restarted.append(node)
        except BaseException as exc:
            failures.append(exc)

    threads: list[threading.Thread] = []

    def on_event(event: Any, identity: Any) -> None:
        if event.kind == "callback" and not threads:
            threads.append(
                threading.Thread(target=restart_callback_leader, args=(event.partition,))
            )
            threads[0].start()

    runner = runner_for(RunHooks(on_event=on_event))
    result = runner.execute()
    threads[0].join(240)
    assert not failures, failures
    assert restarted, "a broker was restarted while the batch ran"
    assert_every_callback_counted_once(cluster_stack, result)
    kinds = [e["event"] for e in faults.read_events(cluster)]
    assert kinds[-2:] == ["node-stopped", "node-started"]


def test_min_insync_replicas_not_met_at_publish(
    cluster_stack: StackContext, cluster: Any, runner_for: Any
) -> None:
    faults.stop_node(cluster, 3, "leave two in-sync replicas")
    faults.wait_for_isr(cluster, REQUEST_TOPIC, 2)
    asyncio.run(faults.set_topic_config(cluster, REQUEST_TOPIC, min_insync_replicas="3"))
    before = asyncio.run(end_offsets(cluster_stack, REQUEST_TOPIC))
    runner = runner_for(completion_timeout=15)  # the publish is bounded by it too
    try:
        with pytest.raises(PublishError) as info:
            runner.execute()
    finally:
        asyncio.run(faults.set_topic_config(cluster, REQUEST_TOPIC, min_insync_replicas="2"))
    assert "NotEnoughReplicas" in str(info.value)
    assert "min.insync.replicas" in str(info.value)
    result = runner.last_result
    assert result.outcome == "publish_failed", "the broker refused it: not on the topic"
    assert not result.published
    assert result.uploaded + result.reused == 24, "the uploads are kept"
    faults.restore(cluster, DEFAULT_TOPICS)
    assert asyncio.run(end_offsets(cluster_stack, REQUEST_TOPIC)) == before, "nothing published"
