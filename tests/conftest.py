"""One embedded stack per test session, shared by the integration and reference tests.

Under xdist every worker has its own session and so its own stack (see
:mod:`pytest_eng5.stack.infra`); PostgreSQL keeps its data out of pytest's basetemp by itself.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from pytest_eng5.reference.db import apply_schema, create_pool
from pytest_eng5.stack.config import StackConfig
from pytest_eng5.stack.infra import Infrastructure, running_infrastructure
from pytest_eng5.stack.process import run_coroutine

#: The collector tests read topics with more than one partition on purpose.
SESSION_TOPIC_PARTITIONS = 2
SCHEMA_TIMEOUT_S = 30.0


async def apply_reference_schema(dsn: str) -> None:
    """Create the reference CJ tables (schema.sql and the fault table) in ``dsn``."""
    pool = await create_pool(dsn, max_size=2)
    try:
        await apply_schema(pool)
    finally:
        await pool.close()


@pytest.fixture(scope="session")
def session_infra(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Infrastructure]:
    """Tansu with two partitions per contract topic, PostgreSQL with the reference schema."""
    base = tmp_path_factory.mktemp("session-stack")
    config = StackConfig(
        "embedded",
        workdir=base / "work",
        log_dir=base / "logs",
        topic_partitions=SESSION_TOPIC_PARTITIONS,
    )
    with running_infrastructure(config) as infra:
        run_coroutine(apply_reference_schema(infra.postgres.dsn), SCHEMA_TIMEOUT_S)
        yield infra
