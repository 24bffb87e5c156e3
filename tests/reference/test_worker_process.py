"""The reference CJ worker as a process: ``python -m pytest_eng5.reference cj-worker``."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

import asyncpg
import httpx
import pytest
from worker_support import (
    SMALL_TEXTS,
    Infra,
    build_request,
    for_batch,
    free_port,
    only,
    run_batch,
    seed_students,
    set_faults,
)

from pytest_eng5.contracts.events import AssessmentResultV1
from pytest_eng5.contracts.topics import CALLBACK_TOPIC, RESULT_TOPIC
from pytest_eng5.reference.faults import FaultConfig

# --------------------------------------------------------------------------- as a process


@pytest.mark.asyncio
async def test_worker_as_a_process(infra: Infra, db: asyncpg.Connection, tmp_path: Path) -> None:
    """``python -m pytest_eng5.reference cj-worker``: /healthz, one batch, clean SIGTERM."""
    await set_faults(infra.dsn, FaultConfig())
    port = free_port()
    log_path = tmp_path / "cj-worker.log"
    log = log_path.open("wb")
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "pytest_eng5.reference", "cj-worker",
        "--bootstrap", infra.bootstrap,
        "--dsn", infra.dsn,
        "--content-url", infra.content_url,
        "--health-port", str(port),
        "--judge", "coin_flip",
        "--max-pairwise-comparisons", "6",
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )  # fmt: skip
    try:
        async with httpx.AsyncClient() as client:
            deadline = asyncio.get_running_loop().time() + 60
            status = None
            while status != 200:
                assert process.returncode is None, log_path.read_text()
                assert asyncio.get_running_loop().time() < deadline, "worker never became healthy"
                try:
                    status = (await client.get(f"http://127.0.0.1:{port}/healthz")).status_code
                except httpx.TransportError:
                    status = None
                if status != 200:
                    await asyncio.sleep(0.1)
        essays = await seed_students(db, SMALL_TEXTS[:4])
        request = build_request(essays, assignment_id=None)
        batch_id = str(request.data.entity_id)
        tap = await run_batch(infra, request)
        callbacks = for_batch(tap.envelopes(CALLBACK_TOPIC), batch_id)
        assert len(callbacks) == 6  # --max-pairwise-comparisons caps the budget
        result = only(for_batch(tap.envelopes(RESULT_TOPIC), batch_id))
        assert result.data_as(AssessmentResultV1).batch_id == batch_id
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
        try:
            code = await asyncio.wait_for(process.wait(), 20)
        except TimeoutError:
            process.kill()
            await asyncio.wait_for(process.wait(), 10)
            raise
        finally:
            log.close()
    assert code == 0, log_path.read_text()
