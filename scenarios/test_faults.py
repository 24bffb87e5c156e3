"""Faults: each has a defined outcome, and nothing already done is lost."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from pydantic_core import to_jsonable_python

from pytest_eng5.errors import (
    AwaitTimeoutError,
    BatchFailedError,
    BrokerLostError,
    HookError,
    PublishError,
    UnusableBatchError,
    UploadError,
)
from pytest_eng5.runner.config import RunHooks
from pytest_eng5.runner.seeding import seed_assignment_at
from pytest_eng5.sample_data import SAMPLE_ASSETS, SAMPLE_COURSE_ID
from pytest_eng5.stack.ports import free_port

pytestmark = pytest.mark.eng5_scenario("faults")
HERE = Path(__file__).resolve().parent


def events(result) -> list[dict]:
    path = result.evidence_dir / "events.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def runner_status(result) -> dict:
    """What the run's artefact records of how it ended."""
    return json.loads(result.artefact_path.read_text())["validation"]["runner_status"]


def test_broker_down_at_publish(eng5_runner_factory, request_watch, sample, own_cache) -> None:
    runner = eng5_runner_factory(**sample, **own_cache, no_await=True, completion_timeout=3)
    dead = f"127.0.0.1:{free_port()}"
    runner.aio.endpoints = dataclasses.replace(
        runner.aio.endpoints,
        producer_kwargs={**runner.aio.endpoints.producer_kwargs, "bootstrap_servers": dead},
    )
    with pytest.raises(PublishError) as info:
        runner.execute()
    assert dead in str(info.value)
    result = runner.last_result
    assert result.outcome == "publish_failed"
    assert not result.published
    assert (result.evidence_dir / "request.json").is_file(), "the envelope is kept for a retry"
    assert result.uploaded + result.reused == 24, "uploads done before the failure are kept"
    assert request_watch.new_requests() == []


def test_broker_stops_during_await(eng5_stack_factory, eng5_stack_runner_factory, tmp_path) -> None:
    """The broker going away mid-await is an infrastructure fault, noticed while awaiting: not a
    batch that ran out of time (the timeout is far away)."""
    stack = eng5_stack_factory(faults={"cj-worker": {"judge_delay_ms": 150}})
    try:
        assignment = "fault-broker-stop"
        asyncio.run(
            seed_assignment_at(stack.cj_url, stack.env, SAMPLE_ASSETS, assignment_id=assignment)
        )
        broker = next(p for p in stack.infrastructure.processes if "tansu" in p.name.lower())
        stopped: list[str] = []

        def stop_broker_on_first_callback(event, identity) -> None:
            if event.kind == "callback" and not stopped:
                stopped.append(event.kind)
                broker.stop(timeout=5)

        runner = eng5_stack_runner_factory(
            stack,
            hooks=RunHooks(on_event=stop_broker_on_first_callback),
            assignment_id=assignment,
            course_id=SAMPLE_COURSE_ID,
            max_comparisons=40,
            completion_timeout=120,
            cache_file=tmp_path / "cache.json",
        )
        with pytest.raises(BrokerLostError) as info:
            runner.execute()
    finally:
        eng5_stack_factory.stop(stack)  # its broker is gone: no later test may get it
    assert not isinstance(info.value, AwaitTimeoutError)
    assert stack.kafka.bootstrap in info.value.message
    assert "re-attach" in info.value.next_step
    result = runner.last_result
    assert result.outcome == "infrastructure_error"
    assert len(events(result)) >= 1, "what arrived before the broker stopped is kept"
    status = runner_status(result)
    assert status["outcome"] == "infrastructure_error"
    assert "stopped answering while the batch was awaited" in status["failure_reason"]


