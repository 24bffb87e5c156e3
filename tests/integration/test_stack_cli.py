"""``python -m pytest_eng5.stack``: a faithful stack a user can point any client at."""

from __future__ import annotations

from pathlib import Path

import httpx


def test_stack_cli_seeds_and_prints_the_facts(stack_cli: dict[str, str]) -> None:
    assert set(stack_cli) == {
        "kafka_bootstrap",
        "content_url",
        "cj_url",
        "postgres_dsn",
        "jwt_secret",
        "assignment_id",
        "evidence_dir",
    }
    summary = httpx.get(
        f"{stack_cli['cj_url']}/admin/v1/anchors/assignment/{stack_cli['assignment_id']}",
        timeout=5,
    )
    assert summary.status_code == 401, "admin routes need the token"
    assert httpx.get(f"{stack_cli['cj_url']}/healthz", timeout=5).status_code == 200
    logs = {p.name for p in (Path(stack_cli["evidence_dir"]) / "stack-logs").rglob("*.log")}
    assert {"tansu.log", "cj-worker.log", "cj-api.log", "content-service.log"} <= logs
