"""eng5_stack_factory on real stacks: reused for equal arguments, replaced when a process died,
fault knobs reset per call, logs under pytest's tmp dirs, every process stopped at the end."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from stack_checks import dead_within, kafka_round_trip, partition_counts, pid_alive, sql_round_trip

from pytest_eng5.errors import ConfigurationError
from pytest_eng5.settings import Eng5Settings
from pytest_eng5.stack.config import DEFAULT_TOPICS
from pytest_eng5.stack.postgres_embedded import EmbeddedPostgres
from pytest_eng5.stack.tansu import EmbeddedKafka
from pytest_eng5.stack_requests import Eng5StackFactory

INFRA_ONLY = {"stack": "embedded", "kafka": "tansu", "services": False}


@pytest.mark.asyncio
async def test_equal_arguments_give_the_running_stack_with_its_partitions(
    eng5_stack_factory: Any, tmp_path_factory: pytest.TempPathFactory
) -> None:
    stack = eng5_stack_factory(partitions=3, **INFRA_ONLY)
    assert eng5_stack_factory(partitions=3, **INFRA_ONLY) is stack
    assert eng5_stack_factory(**INFRA_ONLY) is not stack, "other partitions, another stack"
    counts = await partition_counts(stack.kafka, list(DEFAULT_TOPICS))
    assert counts == dict.fromkeys(DEFAULT_TOPICS, 3)
    assert tmp_path_factory.getbasetemp() in stack.log_dir.parents
    assert (stack.log_dir / "tansu.log").is_file()
    assert stack.services is None
    assert stack.cj_url is None


@pytest.fixture
def own_factory(tmp_path: Path) -> Iterator[Eng5StackFactory]:
    """A factory of the test's own: its stacks are shared with no other test, so they may die."""
    factory = Eng5StackFactory(Eng5Settings(), tmp_path)
    try:
        yield factory
    finally:
        factory.close()


@pytest.mark.asyncio
async def test_a_stack_whose_broker_died_is_replaced(own_factory: Eng5StackFactory) -> None:
    stack = own_factory(**INFRA_ONLY)
    assert stack.infrastructure is not None
    (broker,) = [h for h in stack.infrastructure.processes if isinstance(h, EmbeddedKafka)]
    broker.stop(timeout=5)
    old_pids = list(stack.pids)
    again = own_factory(**INFRA_ONLY)
    assert again is not stack
    assert [pid for pid in old_pids if pid_alive(pid)] == [], "the rest of the old one stopped"
    assert len(await kafka_round_trip(again.kafka, DEFAULT_TOPICS[0])) == 3
    own_factory.stop(again)
    assert [pid for pid in again.pids if pid_alive(pid)] == []
    assert own_factory(**INFRA_ONLY) is not again, "a stopped stack is not handed out"


@pytest.mark.asyncio
async def test_a_stack_whose_postgres_died_is_replaced(own_factory: Eng5StackFactory) -> None:
    stack = own_factory(**INFRA_ONLY)
    assert stack.infrastructure is not None
    (postgres,) = [h for h in stack.infrastructure.processes if isinstance(h, EmbeddedPostgres)]
    assert postgres.pid is not None
    os.kill(postgres.pid, signal.SIGINT)  # a fast shutdown behind the stack's back
    assert dead_within(postgres.pid, timeout=30), "the postmaster did not shut down"
    again = own_factory(**INFRA_ONLY)
    assert again is not stack
    assert again.infrastructure is not None
    assert len(await sql_round_trip(again.infrastructure.postgres.dsn)) == 3


def test_each_call_resets_the_fault_knobs_to_its_own(eng5_stack_factory: Any) -> None:
    stack = eng5_stack_factory(judge="coin_flip", faults={"cj-worker": {"judge_delay_ms": 7}})
    stack.set_faults("content", http_5xx_count=3)
    assert eng5_stack_factory(judge="coin_flip", faults={"cj-worker": {"judge_delay_ms": 7}}) is (
        stack
    )
    faults = httpx.get(f"{stack.cj_url}/_test/faults", timeout=5).json()
    assert faults["cj-worker"]["judge_delay_ms"] == 7
    assert faults["content"]["http_5xx_count"] == 0, "the earlier test's knob is cleared"
    assert {p.name for p in stack.log_dir.glob("*.log")} >= {"cj-api.log", "cj-worker.log"}
    with pytest.raises(ConfigurationError, match="judge_delay_seconds"):
        stack.set_faults("cj-worker", judge_delay_seconds=1)


def test_close_stops_every_stack_it_started(tmp_path: Path) -> None:
    factory = Eng5StackFactory(Eng5Settings(), tmp_path)
    first = factory(**INFRA_ONLY)
    second = factory(partitions=2, **INFRA_ONLY)
    pids = [*first.pids, *second.pids]
    assert all(pid_alive(pid) for pid in pids)
    factory.close()
    assert [pid for pid in pids if pid_alive(pid)] == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["01-tansu", "02-tansu-2p"]
