"""The "HuleEdu HEAD" quirk mode of the reference CJ API (contract H.1-H.3), a fault knob.

With ``huleedu_head_quirks`` set in the CJ API's faults (``POST /_test/faults`` with service
``cj-api``), the API behaves as HuleEdu's does today instead of as the contract intends:

- every ``/admin/v1`` error (auth, not found, validation, Content Service) is HuleEdu's generic
  500 body (H.2);
- admin writes and anchor registrations answer as if they succeeded but are not persisted: the
  request runs in a transaction that is rolled back (H.1). The student-prompt upload commits,
  as it does in HuleEdu;
- every response datetime is an RFC 1123 HTTP-date (H.3).

Switched at run time, so scenarios on the shared session stack can exercise what the real
service does and clear it again.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from contextvars import ContextVar
from typing import Any, Final

from starlette.middleware.base import BaseHTTPMiddleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp

from pytest_eng5.reference.admin_auth import generic_500
from pytest_eng5.reference.db import Pool
from pytest_eng5.reference.faults import read_faults

ADMIN_PREFIX: Final = "/admin/v1"
ANCHOR_REGISTER_PATH: Final = "/api/v1/anchors/register"
#: writes HuleEdu HEAD does commit (H.1)
COMMITTED_WRITES: Final = frozenset({("POST", "/admin/v1/student-prompts")})

#: True while a request is handled in quirk mode (read by the date rendering)
quirks_active: ContextVar[bool] = ContextVar("huleedu_head_quirks", default=False)
#: the connection a quirk-mode write runs on (its transaction is rolled back)
uncommitted_connection: ContextVar[Any] = ContextVar("uncommitted_connection", default=None)


class UncommittedPool:
    """One connection inside a transaction, used where the routes expect the pool."""

    def __init__(self, connection: Any) -> None:
        self._connection = connection

    @asynccontextmanager
    async def acquire(self) -> AsyncIterator[Any]:
        yield self._connection  # a nested transaction() becomes a savepoint

    def __getattr__(self, name: str) -> Any:
        return getattr(self._connection, name)  # fetch, fetchrow, fetchval, execute


def pool_for_request(pool: Pool) -> Pool:
    """The pool a route should use: the uncommitted connection in a quirk-mode write."""
    connection = uncommitted_connection.get()
    return pool if connection is None else UncommittedPool(connection)  # type: ignore[return-value]


class HuleeduHeadQuirks(BaseHTTPMiddleware):
    """Applies the quirks to admin and anchor routes when the CJ API's fault knob asks."""

    def __init__(self, app: ASGIApp, *, pool: Callable[[], Pool | None]) -> None:
        super().__init__(app)
        self._pool = pool

    async def dispatch(
        self, request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        path = request.url.path
        pool = self._pool()
        if pool is None or not path.startswith((ADMIN_PREFIX, ANCHOR_REGISTER_PATH)):
            return await call_next(request)
        if not (await read_faults(pool, "cj-api")).huleedu_head_quirks:
            return await call_next(request)
        token = quirks_active.set(True)
        try:
            if request.method == "GET" or (request.method, path) in COMMITTED_WRITES:
                response = await call_next(request)
            else:
                response = await self._uncommitted(pool, request, call_next)
        finally:
            quirks_active.reset(token)
        if path.startswith(ADMIN_PREFIX) and response.status_code >= 400:
            return generic_500()
        return response

    @staticmethod
    async def _uncommitted(
        pool: Pool, request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        async with pool.acquire() as connection:
            transaction = connection.transaction()
            await transaction.start()
            token = uncommitted_connection.set(connection)
            try:
                # The handler has finished its database work once the response starts.
                return await call_next(request)
            finally:
                uncommitted_connection.reset(token)
                await transaction.rollback()
