"""``python -m pytest_eng5.stack`` / ``eng5-stack``: the embedded stack in the foreground.

Prints where everything answers (or one JSON line with ``--json``), optionally seeds the sample
assignment, and stays up until Ctrl-C, then stops every process it started.

This module composes layers (the stack, and the runner's CJ client for ``--seed``), so it sits
on top beside the pytest glue; ``stack/__main__.py`` only calls :func:`main`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
import tempfile
import threading
from collections.abc import Sequence
from pathlib import Path

from pytest_eng5.core.names import DEFAULT_JUDGE, JUDGE_NAMES
from pytest_eng5.errors import Eng5Error
from pytest_eng5.sample_data import SAMPLE_ASSETS, SAMPLE_ASSIGNMENT_ID
from pytest_eng5.settings_sources import resolve_settings


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
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    from pytest_eng5.stack.session import running_stack

    settings = resolve_settings(
        {
            "evidence_dir": args.evidence_dir,
            "judge": args.judge,
            "start_timeout": args.start_timeout,
        },
        {},
        {},
    )
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        with (
            tempfile.TemporaryDirectory(prefix="eng5-stack-") as workdir,
            running_stack(settings, Path(workdir)) as stack,
        ):
            facts: dict[str, object] = {
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
