"""The testcontainers providers: a Kafka and a PostgreSQL container (needs a Docker engine)."""

from __future__ import annotations

import contextlib

from pytest_eng5.stack.config import KafkaSecurity, StackConfig
from pytest_eng5.stack.docker_engine import ContainerHandle
from pytest_eng5.stack.kafka import KafkaEndpoint, wait_for_metadata
from pytest_eng5.stack.postgres import PostgresEndpoint, wait_for_select_one
from pytest_eng5.stack.readiness import StackStartError


def start_kafka_container(config: StackConfig) -> tuple[KafkaEndpoint, ContainerHandle]:
    """Start a Kafka container (KRaft) and use the bootstrap address it reports."""
    from testcontainers.community.kafka import KafkaContainer

    container = KafkaContainer(config.kafka_image)
    with contextlib.suppress(Exception):
        container = container.with_kraft()
    handle = ContainerHandle("kafka-container", container, config.log_dir)
    try:
        container.start(timeout=max(int(config.start_timeout), 1))
        bootstrap = container.get_bootstrap_server()
    except Exception as exc:
        handle.stop()
        raise StackStartError(
            f"the Kafka container {config.kafka_image} did not start: {exc}",
            next_step=f"read {handle.log_path}, check the Docker engine, or use the default "
            "embedded stack",
        ) from exc
    idempotence = True if config.kafka_idempotence is None else config.kafka_idempotence
    endpoint = KafkaEndpoint(bootstrap, KafkaSecurity(), idempotence, provider="testcontainers")
    try:
        wait_for_metadata(
            endpoint, config.start_timeout, what=f"the Kafka container at {bootstrap}"
        )
    except StackStartError:
        handle.stop()
        raise
    return endpoint, handle


def start_postgres_container(config: StackConfig) -> tuple[PostgresEndpoint, ContainerHandle]:
    """Start a PostgreSQL container and wait for ``SELECT 1`` on its mapped port."""
    from testcontainers.community.postgres import PostgresContainer

    container = PostgresContainer(config.postgres_image, driver=None)
    handle = ContainerHandle("postgres-container", container, config.log_dir)
    try:
        container.start()
        dsn: str = container.get_connection_url()
    except Exception as exc:
        handle.stop()
        raise StackStartError(
            f"the PostgreSQL container {config.postgres_image} did not start: {exc}",
            next_step=f"read {handle.log_path}, check the Docker engine, or use the default "
            "embedded stack",
        ) from exc
    endpoint = PostgresEndpoint(dsn, provider="testcontainers")
    try:
        wait_for_select_one(endpoint, config.start_timeout, what="the PostgreSQL container")
    except StackStartError:
        handle.stop()
        raise
    return endpoint, handle
