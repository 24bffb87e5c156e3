"""Wall time of the main job (``pytest -m eng5_execute``) and of the full CI suite.

Run: ``python bench/bench_main_job.py [--runs 3] [--suite]``. Each run is a fresh pytest
process on a fresh embedded stack; results go in docs/performance.md by hand.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def timed(argv: list[str]) -> float:
    started = time.monotonic()
    done = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, check=False)
    elapsed = time.monotonic() - started
    if done.returncode != 0:
        print(done.stdout[-3000:], done.stderr[-3000:], sep="\n")
        raise SystemExit(f"{' '.join(argv)} failed with exit {done.returncode}")
    return elapsed


def main_job_argv(evidence: str, *extra: str) -> list[str]:
    """The main job as a fresh pytest process writing its evidence to ``evidence``."""
    return [
        sys.executable,
        "-m",
        "pytest",
        "-m",
        "eng5_execute",
        "-q",
        "-p",
        "no:cacheprovider",
        f"--eng5-evidence-dir={evidence}",
        *extra,
    ]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--suite", action="store_true", help="also time the full CI suite once")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as evidence:
        times = [timed(main_job_argv(evidence)) for _ in range(args.runs)]
        print(
            f"main job: median {statistics.median(times):.1f} s, "
            f"min {min(times):.1f} s, max {max(times):.1f} s over {args.runs} runs"
        )
        if args.suite:
            suite = [
                sys.executable,
                "-m",
                "pytest",
                "-n",
                "2",
                "-q",
                "-p",
                "no:cacheprovider",
                f"--eng5-evidence-dir={evidence}",
            ]
            print(f"full suite (-n 2): {timed(suite):.1f} s")


if __name__ == "__main__":
    main()
