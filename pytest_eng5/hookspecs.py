"""Hook specifications of pytest-eng5 (``pytest_eng5_*``).

Implement them in a ``conftest.py`` or a plugin. Every argument is opt-in (pluggy passes only
the arguments an implementation names), so specs can grow without breaking implementations.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    from pytest_eng5.contracts import EventEnvelope
    from pytest_eng5.runner.collector import CollectedEvent
    from pytest_eng5.runner.identity import BatchIdentity
    from pytest_eng5.runner.results import RunResult
    from pytest_eng5.settings import Eng5Settings

hookspec = pluggy.HookspecMarker("pytest")


@hookspec
def pytest_eng5_adjust_settings(settings: Eng5Settings, node: Any) -> dict[str, Any] | None:
    """Return overrides for the settings of one test's runs (or None).

    Called once per test that uses the runner, at collection, with ``node`` the pytest item:
    ``eng5_run`` markers and the ``eng5_variants`` variant are applied first, then these
    overrides, each validated as it is returned, so an unknown setting, a setting of the whole
    session (the stack, the judge) or a bad value is a usage error before any stack starts.
    """


@hookspec
def pytest_eng5_before_publish(envelope: EventEnvelope, identity: BatchIdentity) -> None:
    """Called with the exact request envelope after it is written to the evidence folder and
    before it is published. Raising here aborts the run with nothing published."""


@hookspec
def pytest_eng5_event_received(event: CollectedEvent, identity: BatchIdentity) -> None:
    """Called for every event of this batch the collector accepts (callbacks, completion,
    result, failure), in arrival order. An exception here stops the run with a ``HookError``
    (outcome ``error``, recorded in the artefact); the batch may go on running in CJ."""


@hookspec
def pytest_eng5_run_finished(result: RunResult, node: Any) -> None:
    """Called once per run with its result (also for failed runs that got as far as a batch)."""
