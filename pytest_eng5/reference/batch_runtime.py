"""In-memory state of the batches a CJ worker is running: intake faults and the wave timer."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

from pytest_eng5.reference.faults import FaultConfig

TimeoutHandler = Callable[[int], Coroutine[Any, Any, None]]


@dataclass
class BatchRuntime:
    """The faults read at intake and the wave timer of one batch."""

    faults: FaultConfig
    timer: asyncio.TimerHandle | None = None
    timeout_tasks: set[asyncio.Task[None]] = field(default_factory=set)


class BatchRuntimes:
    """Per-batch runtimes; :meth:`arm` (re)starts a wave timer that calls ``on_timeout``."""

    def __init__(self, timeout_s: float, on_timeout: TimeoutHandler) -> None:
        self._timeout_s = timeout_s
        self._on_timeout = on_timeout
        self._batches: dict[int, BatchRuntime] = {}

    def register(self, cj_batch_id: int, faults: FaultConfig) -> None:
        """Start tracking a new batch with the faults read at its intake."""
        self._batches[cj_batch_id] = BatchRuntime(faults=faults)

    def get(self, cj_batch_id: int) -> BatchRuntime:
        """The batch's runtime, created with no faults if unknown (e.g. after a restart)."""
        runtime = self._batches.get(cj_batch_id)
        if runtime is None:
            runtime = self._batches[cj_batch_id] = BatchRuntime(faults=FaultConfig())
        return runtime

    def forget(self, cj_batch_id: int) -> None:
        """Drop a finished batch."""
        self._batches.pop(cj_batch_id, None)

    def arm(self, cj_batch_id: int) -> None:
        """(Re)start the wave timer: ``on_timeout`` runs after ``timeout_s`` of silence."""
        runtime = self.get(cj_batch_id)
        if runtime.timer is not None:
            runtime.timer.cancel()
        loop = asyncio.get_running_loop()
        runtime.timer = loop.call_later(self._timeout_s, self._spawn_timeout, cj_batch_id)

    def disarm(self, cj_batch_id: int) -> None:
        """Cancel the batch's wave timer, if any."""
        runtime = self._batches.get(cj_batch_id)
        if runtime is not None and runtime.timer is not None:
            runtime.timer.cancel()
            runtime.timer = None

    def is_armed(self, cj_batch_id: int) -> bool:
        """True while a wave timer is pending (a fired timer is no longer armed)."""
        runtime = self._batches.get(cj_batch_id)
        return runtime is not None and runtime.timer is not None

    def cancel_all(self) -> None:
        """Cancel every timer and every timeout handler still running."""
        for runtime in self._batches.values():
            if runtime.timer is not None:
                runtime.timer.cancel()
            for task in runtime.timeout_tasks:
                task.cancel()

    def _spawn_timeout(self, cj_batch_id: int) -> None:
        runtime = self.get(cj_batch_id)
        runtime.timer = None
        task = asyncio.create_task(self._on_timeout(cj_batch_id))
        runtime.timeout_tasks.add(task)
        task.add_done_callback(runtime.timeout_tasks.discard)
