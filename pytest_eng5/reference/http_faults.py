"""ASGI middleware that injects the HTTP faults of a reference service (latency, then 5xx).

The faults live in PostgreSQL (``reference_faults``) and are read on every matching request, so
a test that sets faults and calls at once sees them. ``http_5xx_count`` is decremented in the
database in the same statement that decides to fail, so "fail the next N" is exact even with
concurrent requests or several processes. ``http_pass_first`` lets that many requests
through before the 5xx faults start, for failures part-way through a series of uploads.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable

from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from pytest_eng5.core.names import FaultService
from pytest_eng5.reference.db import Pool
from pytest_eng5.reference.faults import FaultConfig, read_faults

logger = logging.getLogger(__name__)

EXEMPT_PREFIXES = ("/healthz", "/_test/")

_TAKE_ONE_5XX = """
UPDATE reference_faults
   SET config = jsonb_set(config, '{http_5xx_count}',
                          to_jsonb((config->>'http_5xx_count')::int - 1)),
       updated_at = now()
 WHERE service = $1 AND (config->>'http_5xx_count')::int > 0
RETURNING (config->>'http_5xx_count')::int
"""


_TAKE_ONE_PASS = _TAKE_ONE_5XX.replace("http_5xx_count", "http_pass_first")


LATENCY_HEADER = b"x-eng5-injected-latency-ms"


def _with_header(send: Send, name: bytes, value: str) -> Send:
    """``send`` that adds one response header (tells a client which fault it met)."""

    async def sending(message: Message) -> None:
        if message["type"] == "http.response.start":
            message = {**message, "headers": [*message.get("headers", []), (name, value.encode())]}
        await send(message)

    return sending


def is_exempt(path: str) -> bool:
    """Health and test-only routes never get faults (the harness needs them to work)."""
    return path == "/healthz" or any(path.startswith(prefix) for prefix in EXEMPT_PREFIXES)


class HttpFaultMiddleware:
    """Apply ``service``'s FaultConfig to HTTP requests whose path matches its prefix.

    ``pool`` returns the service's pool, or ``None`` before start-up (then nothing is injected);
    ``error_response`` builds the service's normal 500 response for a path.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        service: FaultService,
        pool: Callable[[], Pool | None],
        error_response: Callable[[str], Response],
    ) -> None:
        self.app = app
        self.service: FaultService = service
        self._pool = pool
        self._error_response = error_response
        self._rng_seed: int | None = None
        self._rng = random.Random()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or is_exempt(scope["path"]):
            await self.app(scope, receive, send)
            return
        pool = self._pool()
        if pool is None:
            await self.app(scope, receive, send)
            return
        faults = await read_faults(pool, self.service)
        path: str = scope["path"]
        if not path.startswith(faults.http_path_prefix):
            await self.app(scope, receive, send)
            return
        if faults.http_latency_ms > 0:
            await asyncio.sleep(faults.http_latency_ms / 1000)  # the injected fault itself
            send = _with_header(send, LATENCY_HEADER, str(faults.http_latency_ms))
        if await self._should_fail(pool, faults):
            logger.info("fault injection: answering 500 for %s %s", scope["method"], path)
            await self._error_response(path)(scope, receive, send)
            return
        await self.app(scope, receive, send)

    async def _should_fail(self, pool: Pool, faults: FaultConfig) -> bool:
        if faults.http_pass_first > 0:
            # "mid-way" failures: the first N go through (counted down atomically like 5xx)
            passed = await pool.fetchval(_TAKE_ONE_PASS, self.service)
            if passed is not None:
                return False
        if faults.http_5xx_count > 0:
            remaining = await pool.fetchval(_TAKE_ONE_5XX, self.service)
            if remaining is not None:
                return True
        if faults.http_5xx_rate > 0.0:
            if self._rng_seed != faults.seed:
                self._rng_seed = faults.seed
                self._rng = random.Random(faults.seed)
            return self._rng.random() < faults.http_5xx_rate
        return False
