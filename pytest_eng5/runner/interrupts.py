"""SIGTERM handled like Ctrl-C while a run is in progress (scoped: the previous handler is put
back afterwards), so a terminated run is recorded as interrupted instead of vanishing."""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType


def _as_sigint(signum: int, frame: FrameType | None) -> None:
    # asyncio.run turns SIGINT into a cancellation of the running task: the same path Ctrl-C
    # takes, so the run's finaliser records it.
    signal.raise_signal(signal.SIGINT)


@contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """Within the block SIGTERM acts as SIGINT (main thread only; elsewhere a no-op)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _as_sigint)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
