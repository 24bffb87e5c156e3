"""Process-wide state a running stack borrows: SIGTERM as Ctrl-C, and adopting orphans.

:func:`acquire_sigterm_interrupt` turns SIGTERM into ``KeyboardInterrupt`` while a stack runs,
so ``finally`` blocks and context managers run as they do on Ctrl-C.
:func:`adopting_orphans` makes this process the reaper of the daemons it starts (postgres).
"""

from __future__ import annotations

import contextlib
import ctypes
import signal
import sys
import threading
from collections.abc import Iterator
from types import FrameType


def _sigterm_to_keyboard_interrupt(signum: int, frame: FrameType | None) -> None:
    # Restore the default first, so a second SIGTERM ends the process at once.
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    raise KeyboardInterrupt(f"received signal {signum} (SIGTERM)")


_scope_lock = threading.Lock()
_sigterm_users = 0


def acquire_sigterm_interrupt() -> bool:
    """While a stack runs, make SIGTERM behave like Ctrl-C (cleanup runs).

    Only from the main thread and only over the default handler, so an application or test
    runner that handles SIGTERM itself keeps its own handler. True when this call counts;
    pass that to :func:`release_sigterm_interrupt`, which restores the default handler when
    the last stack stops.
    """
    global _sigterm_users
    if threading.current_thread() is not threading.main_thread():
        return False
    with _scope_lock:
        current = signal.getsignal(signal.SIGTERM)
        if current is not _sigterm_to_keyboard_interrupt:
            if current is not signal.SIG_DFL:
                return False
            signal.signal(signal.SIGTERM, _sigterm_to_keyboard_interrupt)
        _sigterm_users += 1
        return True


def release_sigterm_interrupt(acquired: bool) -> None:
    """Undo one :func:`acquire_sigterm_interrupt` that returned True."""
    global _sigterm_users
    if not acquired:
        return
    with _scope_lock:
        _sigterm_users = max(_sigterm_users - 1, 0)
        ours = signal.getsignal(signal.SIGTERM) is _sigterm_to_keyboard_interrupt
        if _sigterm_users == 0 and ours and threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, signal.SIG_DFL)


_PR_SET_CHILD_SUBREAPER = 36
_PR_GET_CHILD_SUBREAPER = 37
_adopters = 0
_subreaper_before = 0


def _prctl(option: int, value: int) -> bool:
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return bool(libc.prctl(option, value, 0, 0, 0) == 0)
    except (OSError, AttributeError):
        return False


def _subreaper_state() -> int:
    flag = ctypes.c_int(0)
    if not sys.platform.startswith("linux"):
        return 0
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_GET_CHILD_SUBREAPER, ctypes.byref(flag), 0, 0, 0)
    except (OSError, AttributeError):
        return 0
    return flag.value


@contextlib.contextmanager
def adopting_orphans() -> Iterator[bool]:
    """Within the block, this process adopts its orphaned descendants (Linux, best effort).

    ``pg_ctl`` daemonises the postmaster; started inside this block, the postmaster becomes
    our child when ``pg_ctl`` exits, so a stop reaps it at once (instead of a zombie until
    init collects it, about a second per stop). After the block the process-wide flag is
    back to what it was; the adopted postmaster stays our child.
    """
    global _adopters, _subreaper_before
    with _scope_lock:
        if _adopters == 0:
            _subreaper_before = _subreaper_state()
        _adopters += 1
        adopted = _prctl(_PR_SET_CHILD_SUBREAPER, 1)
    try:
        yield adopted
    finally:
        with _scope_lock:
            _adopters -= 1
            if _adopters == 0 and not _subreaper_before:
                _prctl(_PR_SET_CHILD_SUBREAPER, 0)
