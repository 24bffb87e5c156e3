"""ManagedProcess: log file, readiness raced against death, deadline, group stop."""

from __future__ import annotations

import asyncio
import errno
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from stack_checks import dead_within, pid_alive

import pytest_eng5.stack.process as process_module
from pytest_eng5.stack.cleanup import registered_handles
from pytest_eng5.stack.process import ManagedProcess
from pytest_eng5.stack.readiness import StackStartError, run_coroutine

PY = sys.executable


def python(code: str) -> list[str]:
    return [PY, "-c", code]


def test_readiness_that_never_passes_fails_at_the_deadline(tmp_path: Path) -> None:
    sleeper = ManagedProcess(
        "sleeper", python("import time; print('sleeping', flush=True); time.sleep(60)"), tmp_path
    )
    try:
        # first the child's own signal that it runs (under load Python starts in over 0.3 s)
        log = tmp_path / "sleeper.log"
        sleeper.wait_ready(lambda: "sleeping" in log.read_text(), timeout=60)
        with pytest.raises(StackStartError, match=r"was not ready within 0\.3 s") as info:
            sleeper.wait_ready(lambda: False, timeout=0.3)
        assert sleeper.is_running()
        assert "sleeping" in info.value.message  # the log tail is in the message
        assert str(tmp_path / "sleeper.log") in info.value.next_step
    finally:
        sleeper.stop()
    assert not pid_alive(sleeper.pid)


def test_a_process_that_dies_is_reported_at_once_with_its_log(tmp_path: Path) -> None:
    crasher = ManagedProcess(
        "crasher", python("import sys; print('boom: no config'); sys.exit(3)"), tmp_path
    )
    try:
        with pytest.raises(StackStartError, match="exited with code 3") as info:
            # The deadline is far away: the error must come from the death, not the deadline.
            crasher.wait_ready(lambda: False, timeout=30.0)
        assert "boom: no config" in info.value.message
        assert "not ready within" not in info.value.message
    finally:
        crasher.stop()


def test_async_readiness_check_on_a_real_signal(tmp_path: Path) -> None:
    marker = tmp_path / "ready.flag"
    worker = ManagedProcess(
        "writer",
        python(
            "import pathlib, sys, time; time.sleep(0.2); "
            f"pathlib.Path({str(marker)!r}).write_text('up'); time.sleep(60)"
        ),
        tmp_path,
    )

    async def marker_exists() -> bool:
        await asyncio.sleep(0)
        return marker.is_file() and marker.read_text() == "up"

    try:
        worker.wait_ready(marker_exists, timeout=10.0)
        assert marker.read_text() == "up"
    finally:
        worker.stop()


def test_stop_kills_the_whole_group_and_is_idempotent(tmp_path: Path) -> None:
    child_pid_file = tmp_path / "child.pid"
    # The parent ignores SIGTERM and has a child: stop must escalate to SIGKILL for both.
    parent = ManagedProcess(
        "parent",
        python(
            "import signal, subprocess, sys, pathlib, time; "
            "signal.signal(signal.SIGTERM, signal.SIG_IGN); "
            f"c = subprocess.Popen([{PY!r}, '-c', 'import time; time.sleep(60)']); "
            f"pathlib.Path({str(child_pid_file)!r}).write_text(str(c.pid)); time.sleep(60)"
        ),
        tmp_path,
    )
    parent.wait_ready(
        lambda: child_pid_file.is_file() and child_pid_file.read_text().isdigit(), timeout=10.0
    )
    child_pid = int(child_pid_file.read_text())
    assert pid_alive(child_pid)
    assert parent in registered_handles()
    parent.stop(timeout=0.5)
    parent.stop(timeout=0.5)
    assert parent not in registered_handles()
    assert not pid_alive(parent.pid)
    assert dead_within(child_pid)


def test_log_goes_to_name_dot_log_in_the_log_dir(tmp_path: Path) -> None:
    with ManagedProcess(
        "talker",
        python("print('hello out'); import sys; print('hello err', file=sys.stderr)"),
        tmp_path,
    ) as talker:
        talker.wait_for_exit(10.0)
    text = (tmp_path / "talker.log").read_text()
    assert "hello out" in text
    assert "hello err" in text


def test_missing_executable_is_a_stack_start_error(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-binary"
    with pytest.raises(StackStartError, match="could not start ghost") as info:
        ManagedProcess("ghost", [str(missing)], tmp_path)
    assert str(missing) in info.value.next_step


@pytest.mark.asyncio
async def test_run_coroutine_works_inside_a_running_loop() -> None:
    async def answer() -> int:
        await asyncio.sleep(0)
        return 42

    assert run_coroutine(answer(), 5.0) == 42
    with pytest.raises(TimeoutError):
        run_coroutine(asyncio.sleep(5), 0.05)


def test_a_text_file_busy_executable_is_retried_until_it_can_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_popen = subprocess.Popen
    attempts: list[int] = []

    def busy_twice(*args: Any, **kwargs: Any) -> subprocess.Popen[bytes]:
        attempts.append(1)
        if len(attempts) <= 2:
            raise OSError(errno.ETXTBSY, "Text file busy")
        return real_popen(*args, **kwargs)

    monkeypatch.setattr(process_module.subprocess, "Popen", busy_twice)
    process = ManagedProcess("busy", python("print('ran', flush=True)"), tmp_path)
    try:
        assert process.wait_for_exit(10) is not None
        assert len(attempts) == 3
        assert "ran" in process.log_tail()
    finally:
        process.stop()


def test_other_spawn_errors_are_not_retried(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    attempts: list[int] = []

    def denied(*args: Any, **kwargs: Any) -> subprocess.Popen[bytes]:
        attempts.append(1)
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(process_module.subprocess, "Popen", denied)
    with pytest.raises(StackStartError, match="Permission denied"):
        ManagedProcess("denied", python("pass"), tmp_path)
    assert len(attempts) == 1
