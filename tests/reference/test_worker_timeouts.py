"""The wave timer against the lock every batch step runs under (no infrastructure needed)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from pytest_eng5.reference import batch_flow as flow_module
from pytest_eng5.reference.batch_flow import BatchFlow
from pytest_eng5.reference.judge import CoinFlipJudge
from pytest_eng5.reference.worker_settings import WorkerSettings

TIMEOUT_S = 0.05


@pytest.mark.asyncio
async def test_a_timeout_that_waited_for_the_lock_spares_a_rearmed_wave(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    timed_out: list[int] = []

    async def time_out(pool: Any, cj_batch_id: int, **kwargs: Any) -> int:
        timed_out.append(cj_batch_id)
        return 0

    monkeypatch.setattr(flow_module, "time_out_and_count", time_out)
    settings = WorkerSettings(
        "127.0.0.1:1", "postgresql://x", "http://x", callback_timeout_s=TIMEOUT_S
    )
    # pool, producer and HTTP client are never used: the store call is replaced
    flow = BatchFlow(object(), None, None, CoinFlipJudge(), settings)  # type: ignore[arg-type]
    handler_spawned = asyncio.Event()
    spawn_handler = flow.runtimes._spawn_timeout

    def spawn_and_signal(cj_batch_id: int) -> None:
        spawn_handler(cj_batch_id)
        handler_spawned.set()

    monkeypatch.setattr(flow.runtimes, "_spawn_timeout", spawn_and_signal)
    try:
        async with flow.lock:  # the worker is busy with a message
            flow.runtimes.arm(7)
            async with asyncio.timeout(5):  # the timer fires: its handler now waits for the lock
                await handler_spawned.wait()
            stale_handlers = set(flow.runtimes.get(7).timeout_tasks)
            flow.runtimes.arm(7)  # the message was a callback of that wave: timer re-armed
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
        flow.runtimes.cancel_all()
