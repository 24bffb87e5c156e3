"""A batch on Kafka: position the collector, publish the request (or re-attach), await the
batch, and judge what came back (R1 after the run, alignment, R5 extraction, gates)."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Mapping

from aiokafka import TopicPartition

from pytest_eng5.contracts import EventEnvelope
from pytest_eng5.core import RUNNER_FALLBACK_GRADE_SCALE, Endpoints, dsn_from_env
from pytest_eng5.core.outcome import Outcome
from pytest_eng5.errors import ExtractionError, HookError, UnusableBatchError
from pytest_eng5.runner.analysis import (
    anchor_alignment,
    check_gates,
    comparison_graph,
    judgements,
    missing_essays,
    preload,
    run_statistics,
    student_projections,
    write_alignment,
)
from pytest_eng5.runner.collector import BatchCollector, CollectedEvent, CollectedRun
from pytest_eng5.runner.config import RunHooks
from pytest_eng5.runner.extraction import extract_batch
from pytest_eng5.runner.finalise import RunState, finish, write_run_record
from pytest_eng5.runner.kafka_io import publish_request
from pytest_eng5.runner.record import TopicOffset
from pytest_eng5.runner.results import RunResult

_PUBLISH_TIMEOUT_LIMIT = 30.0


async def publish_and_await(
    state: RunState,
    endpoints: Endpoints,
    hooks: RunHooks,
    envelope: EventEnvelope | None,
    *,
    start_at: Mapping[TopicPartition, int] | None = None,
) -> RunResult:
    """Publish ``envelope`` (None: re-attach, reading from ``start_at`` or the beginning),
    await the batch and record it. Raises for every ending that is not a usable batch."""
    config, result = state.config, state.result
    collector = BatchCollector(
        result.identity,
        consumer_kwargs=dict(endpoints.consumer_kwargs),
        evidence=state.evidence,
        completion_grace=config.completion_grace,
        on_event=_event_forwarder(hooks, result),
        progress=hooks.on_progress,
        request_correlation_id=envelope.correlation_id if envelope else None,
        from_beginning=envelope is None,
        start_at=start_at,
    )
    try:
        # Positioned before publishing also without awaiting: a later attach starts there.
        await collector.prepare()
        state.collector_offsets = [
            TopicOffset(topic=tp.topic, partition=tp.partition, offset=offset)
            for tp, offset in sorted(collector.start_offsets.items())
        ]
        if envelope is not None:
            await _publish(state, endpoints, envelope)
            if not config.await_completion:
                write_run_record(state)
                finish(state)
                return result
        # A daemon thread, not the loop's executor: a run stopped by Ctrl-C must not wait
        # for an import in progress before the process can exit.
        warm_up = threading.Thread(
            target=preload,
            kwargs={"plotting": True},  # every completed run plots its scale (scale.png)
            name="eng5-preload",
            daemon=True,
        )
        warm_up.start()
        state.collected = collector.collected  # partial until the wait returns
        collected = await collector.wait(config.completion_timeout)
    except BaseException as exc:
        if result.published:
            absorb(state, collector.collected)
        if config.auto_extract_db and result.published:
            result.post_run["eng5_db_extract"] = {
                "status": "skipped",
                "reason": f"no successful completion observed ({type(exc).__name__})",
            }
        raise
    finally:
        await collector.close()
    await asyncio.to_thread(warm_up.join)
    absorb(state, collected)
    result.outcome = (
        Outcome.COMPLETED_RESULT_MISSING if collected.result_missing else Outcome.COMPLETED
    )
    ensure_usable(state)
    if result.mode == "anchor-align-test":
        _align(state, collected)
    write_run_record(state)
    if config.auto_extract_db:
        await _extract(state, endpoints, collected)
    notes = check_gates(
        config.gates, result.mode, result.statistics, result.alignment, result.batch_uuid
    )
    result.messages.extend(notes)
    finish(state)
    return result


async def _publish(state: RunState, endpoints: Endpoints, envelope: EventEnvelope) -> None:
    result, evidence = state.result, state.evidence
    info = await publish_request(
        envelope,
        producer_kwargs=dict(endpoints.producer_kwargs),
        timeout=min(_PUBLISH_TIMEOUT_LIMIT, state.config.completion_timeout),
    )
    result.published = True
    result.publish = TopicOffset(topic=info.topic, partition=info.partition, offset=info.offset)
    result.outcome = Outcome.PUBLISHED
    if evidence is not None:
        evidence.log.info(
            "request published",
            extra={
                "batch_uuid": result.batch_uuid,
                "topic": info.topic,
                "partition": info.partition,
                "offset": info.offset,
            },
        )


def _event_forwarder(hooks: RunHooks, result: RunResult) -> Callable[[CollectedEvent], None] | None:
    hook = hooks.on_event
    if hook is None:
        return None

    def forward(event: CollectedEvent) -> None:
        try:
            hook(event, result.identity)
        except Exception as exc:
            raise HookError(
                f"the event hook (pytest_eng5_event_received under pytest) raised "
                f"{type(exc).__name__}: {exc} on a {event.kind} event of batch "
                f"{result.batch_uuid}",
                next_step="fix the hook; the batch may still be running in CJ, so re-attach "
                "with this batch uuid instead of publishing again",
            ) from exc

    return forward


def absorb(state: RunState, collected: CollectedRun) -> None:
    """Counts, statistics, projections and the comparison graph from what was gathered."""
    result = state.result
    state.collected = collected
    found = judgements(collected.callbacks)
    result.ignored_events = dict(collected.counts)
    result.events = list(collected.envelopes)
    result.comparisons = len(collected.callbacks)
    result.failed_comparisons = found.failed
    result.statistics = run_statistics(found.comparisons)
    result.projections = student_projections(collected.result)
    result.comparison_graph = comparison_graph(state.essays, found.comparisons)
    result.missing_essay_ids = missing_essays(state.essays, collected.result)


def ensure_usable(state: RunState) -> None:
    """After the run: a batch without comparisons, with essays CJ did not score, or whose
    comparisons do not connect every essay, is not a success."""
    result = state.result
    graph = result.comparison_graph
    label = f"batch {result.batch_uuid} ({result.identity.batch_label})"
    evidence = f" Evidence: {result.evidence_dir}." if result.evidence_dir else ""
    if graph is None or graph.comparisons == 0:
        raise UnusableBatchError(
            f"CJ completed {label} without a single successful comparison "
            f"({result.failed_comparisons} failed callbacks)",
            next_step="check the LLM provider and judge (error callbacks are in events.jsonl) "
            f"and that max comparisons allows comparisons.{evidence}",
            outcome=Outcome.NO_COMPARISONS,
        )
    if result.missing_essay_ids:
        shown = ", ".join(result.missing_essay_ids[:10])
        more = len(result.missing_essay_ids) - 10
        raise UnusableBatchError(
            f"CJ scored {len(state.essays) - len(result.missing_essay_ids)} of "
            f"{len(state.essays)} essays sent in {label}; missing: {shown}"
            + (f" (+{more} more)" if more > 0 else ""),
            next_step="CJ drops essays whose text it cannot fetch from the Content Service: "
            f"check those uploads (the upload cache, --eng5-verify-uploads) and re-run.{evidence}",
            outcome=Outcome.ESSAYS_MISSING,
            missing=tuple(result.missing_essay_ids),
        )
    if graph.components > 1:
        raise UnusableBatchError(
            f"the comparisons of {label} do not connect its essays: {graph.components} separate "
            f"groups over {graph.essays} essays ({graph.comparisons} comparisons, N_CR "
            f"{graph.n_cr:g}), so scores of different groups cannot be compared",
            next_step="raise max comparisons (at least essays - 1 are needed to connect them; "
            f"about 10 per essay for stable scores).{evidence}",
            outcome=Outcome.DISCONNECTED_GRAPH,
        )


def _align(state: RunState, collected: CollectedRun) -> None:
    result, overrides, evidence = state.result, state.overrides, state.evidence
    found = judgements(collected.callbacks, among=state.essays)
    alignment = anchor_alignment(
        state.essays, found, result.grade_scale or RUNNER_FALLBACK_GRADE_SCALE
    )
    if evidence is not None:
        write_alignment(
            alignment,
            evidence.folder,
            batch_uuid=result.batch_uuid,
            batch_label=result.identity.batch_label,
            system_prompt=overrides.system_prompt_override if overrides else None,
            rubric=overrides.judge_rubric_override if overrides else None,
        )
    result.alignment = alignment.to_dict()


async def _extract(state: RunState, endpoints: Endpoints, collected: CollectedRun) -> None:
    """R5: extraction after success; a failure is its own outcome, the batch stays done."""
    result, evidence = state.result, state.evidence
    dsn = endpoints.postgres_dsn or dsn_from_env(endpoints.env)
    if collected.completion is None or evidence is None:
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
        raise
    result.post_run["eng5_db_extract"] = {
        **report.to_post_run(),
        "batch_completed": True,
        "duration_s": round(time.monotonic() - started, 3),
    }
    write_run_record(state)
