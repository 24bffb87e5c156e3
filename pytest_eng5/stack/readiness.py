"""Waiting for a service: readiness polls raced against its death, and the start error.

A readiness check is sync or async and answers True when the service is ready. A service
that does not become ready raises :class:`StackStartError` with the last lines of its log.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import inspect
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

from pytest_eng5.errors import Eng5Error
from pytest_eng5.redact import redact

T = TypeVar("T")

LOG_TAIL_LINES = 20
DEFAULT_POLL_INTERVAL = 0.02

ReadinessCheck = Callable[[], bool | Awaitable[bool]]


class StackStartError(Eng5Error):
    """A stack service did not start or did not become ready; the message holds its log tail."""

    kind = "stack-start"


def run_coroutine(coro: Awaitable[T], timeout: float) -> T:
    """Run ``coro`` to completion from synchronous code, bounded by ``timeout`` seconds.

    Works whether or not the calling thread already runs an event loop (then a helper thread
    runs a fresh loop). Raises ``TimeoutError`` when the deadline passes.
    """

    async def bounded() -> T:
        return await asyncio.wait_for(coro, timeout)

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(bounded())
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, bounded()).result(timeout + 5.0)


def check_once(check: ReadinessCheck, timeout: float) -> bool:
    """Call a sync or async readiness check once, bounded by ``timeout``."""
    result = check()
    if inspect.isawaitable(result):
        return bool(run_coroutine(result, timeout))
    return bool(result)


def poll_until(
    check: ReadinessCheck,
    *,
    timeout: float,
    what: str,
    next_step: str,
    wait_or_died: Callable[[float], str | None] | None = None,
    poll_interval: float = DEFAULT_POLL_INTERVAL,
    log_path: Path | None = None,
    log_offset: int = 0,
) -> None:
    """Poll ``check`` until it returns True; raise :class:`StackStartError` at the deadline.

    ``wait_or_died(seconds)`` waits up to ``seconds`` for the service to die and returns a
    description of the death (or ``None`` while it lives); it replaces a plain sleep, so a
    crash is reported at once instead of at the deadline.
    """
    deadline = time.monotonic() + timeout
    last_problem = "the check never passed"
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise StackStartError(
                f"{what} was not ready within {timeout:.1f} s (last problem: {last_problem})"
                + log_tail_section(log_path, log_offset),
                next_step=next_step,
            )
        death = wait_or_died(0.0) if wait_or_died else None
        if death is None:
            try:
                if check_once(check, remaining):
                    death = wait_or_died(0.0) if wait_or_died else None
                    if death is None:
                        return
                else:
                    last_problem = "the check answered not ready"
            except TimeoutError:
                last_problem = "the check did not answer in time"
            except Exception as exc:
                last_problem = redact(f"{type(exc).__name__}: {exc}")
        if death is not None:
            raise StackStartError(
                f"{what} failed before it was ready: {death}"
                + log_tail_section(log_path, log_offset),
                next_step=next_step,
            )
        pause = min(poll_interval, max(deadline - time.monotonic(), 0.0))
        if wait_or_died is not None:
            death = wait_or_died(pause)
            if death is not None:
                raise StackStartError(
                    f"{what} failed before it was ready: {death}"
                    + log_tail_section(log_path, log_offset),
                    next_step=next_step,
                )
        else:
            time.sleep(pause)


def tail_log(path: Path | None, lines: int = LOG_TAIL_LINES, offset: int = 0) -> str:
    """The last ``lines`` lines of a log file from byte ``offset`` on, secrets redacted."""
    if path is None or not path.is_file():
        return ""
    with path.open("rb") as handle:
        handle.seek(offset)
        data = handle.read()
    text = data.decode("utf-8", errors="replace")
    return redact("\n".join(text.splitlines()[-lines:]))


def log_tail_section(path: Path | None, offset: int = 0) -> str:
    tail = tail_log(path, offset=offset)
    if path is None:
        return ""
    if not tail:
        return f"\n  log {path} is empty"
    indented = "\n".join(f"    {line}" for line in tail.splitlines())
    return f"\n  last lines of {path}:\n{indented}"
