"""Process-wide side effects of the stack are scoped: SIGTERM handler, child subreaper."""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pytest_eng5.stack import watchdog
from pytest_eng5.stack.process_scope import (
    acquire_sigterm_interrupt,
    adopting_orphans,
    release_sigterm_interrupt,
)


def subreaper_flag() -> int:
    flag = ctypes.c_int(0)
    ctypes.CDLL(None).prctl(37, ctypes.byref(flag), 0, 0, 0)
    return flag.value


def test_sigterm_handler_is_installed_only_while_a_stack_runs() -> None:
    before = signal.getsignal(signal.SIGTERM)  # default, or ours if a session stack runs
    first, second = acquire_sigterm_interrupt(), acquire_sigterm_interrupt()
    assert first
    assert second
    assert signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL
    release_sigterm_interrupt(first)
    assert signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL, "one stack still runs"
    release_sigterm_interrupt(second)
    assert signal.getsignal(signal.SIGTERM) is before


def test_a_foreign_sigterm_handler_is_left_alone() -> None:
    def own(signum: int, frame: object) -> None: ...

    previous = signal.signal(signal.SIGTERM, own)  # e.g. an application's own handler
    try:
        acquired = acquire_sigterm_interrupt()
        assert not acquired
        assert signal.getsignal(signal.SIGTERM) is own
        release_sigterm_interrupt(acquired)
        assert signal.getsignal(signal.SIGTERM) is own
    finally:
        signal.signal(signal.SIGTERM, previous)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="prctl is Linux only")
def test_the_subreaper_flag_is_set_only_inside_the_block() -> None:
    assert subreaper_flag() == 0
    with adopting_orphans() as adopted:
        assert adopted
        assert subreaper_flag() == 1
        with adopting_orphans():
            assert subreaper_flag() == 1
        assert subreaper_flag() == 1, "the outer block still adopts"
    assert subreaper_flag() == 0


def test_the_watchdog_kills_watched_processes_when_its_stdin_closes(tmp_path: Path) -> None:
    victim = subprocess.Popen(["sleep", "60"], start_new_session=True)
    spared = subprocess.Popen(["sleep", "60"], start_new_session=True)
    dog = subprocess.Popen(
        [sys.executable, "-I", watchdog.__file__, str(os.getpid())],
        stdin=subprocess.PIPE,
        text=True,
    )
    try:
        assert dog.stdin is not None
        for pid in (victim.pid, spared.pid):
            dog.stdin.write(f"+ {pid} {watchdog.process_start_time(pid)}\n")
        dog.stdin.write(f"- {spared.pid}\n")
        dog.stdin.close()  # as when the session dies
        assert victim.wait(10) == -signal.SIGTERM
        dog.wait(10)
        assert spared.poll() is None, "a forgotten pid is not killed"
    finally:
        for process in (victim, spared, dog):
            if process.poll() is None:
                process.kill()
                process.wait(5)


def test_a_reused_pid_is_not_killed() -> None:
    other = subprocess.Popen(["sleep", "60"], start_new_session=True)
    try:
        start = time.monotonic()
        watchdog.kill_all({other.pid: "1"}, grace=0.2)  # another start time: another process
        assert other.poll() is None
        assert time.monotonic() - start < 5
    finally:
        other.kill()
        other.wait(5)
