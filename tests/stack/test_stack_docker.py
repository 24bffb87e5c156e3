"""testcontainers: used when a Docker engine answers, a clear error when asked for without one."""

from __future__ import annotations

from pathlib import Path

import pytest
from stack_checks import kafka_round_trip, sql_round_trip

from pytest_eng5.errors import ConfigurationError
from pytest_eng5.stack.config import DEFAULT_TOPICS, StackConfig
from pytest_eng5.stack.docker_engine import docker_engine_available
from pytest_eng5.stack.infra import running_infrastructure, start_infrastructure

ENGINE, REASON = docker_engine_available()


def test_engine_probe_answers_with_a_reason() -> None:
    available, reason = docker_engine_available(timeout=1.0)
    assert available or reason.startswith("no Docker engine: ")


@pytest.mark.skipif(ENGINE, reason="a Docker engine is available here")
def test_testcontainers_without_engine_is_a_clear_configuration_error(tmp_path: Path) -> None:
    config = StackConfig("testcontainers", tmp_path / "work", tmp_path / "logs")
    with pytest.raises(ConfigurationError) as info:
        start_infrastructure(config)
    message = info.value.message
    assert message.startswith("--eng5-stack=testcontainers needs a Docker engine: no Docker engine")
    assert message.endswith("use the default embedded stack")


@pytest.mark.skipif(not ENGINE, reason=REASON)
@pytest.mark.asyncio
async def test_testcontainers_stack_carries_real_traffic(tmp_path: Path) -> None:
    config = StackConfig("testcontainers", tmp_path / "work", tmp_path / "logs", start_timeout=180)
    with running_infrastructure(config) as infra:
        assert infra.kafka.idempotence is True
        await kafka_round_trip(infra.kafka, DEFAULT_TOPICS[0])
        await sql_round_trip(infra.postgres.dsn)
