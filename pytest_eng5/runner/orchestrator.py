"""The ENG5 runner as a strict validating orchestrator (R1-R7), as a plain async library.

Order of every publishing run: settings -> identity -> inventory -> CJ preflight -> R1 capacity
-> uploads (cached) -> envelope written -> collector positioned -> publish -> await -> artefact
-> optional R5 extraction -> gates. Every check that can fail does so before anything is
uploaded or published; every step that was done is kept (upload cache, evidence folder).
"""

from __future__ import annotations

import asyncio
import functools
import subprocess
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pytest_eng5.contracts import (
    EssayProcessingInputRefV1,
    EventEnvelope,
    LLMConfigOverrides,
)
from pytest_eng5.core import RUNNER_FALLBACK_GRADE_SCALE, Endpoints, PreflightMode, dsn_from_env
from pytest_eng5.errors import ConfigurationError, Eng5Error, ExtractionError
from pytest_eng5.redact import register_secret
from pytest_eng5.runner.analysis import (
    anchor_alignment,
    artefact_inputs,
    check_gates,
    judgements,
    preload,
    run_statistics,
    student_projections,
    write_alignment,
)
from pytest_eng5.runner.capacity import (
    RunMode,
    ensure_budget_setting,
    ensure_comparison_capacity,
)
from pytest_eng5.runner.identity import BatchIdentity
from pytest_eng5.runner.inventory import (
    EssayFile,
    Inventory,
    collect_inventory,
    make_essay_key,
)
from pytest_eng5.runner.prompts import BUILTIN_SYSTEM_PROMPT, load_prompt_file
from pytest_eng5.runner.results import RunResult
from pytest_eng5.runner.variant_record import variant_summary
from pytest_eng5.settings import Eng5Settings

ANCHOR_ALIGN_PREFIX = "student::"


@dataclass
class RunHooks:
    """Callbacks into the host (the pytest plugin adapts its ``pytest_eng5_*`` hooks)."""

    before_publish: Callable[[EventEnvelope, BatchIdentity], None] | None = None
    on_event: Callable[[Any, BatchIdentity], None] | None = None
    on_progress: Callable[[Any], None] | None = None


def request_essay_id(local_id: str, identity: BatchIdentity, max_length: int = 36) -> str:
    """Essay id sent to CJ: the local id plus 8 hex of the batch uuid.

    CJ's ``els_essay_id`` is a global primary key, so ids must differ between concurrent
    batches that send the same files (contracts §G.7); re-attaching keeps them stable.
    """
    return f"{make_essay_key(local_id, max_length - 9)}-{identity.batch_uuid.hex[:8]}"


def anchor_keys(inventory: Inventory, max_length: int = 18) -> dict[str, EssayFile]:
    """Short, readable keys for anchors sent as students (``student::<key>-<batch>`` must fit
    36 characters): the anchors CSV id (``ANCHOR-001``) when there is one, else the end of the
    file stem (``vt_001_F+``); hashed keys only when those would clash."""
    keys: dict[str, EssayFile] = {}
    for essay in inventory.anchors:
        readable = inventory.csv_ids.get(essay.name) or essay.path.stem[-max_length:]
        key = make_essay_key(readable.lstrip("_-"), max_length)
        if key in keys:
            return {make_essay_key(e.local_id, max_length): e for e in inventory.anchors}
        keys[key] = essay
    return keys


def _timed(method: Callable[..., Awaitable[RunResult]]) -> Callable[..., Awaitable[RunResult]]:
    """Reset ``last_result`` per call, and give a run that raised its duration too."""

    @functools.wraps(method)
    async def wrapper(self: Eng5Runner) -> RunResult:
        self.last_result = None  # a call that fails before its run starts leaves no result
        try:
            return await method(self)
        except BaseException:
            if self.last_result is not None:
                self.last_result.stop_clock()
            raise

    return wrapper