def test_malformed_duplicate_and_foreign_callbacks(
    eng5_runner_factory, clean_faults, sample, own_cache
) -> None:
    clean_faults.set_faults(
        "cj-worker", duplicate_callback_rate=0.3, malformed_callback_rate=0.1, seed=7
    )
    # lost (malformed) callbacks need a budget that still connects every essay
    noisy = {**sample, **own_cache, "max_comparisons": 96}
    first = eng5_runner_factory(**noisy, batch_label="noisy-1")
    second = eng5_runner_factory(**noisy, batch_label="noisy-2")

    async def both():
        return await asyncio.gather(first.aio.execute(), second.aio.execute())

    for result in asyncio.run(both()):
        assert result.outcome == "completed"
        assert result.ignored_events["duplicates"] > 0
        assert result.ignored_events["malformed"] > 0
        assert result.ignored_events["foreign"] > 0
        kept = events(result)
        assert any(e.get("malformed_reason") for e in kept), "malformed events are kept"
        assert any(e.get("duplicate") for e in kept)


def test_failed_event_ends_the_wait_at_once(
    eng5_runner_factory, clean_faults, sample, own_cache
) -> None:
    clean_faults.set_faults("cj-worker", force_failure=True)
    runner = eng5_runner_factory(**sample, **own_cache, completion_timeout=60)
    with pytest.raises(BatchFailedError) as info:  # not AwaitTimeoutError: no waiting it out
        runner.execute()
    assert info.value.reason
    result = runner.last_result
    assert result.outcome == "batch_failed"
    assert runner_status(result)["outcome"] == "batch_failed"
    assert any(e["kind"] == "failed" for e in events(result))


def test_content_5xx_mid_upload_then_resume(
    eng5_runner_factory, clean_faults, request_watch, sample, own_cache
) -> None:
    clean_faults.set_faults(
        "content", http_pass_first=7, http_5xx_count=1000, http_path_prefix="/v1/content"
    )
    with pytest.raises(UploadError) as info:
        eng5_runner_factory(**sample, **own_cache).execute()
    assert info.value.uploaded == 7
    assert request_watch.new_requests() == [], "nothing is published with missing uploads"
    clean_faults.clear_faults()
    result = eng5_runner_factory(**sample, **own_cache).execute()
    assert result.outcome == "completed"
    assert (result.uploaded, result.reused) == (17, 7)


def test_corrupt_cache_is_set_aside_and_rebuilt(eng5_runner_factory, sample, own_cache) -> None:
    cache_file = own_cache["cache_file"]
    cache_file.write_text("{ this is not json", encoding="utf-8")
    result = eng5_runner_factory(**sample, **own_cache, no_kafka=True).execute()
    assert result.uploaded == 24
    assert cache_file.with_name(cache_file.name + ".corrupt").read_text() == "{ this is not json"
    assert len(json.loads(cache_file.read_text())["entries"]) == 24
    assert any("upload cache ignored" in m for m in result.messages)


def test_two_runs_in_parallel_share_one_cache(eng5_runner_factory, sample, own_cache) -> None:
    runners = [eng5_runner_factory(**sample, **own_cache, no_kafka=True) for _ in range(2)]

    async def both():
        return await asyncio.gather(*(r.aio.execute() for r in runners))

    results = asyncio.run(both())
    assert all(r.outcome == "not_published" for r in results)
    assert len(json.loads(own_cache["cache_file"].read_text())["entries"]) == 24
    again = eng5_runner_factory(**sample, **own_cache, no_kafka=True).execute()
    assert again.uploaded == 0, "both runs' uploads were merged into the cache"


