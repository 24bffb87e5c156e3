"""R5: opt-in DB extraction after a successful batch; its failure never hides the success."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest

from pytest_eng5.errors import AwaitTimeoutError, ExtractionError

pytestmark = pytest.mark.eng5_scenario("R5")


def artefact(result) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(result.artefact_path.read_text())
    return document


def test_enabled_extraction_lands_in_the_evidence(eng5_runner_factory, sample, own_cache) -> None:
    result = eng5_runner_factory(**sample, **own_cache, auto_extract_db=True).execute()
    assert result.outcome == "completed"
    extract = result.evidence_dir / "db_extract"
    (json_file,) = extract.glob("cj_results_*.json")
    data = json.loads(json_file.read_text())
    assert data["batch_info"]["bos_batch_id"] == result.batch_uuid
    assert len(data["comparisons"]) == result.comparisons
    assert any(extract.glob("cj_results_*.txt"))
    assert artefact(result)["validation"]["post_run"]["eng5_db_extract"]["status"] == "succeeded"


def test_omitted_flag_never_extracts(eng5_runner_factory, sample, own_cache) -> None:
    result = eng5_runner_factory(**sample, **own_cache).execute()
    assert result.outcome == "completed"
    assert not (result.evidence_dir / "db_extract").exists()
    assert "eng5_db_extract" not in artefact(result)["validation"]["post_run"]


def test_failed_extraction_keeps_the_batch_success(eng5_runner_factory, sample, own_cache) -> None:
    runner = eng5_runner_factory(**sample, **own_cache, auto_extract_db=True)
    runner.aio.endpoints = dataclasses.replace(
        runner.aio.endpoints, postgres_dsn="postgresql://nobody@127.0.0.1:1/huleedu_cj_assessment"
    )
    with pytest.raises(ExtractionError) as info:
        runner.execute()
    result = runner.last_result
    assert result is not None
    assert result.outcome == "completed", "the batch itself succeeded"
    post_run = artefact(result)["validation"]["post_run"]["eng5_db_extract"]
    assert post_run["status"] == "failed"
    assert post_run["batch_completed"] is True
    assert post_run["error"] == info.value.message
    assert ("eng5_db_extract", "failed") in result.properties()


def test_no_completion_skips_the_step_with_its_reason(
    eng5_runner_factory, clean_faults, sample, own_cache
) -> None:
    # Every callback is lost, so nothing can complete before the await ends (the worker only
    # gives up on a wave after its callback timeout, WorkerSettings.callback_timeout_s: 10 s
    # on the session's stack, far later than this 1.5 s await).
    clean_faults.set_faults("cj-worker", drop_callback_rate=1.0)
    runner = eng5_runner_factory(
        **sample, **own_cache, auto_extract_db=True, completion_timeout=1.5
    )
    with pytest.raises(AwaitTimeoutError):
        runner.execute()
    result = runner.last_result
    post_run = artefact(result)["validation"]["post_run"]["eng5_db_extract"]
    assert post_run["status"] == "skipped"
    assert "no successful completion" in post_run["reason"]
    assert not (result.evidence_dir / "db_extract").exists()
