"""Child process for the stack tests: starts its own embedded stack (as one xdist worker would).

usage: stack_child.py roundtrip|hold BASE_DIR
  roundtrip  start, run real Kafka + SQL traffic, print a JSON line, stop
  hold       start, print a JSON line with the pids, then wait (up to 60 s) for a signal
"""

from __future__ import annotations

import asyncio
import json
import sys
import threading
from pathlib import Path

from stack_checks import kafka_round_trip, sql_round_trip

from pytest_eng5.stack.config import DEFAULT_TOPICS, StackConfig
from pytest_eng5.stack.infra import running_infrastructure


def main() -> None:
    mode, base = sys.argv[1], Path(sys.argv[2])
    config = StackConfig("embedded", workdir=base / "work", log_dir=base / "logs")
    with running_infrastructure(config) as infra:
        report = {
            "bootstrap": infra.kafka.bootstrap,
            "dsn": infra.postgres.dsn,
            "pids": infra.pids,
            "workdir_entries": [p.name for p in config.workdir.iterdir()],
        }
        if mode == "roundtrip":
            report["messages"] = len(asyncio.run(kafka_round_trip(infra.kafka, DEFAULT_TOPICS[0])))
            report["rows"] = len(asyncio.run(sql_round_trip(infra.postgres.dsn)))
        print(json.dumps(report), flush=True)
        if mode == "hold":
            threading.Event().wait(60.0)


if __name__ == "__main__":
    main()
