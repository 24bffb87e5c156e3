"""Kafka and PostgreSQL for the runner's integration tests, from the session's embedded stack."""

from __future__ import annotations

import pytest

from pytest_eng5.stack.infra import Infrastructure


@pytest.fixture(scope="session")
def tansu_bootstrap(session_infra: Infrastructure) -> str:
    """``127.0.0.1:PORT`` of the Tansu broker; every contract topic has two partitions."""
    return session_infra.kafka.bootstrap


@pytest.fixture(scope="session")
def postgres_dsn(session_infra: Infrastructure) -> str:
    """DSN of the embedded PostgreSQL with the reference CJ schema applied."""
    return session_infra.postgres.dsn
