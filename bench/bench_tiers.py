"""Tansu vs a three-node Apache Kafka cluster, side by side in one run.

usage: python bench/bench_tiers.py [--starts 3] [--jobs 3] [--events 3000] [--trials 10] [--reads 3]

1. Stack start: ``start_infrastructure`` of the embedded stack (broker(s) + PostgreSQL, contract
   topics created) returning, then its stop; ``--starts`` runs per broker.
2. Main job: ``pytest -m eng5_execute --eng5-kafka=<broker>`` as a fresh process, wall time;
   ``--jobs`` runs per broker.
3. Collector over the broker: ``--events`` callbacks of one batch plus its completion and
   result are produced, then a fresh collector reads them all from the start offsets it took
   (events/s, produce excluded; median of ``--reads`` batches); and the await latency of
   ``bench_collector.bench_latency``.

Prints one JSON document with each measure per broker and the ratio apache / tansu.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaProducer
from bench_collector import bench_latency, callback, completion, result
from bench_main_job import main_job_argv, timed
from bench_stack_start import cpu_model

from pytest_eng5.core import CALLBACK_TOPIC, COMPLETED_TOPIC, RESULT_TOPIC
from pytest_eng5.runner.collector import BatchCollector
from pytest_eng5.runner.identity import BatchIdentity
from pytest_eng5.stack.config import StackConfig
from pytest_eng5.stack.infra import running_infrastructure, start_infrastructure
from pytest_eng5.stack.kafka import KafkaEndpoint

BROKERS = ("tansu", "apache")


def config(kafka: str, base: Path) -> StackConfig:
    return StackConfig(
        "embedded", workdir=base / "work", log_dir=base / "logs", kafka_provider=kafka
    )  # type: ignore[arg-type]


def stack_start(kafka: str) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="eng5-bench-tiers-") as base:
        started = time.perf_counter()
        infra = start_infrastructure(config(kafka, Path(base)))
        wall = time.perf_counter() - started
        stopping = time.perf_counter()
        infra.stop()
        return {"start_s": wall, "stop_s": time.perf_counter() - stopping}


def main_job(kafka: str) -> float:
    with tempfile.TemporaryDirectory(prefix="eng5-bench-tiers-") as evidence:
        return timed(main_job_argv(evidence, f"--eng5-kafka={kafka}"))


async def collector_throughput(kafka: KafkaEndpoint, events: int) -> dict[str, float]:
    identity = BatchIdentity.new("throughput")
    collector = BatchCollector(identity, consumer_kwargs=kafka.consumer_kwargs(), evidence=None)
    await collector.prepare()
    producer = AIOKafkaProducer(**kafka.producer_kwargs(), linger_ms=5)
    await producer.start()
    try:
        ours = identity.batch_id
        sends = [
            await producer.send(
                CALLBACK_TOPIC, json.dumps(callback(ours, f"E{i}", f"E{i + 1}")).encode()
            )
            for i in range(events)
        ]
        await asyncio.gather(*sends)
        await producer.send_and_wait(COMPLETED_TOPIC, json.dumps(completion(ours)).encode())
        await producer.send_and_wait(RESULT_TOPIC, json.dumps(result(ours, ["E0", "E1"])).encode())
    finally:
        await producer.stop()
    started = time.perf_counter()
    run = await collector.wait(120)
    elapsed = time.perf_counter() - started
    await collector.close()
    if len(run.callbacks) != events:
        raise SystemExit(f"the collector read {len(run.callbacks)} of {events} callbacks")
    return {"events": events, "read_s": elapsed, "events_per_s": (events + 2) / elapsed}


def collector_part(kafka: str, events: int, trials: int, reads: int) -> dict[str, Any]:
    """Collector throughput (median of ``reads`` batches) and await latency on one stack."""
    with (
        tempfile.TemporaryDirectory(prefix="eng5-bench-tiers-") as base,
        running_infrastructure(config(kafka, Path(base))) as infra,
    ):
        rates = [
            asyncio.run(collector_throughput(infra.kafka, events))["events_per_s"]
            for _ in range(reads)
        ]
        latency = asyncio.run(bench_latency(infra.kafka, trials, 50))
    return {"events_per_s": statistics.median(rates), **latency}


def median(values: list[float]) -> float:
    return round(statistics.median(values), 3)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--starts", type=int, default=3)
    parser.add_argument("--jobs", type=int, default=3)
    parser.add_argument("--events", type=int, default=3000)
    parser.add_argument("--trials", type=int, default=10)
    parser.add_argument("--reads", type=int, default=3, help="collector batches per broker")
    args = parser.parse_args()
    report: dict[str, Any] = {
        "machine": f"nproc={os.cpu_count()} cpu={cpu_model()}",
        "load_average_at_start": os.getloadavg()[0],
    }
    for kafka in BROKERS:
        stack_start(kafka)  # warm-up: imports, initdb template, Maven cache
        starts = [stack_start(kafka) for _ in range(args.starts)]
        jobs = [main_job(kafka) for _ in range(args.jobs)]
        collected = collector_part(kafka, args.events, args.trials, args.reads)
        report[kafka] = {
            "stack_start_s": median([s["start_s"] for s in starts]),
            "stack_stop_s": median([s["stop_s"] for s in starts]),
            "main_job_s": median(jobs),
            "collector_events_per_s": round(collected["events_per_s"], 1),
            "await_latency_ms_median": collected["latency_ms_median"],
            "collector_prepare_ms_median": collected["prepare_ms_median"],
        }
    report["ratio_apache_over_tansu"] = {
        key: round(report["apache"][key] / report["tansu"][key], 2)
        for key in report["tansu"]
        if report["tansu"][key]
    }
    report["load_average_at_end"] = os.getloadavg()[0]
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