class Eng5Runner:
    """Runs ENG5 batches: plan, dry_run, execute, attach, anchor_align, register_anchors.

    ``last_result`` always holds the result of the latest call, also when it raised.
    """

    def __init__(
        self, settings: Eng5Settings, endpoints: Endpoints, hooks: RunHooks | None = None
    ) -> None:
        self.settings = settings
        self.endpoints = endpoints
        self.hooks = hooks or RunHooks()
        self.last_result: RunResult | None = None
        for name in ("HULEEDU_SERVICE_ACCOUNT_TOKEN", "HULEEDU_ADMIN_TOKEN", "JWT_SECRET_KEY"):
            register_secret(endpoints.env.get(name))

    # ----------------------------------------------------------------- public modes

    @_timed
    async def plan(self) -> RunResult:
        """Inventory, CJ preflight (when an assignment is set) and R1; nothing is written."""
        result, _, _ = await self._rehearse("plan")
        return self._finish(result, "planned")

    @_timed
    async def dry_run(self) -> RunResult:
        """Like :meth:`plan`, plus a schema-valid artefact in the evidence folder."""
        result, inventory, essays = await self._rehearse("dry-run")
        evidence = self._evidence(result)
        result.outcome = "dry-run"
        try:
            self._write_artefact(result, evidence, inventory, essays, collected=None)
        finally:
            evidence.close()
        return self._finish(result, "dry-run")

    async def _rehearse(
        self, mode: Literal["plan", "dry-run"]
    ) -> tuple[RunResult, Inventory, dict[str, EssayFile]]:
        """The checks of an execute run without sending anything.

        With an assignment, CJ's anchor count is used (as execute would); without one, the
        local anchors are counted.
        """
        result = self._start(mode)
        # With an assignment CJ's anchors count, so local anchor files are not read.
        inventory = self._inventory(with_anchors=not self.settings.assignment_id)
        result.students = len(inventory.students)
        result.messages.append(f"inventory: {inventory.summary()}")
        cj_anchors = await self._preflight(
            result, mode, anchors_needed=bool(self.settings.assignment_id)
        )
        anchors = cj_anchors if cj_anchors is not None else len(inventory.anchors)
        self._capacity(result, mode, anchors, len(inventory.students))
        essays = {request_essay_id(e.local_id, result.identity): e for e in inventory.students}
        return result, inventory, essays

    @_timed
    async def execute(self) -> RunResult:
        """A student-only CJ batch against CJ-owned anchors (R4)."""
        result = self._start("execute")
        if not self.settings.assignment_id:
            raise ConfigurationError(
                "execute needs an assignment id (CJ owns the anchors and the grade scale)",
                next_step="set --eng5-assignment-id (or ini eng5_assignment_id)",
            )
        if not self.settings.course_id:
            raise ConfigurationError(
                "execute needs a course id (recorded with the batch)",
                next_step="set --eng5-course-id (or ini eng5_course_id)",
            )
        inventory = self._inventory(with_anchors=False)
        anchors = await self._preflight(result, "execute", anchors_needed=True)
        self._capacity(result, "execute", anchors or 0, len(inventory.students))
        essays = {request_essay_id(e.local_id, result.identity): e for e in inventory.students}
        result.students = len(essays)
        return await self._publish_run(result, inventory, essays, self.settings.assignment_id)

    @_timed
    async def attach(self) -> RunResult:
        """Re-attach to an execute batch published earlier (``batch_uuid`` set): nothing is
        uploaded or published; the batch's events are read from the start of the topics."""
        if not self.settings.batch_uuid:
            raise ConfigurationError(
                "attach needs the batch uuid of the earlier run",
                next_step="set --eng5-batch-uuid to the uuid the earlier run printed",
            )
        result = self._start("execute")
        inventory = self._inventory(with_anchors=False)
        result.grade_scale = self.settings.expected_grade_scale or RUNNER_FALLBACK_GRADE_SCALE
        essays = {request_essay_id(e.local_id, result.identity): e for e in inventory.students}
        result.students = len(essays)
        return await self._publish_run(
            result, inventory, essays, self.settings.assignment_id, attach=True
        )

    @_timed
    async def anchor_align(self) -> RunResult:
        """Anchors sent as students in a guest batch; writes the alignment report and plot."""
        result = self._start("anchor-align-test")
        scale = self.settings.expected_grade_scale or RUNNER_FALLBACK_GRADE_SCALE
        inventory = self._inventory(with_anchors=True, grade_scale=scale)
        result.grade_scale = scale
        self._capacity(result, "anchor-align-test", len(inventory.anchors), 0)
        essays = {
            ANCHOR_ALIGN_PREFIX + request_essay_id(key, result.identity, 27): e
            for key, e in anchor_keys(inventory).items()
        }
        result.anchors_sent = len(essays)
        return await self._publish_run(result, inventory, essays, None)

    @_timed
    async def register_anchors(self) -> RunResult:
        """Explicit, opt-in anchor registration for the assignment (never done by execute)."""
        from pytest_eng5.runner.anchor_registration import (
            AnchorFile,
            not_persisted_error,
            register_anchors,
        )

        result = self._start("register-anchors")
        assignment_id = self._require_assignment("register-anchors")
        async with self._admin_client() as client:
            info = await self._assignment_info(client, assignment_id, "register-anchors")
            result.grade_scale = info.grade_scale
            inventory = self._inventory(with_anchors=True, grade_scale=info.grade_scale)
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
                expected_grade_scale=self.settings.expected_grade_scale,
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
        return self._finish(result, "registered")

    async def verify_auth(self) -> dict[str, Any]:
        """The claims of the admin token in use (never the token) and whether CJ accepts it."""
        async with self._admin_client() as client:
            report: dict[str, Any] = await client.verify_token()
        return report

    # ----------------------------------------------------------------- steps

    def _start(self, mode: str) -> RunResult:
        identity = BatchIdentity.new(self.settings.batch_label, self.settings.batch_uuid)
        result = RunResult(mode=mode, identity=identity)
        result.assignment_id = self.settings.assignment_id
        self.last_result = result
        ensure_budget_setting(self.settings.max_comparisons)
        return result

    def _finish(self, result: RunResult, outcome: str) -> RunResult:
        result.outcome = outcome
        result.stop_clock()
        return result

    def _inventory(self, *, with_anchors: bool, grade_scale: str | None = None) -> Inventory:
        return collect_inventory(
            self.settings.assets,
            grade_scale=grade_scale
            or self.settings.expected_grade_scale
            or RUNNER_FALLBACK_GRADE_SCALE,
            with_anchors=with_anchors,
        )

    def _require_assignment(self, mode: str) -> str:
        if not self.settings.assignment_id:
            raise ConfigurationError(
                f"{mode} needs an assignment id", next_step="set --eng5-assignment-id"
            )
        return self.settings.assignment_id

    def _admin_client(self) -> Any:
        from pytest_eng5.runner.auth import resolve_admin_token
        from pytest_eng5.runner.cj_admin import CJAdminClient

        if not self.endpoints.cj_url:
            raise ConfigurationError(
                "no CJ service URL to run the CJ admin preflight against",
                next_step="set --eng5-cj-url or CJ_SERVICE_URL (or use the embedded stack)",
            )
        env = self.endpoints.env
        return CJAdminClient(self.endpoints.cj_url, token=resolve_admin_token(env), env=env)

    async def _assignment_info(self, client: Any, assignment_id: str, mode: PreflightMode) -> Any:
        from pytest_eng5.runner.preflight import assignment_preflight

        return await assignment_preflight(
            client,
            assignment_id,
            expected_grade_scale=self.settings.expected_grade_scale,
            mode=mode,
            rubric_override=self.settings.rubric_file is not None,
        )

    async def _preflight(
        self, result: RunResult, mode: PreflightMode, *, anchors_needed: bool
    ) -> int | None:
        """R3 (+R4 for execute): resolve the assignment in CJ; return CJ's anchor count."""
        from pytest_eng5.runner.preflight import anchor_preflight

        if not self.settings.assignment_id:
            result.grade_scale = self.settings.expected_grade_scale or RUNNER_FALLBACK_GRADE_SCALE
            return None
        async with self._admin_client() as client:
            info = await self._assignment_info(client, self.settings.assignment_id, mode)
            result.grade_scale = info.grade_scale
            result.messages.append(
                f"assignment {info.assignment_id}: grade_scale={info.grade_scale}, "
                f"context_origin={info.context_origin}, student prompt "
                f"{'present' if info.student_prompt_present else 'missing'}"
            )
            if not anchors_needed:
                return None
            anchors = await anchor_preflight(client, self.settings.assignment_id)
        result.anchors_in_cj = anchors.anchor_count
        return int(anchors.anchor_count)

    def _capacity(self, result: RunResult, mode: RunMode, anchors: int, students: int) -> None:
        report = ensure_comparison_capacity(
            mode=mode,
            anchor_count=anchors,
            student_count=students,
            max_comparisons=self.settings.max_comparisons,
            cj_cap=self.settings.cj_max_comparisons,
        )
        result.capacity = report
        if report.warning:
            result.messages.append("warning: " + report.warning)

    def _evidence(self, result: RunResult) -> Any:
        from pytest_eng5.runner.evidence import EvidenceFolder

        evidence = EvidenceFolder(self.settings.evidence_dir, result.identity)
        result.evidence_dir = evidence.folder
        evidence.log.info(
            "run started",
            extra={
                "mode": result.mode,
                "batch_uuid": result.batch_uuid,
                "batch_label": result.identity.batch_label,
            },
        )
        return evidence

    def _llm_overrides(self, mode: str) -> LLMConfigOverrides | None:
        s = self.settings
        system_prompt = load_prompt_file(s.system_prompt_file, "system prompt")
        rubric = load_prompt_file(s.rubric_file, "rubric")
        if mode == "anchor-align-test" and system_prompt is None:
            system_prompt = BUILTIN_SYSTEM_PROMPT
        values = {
            "provider_override": s.llm_provider,
            "model_override": s.llm_model,
            "temperature_override": s.llm_temperature,
            "max_tokens_override": s.llm_max_tokens,
            "system_prompt_override": system_prompt,
            "judge_rubric_override": rubric,
            "reasoning_effort": s.reasoning_effort,
            "output_verbosity": s.output_verbosity,
        }
        if all(v is None for v in values.values()):
            return None
        return LLMConfigOverrides(**values)

    async def _upload(
        self, result: RunResult, essays: Mapping[str, EssayFile], evidence: Any
    ) -> dict[str, str]:
        from pytest_eng5.runner.content import ContentClient
        from pytest_eng5.runner.upload_cache import UploadCache, UploadItem, upload_with_cache

        if not self.endpoints.content_url:
            raise ConfigurationError(
                "no Content Service URL to upload essays to",
                next_step="set --eng5-content-url or CONTENT_SERVICE_URL",
            )
        cache = UploadCache(self.settings.upload_cache_path, self.endpoints.content_url)
        items = [
            UploadItem(key_sha256=e.text_sha256, name=e.name, data=e.text.encode())
            for e in essays.values()
        ]
        async with ContentClient(self.endpoints.content_url) as client:
            outcome = await upload_with_cache(
                cache,
                client,
                items,
                force_reupload=self.settings.force_reupload,
                verify_cached=self.settings.verify_uploads,
            )
        result.uploaded, result.reused = outcome.uploaded, outcome.reused
        if outcome.ignored_reason:
            result.messages.append(f"upload cache ignored ({outcome.ignored_reason})")
        evidence.log.info(
            "uploads done",
            extra={
                "uploaded": outcome.uploaded,
                "reused": outcome.reused,
                "cache": str(self.settings.upload_cache_path),
            },
        )
        return {eid: outcome.storage_ids[e.text_sha256] for eid, e in essays.items()}

    async def _publish_run(
        self,
        result: RunResult,
        inventory: Inventory,
        essays: dict[str, EssayFile],
        assignment_id: str | None,
        *,
        attach: bool = False,
    ) -> RunResult:
        from pytest_eng5.runner.envelope import compose_request

        s = self.settings
        overrides = self._llm_overrides(result.mode)
        evidence = self._evidence(result)
        try:
            if attach:
                return await self._await_run(result, evidence, inventory, essays, overrides)
            storage_ids = await self._upload(result, essays, evidence)
            refs = [
                EssayProcessingInputRefV1(essay_id=eid, text_storage_id=storage_ids[eid])
                for eid in essays
            ]
            envelope = compose_request(
                result.identity,
                refs,
                language=s.language,
                course_code=s.course_code,
                assignment_id=assignment_id,
                user_id=s.user_id,
                org_id=s.org_id,
                llm_overrides=overrides,
                runner_mode=result.mode,
                max_comparisons=s.max_comparisons,
                llm_batching_mode=s.llm_batching_mode,
            )
            evidence.write_request(envelope)
            if self.hooks.before_publish:
                self.hooks.before_publish(envelope, result.identity)
            if s.no_kafka:
                result.outcome = "not-published"
                self._write_artefact(result, evidence, inventory, essays, None)
                return self._finish(result, "not-published")
            return await self._await_run(
                result, evidence, inventory, essays, overrides, envelope=envelope
            )
        except Eng5Error as exc:
            result.error = result.error or str(exc)
            evidence.log.error("run stopped", extra={"error": exc.message, "kind": exc.kind})
            raise
        finally:
            evidence.close()
            result.stop_clock()

    async def _await_run(
        self,
        result: RunResult,
        evidence: Any,
        inventory: Inventory,
        essays: dict[str, EssayFile],
        overrides: LLMConfigOverrides | None,
        *,
        envelope: EventEnvelope | None = None,
    ) -> RunResult:
        """Position the collector, publish ``envelope`` (None: re-attach), await, record."""
        from pytest_eng5.runner.collector import BatchCollector
        from pytest_eng5.runner.kafka_io import publish_request

        s = self.settings
        collector = BatchCollector(
            result.identity,
            consumer_kwargs=dict(self.endpoints.consumer_kwargs),
            evidence=evidence,
            completion_grace=s.completion_grace,
            on_event=self._on_event(result),
            progress=self.hooks.on_progress,
            request_correlation_id=envelope.correlation_id if envelope else None,
            from_beginning=envelope is None,
        )
        try:
            if s.await_completion or envelope is None:
                await collector.prepare()
            if envelope is not None:
                result.outcome = "publish-failed"
                await publish_request(
                    envelope,
                    producer_kwargs=dict(self.endpoints.producer_kwargs),
                    timeout=min(30.0, s.completion_timeout),
                )
                result.published = True
                result.outcome = "published"
                evidence.log.info("request published", extra={"batch_uuid": result.batch_uuid})
                if not s.await_completion:
                    self._write_artefact(result, evidence, inventory, essays, None)
                    return self._finish(result, "published")
            warm_up = asyncio.create_task(asyncio.to_thread(preload, plotting=True))
            try:
                collected = await collector.wait(s.completion_timeout)
            except (Eng5Error, asyncio.CancelledError, KeyboardInterrupt) as exc:
                # Ctrl-C arrives as a cancellation: keep what was gathered, then go on stopping.
                warm_up.cancel()
                partial = collector.collected
                kind = exc.kind if isinstance(exc, Eng5Error) else "interrupted"
                result.outcome = {"batch-failed": "failed", "interrupted": "interrupted"}.get(
                    kind, "timeout"
                )
                result.error = str(exc) or kind
                self._absorb(result, partial)
                if s.auto_extract_db:
                    result.post_run["eng5_db_extract"] = {
                        "status": "skipped",
                        "reason": f"no successful completion observed ({kind})",
                    }
                self._write_artefact(result, evidence, inventory, essays, partial)
                raise
        finally:
            await collector.close()
        await warm_up
        self._absorb(result, collected)
        result.outcome = "completed"
        if result.mode == "anchor-align-test":
            self._alignment(result, evidence, essays, collected, overrides)
        self._write_artefact(result, evidence, inventory, essays, collected)
        if s.auto_extract_db:
            await self._extract(result, evidence, inventory, essays, collected)
        check_gates(self.settings, result.statistics, result.alignment, result.batch_uuid)
        return self._finish(result, "completed")

    def _on_event(self, result: RunResult) -> Callable[[Any], None] | None:
        hook = self.hooks.on_event
        if hook is None:
            return None

        def forward(event: Any) -> None:
            hook(event, result.identity)

        return forward

    def _absorb(self, result: RunResult, collected: Any) -> None:
        """Counts, statistics and projections from what the collector gathered."""
        if collected is None:
            return
        found = judgements(collected.callbacks)
        result.ignored_events = dict(collected.counts)
        result.events = list(collected.envelopes)
        result.comparisons = len(collected.callbacks)
        result.failed_comparisons = found.failed
        result.statistics = run_statistics(found.comparisons)
        result.projections = student_projections(collected.result)

    def _alignment(
        self,
        result: RunResult,
        evidence: Any,
        essays: Mapping[str, EssayFile],
        collected: Any,
        overrides: LLMConfigOverrides | None,
    ) -> None:
        found = judgements(collected.callbacks, among=essays)
        alignment = anchor_alignment(
            essays, found, result.grade_scale or RUNNER_FALLBACK_GRADE_SCALE
        )
        write_alignment(
            alignment,
            evidence.folder,
            batch_uuid=result.batch_uuid,
            batch_label=result.identity.batch_label,
            system_prompt=overrides.system_prompt_override if overrides else None,
            rubric=overrides.judge_rubric_override if overrides else None,
        )
        result.alignment = alignment.to_dict()

    def _write_artefact(
        self,
        result: RunResult,
        evidence: Any,
        inventory: Inventory,
        essays: Mapping[str, EssayFile],
        collected: Any,
    ) -> None:
        from pytest_eng5.runner.artefact import build_artefact, write_artefact

        s = self.settings
        inputs = artefact_inputs(inventory, essays)
        summary = {
            "assignment_id": s.assignment_id,
            "course_id": s.course_id,
            "grade_scale": result.grade_scale,
            "course_code": s.course_code,
            "language": s.language,
            "max_comparisons": s.max_comparisons,
            "stack": s.stack,
            "git_sha": _git_sha(),
            **variant_summary(s),
        }
        doc = build_artefact(
            result.identity,
            mode=result.mode,
            settings_summary=summary,
            inputs=inputs,
            collected=collected,
            statistics=result.statistics or None,
            post_run=result.post_run or None,
            outcome=_artefact_outcome(result.outcome, collected),
        )
        path = evidence.path("assessment_run.json")
        write_artefact(doc, path)
        result.artefact_path = path
        if collected is not None:
            from pytest_eng5.runner.report import write_run_report

            write_run_report(doc, evidence.folder)

    async def _extract(
        self,
        result: RunResult,
        evidence: Any,
        inventory: Inventory,
        essays: Mapping[str, EssayFile],
        collected: Any,
    ) -> None:
        """R5: extraction after success; a failure is its own outcome, the batch stays done."""
        from pytest_eng5.runner.extraction import extract_batch

        dsn = self.endpoints.postgres_dsn or dsn_from_env(self.endpoints.env)
        if collected is None or collected.completion is None:
            result.post_run["eng5_db_extract"] = {
                "status": "skipped",
                "reason": "no completion observed",
            }
            return
        started = time.monotonic()
        try:
            if not dsn:
                raise ExtractionError(
                    "no CJ database to extract from",
                    next_step="set HULEEDU_DB_HOST/PORT/USER/PASSWORD or --eng5-postgres-dsn",
                )
            report = await extract_batch(dsn, result.batch_uuid, evidence.folder)
        except ExtractionError as exc:
            result.post_run["eng5_db_extract"] = {
                "status": "failed",
                "batch_completed": True,
                "error": exc.message,
                "duration_s": round(time.monotonic() - started, 3),
            }
            self._write_artefact(result, evidence, inventory, essays, collected)
            raise
        result.post_run["eng5_db_extract"] = {
            **report.to_post_run(),
            "batch_completed": True,
            "duration_s": round(time.monotonic() - started, 3),
        }
        self._write_artefact(result, evidence, inventory, essays, collected)


@functools.cache
def _git_sha() -> str:
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


def _artefact_outcome(outcome: str, collected: Any) -> str:
    """The artefact's outcome vocabulary (snake case; a missing rich result is told apart)."""
    if outcome == "completed" and collected is not None and collected.result_missing:
        return "completed_result_missing"
    renamed = {"failed": "batch_failed", "interrupted": "error"}
    return renamed.get(outcome, outcome.replace("-", "_"))
