"""The worker's wave timer against the worker lock (no infrastructure needed)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from pytest_eng5.reference import worker as worker_module
from pytest_eng5.reference.judge import CoinFlipJudge
from pytest_eng5.reference.worker import CJWorker, WorkerSettings

TIMEOUT_S = 0.05


@pytest.mark.asyncio
async def test_a_timeout_that_waited_for_the_lock_spares_a_rearmed_wave(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    timed_out: list[int] = []

    async def time_out(pool: Any, cj_batch_id: int, **kwargs: Any) -> int:
        timed_out.append(cj_batch_id)
        return 0

    monkeypatch.setattr(worker_module, "time_out_and_count", time_out)
    settings = WorkerSettings(
        "127.0.0.1:1", "postgresql://x", "http://x", callback_timeout_s=TIMEOUT_S
    )
    worker = CJWorker(settings, judge=CoinFlipJudge())
    handler_spawned = asyncio.Event()
    spawn_handler = worker._runtimes._spawn_timeout

    def spawn_and_signal(cj_batch_id: int) -> None:
        spawn_handler(cj_batch_id)
        handler_spawned.set()

    monkeypatch.setattr(worker._runtimes, "_spawn_timeout", spawn_and_signal)
    worker._pool = object()  # type: ignore[assignment]  # never used: the store call is replaced
    try:
        async with worker._lock:  # the worker is busy with a message
            worker._runtimes.arm(7)
            async with asyncio.timeout(5):  # the timer fires: its handler now waits for the lock
                await handler_spawned.wait()
            stale_handlers = set(worker._runtimes.get(7).timeout_tasks)
            worker._runtimes.arm(7)  # the message was a callback of that wave: timer re-armed
        async with asyncio.timeout(5):  # the stale handler gets the lock and runs to its end
            await asyncio.gather(*stale_handlers)
        assert timed_out == [], "a wave that just got a callback must not be timed out"

        # now the wave really is idle: wait for its timeout to be recorded
        deadline = asyncio.get_running_loop().time() + 5
        while not timed_out:
            assert asyncio.get_running_loop().time() < deadline, "the idle wave never timed out"
            await asyncio.sleep(TIMEOUT_S / 5)  # polling the recorded timeouts
        assert timed_out == [7]
    finally:
        worker._runtimes.cancel_all()
