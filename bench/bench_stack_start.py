"""Benchmark: embedded stack cold start (broker + PostgreSQL ready, contract topics created).

usage: python bench/bench_stack_start.py [--runs 7] [--fresh-template]

Each run starts a new stack in a new temporary directory and stops it again; the time is
``start_infrastructure`` returning (imports excluded). ``--fresh-template`` deletes the cached
initdb template before every run, which measures a machine's very first start.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from pytest_eng5.stack.config import StackConfig
from pytest_eng5.stack.infra import start_infrastructure
from pytest_eng5.stack.postgres_cluster import shared_dir


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def drop_templates() -> None:
    for template in shared_dir().glob("template-*"):
        shutil.rmtree(template, ignore_errors=True)


def one_run(fresh_template: bool) -> dict[str, float]:
    if fresh_template:
        drop_templates()
    with tempfile.TemporaryDirectory(prefix="eng5-bench-") as base:
        config = StackConfig("embedded", Path(base) / "work", Path(base) / "logs")
        started = time.perf_counter()
        infra = start_infrastructure(config)
        elapsed = time.perf_counter() - started
        stop_started = time.perf_counter()
        infra.stop()
        return {**infra.timings, "wall": elapsed, "stop": time.perf_counter() - stop_started}


def summary(name: str, values: list[float]) -> str:
    return (
        f"{name:>9}: median {statistics.median(values):.3f} s  "
        f"min {min(values):.3f} s  max {max(values):.3f} s"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--fresh-template", action="store_true")
    args = parser.parse_args()
    print(f"machine: nproc={os.cpu_count()}  cpu={cpu_model()}")
    print(f"python {platform.python_version()}  {platform.platform()}")
    one_run(fresh_template=False)  # warm-up: imports, the system user, the initdb template
    runs = [one_run(args.fresh_template) for _ in range(args.runs)]
    label = "fresh initdb template each run" if args.fresh_template else "cached initdb template"
    print(f"embedded stack start, {args.runs} runs ({label}):")
    for key in ("wall", "kafka", "postgres", "stop"):
        print(summary(key, [run[key] for run in runs]))


if __name__ == "__main__":
    main()
