"""A pytest session killed with SIGKILL mid-run leaves no process it started behind."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

HOLD_MODULE = """
import json, os, threading

def test_hold(eng5_stack):
    import psutil
    pids = list(eng5_stack.pids)
    for pid in list(pids):
        pids.extend(child.pid for child in psutil.Process(pid).children(recursive=True))
    with open("pids.json.tmp", "w") as handle:
        json.dump({"pids": pids, "session": os.getpid()}, handle)
    os.rename("pids.json.tmp", "pids.json")
    threading.Event().wait(120)
"""
START_DEADLINE_S = 240.0
GONE_DEADLINE_S = 30.0


def wait_for_file(path: Path, process: subprocess.Popen[bytes], deadline: float) -> dict:
    while not path.exists():
        if process.poll() is not None:
            output = (path.parent / "session.log").read_text()[-3000:]
            pytest.fail(f"the pytest session exited early with {process.returncode}:\n{output}")
        if time.monotonic() > deadline:
            pytest.fail(f"the pytest session wrote no {path.name} in time")
        time.sleep(0.2)  # polling for the child's file
    return json.loads(path.read_text())


def survivors(pids: list[int]) -> list[str]:
    alive = []
    for pid in pids:
        try:
            process = psutil.Process(pid)
            if process.status() != psutil.STATUS_ZOMBIE:
                alive.append(f"{pid} {' '.join(process.cmdline())[:80]}")
        except psutil.NoSuchProcess:
            continue
    return alive


@pytest.mark.parametrize(
    "kafka",
    [
        "tansu",
        pytest.param(
            "apache",
            marks=pytest.mark.skipif(
                shutil.which("java") is None or shutil.which("mvn") is None,
                reason="the Apache Kafka provider needs java and mvn",
            ),
        ),
    ],
)
@pytest.mark.timeout(600)
def test_sigkill_of_the_session_leaves_nothing_running(tmp_path: Path, kafka: str) -> None:
    (tmp_path / "test_hold.py").write_text(HOLD_MODULE)
    log = (tmp_path / "session.log").open("wb")
    session = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "no:cacheprovider",
            "-q",
            f"--eng5-kafka={kafka}",
            "--eng5-evidence-dir=evidence",
            "--timeout=200",
            "test_hold.py",
        ],
        cwd=tmp_path,
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
    )
    try:
        record = wait_for_file(tmp_path / "pids.json", session, time.monotonic() + START_DEADLINE_S)
        started = record["pids"]
        names = " ".join(psutil.Process(pid).name() for pid in started if psutil.pid_exists(pid))
        assert "postgres" in names, names
        assert "java" in names or "tansu" in names, names
        assert len(started) >= 5, "broker(s), postgres and three reference services"
        os.kill(session.pid, signal.SIGKILL)
        session.wait(10)
        deadline = time.monotonic() + GONE_DEADLINE_S
        while survivors(started) and time.monotonic() < deadline:
            time.sleep(0.2)  # polling: the watchdog stops them, they are not our children
        assert survivors(started) == []
    finally:
        if session.poll() is None:
            session.kill()
        log.close()
