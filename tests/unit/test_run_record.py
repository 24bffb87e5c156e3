"""The run record's ending (finaliser), the outcome vocabulary, the comparison graph, the gates
and idempotent event writing; no broker needed."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from pytest_eng5.core.outcome import Outcome
from pytest_eng5.errors import GateError, PublishUnconfirmedError, UnusableBatchError
from pytest_eng5.runner.analysis import check_gates, comparison_graph
from pytest_eng5.runner.artefact import read_record, schema_problems, verify_checksum
from pytest_eng5.runner.batch import ensure_usable
from pytest_eng5.runner.bt_model import Comparison
from pytest_eng5.runner.config import Gates, RunConfig
from pytest_eng5.runner.evidence import EvidenceFolder
from pytest_eng5.runner.finalise import RunState, end_with_error
from pytest_eng5.runner.identity import BatchIdentity
from pytest_eng5.runner.inventory import collect_inventory
from pytest_eng5.runner.results import OUTCOMES, RunResult
from pytest_eng5.runner.steps import student_essays
from pytest_eng5.sample_data import SAMPLE_ASSETS


def _state(tmp_path: Path, **config: object) -> RunState:
    run_config = RunConfig.from_values(
        {"assets": SAMPLE_ASSETS, "evidence_dir": tmp_path, **config}
    )
    result = RunResult(mode="execute", identity=BatchIdentity.new("unit-finalise"))
    state = RunState(config=run_config, result=result)
    state.inventory = collect_inventory(SAMPLE_ASSETS, with_anchors=False)
    state.essays = student_essays(state.inventory, result.identity)
    state.evidence = EvidenceFolder(tmp_path, result.identity)
    result.evidence_dir = state.evidence.folder
    return state


def _stored(state: RunState) -> dict[str, object]:
    assert state.result.artefact_path is not None
    doc: dict[str, object] = json.loads(state.result.artefact_path.read_text())
    assert schema_problems(doc) == []
    assert verify_checksum(doc)
    return doc


@pytest.mark.parametrize(
    "error",
    [RuntimeError("a bug in a hook"), ValueError("bad value")],
    ids=["RuntimeError", "ValueError"],
)
def test_any_exception_after_publishing_is_recorded_as_error(
    tmp_path: Path, error: Exception
) -> None:
    state = _state(tmp_path, completion_timeout=77.0)
    state.result.published = True
    state.result.outcome = Outcome.PUBLISHED
    try:
        raise error
    except Exception as exc:
        end_with_error(state, exc)
    record = read_record(state.result.artefact_path)  # type: ignore[arg-type]
    status = record.validation.runner_status
    assert status.outcome is Outcome.ERROR, "not stuck at published"
    assert status.failure_reason == f"{type(error).__name__}: {error}"
    assert status.error_kind == type(error).__name__
    assert status.timeout_seconds == 77.0, "the real timeout, not 0"
    assert status.partial_data
    log = (state.result.evidence_dir / "run.log").read_text()  # type: ignore[operator]
    stopped = [json.loads(line) for line in log.splitlines() if '"run stopped"' in line]
    assert stopped
    assert "Traceback" in stopped[0]["exc"], "the full traceback goes to run.log"


@pytest.mark.parametrize("interrupt", [KeyboardInterrupt(), asyncio.CancelledError()])
def test_an_interrupt_is_recorded_with_a_reason(tmp_path: Path, interrupt: BaseException) -> None:
    state = _state(tmp_path)
    state.result.published = True
    end_with_error(state, interrupt)
    doc = _stored(state)
    status = doc["validation"]["runner_status"]  # type: ignore[index]
    assert status["outcome"] == "interrupted"
    assert state.result.batch_uuid in status["failure_reason"]
    assert "re-attach" in status["failure_reason"]
    log = (state.result.evidence_dir / "run.log").read_text()  # type: ignore[operator]
    assert '"run interrupted"' in log


def test_an_unconfirmed_publish_has_its_own_outcome(tmp_path: Path) -> None:
    state = _state(tmp_path)
    end_with_error(state, PublishUnconfirmedError("no ack", next_step="re-attach first"))
    assert state.result.outcome is Outcome.PUBLISH_UNCONFIRMED
    assert _stored(state)["validation"]["runner_status"]["outcome"] == "publish_unconfirmed"  # type: ignore[index]


def test_one_outcome_vocabulary_everywhere() -> None:
    from pytest_eng5.runner.record import record_schema

    schema_enum = record_schema()["$defs"]["Outcome"]["enum"]  # type: ignore[index,call-overload]
    assert list(OUTCOMES) == [o.value for o in Outcome] == schema_enum
    assert {"interrupted", "no_comparisons", "disconnected_graph", "essays_missing"} <= set(
        OUTCOMES
    )


def test_comparison_graph_counts_components_and_uncompared_essays() -> None:
    comparisons = [Comparison("a", "b", "j"), Comparison("b", "c", "j"), Comparison("d", "e", "j")]
    graph = comparison_graph(["a", "b", "c", "d", "e", "never"], comparisons)
    assert (graph.essays, graph.comparisons, graph.components) == (6, 3, 3)
    assert graph.n_cr == 1.0
    connected = comparison_graph(["a", "b", "c"], comparisons[:2])
    assert connected.components == 1
    assert comparison_graph(["a", "b"], []).components == 2


def test_the_tau_b_gate_only_applies_to_anchor_align_runs() -> None:
    gates = Gates(min_tau_b=0.5)
    notes = check_gates(gates, "execute", {"ssr": 0.9}, {}, "uuid")
    assert notes
    assert "anchor-align runs only" in notes[0]
    with pytest.raises(GateError, match="could not be computed"):
        check_gates(gates, "anchor-align-test", {}, {}, "uuid")
    with pytest.raises(GateError, match="below the gate"):
        check_gates(gates, "anchor-align-test", {}, {"tau_b": 0.2}, "uuid")


def test_events_are_written_once_per_topic_partition_offset(tmp_path: Path) -> None:
    identity = BatchIdentity.new("unit-idempotent")
    for _ in range(2):  # the run, then a re-attach reading the same records again
        with EvidenceFolder(tmp_path, identity) as evidence:
            for offset in (0, 1):
                evidence.append_event("callback", b"{}", topic="t", partition=0, offset=offset)
            evidence.append_event("callback", b"{}", topic="t", partition=1, offset=0)
    with EvidenceFolder(tmp_path, identity) as evidence:
        lines = evidence.read_events()
    assert [(e["partition"], e["offset"]) for e in lines] == [(0, 0), (0, 1), (1, 0)]


def _judged(state: RunState, pairs: list[tuple[str, str]]) -> RunState:
    state.result.comparison_graph = comparison_graph(
        state.essays, [Comparison(winner, loser, "j") for winner, loser in pairs]
    )
    return state


def test_a_batch_without_comparisons_is_not_completed(tmp_path: Path) -> None:
    state = _judged(_state(tmp_path), [])
    with pytest.raises(UnusableBatchError, match="without a single successful comparison") as info:
        ensure_usable(state)
    assert info.value.outcome == Outcome.NO_COMPARISONS
    end_with_error(state, info.value)
    assert _stored(state)["validation"]["runner_status"]["outcome"] == "no_comparisons"  # type: ignore[index]


def test_a_disconnected_comparison_graph_is_not_completed(tmp_path: Path) -> None:
    state = _state(tmp_path)
    ids = sorted(state.essays)
    chain = [(ids[i], ids[i + 1]) for i in range(len(ids) - 1) if i != 5]  # two groups
    state = _judged(state, chain)
    with pytest.raises(UnusableBatchError, match="2 separate groups") as info:
        ensure_usable(state)
    assert info.value.outcome == Outcome.DISCONNECTED_GRAPH
    end_with_error(state, info.value)
    graph = _stored(state)["validation"]["runner_status"]["comparison_graph"]  # type: ignore[index]
    assert graph["components"] == 2
    assert graph["n_cr"] == round(2 * len(chain) / len(ids), 2)


def test_a_connected_graph_with_every_essay_scored_is_usable(tmp_path: Path) -> None:
    state = _state(tmp_path)
    ids = sorted(state.essays)
    ensure_usable(_judged(state, [(ids[i], ids[i + 1]) for i in range(len(ids) - 1)]))
