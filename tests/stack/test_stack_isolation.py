"""One stack per xdist worker: concurrent stacks in separate processes, cleanup on SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

from stack_checks import pid_alive

CHILD = Path(__file__).with_name("stack_child.py")
CHILD_TIMEOUT = 120


def spawn(mode: str, base: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, str(CHILD), mode, str(base)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_two_stacks_in_two_processes_both_work(tmp_path: Path) -> None:
    children = [spawn("roundtrip", tmp_path / f"gw{i}") for i in range(2)]
    reports = []
    for child in children:
        out, err = child.communicate(timeout=CHILD_TIMEOUT)
        assert child.returncode == 0, err[-3000:]
        reports.append(json.loads(out.strip().splitlines()[-1]))
    assert all(report["messages"] == 3 and report["rows"] == 3 for report in reports)
    assert reports[0]["bootstrap"] != reports[1]["bootstrap"]
    assert reports[0]["dsn"] != reports[1]["dsn"]
    pids = [pid for report in reports for pid in report["pids"]]
    assert [pid for pid in pids if pid_alive(pid)] == []


def test_sigterm_stops_everything_the_session_started(tmp_path: Path) -> None:
    child = spawn("hold", tmp_path)
    try:
        assert child.stdout is not None
        line = child.stdout.readline()  # bounded: the child's own start timeout is 30 s
        report = json.loads(line)
        pids = report["pids"]
        assert len(pids) == 3  # broker, its protocol adapter, PostgreSQL
        assert all(pid_alive(pid) for pid in pids)
        os.kill(child.pid, signal.SIGTERM)
        child.wait(timeout=CHILD_TIMEOUT)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait(timeout=10)
    assert child.returncode != 0  # interrupted, not a clean finish
    assert [pid for pid in pids if pid_alive(pid)] == []
    assert (tmp_path / "logs" / "postgres.log").is_file()  # log kept after the stop
