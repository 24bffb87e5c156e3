"""In-process pytester runs restore ``sys.modules`` afterwards, and numpy's C extension cannot
be imported twice in one process: the runner (and numpy with it) is imported once here, before
any pytester snapshot, so every in-process run reuses it."""

import pytest_eng5.runner.orchestrator  # noqa: F401
