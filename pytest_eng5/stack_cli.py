"""``python -m pytest_eng5.stack`` / ``eng5-stack``: the embedded stack in the foreground.

Prints where everything answers (or one JSON line with ``--json``), optionally seeds the sample
assignment, and stays up until Ctrl-C, then stops every process it started. ``--kafka apache``
runs an Apache Kafka KRaft cluster (``--kafka-brokers 1|3``; needs java and mvn) instead of
Tansu.

This module composes layers (the stack, and the runner's CJ client for ``--seed``), so it sits
on top beside the pytest glue; ``stack/__main__.py`` only calls :func:`main`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
import tempfile
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import get_args

from pytest_eng5.core.names import APACHE_BROKER_COUNTS, DEFAULT_JUDGE, JUDGE_NAMES, KafkaProvider
from pytest_eng5.errors import Eng5Error
from pytest_eng5.sample_data import SAMPLE_ASSETS, SAMPLE_ASSIGNMENT_ID
from pytest_eng5.settings_sources import credentials_env, resolve_settings


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m pytest_eng5.stack",
        description="Run the embedded ENG5 stack (Kafka, PostgreSQL, Content, CJ API, CJ worker).",
    )
    parser.add_argument("--seed", action="store_true", help="seed the sample assignment")
    parser.add_argument("--json", action="store_true", help="print the facts as one JSON line")
    parser.add_argument("--evidence-dir", default="eng5-evidence", help="where logs go")
    parser.add_argument("--judge", choices=JUDGE_NAMES, default=DEFAULT_JUDGE)
    parser.add_argument("--start-timeout", type=float, default=30.0)
    parser.add_argument(
        "--kafka",
        choices=get_args(KafkaProvider),
        default="tansu",
        help="the broker: Tansu, or an Apache Kafka KRaft cluster (needs java and mvn)",
    )
    parser.add_argument(
        "--kafka-brokers",
        type=int,
        choices=APACHE_BROKER_COUNTS,
        default=None,
        help="nodes of the Apache Kafka cluster (default 3)",
    )
    parser.add_argument("--kafka-version", default=None, help="Apache Kafka version (4.x)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.kafka != "apache" and (args.kafka_brokers or args.kafka_version):
        parser.error("--kafka-brokers and --kafka-version need --kafka apache")
    from pytest_eng5.stack.session import running_stack
    from pytest_eng5.stack_requests import session_request

    try:
        settings = resolve_settings(
            {
                "evidence_dir": args.evidence_dir,
                "judge": args.judge,
                "start_timeout": args.start_timeout,
                "kafka": args.kafka,
                "kafka_brokers": args.kafka_brokers,
                "kafka_version": args.kafka_version,
            },
            {},
            credentials_env(os.environ),  # the reference JWT secret, if one is set
        )
    except Eng5Error as exc:
        print(f"eng5 stack: {exc}", file=sys.stderr)
        return 2
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        with (
            tempfile.TemporaryDirectory(prefix="eng5-stack-") as workdir,
            running_stack(session_request(settings, Path(workdir))) as stack,
        ):
            facts: dict[str, object] = {
                "kafka": settings.kafka,
                "kafka_bootstrap": stack.kafka.bootstrap,
                "content_url": stack.content_url,
                "cj_url": stack.cj_url,
                "postgres_dsn": stack.postgres_dsn,
                "jwt_secret": stack.env.get("JWT_SECRET_KEY"),
                **stack.huleedu_facts(),
            }
            if args.seed:
                from pytest_eng5.runner.seeding import seed_assignment_at

                asyncio.run(
                    seed_assignment_at(
                        str(stack.cj_url),
                        stack.env,
                        SAMPLE_ASSETS,
                        assignment_id=SAMPLE_ASSIGNMENT_ID,
                    )
                )
                facts["assignment_id"] = SAMPLE_ASSIGNMENT_ID
            if args.json:
                print(json.dumps(facts), flush=True)
            else:
                for key, value in facts.items():
                    print(f"{key:24} {value}")
                print("stack is up; Ctrl-C stops it", flush=True)
            try:
                while not stop.wait(0.5):
                    pass
            except KeyboardInterrupt:
                pass
    except Eng5Error as exc:
        print(f"eng5 stack failed: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
