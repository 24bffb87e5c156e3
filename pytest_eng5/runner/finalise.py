"""The one place a run ends: its outcome, failure reason, run.log line and record, for every
ending (success, an ``Eng5Error``, any other exception, Ctrl-C, SIGTERM, cancellation)."""

from __future__ import annotations

import asyncio
import functools
import json
import subprocess
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from uuid import UUID

from pytest_eng5 import __version__
from pytest_eng5.contracts import LLMConfigOverrides
from pytest_eng5.core.outcome import Outcome
from pytest_eng5.errors import (
    AwaitTimeoutError,
    BatchFailedError,
    Eng5Error,
    ExtractionError,
    GateError,
    InfrastructureError,
    PublishError,
    PublishUnconfirmedError,
    UnusableBatchError,
)
from pytest_eng5.runner.analysis import artefact_inputs
from pytest_eng5.runner.artefact import build_record, write_record
from pytest_eng5.runner.collector import CollectedRun
from pytest_eng5.runner.config import RunConfig
from pytest_eng5.runner.evidence import ARTEFACT_FILE, EvidenceFolder
from pytest_eng5.runner.inventory import EssayFile, Inventory
from pytest_eng5.runner.record import (
    RunInputs,
    RunMetadata,
    RunnerMode,
    RunnerStatus,
    RunStatistics,
    TopicOffset,
)
from pytest_eng5.runner.report import write_run_report
from pytest_eng5.runner.results import RunResult
from pytest_eng5.runner.variant_record import variant_summary

#: errors raised after the batch ended well: the outcome the run had stays
_VERDICTS_ON_A_FINISHED_BATCH = (GateError, ExtractionError)


@dataclass
class RunState:
    """Everything one runner call has gathered so far (what its record is built from)."""

    config: RunConfig
    result: RunResult
    evidence: EvidenceFolder | None = None
    inventory: Inventory | None = None
    essays: dict[str, EssayFile] = field(default_factory=dict)
    collected: CollectedRun | None = None
    overrides: LLMConfigOverrides | None = None
    correlation_id: UUID | None = None
    collector_offsets: list[TopicOffset] = field(default_factory=list)

    @property
    def record_path(self) -> Path | None:
        return self.evidence.path(ARTEFACT_FILE) if self.evidence is not None else None


def outcome_for(exc: BaseException, result: RunResult) -> Outcome:
    """The outcome a run that raised ``exc`` ends with."""
    if isinstance(exc, KeyboardInterrupt | asyncio.CancelledError):
        return Outcome.INTERRUPTED
    if isinstance(exc, UnusableBatchError):
        return Outcome(exc.outcome)
    if isinstance(exc, _VERDICTS_ON_A_FINISHED_BATCH):
        return result.outcome
    if isinstance(exc, BatchFailedError):
        return Outcome.BATCH_FAILED
    if isinstance(exc, AwaitTimeoutError):
        return Outcome.TIMEOUT
    if isinstance(exc, PublishUnconfirmedError):
        return Outcome.PUBLISH_UNCONFIRMED
    if isinstance(exc, PublishError):
        return Outcome.PUBLISH_FAILED
    if isinstance(exc, InfrastructureError):
        return Outcome.INFRASTRUCTURE_ERROR
    if isinstance(exc, Eng5Error) and not result.published:
        return Outcome.REJECTED
    return Outcome.ERROR


def failure_reason(exc: BaseException, state: RunState) -> str:
    """One line (plus the next step for an ``Eng5Error``) saying why the run stopped."""
    if isinstance(exc, KeyboardInterrupt | asyncio.CancelledError):
        where = "while awaiting the batch" if state.result.published else "before publishing"
        received = len(state.collected.callbacks) if state.collected is not None else 0
        signal_name = "KeyboardInterrupt" if isinstance(exc, KeyboardInterrupt) else "cancelled"
        return (
            f"interrupted ({signal_name}) {where}, after {received} comparison callbacks; "
            f"re-attach with batch uuid {state.result.batch_uuid} to collect the rest"
        )
    if isinstance(exc, Eng5Error):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"


