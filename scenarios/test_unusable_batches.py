"""A batch CJ "completes" but that cannot rank the essays is not a success, over the real stack:
the judge's errors leave no comparison, or too few to connect the essays."""

from __future__ import annotations

import json

import pytest

from pytest_eng5.errors import UnusableBatchError


def recorded(result) -> dict:
    return json.loads(result.artefact_path.read_text())["validation"]["runner_status"]


def test_one_student_ends_with_no_comparisons(
    eng5_runner_factory, asset_folder, sample, own_cache
) -> None:
    """CJ finalises a batch of one student at once, as HuleEdu does: "completed", but with
    nothing compared it ranks nothing."""
    runner = eng5_runner_factory(**{**sample, **own_cache, "assets": asset_folder(students=1)})
    with pytest.raises(UnusableBatchError) as info:
        runner.execute()
    result = runner.last_result
    assert result.outcome == "no_comparisons"
    assert "without a single successful comparison" in str(info.value)
    status = recorded(result)
    assert status["outcome"] == "no_comparisons"
    assert status["comparison_graph"]["comparisons"] == 0


def test_a_pairing_that_cannot_connect_the_essays_is_a_disconnected_graph(
    eng5_runner_factory, clean_faults, sample, own_cache
) -> None:
    """CJ pairs essays only within two halves of the batch: it completes, but the scores of one
    half say nothing about the other."""
    clean_faults.set_faults("cj-worker", pairing_groups=2)
    runner = eng5_runner_factory(**sample, **own_cache)
    with pytest.raises(UnusableBatchError) as info:
        runner.execute()
    result = runner.last_result
    assert result.outcome == "disconnected_graph"
    status = recorded(result)
    assert status["outcome"] == "disconnected_graph"
    graph = status["comparison_graph"]
    assert graph["comparisons"] > 0
    assert graph["components"] >= 2
    assert f"{graph['components']} separate groups" in str(info.value)
    assert dict(result.properties())["eng5_graph_components"] == str(graph["components"])
