"""Benchmark the reference CJ worker on the embedded stack (not a test).

``python bench/bench_reference_batch.py --runs 5``

Starts the embedded stack (Tansu, PostgreSQL) and the reference Content Service through
``tests/reference/worker_support.py``, seeds the shipped sample set (24 students, 12 anchors,
legacy 9-step scale) and runs the in-process worker with the text_features judge and the default
budget of 120. Each run publishes a fresh request (new essay ids, same assignment) and measures
the time from publishing until the thin completion event and until the rich result event are
read back from Kafka. Target: publish → completion ≤ 3 s.
"""

from __future__ import annotations

import argparse
import asyncio
import platform
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

import asyncpg

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "reference"))

from worker_support import (
    EventTap,
    Infra,
    build_request,
    for_batch,
    load_sample_set,
    publish,
    seed_assignment,
    seed_students,
    start_infra,
    stop_infra,
)

from pytest_eng5.contracts.topics import COMPLETED_TOPIC, RESULT_TOPIC
from pytest_eng5.reference.worker import CJWorker
from pytest_eng5.reference.worker_settings import WorkerSettings
from pytest_eng5.stack.config import StackConfig
from pytest_eng5.stack.infra import start_infrastructure

TARGET_S = 3.0
TIMEOUT_S = 60.0


async def _one_run(
    infra: Infra, db: asyncpg.Connection, assignment_id: str, texts: list[str]
) -> dict[str, float]:
    essays = await seed_students(db, texts)
    request = build_request(essays, assignment_id=assignment_id)
    batch_id = str(request.data.entity_id)
    async with EventTap(infra.bootstrap, (COMPLETED_TOPIC, RESULT_TOPIC)) as tap:
        started = time.perf_counter()
        await publish(infra.bootstrap, request)
        await tap.wait_for(
            lambda t: bool(for_batch(t.envelopes(COMPLETED_TOPIC), batch_id)),
            TIMEOUT_S,
            "completion",
        )
        completed_s = time.perf_counter() - started
        await tap.wait_for(
            lambda t: bool(for_batch(t.envelopes(RESULT_TOPIC), batch_id)), TIMEOUT_S, "result"
        )
        result_s = time.perf_counter() - started
    state = await db.fetchrow(
        "SELECT s.current_iteration, s.submitted_comparisons FROM cj_batch_states s"
        " JOIN cj_batch_uploads u ON u.id = s.batch_id WHERE u.bos_batch_id = $1",
        batch_id,
    )
    assert state is not None
    return {
        "completed_s": completed_s,
        "result_s": result_s,
        "waves": float(state["current_iteration"]),
        "comparisons": float(state["submitted_comparisons"]),
    }


async def _bench(infra: Infra, runs: int) -> list[dict[str, float]]:
    sample = load_sample_set()
    db = await asyncpg.connect(infra.dsn)
    try:
        assignment_id = f"bench-{uuid.uuid4().hex[:8]}"
        await seed_assignment(db, assignment_id, sample.anchors, prompt=sample.prompt)
        settings = WorkerSettings(
            bootstrap_servers=infra.bootstrap, dsn=infra.dsn, content_url=infra.content_url
        )
        async with CJWorker(settings):
            texts = [text for _, text in sample.students]
            await _one_run(infra, db, assignment_id, texts)  # warm-up, not reported
            return [await _one_run(infra, db, assignment_id, texts) for _ in range(runs)]
    finally:
        await db.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    base = Path(tempfile.mkdtemp(prefix="eng5-bench-batch-"))
    infrastructure = start_infrastructure(
        StackConfig("embedded", workdir=base / "work", log_dir=base / "logs")
    )
    try:
        infra = start_infra(infrastructure)
        try:
            results = asyncio.run(_bench(infra, args.runs))
        finally:
            stop_infra(infra)
    finally:
        infrastructure.stop()

    def row(label: str, values: list[float]) -> str:
        return (
            f"| {label} | {len(values)} | {statistics.median(values):.2f} s"
            f" | {min(values):.2f} s | {max(values):.2f} s |"
        )

    completed = [r["completed_s"] for r in results]
    print(f"python {platform.python_version()}, {platform.platform()}")
    print("| measure | runs | median | min | max |")
    print("|---|---|---|---|---|")
    print(row("publish → completion event", completed))
    print(row("publish → result event", [r["result_s"] for r in results]))
    waves = {int(r["waves"]) for r in results}
    comparisons = {int(r["comparisons"]) for r in results}
    per_wave = [r["completed_s"] / r["waves"] for r in results]
    print(f"waves per batch: {sorted(waves)}, comparisons per batch: {sorted(comparisons)}")
    print(f"median time per wave: {statistics.median(per_wave) * 1000:.0f} ms")
    verdict = "met" if statistics.median(completed) <= TARGET_S else "NOT met"
    print(f"target median ≤ {TARGET_S:.1f} s: {verdict}")


if __name__ == "__main__":
    main()
