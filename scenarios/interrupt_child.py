"""Child process of the SIGINT scenario: one execute run against a running stack.

``argv[1]`` is a private JSON file with ``settings`` (``RunConfig`` field paths) and ``endpoints``
(Endpoints fields; they include the JWT secret, hence a file and not the command line).
Ctrl-C (SIGINT) during the await must leave the evidence written so far.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

from pytest_eng5.runner import Endpoints, Eng5Runner, RunConfig


def main() -> int:
    spec = json.loads(Path(sys.argv[1]).read_text(encoding="utf-8"))
    runner = Eng5Runner(RunConfig.from_values(spec["settings"]), Endpoints(**spec["endpoints"]))
    try:
        asyncio.run(runner.execute())
    except KeyboardInterrupt:
        result = runner.last_result
        print(f"interrupted outcome={result.outcome if result else None}", flush=True)
        return 130
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
