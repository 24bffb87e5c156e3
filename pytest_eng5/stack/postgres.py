"""Where PostgreSQL answers: the endpoint every provider hands back, readiness, external.

Each provider (embedded, :mod:`pytest_eng5.stack.postgres_embedded`; testcontainers,
:mod:`pytest_eng5.stack.containers`; external, :func:`external_postgres`) hands back a
:class:`PostgresEndpoint` whose DSN asyncpg accepts. Readiness is ``SELECT 1`` answering.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pytest_eng5.core import CJ_DATABASE
from pytest_eng5.stack.config import StackConfig
from pytest_eng5.stack.readiness import StackStartError, poll_until

SELECT_ONE_TIMEOUT = 5.0

#: HuleEdu's Content DB and role names (contracts: ``HULEEDU_DB_USER``); the CJ DB's is
#: :data:`pytest_eng5.core.CJ_DATABASE`
CONTENT_DATABASE = "huleedu_content"
HULEEDU_DB_USER = "huleedu_user"


@dataclass(frozen=True)
class HuleeduDatabases:
    """TCP access to the embedded server's HuleEdu databases, as HuleEdu's tools expect it."""

    host: str
    port: int
    user: str
    password: str = field(repr=False)

    def dsn(self, database: str = CJ_DATABASE) -> str:
        return f"postgresql://{self.user}:{self.password}@{self.host}:{self.port}/{database}"

    def env(self) -> dict[str, str]:
        """``HULEEDU_DB_*`` as HuleEdu's CJ service and ENG5 DB extraction read them."""
        return {
            "HULEEDU_DB_HOST": self.host,
            "HULEEDU_DB_PORT": str(self.port),
            "HULEEDU_CJ_DB_PORT": str(self.port),
            "HULEEDU_DB_USER": self.user,
            "HULEEDU_DB_PASSWORD": self.password,
        }


@dataclass(frozen=True)
class PostgresEndpoint:
    """Where PostgreSQL answers: an asyncpg/libpq DSN (kept out of ``repr``).

    ``dsn`` is the CJ database; ``content_dsn`` the Content Service's when it has its own
    (embedded); ``tcp`` the password-protected TCP access of the embedded server.
    """

    dsn: str = field(repr=False)
    provider: str = "external"
    content_dsn: str | None = field(default=None, repr=False)
    tcp: HuleeduDatabases | None = None

    def huleedu_env(self) -> dict[str, str]:
        """``HULEEDU_DB_*`` for HuleEdu's tools; empty when the server has no TCP facts."""
        return self.tcp.env() if self.tcp is not None else {}


async def select_one(dsn: str, connect_timeout: float = SELECT_ONE_TIMEOUT) -> bool:
    """True when a fresh asyncpg connection answers ``SELECT 1``."""
    import asyncpg

    connection = await asyncpg.connect(dsn, timeout=connect_timeout)
    try:
        return bool(await connection.fetchval("SELECT 1") == 1)
    finally:
        await connection.close()


def wait_for_select_one(endpoint: PostgresEndpoint, timeout: float, *, what: str) -> None:
    poll_until(
        lambda: select_one(endpoint.dsn, min(timeout, SELECT_ONE_TIMEOUT)),
        timeout=timeout,
        what=what,
        next_step="check the DSN (host, port, database, user, password) and that the server "
        "accepts connections from this machine",
        poll_interval=0.05,
    )


def external_postgres(config: StackConfig) -> PostgresEndpoint:
    """An external database: nothing is started, ``SELECT 1`` must answer within the timeout."""
    if not config.postgres_dsn:
        raise StackStartError(
            "no PostgreSQL DSN given for the external stack",
            next_step="set the HULEEDU_DB_* settings",
        )
    endpoint = PostgresEndpoint(config.postgres_dsn.get_secret_value(), provider="external")
    wait_for_select_one(endpoint, config.start_timeout, what="the external PostgreSQL")
    return endpoint
