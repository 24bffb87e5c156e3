"""The ENG5 runner (R1-R7) as a plain async library: its modes.

Order of every publishing run: config -> identity -> inventory -> CJ preflight -> R1 capacity
-> uploads (cached) -> envelope written -> collector positioned -> publish -> await -> record
-> optional R5 extraction -> gates. Every check that can fail does so before anything is
uploaded or published; every step that was done is kept (upload cache, evidence folder), and
every ending, an exception or Ctrl-C included, is recorded (:mod:`.finalise`).
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import Any, Literal

from aiokafka import TopicPartition
from pydantic import ValidationError

from pytest_eng5.contracts import EssayProcessingInputRefV1
from pytest_eng5.core import RUNNER_FALLBACK_GRADE_SCALE, Endpoints
from pytest_eng5.core.outcome import Outcome
from pytest_eng5.errors import ConfigurationError
from pytest_eng5.redact import register_secret
from pytest_eng5.runner import steps
from pytest_eng5.runner.anchor_registration import (
    AnchorFile,
    not_persisted_error,
    register_anchors,
)
from pytest_eng5.runner.artefact import read_record
from pytest_eng5.runner.batch import publish_and_await
from pytest_eng5.runner.capacity import ensure_budget_setting
from pytest_eng5.runner.config import RunConfig, RunHooks
from pytest_eng5.runner.envelope import compose_request
from pytest_eng5.runner.evidence import ARTEFACT_FILE
from pytest_eng5.runner.finalise import RunState, end_with_error, finish, write_run_record
from pytest_eng5.runner.identity import BatchIdentity
from pytest_eng5.runner.record import RunRecord
from pytest_eng5.runner.results import RunResult
from pytest_eng5.runner.steps import anchor_keys, request_essay_id

__all__ = [
    "Endpoints",
    "Eng5Runner",
    "RunHooks",
    "anchor_keys",
    "request_essay_id",
]

_Mode = Callable[["Eng5Runner"], Awaitable[RunResult]]


def _recorded(method: _Mode) -> _Mode:
    """Reset ``last_result`` per call; a run that raises is ended by the finaliser."""

    @functools.wraps(method)
    async def wrapper(self: Eng5Runner) -> RunResult:
        self.last_result = None  # a call that fails before its run starts leaves no result
        self._state = None
        try:
            return await method(self)
        except BaseException as exc:
            if self._state is not None:
                end_with_error(self._state, exc)
            raise

    return wrapper


class Eng5Runner:
    """Runs ENG5 batches: plan, dry_run, execute, attach, anchor_align, register_anchors.

    ``last_result`` always holds the result of the latest call, also when it raised.
    """

    def __init__(
        self, config: RunConfig, endpoints: Endpoints, hooks: RunHooks | None = None
    ) -> None:
        self.config = config
        self.endpoints = endpoints
        self.hooks = hooks or RunHooks()
        self.last_result: RunResult | None = None
        self._state: RunState | None = None
        for name in ("HULEEDU_SERVICE_ACCOUNT_TOKEN", "HULEEDU_ADMIN_TOKEN", "JWT_SECRET_KEY"):
            register_secret(endpoints.env.get(name))

    # ----------------------------------------------------------------- public modes

    @_recorded
    async def plan(self) -> RunResult:
        """Inventory, CJ preflight (when an assignment is set) and R1; nothing is written."""
        state = await self._rehearse("plan")
        state.result.outcome = Outcome.PLANNED
        finish(state)
        return state.result

    @_recorded
    async def dry_run(self) -> RunResult:
        """Like :meth:`plan`, plus a schema-valid record in the evidence folder."""
        state = await self._rehearse("dry-run")
        state.evidence = steps.open_evidence(self.config, state.result)
        state.result.outcome = Outcome.DRY_RUN
        write_run_record(state)
        finish(state)
        return state.result

    @_recorded
    async def execute(self) -> RunResult:
        """A student-only CJ batch against CJ-owned anchors (R4).

        With ``batch_uuid`` set and an earlier record of that batch saying it was published
        (or may have been), this re-attaches instead of publishing it a second time.
        """
        state = self._start("execute")
        config = self.config
        if not config.assignment_id:
            raise ConfigurationError(
                "execute needs an assignment id (CJ owns the anchors and the grade scale)",
                next_step="set --eng5-assignment-id (or ini eng5_assignment_id)",
            )
        if not config.course_id:
            raise ConfigurationError(
                "execute needs a course id (recorded with the batch)",
                next_step="set --eng5-course-id (or ini eng5_course_id)",
            )
        earlier = self._earlier_record()
        if earlier is not None and _was_published(earlier):
            state.result.messages.append(
                f"batch {state.result.batch_uuid} was published by an earlier run "
                f"({earlier.outcome.value}): re-attaching instead of publishing it again"
            )
            return await self._attach(state, earlier)
        state.inventory = steps.read_inventory(config, with_anchors=False)
        anchors = await steps.preflight(
            config, self.endpoints, state.result, "execute", anchors_needed=True
        )
        steps.check_capacity(
            config, state.result, "execute", anchors or 0, len(state.inventory.students)
        )
        state.essays = steps.student_essays(state.inventory, state.result.identity)
        state.result.students = len(state.essays)
        return await self._publish_run(state, config.assignment_id)

    @_recorded
    async def attach(self) -> RunResult:
        """Re-attach to an execute batch published earlier (``batch_uuid`` set): nothing is
        uploaded or published; the batch's events are read from where the earlier run started
        reading (its record), else from the start of the topics."""
        if not self.config.batch_uuid:
            raise ConfigurationError(
                "attach needs the batch uuid of the earlier run",
                next_step="set --eng5-batch-uuid to the uuid the earlier run printed",
            )
        state = self._start("execute")
        return await self._attach(state, self._earlier_record())

    @_recorded
    async def anchor_align(self) -> RunResult:
        """Anchors sent as students in a guest batch; writes the alignment report and plot."""
        state = self._start("anchor-align-test")
        result = state.result
        scale = self.config.expected_grade_scale or RUNNER_FALLBACK_GRADE_SCALE
        state.inventory = steps.read_inventory(self.config, with_anchors=True, grade_scale=scale)
        result.grade_scale = scale
        steps.check_capacity(
            self.config, result, "anchor-align-test", len(state.inventory.anchors), 0
        )
        state.essays = steps.anchors_as_students(state.inventory, result.identity)
        result.anchors_sent = len(state.essays)
        return await self._publish_run(state, None)

    @_recorded
    async def register_anchors(self) -> RunResult:
        """Explicit, opt-in anchor registration for the assignment (never done by execute)."""
        state = self._start("register-anchors")
        result = state.result
        assignment_id = steps.require_assignment(self.config, "register-anchors")
        async with steps.admin_client(self.endpoints, self.config) as client:
            info = await steps.assignment_info(
                client, self.config, assignment_id, "register-anchors"
            )
            result.grade_scale = info.grade_scale
            inventory = steps.read_inventory(
                self.config, with_anchors=True, grade_scale=info.grade_scale
            )
            files = [
                AnchorFile(path=a.path, label=a.path.stem, grade=a.grade or "", text=a.text)
                for a in inventory.anchors
            ]
            if not files:
                raise ConfigurationError(
                    f"no anchor essays found in {inventory.root / 'anchor_essays'}",
                    next_step="put the anchor essays (grade in the file name) there",
                )
            report = await register_anchors(
                client,
                assignment_id,
                files,
                expected_grade_scale=self.config.expected_grade_scale,
            )
        result.registration = {
            "inserted": list(report.inserted),
            "updated": list(report.updated),
            "not_persisted": list(report.not_persisted),
            "anchor_count_after": report.anchor_count_after,
        }
        result.messages.append(report.summary())
        result.anchors_in_cj = report.anchor_count_after
        if report.not_persisted:
            raise not_persisted_error(report)
        result.outcome = Outcome.REGISTERED
        finish(state)
        return result

    async def verify_auth(self) -> dict[str, Any]:
        """The claims of the admin token in use (never the token) and whether CJ accepts it."""
        async with steps.admin_client(self.endpoints, self.config) as client:
            report: dict[str, Any] = await client.verify_token()
        return report

    # ----------------------------------------------------------------- steps

    def _start(self, mode: str) -> RunState:
        identity = BatchIdentity.new(self.config.batch_label, self.config.batch_uuid)
        result = RunResult(mode=mode, identity=identity)
        result.assignment_id = self.config.assignment_id
        self.last_result = result
        self._state = RunState(config=self.config, result=result)
        ensure_budget_setting(self.config.max_comparisons)
        return self._state

    async def _rehearse(self, mode: Literal["plan", "dry-run"]) -> RunState:
        """The checks of an execute run without sending anything.

        With an assignment, CJ's anchor count is used (as execute would); without one, the
        local anchors are counted.
        """
        state = self._start(mode)
        result = state.result
        # With an assignment CJ's anchors count, so local anchor files are not read.
        inventory = steps.read_inventory(self.config, with_anchors=not self.config.assignment_id)
        state.inventory = inventory
        result.students = len(inventory.students)
        result.messages.append(f"inventory: {inventory.summary()}")
        cj_anchors = await steps.preflight(
            self.config,
            self.endpoints,
            result,
            mode,
            anchors_needed=bool(self.config.assignment_id),
        )
        anchors = cj_anchors if cj_anchors is not None else len(inventory.anchors)
        steps.check_capacity(self.config, result, mode, anchors, len(inventory.students))
        state.essays = steps.student_essays(inventory, result.identity)
        return state

    def _earlier_record(self) -> RunRecord | None:
        """The record an earlier run left for ``batch_uuid`` (None when absent or unreadable)."""
        if not self.config.batch_uuid:
            return None
        identity = BatchIdentity.new(self.config.batch_label, self.config.batch_uuid)
        path = self.config.evidence_dir / identity.batch_id / ARTEFACT_FILE
        try:
            return read_record(path)
        except (OSError, ValidationError):
            return None

    async def _attach(self, state: RunState, earlier: RunRecord | None) -> RunResult:
        result = state.result
        result.grade_scale = self.config.expected_grade_scale or RUNNER_FALLBACK_GRADE_SCALE
        state.inventory = steps.read_inventory(self.config, with_anchors=False)
        state.essays = steps.student_essays(state.inventory, result.identity)
        result.students = len(state.essays)
        state.overrides = steps.llm_overrides(self.config, result.mode)
        state.evidence = steps.open_evidence(self.config, result)
        start_at: dict[TopicPartition, int] = {}
        if earlier is not None:
            status = earlier.validation.runner_status
            result.publish = status.publish
            state.correlation_id = earlier.metadata.correlation_id
            start_at = {
                TopicPartition(o.topic, o.partition): o.offset for o in status.collector_offsets
            }
        result.published = True  # attach assumes the batch is on the topic
        result.outcome = Outcome.PUBLISHED
        return await publish_and_await(state, self.endpoints, self.hooks, None, start_at=start_at)

    async def _publish_run(self, state: RunState, assignment_id: str | None) -> RunResult:
        config, result = self.config, state.result
        state.overrides = steps.llm_overrides(config, result.mode)
        evidence = state.evidence = steps.open_evidence(config, result)
        storage_ids = await steps.upload(config, self.endpoints, result, state.essays, evidence)
        refs = [
            EssayProcessingInputRefV1(essay_id=eid, text_storage_id=storage_ids[eid])
            for eid in state.essays
        ]
        envelope = compose_request(
            result.identity,
            refs,
            language=config.language,
            course_code=config.course_code,
            assignment_id=assignment_id,
            user_id=config.user_id,
            org_id=config.org_id,
            llm_overrides=state.overrides,
            runner_mode=result.mode,
            max_comparisons=config.max_comparisons,
            llm_batching_mode=config.llm.batching_mode,
        )
        state.correlation_id = envelope.correlation_id
        evidence.write_request(envelope)
        if self.hooks.before_publish:
            self.hooks.before_publish(envelope, result.identity)
        if config.no_kafka:
            result.outcome = Outcome.NOT_PUBLISHED
            write_run_record(state)
            finish(state)
            return result
        return await publish_and_await(state, self.endpoints, self.hooks, envelope)


def _was_published(record: RunRecord) -> bool:
    """True when an earlier record says the request is (or may be) on the topic."""
    status = record.validation.runner_status
    return status.publish is not None or status.outcome is Outcome.PUBLISH_UNCONFIRMED