def test_sigint_during_await_keeps_the_evidence(
    eng5_stack, eng5_settings, clean_faults, sample, tmp_path
) -> None:
    clean_faults.set_faults("cj-worker", judge_delay_ms=400)  # the batch outlasts the signal
    evidence = tmp_path / "evidence"
    settings = eng5_settings.merged(
        **sample,
        evidence_dir=evidence,
        cache_file=tmp_path / "cache.json",
        completion_timeout=60,
    )
    endpoints = eng5_stack.endpoints()
    spec = {
        "settings": to_jsonable_python(settings.run_values()),
        "endpoints": {**dataclasses.asdict(endpoints), "env": dict(endpoints.env)},
    }
    spec_file = tmp_path / "run-spec.json"  # holds the JWT secret: a private file, not argv
    spec_file.touch(mode=0o600)
    spec_file.write_text(json.dumps(spec), encoding="utf-8")
    child = subprocess.Popen(
        [sys.executable, str(HERE / "interrupt_child.py"), str(spec_file)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        event_file = _await_first_event(child, evidence, timeout=60)
        state = signal_state(child.pid)
        child.send_signal(signal.SIGINT)
        output, _ = child.communicate(timeout=30)
        output += f"\n[before the signal: {state}]"
    finally:
        if child.poll() is None:
            child.kill()
    assert child.returncode == 130, output
    assert "interrupted outcome=interrupted" in output
    folder = event_file.parent
    lines = folder.joinpath("events.jsonl").read_text().splitlines()
    assert lines
    assert all(json.loads(line) for line in lines)
    assert (
        json.loads(folder.joinpath("request.json").read_text())["data"]["entity_id"] == folder.name
    )
    doc = json.loads(folder.joinpath("assessment_run.json").read_text())
    assert doc["validation"]["runner_status"]["outcome"] == "interrupted"


INTERRUPTED_MODULE = """
def test_interrupted_run(eng5_stack, eng5_runner_factory, eng5_sample_assignment):
    eng5_stack.set_faults("cj-worker", judge_delay_ms=400)
    eng5_runner_factory(
        assignment_id=eng5_sample_assignment.assignment_id,
        course_id=eng5_sample_assignment.course_id,
        max_comparisons=40,
        completion_timeout=120,
    ).execute()
"""


def interrupt_session(tmp_path: Path, signum: int, *pytest_args: str) -> tuple[int, str, Path]:
    """Run INTERRUPTED_MODULE in its own session and process group, send ``signum`` to the
    whole group (as a terminal's Ctrl-C does) at the batch's first event; the exit code, the
    output and the batch's evidence folder."""
    (tmp_path / "test_interrupted.py").write_text(INTERRUPTED_MODULE, encoding="utf-8")
    evidence = tmp_path / "evidence"
    args = ["test_interrupted.py", *pytest_args, "-p", "no:cacheprovider"]
    child = subprocess.Popen(
        [sys.executable, "-m", "pytest", *args, "--eng5-evidence-dir=evidence"],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        event_file = _await_first_event(child, evidence, timeout=120)
        state = signal_state(child.pid)
        os.killpg(child.pid, signum)
        output, _ = child.communicate(timeout=60)
        output += f"\n[before the signal: {state}]"
    finally:
        if child.poll() is None:
            os.killpg(child.pid, signal.SIGKILL)
            child.wait(timeout=30)
    return child.returncode, output, event_file.parent


def assert_interrupted_and_reattachable(output: str, folder: Path, *pytest_args: str) -> None:
    batch_uuid = folder.name
    status = json.loads((folder / "assessment_run.json").read_text())["validation"]["runner_status"]
    assert status["outcome"] == "interrupted"
    assert status["partial_data"] is True
    assert "interrupted" in status["failure_reason"]
    assert batch_uuid in status["failure_reason"]
    log = [json.loads(line) for line in (folder / "run.log").read_text().splitlines()]
    assert any(line["event"] == "run interrupted" for line in log)
    summary = output[output.index("eng5 runs") :]
    assert batch_uuid in summary
    assert "interrupted" in summary
    command = shlex.join(
        [
            "pytest",
            *pytest_args,
            "-p",
            "no:cacheprovider",
            "--eng5-evidence-dir=evidence",
            "test_interrupted.py::test_interrupted_run",
            f"--eng5-batch-uuid={batch_uuid}",
        ]
    )
    assert f"eng5: batch {batch_uuid} was interrupted; re-attach to it with:" in summary
    assert command in summary


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_during_a_batch_is_recorded_and_reported(tmp_path, signum) -> None:
    """A pytest session stopped mid-batch: outcome interrupted with a reason, a run.log line,
    the partial record, and the summary with the batch uuid and the re-attach command."""
    returncode, output, folder = interrupt_session(tmp_path, signum)
    assert returncode == pytest.ExitCode.INTERRUPTED, output
    assert_interrupted_and_reattachable(output, folder)


def test_ctrl_c_under_xdist_still_names_the_batch_and_the_reattach_command(tmp_path) -> None:
    """Under ``pytest -n`` the interrupted test runs on a worker and sends no report: the
    controller's summary still has the batch and how to re-attach to it."""
    returncode, output, folder = interrupt_session(tmp_path, signal.SIGINT, "-n", "1")
    assert returncode == pytest.ExitCode.INTERRUPTED, output
    assert_interrupted_and_reattachable(output, folder, "-n", "1")


def test_a_raising_event_hook_ends_the_run_recorded_as_error(
    eng5_runner_factory, sample, own_cache
) -> None:
    """Not stuck at ``published`` and not without a record: the run says what the hook did."""

    def broken_hook(event, identity) -> None:
        raise ValueError("a bug in the hook")

    runner = eng5_runner_factory(**sample, **own_cache, hooks=RunHooks(on_event=broken_hook))
    with pytest.raises(HookError, match="a bug in the hook") as info:
        runner.execute()
    assert isinstance(info.value.__cause__, ValueError)
    result = runner.last_result
    assert result.outcome == "error"
    status = runner_status(result)
    assert status["outcome"] == "error"
    assert "ValueError: a bug in the hook" in status["failure_reason"]
    assert "re-attach" in status["failure_reason"]


def test_essays_cj_could_not_fetch_are_named_not_completed(
    eng5_runner_factory, clean_faults, sample, own_cache
) -> None:
    """HuleEdu drops an essay whose text it cannot fetch; the run must not call that done."""
    uploaded = eng5_runner_factory(**sample, **own_cache, no_kafka=True).execute()
    request = json.loads((uploaded.evidence_dir / "request.json").read_text())
    lost = request["data"]["essays_for_cj"][0]
    # the first GET is the runner checking its cached id (the embedded stack's ids are always
    # checked before reuse); every later one, CJ's fetch included, fails
    clean_faults.set_faults(
        "content",
        http_pass_first=1,
        http_5xx_count=1000,
        http_path_prefix=f"/v1/content/{lost['text_storage_id']}",
    )
    runner = eng5_runner_factory(**sample, **own_cache)
    with pytest.raises(UnusableBatchError, match="missing") as info:
        runner.execute()
    result = runner.last_result
    assert result.outcome == "essays_missing"
    assert len(result.missing_essay_ids) == 1
    sent_id = result.missing_essay_ids[0]
    assert sent_id.rsplit("-", 1)[0] == lost["essay_id"].rsplit("-", 1)[0]
    assert info.value.missing == (sent_id,)
    status = runner_status(result)
    assert (status["outcome"], status["missing_essay_ids"]) == ("essays_missing", [sent_id])


def signal_state(pid: int) -> str:
    """The child's and this process's blocked/ignored/caught signal masks, for a failure
    message: a child that ignores or blocks the signal finishes its batch instead."""
    masks = []
    for who, path in (("child", f"/proc/{pid}/status"), ("test", "/proc/self/status")):
        try:
            lines = Path(path).read_text().splitlines()
        except OSError:
            continue
        found = [line.replace("\t", "=") for line in lines if line.startswith(("SigBlk", "SigIgn"))]
        masks.append(f"{who}: {' '.join(found)}")
    return "; ".join(masks)


def _await_first_event(child: subprocess.Popen[str], evidence: Path, *, timeout: float) -> Path:
    """The first events.jsonl the child writes a line to (fails if it exits or time runs out)."""
    deadline = time.monotonic() + timeout
    event_files: list[Path] = []
    while time.monotonic() < deadline and child.poll() is None:
        event_files = [p for p in evidence.glob("*/events.jsonl") if p.stat().st_size > 0]
        if event_files:
            break
        time.sleep(0.05)  # polling the file system for the first event line
    assert event_files, "the child never received an event"
    return event_files[0]
