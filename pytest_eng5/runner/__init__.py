"""The ENG5 runner, usable without pytest.

::

    import asyncio
    from pytest_eng5.runner import Endpoints, Eng5Runner, RunConfig

    config = RunConfig(assets=Path("my-assets"), assignment_id="...", course_id="...")
    endpoints = Endpoints(cj_url=..., content_url=..., producer_kwargs={...},
                          consumer_kwargs={...}, env=os.environ)
    result = asyncio.run(Eng5Runner(config, endpoints).execute())
    print(result.outcome, result.artefact_path)

:class:`Eng5Runner` runs the modes (``plan``, ``dry_run``, ``execute``, ``attach``,
``anchor_align``, ``register_anchors``); :class:`RunConfig` is what to run, :class:`Endpoints`
where the services are, :class:`RunHooks` optional callbacks. A call returns a
:class:`RunResult` (also kept as ``runner.last_result`` when it raises); the evidence folder
holds the :class:`RunRecord` (``assessment_run.json``, read it back with :func:`read_record`).

The names are loaded on first use, so importing a runner module stays light.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pytest_eng5.core.outcome import Outcome
    from pytest_eng5.runner.artefact import read_record
    from pytest_eng5.runner.config import Endpoints, Gates, LLMOptions, RunConfig, RunHooks
    from pytest_eng5.runner.interrupts import sigterm_as_interrupt
    from pytest_eng5.runner.orchestrator import Eng5Runner
    from pytest_eng5.runner.record import RunRecord
    from pytest_eng5.runner.results import RunResult

_EXPORTS = {
    "Endpoints": "pytest_eng5.runner.config",
    "Eng5Runner": "pytest_eng5.runner.orchestrator",
    "Gates": "pytest_eng5.runner.config",
    "LLMOptions": "pytest_eng5.runner.config",
    "Outcome": "pytest_eng5.core.outcome",
    "RunConfig": "pytest_eng5.runner.config",
    "RunHooks": "pytest_eng5.runner.config",
    "RunRecord": "pytest_eng5.runner.record",
    "RunResult": "pytest_eng5.runner.results",
    "read_record": "pytest_eng5.runner.artefact",
    "sigterm_as_interrupt": "pytest_eng5.runner.interrupts",
}

__all__ = [
    "Endpoints",
    "Eng5Runner",
    "Gates",
    "LLMOptions",
    "Outcome",
    "RunConfig",
    "RunHooks",
    "RunRecord",
    "RunResult",
    "read_record",
    "sigterm_as_interrupt",
]


def __getattr__(name: str) -> object:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'pytest_eng5.runner' has no attribute {name!r}")
    return getattr(import_module(module), name)
