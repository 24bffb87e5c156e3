"""``python -m pytest_eng5.stack``: a faithful stack a user can point any client at."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import httpx


def test_stack_cli_seeds_prints_facts_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    child = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "pytest_eng5.stack",
            "--seed",
            "--json",
            "--evidence-dir",
            str(tmp_path),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        line = child.stdout.readline()  # blocks until the stack is up (bounded by the finally)
        facts = json.loads(line)
        assert set(facts) == {
            "kafka_bootstrap",
            "content_url",
            "cj_url",
            "postgres_dsn",
            "jwt_secret",
            "assignment_id",
        }
        summary = httpx.get(
            f"{facts['cj_url']}/admin/v1/anchors/assignment/{facts['assignment_id']}", timeout=5
        )
        assert summary.status_code == 401, "admin routes need the token"
        assert httpx.get(f"{facts['cj_url']}/healthz", timeout=5).status_code == 200
        child.send_signal(signal.SIGINT)
        assert child.wait(timeout=60) == 0
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    logs = {p.name for p in (tmp_path / "stack-logs").rglob("*.log")}
    assert {"tansu.log", "cj-worker.log", "cj-api.log", "content-service.log"} <= logs