def end_with_error(state: RunState, exc: BaseException) -> None:
    """Record a run that raised: outcome, reason, run.log (with the traceback), record."""
    result = state.result
    result.outcome = outcome_for(exc, result)
    result.error = failure_reason(exc, state)
    result.error_kind = exc.kind if isinstance(exc, Eng5Error) else type(exc).__name__
    evidence = state.evidence
    if evidence is not None:
        event = "run interrupted" if result.outcome is Outcome.INTERRUPTED else "run stopped"
        evidence.log.error(
            event,
            exc_info=(type(exc), exc, exc.__traceback__),
            extra={"outcome": result.outcome.value, "kind": result.error_kind},
        )
        try:
            write_run_record(state)
        except Exception as problem:  # the original error matters more; say why none was written
            evidence.log.error("run record not written", extra={"error": repr(problem)})
    finish(state)


def finish(state: RunState) -> None:
    """Stop the clock and release the evidence folder (idempotent)."""
    state.result.stop_clock()
    if state.evidence is not None:
        state.evidence.close()


def write_run_record(state: RunState) -> None:
    """Write ``assessment_run.json`` from what the run has so far."""
    if state.evidence is None or state.inventory is None:
        return
    result = state.result
    config = state.config
    collected = state.collected
    failed = collected.failed if collected is not None else None
    status = RunnerStatus(
        outcome=result.outcome,
        partial_data=result.outcome.partial,
        timeout_seconds=config.completion_timeout,
        failure_reason=result.error or (failed.failure_reason if failed is not None else None),
        error_kind=result.error_kind,
        publish=result.publish,
        collector_offsets=state.collector_offsets,
        comparison_graph=result.comparison_graph,
        missing_essay_ids=result.missing_essay_ids,
    )
    record = build_record(
        metadata=_metadata(state),
        inputs=_inputs(state),
        status=status,
        collected=collected,
        statistics=RunStatistics.model_validate(result.statistics),
        post_run=result.post_run,
    )
    path = state.evidence.path(ARTEFACT_FILE)
    write_record(record, path)
    result.artefact_path = path
    if collected is not None:
        write_run_report(json.loads(path.read_text(encoding="utf-8")), state.evidence.folder)


def _inputs(state: RunState) -> RunInputs:
    if state.inventory is None:
        return RunInputs(instructions=None, prompt_reference=None)
    return artefact_inputs(state.inventory, state.essays)


def _metadata(state: RunState) -> RunMetadata:
    config = state.config
    result = state.result
    overrides = state.overrides
    return RunMetadata(
        batch_uuid=result.identity.batch_uuid,
        batch_label=result.identity.batch_label,
        runner_mode=_RECORD_MODES.get(result.mode, "execute"),
        assignment_id=config.assignment_id or None,
        course_id=config.course_id or None,
        course_code=config.course_code or None,
        grade_scale=result.grade_scale,
        runner_version=__version__,
        git_sha=git_sha(),
        generated_at=datetime.now(UTC),
        correlation_id=state.correlation_id,
        llm_config_overrides=overrides.model_dump(mode="json") if overrides else None,
        settings={
            "assignment_id": config.assignment_id,
            "course_id": config.course_id,
            "grade_scale": result.grade_scale,
            "course_code": config.course_code,
            "language": config.language,
            "max_comparisons": config.max_comparisons,
            "completion_timeout": config.completion_timeout,
            "stack": config.stack,
            **variant_summary(config),
        },
    )


_RECORD_MODES: dict[str, RunnerMode] = {
    "plan": "plan",
    "dry-run": "dry-run",
    "execute": "execute",
    "anchor-align-test": "anchor-align-test",
}


@functools.cache
def git_sha() -> str:
    """The commit of the checkout the harness runs from, or "unknown" outside git."""
    try:
        done = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=Path(__file__).parent,
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    sha = done.stdout.strip()
    return sha if done.returncode == 0 and len(sha) == 40 else "unknown"
