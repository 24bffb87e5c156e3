"""The cleanup registry: every service the stack started, until it is stopped.

An ``atexit`` handler stops whatever is still registered. A SIGKILL of the Python process
cannot be caught: then the watchdog process (:mod:`pytest_eng5.stack.watchdog`) kills every
registered service's process.
"""

from __future__ import annotations

import atexit
import contextlib
import threading
from typing import Protocol

from pytest_eng5.stack.watchdog import WATCHDOG


class ServiceHandle(Protocol):
    """Something the stack started and must stop (a process, a server, a container)."""

    @property
    def name(self) -> str: ...

    @property
    def pid(self) -> int | None: ...

    def is_running(self) -> bool:
        """False once any process of the service has exited (or it was stopped)."""
        ...

    def stop(self, timeout: float = 10.0) -> None: ...


_registry_lock = threading.Lock()
_registry: dict[int, ServiceHandle] = {}
_watched_pids: dict[int, int] = {}


def register_for_cleanup(handle: ServiceHandle) -> None:
    """Stop ``handle`` at interpreter exit unless it was stopped before; and have the
    watchdog kill its process if this process dies first (SIGKILL included)."""
    pid = handle.pid
    with _registry_lock:
        _registry[id(handle)] = handle
        if pid is not None:
            _watched_pids[id(handle)] = pid
    if pid is not None:
        WATCHDOG.watch(pid)


def unregister_for_cleanup(handle: ServiceHandle) -> None:
    with _registry_lock:
        _registry.pop(id(handle), None)
        pid = _watched_pids.pop(id(handle), None)
    if pid is not None:
        WATCHDOG.forget(pid)


def registered_handles() -> list[ServiceHandle]:
    with _registry_lock:
        return list(_registry.values())


def stop_all_registered(timeout: float = 5.0) -> None:
    """Stop every handle still registered, newest first; never raises."""
    for handle in reversed(registered_handles()):
        with contextlib.suppress(Exception):
            handle.stop(timeout)
        unregister_for_cleanup(handle)


atexit.register(stop_all_registered)
