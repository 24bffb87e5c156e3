"""Children die with the session: a watchdog process kills what the session started.

A SIGKILL of the session process runs no ``finally``, no ``atexit``, no signal handler, and
every service runs in its own session (so a terminal's Ctrl-C reaches only pytest), so
nothing would stop them. ``PR_SET_PDEATHSIG`` is no answer on its own: it fires when the
*thread* that forked the child exits (services start from helper threads), and the
PostgreSQL postmaster is not our child at all (``pg_ctl`` daemonises it).

So the first registered service starts this file as a small stdlib-only process (run by
path, it imports nothing of the package) in its own session. The session tells it, one line
per event on its stdin, which pids it started (``+ <pid> <start time>``) and which it stopped
(``- <pid>``). When its stdin reaches end of file (the session exited, by any means) or its
parent changes, the watchdog sends SIGTERM to the process group (else the process) of every
pid still alive with the recorded start time, SIGKILL after a grace period, and exits.
"""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import IO

GRACE_SECONDS = 3.0
_PARENT_CHECK_INTERVAL = 0.5


def process_start_time(pid: int) -> str | None:
    """The kernel's start time of ``pid`` (``/proc/<pid>/stat`` field 22), None if gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rfind(")") + 2 :].split()
    return fields[19] if len(fields) > 19 else None


def _alive(pid: int, start_time: str) -> bool:
    return process_start_time(pid) == start_time and not _is_zombie(pid)


def _is_zombie(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat[stat.rfind(")") + 2 :].startswith("Z")


def _signal(pid: int, signum: int) -> None:
    try:
        if os.getpgid(pid) == pid:
            os.killpg(pid, signum)
        else:
            os.kill(pid, signum)
    except (ProcessLookupError, PermissionError):
        pass


def kill_all(watched: dict[int, str], grace: float = GRACE_SECONDS) -> None:
    """SIGTERM every watched process still alive, SIGKILL what is left after ``grace``."""
    for pid, start_time in watched.items():
        if _alive(pid, start_time):
            _signal(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        if not any(_alive(pid, start) for pid, start in watched.items()):
            return
        time.sleep(0.05)  # polling the processes' exit; they are not our children
    for pid, start_time in watched.items():
        if _alive(pid, start_time):
            _signal(pid, signal.SIGKILL)


def watch(stream: IO[str], parent: int) -> dict[int, str]:
    """Read ``+``/``-`` lines until end of file or until ``parent`` is no longer our parent."""
    watched: dict[int, str] = {}
    buffer = ""
    fd = stream.fileno()
    while os.getppid() == parent:
        ready, _, _ = select.select([fd], [], [], _PARENT_CHECK_INTERVAL)
        if not ready:
            continue
        chunk = os.read(fd, 65536).decode()
        if not chunk:
            break
        buffer += chunk
        *lines, buffer = buffer.split("\n")
        for line in lines:
            parts = line.split()
            if len(parts) == 3 and parts[0] == "+":
                watched[int(parts[1])] = parts[2]
            elif len(parts) == 2 and parts[0] == "-":
                watched.pop(int(parts[1]), None)
    return watched


def main() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a Ctrl-C is for the session, not for us
    kill_all(watch(sys.stdin, int(sys.argv[1])))


# --- the session's side ----------------------------------------------------------------------


class Watchdog:
    """The session's link to its watchdog process (started on first use, one per process)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._process: subprocess.Popen[str] | None = None
        self._owner = 0

    def _ensure_started(self) -> subprocess.Popen[str] | None:
        if self._process is not None and self._owner == os.getpid():
            return self._process
        try:
            self._process = subprocess.Popen(
                [sys.executable, "-I", str(Path(__file__).resolve()), str(os.getpid())],
                stdin=subprocess.PIPE,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                text=True,
                start_new_session=True,
            )
        except OSError:
            self._process = None  # no watchdog: cleanup falls back to atexit and stop()
            return None
        self._owner = os.getpid()
        return self._process

    def _send(self, line: str) -> None:
        with self._lock:
            process = self._ensure_started()
            if process is None or process.stdin is None:
                return
            try:
                process.stdin.write(line + "\n")
                process.stdin.flush()
            except (BrokenPipeError, ValueError):
                self._process = None

    def watch(self, pid: int) -> None:
        """Kill ``pid`` (and its process group) if this process dies before :meth:`forget`."""
        start_time = process_start_time(pid)
        if start_time is not None:
            self._send(f"+ {pid} {start_time}")

    def forget(self, pid: int) -> None:
        if self._process is not None and self._owner == os.getpid():
            self._send(f"- {pid}")

    @property
    def pid(self) -> int | None:
        """The watchdog process's pid (for tests), or None before the first watched pid."""
        return self._process.pid if self._process is not None else None


WATCHDOG = Watchdog()


if __name__ == "__main__":
    main()
