"""PostgreSQL access of the reference services: a connection pool and the schema."""

from __future__ import annotations

from importlib import resources

import asyncpg

from pytest_eng5.errors import ConfigurationError
from pytest_eng5.reference.faults import FAULTS_DDL

# Any fixed 64-bit number works; it only has to be the same in every process applying the schema.
_SCHEMA_LOCK_KEY = 5_118_202_611

Pool = asyncpg.Pool


def schema_sql() -> str:
    """The reference schema (``schema.sql`` next to this module)."""
    return resources.files("pytest_eng5.reference").joinpath("schema.sql").read_text("utf-8")


async def create_pool(dsn: str, *, min_size: int = 1, max_size: int = 10) -> Pool:
    """Open an asyncpg pool for ``dsn``; a clear error when the database cannot be reached."""
    try:
        pool = await asyncpg.create_pool(dsn, min_size=min_size, max_size=max_size)
    except (OSError, asyncpg.PostgresError) as exc:
        raise ConfigurationError(
            f"Cannot connect to PostgreSQL for the reference services: {exc}",
            next_step="Check the --dsn value and that the PostgreSQL server is running.",
        ) from exc
    if pool is None:  # asyncpg's stubs allow it; a real pool is always returned
        raise ConfigurationError(
            "asyncpg returned no pool", next_step="Re-run; report this if it repeats."
        )
    return pool


async def apply_schema(pool: Pool) -> None:
    """Create every table (schema.sql + reference_faults) if missing.

    Idempotent. Several services start at once against one database, and concurrent
    ``CREATE ... IF NOT EXISTS`` can still collide in the catalogue, so the DDL runs under a
    session advisory lock.
    """
    ddl = schema_sql()
    async with pool.acquire() as conn:
        await conn.execute("SELECT pg_advisory_lock($1)", _SCHEMA_LOCK_KEY)
        try:
            await conn.execute(ddl)
            await conn.execute(FAULTS_DDL)
        finally:
            await conn.execute("SELECT pg_advisory_unlock($1)", _SCHEMA_LOCK_KEY)
