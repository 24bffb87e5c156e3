"""Fixtures for the reference-service tests.

The contract tests: the session's embedded PostgreSQL, the apps under uvicorn on free 127.0.0.1
ports (background threads), clean tables per test, admin tokens. The worker tests
(``test_worker_*``): ``infra`` (Tansu with one partition per topic, PostgreSQL and a Content
Service), a ``db`` connection to it, and ``start_worker`` for in-process workers.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import asyncpg
import jwt
import pytest
import pytest_asyncio
from starlette.applications import Starlette
from worker_support import Infra, ServerThread, WorkerFactory, set_faults, start_infra, stop_infra

from pytest_eng5.reference.cj_app import create_cj_app
from pytest_eng5.reference.content_app import create_content_app
from pytest_eng5.reference.faults import FaultConfig
from pytest_eng5.reference.worker import CJWorker
from pytest_eng5.reference.worker_settings import WorkerSettings
from pytest_eng5.stack.infra import Infrastructure
from pytest_eng5.stack.readiness import run_coroutine

JWT_SECRET = "reference-test-secret-" + uuid.uuid4().hex
AUDIENCE = "huleedu-platform"
ISSUER = "huleedu-identity-service"
DB_TIMEOUT_S = 30.0
TABLES = (
    "stored_content",
    "assessment_instructions",
    "anchor_essay_references",
    "reference_faults",
)


def run_db(dsn: str, sql: str, *args: Any, script: bool = False) -> list[asyncpg.Record]:
    """Run SQL on its own connection (the tests read back what the services wrote).

    ``script=True`` runs several ``;``-separated statements and returns no rows.
    """

    async def go() -> list[asyncpg.Record]:
        conn = await asyncpg.connect(dsn)
        try:
            if script:
                await conn.execute(sql)
                return []
            return list(await conn.fetch(sql, *args))
        finally:
            await conn.close()

    # Runs in a thread of its own when called from an async test (whose loop is running).
    return run_coroutine(go(), DB_TIMEOUT_S)


@pytest.fixture(scope="session")
def pg_dsn(session_infra: Infrastructure) -> str:
    """The session's embedded PostgreSQL, with the reference schema applied."""
    return session_infra.postgres.dsn


@pytest.fixture
def clean_db(pg_dsn: str) -> str:
    """Empty the reference tables (and faults) before a test; returns the DSN."""
    # DELETE, not TRUNCATE: on tables this small it is many times faster.
    run_db(pg_dsn, "; ".join(f"DELETE FROM {table}" for table in TABLES), script=True)
    return pg_dsn


@pytest.fixture(scope="session")
def content_server(pg_dsn: str) -> Iterator[ServerThread]:
    server = ServerThread(create_content_app(pg_dsn)).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def content_url(content_server: ServerThread) -> str:
    return content_server.url


@pytest.fixture(scope="session")
def cj_server(pg_dsn: str, content_url: str) -> Iterator[ServerThread]:
    server = ServerThread(create_cj_app(pg_dsn, f"{content_url}/v1/content", JWT_SECRET)).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def cj_url(cj_server: ServerThread) -> str:
    return cj_server.url


def mint_token(secret: str = JWT_SECRET, *, algorithm: str = "HS256", **claims: Any) -> str:
    """An admin token like HuleEdu's dev minter; pass ``claim=None`` to leave a claim out."""
    now = int(time.time())
    payload: dict[str, Any] = {
        "sub": "reference-tests",
        "iat": now,
        "exp": now + 3600,
        "iss": ISSUER,
        "aud": AUDIENCE,
        "roles": ["admin"],
    }
    payload.update(claims)
    payload = {key: value for key, value in payload.items() if value is not None}
    return jwt.encode(payload, secret, algorithm=algorithm)


@pytest.fixture(scope="session")
def mint() -> Callable[..., str]:
    """``mint(secret=..., **claims)`` → a signed token (see :func:`mint_token`)."""
    return mint_token


@pytest.fixture
def admin_headers() -> dict[str, str]:
    return {"Authorization": f"Bearer {mint_token()}"}


@pytest.fixture(scope="session")
def db_rows(pg_dsn: str) -> Callable[..., list[asyncpg.Record]]:
    """``db_rows(sql, *args, script=False)`` → rows, read on a fresh connection.

    A fresh connection per call proves that what the services wrote was committed.
    """
    return lambda sql, *args, script=False: run_db(pg_dsn, sql, *args, script=script)


@pytest.fixture(scope="session")
def serve() -> Iterator[Callable[[Starlette], str]]:
    """``serve(app)`` → base URL of ``app`` running under uvicorn until the session ends."""
    servers: list[ServerThread] = []

    def start(app: Starlette) -> str:
        server = ServerThread(app).start()
        servers.append(server)
        return server.url

    try:
        yield start
    finally:
        for server in servers:
            server.stop()


@pytest.fixture(scope="session")
def jwt_secret() -> str:
    """The key the session's CJ API verifies admin tokens with."""
    return JWT_SECRET


# --------------------------------------------------------------------------- worker tests


@pytest.fixture(scope="module")
def infra(eng5_stack_factory: Any) -> Iterator[Infra]:
    stack = eng5_stack_factory(stack="embedded", kafka="tansu", services=False)
    started = start_infra(stack.infrastructure)
    try:
        yield started
    finally:
        stop_infra(started)


@pytest_asyncio.fixture
async def db(infra: Infra) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(infra.dsn)
    try:
        yield conn
    finally:
        await conn.close()


@pytest_asyncio.fixture
async def start_worker(infra: Infra) -> AsyncIterator[WorkerFactory]:
    """Start in-process workers (faults cleared first); all are stopped at the end."""
    workers: list[CJWorker] = []

    async def factory(**overrides: Any) -> CJWorker:
        settings = WorkerSettings(
            bootstrap_servers=infra.bootstrap,
            dsn=infra.dsn,
            content_url=infra.content_url,
            **overrides,
        )
        worker = CJWorker(settings)
        workers.append(worker)
        await worker.__aenter__()
        return worker

    await set_faults(infra.dsn, FaultConfig())
    try:
        yield factory
    finally:
        for worker in workers:
            await worker.__aexit__(None, None, None)
        await set_faults(infra.dsn, FaultConfig())
