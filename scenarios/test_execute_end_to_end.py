"""The main job: a full ENG5 execute of the configured asset folder on the configured stack.

It asserts only what is true of every good run, whatever the essays, the stack or the judge:
the outcome, counts equal to the inventory, every event attributable to the batch, a
schema-valid checksummed artefact, comparisons made and one connected comparison graph.
Quality thresholds come from the gate options (``--eng5-min-ssr`` ...), which the runner
applies; facts of the bundled sample set live in ``test_sample_set_reference_judge.py``.
"""

from __future__ import annotations

import json

import pytest
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from pytest_eng5.runner.artefact import schema_problems, verify_checksum
from pytest_eng5.runner.inventory import collect_inventory

pytestmark = [pytest.mark.eng5_execute, pytest.mark.eng5_scenario("execute")]


def batch_of(line: dict) -> str | None:
    """The batch an ``events.jsonl`` line belongs to, as the event itself says."""
    envelope = line.get("envelope") or {}
    data = envelope.get("data") or {}
    if line["kind"] == "callback":
        return (data.get("request_metadata") or {}).get("bos_batch_id")
    return data.get("entity_id")


def component_count(essay_ids: set[str], pairs: list[tuple[str, str]]) -> int:
    """How many parts the comparison graph of ``essay_ids`` falls into."""
    index = {essay_id: n for n, essay_id in enumerate(sorted(essay_ids))}
    rows = [index[a] for a, _ in pairs]
    cols = [index[b] for _, b in pairs]
    graph = coo_matrix(([1] * len(pairs), (rows, cols)), shape=(len(index), len(index)))
    count, _ = connected_components(graph, directed=False)
    return int(count)


def test_full_execute_of_the_asset_folder(
    eng5_runner_factory, eng5_assignment, eng5_settings, request
) -> None:
    runner = eng5_runner_factory(
        assignment_id=eng5_assignment.assignment_id,
        course_id=eng5_assignment.course_id,
        batch_label="eng5-execute",
    )
    result = runner.execute()

    assert result.outcome == "completed"
    inventory = collect_inventory(eng5_settings.assets, with_anchors=False)
    local_students = {essay.name for essay in inventory.students}
    doc = json.loads(result.artefact_path.read_text(encoding="utf-8"))
    assert schema_problems(doc) == []
    assert verify_checksum(doc)
    students = {s["essay_id"] for s in doc["inputs"]["students"]}
    assert {s["file_name"] for s in doc["inputs"]["students"]} == local_students
    assert result.students == len(students) == len(local_students)
    assert set(result.projections) == students, "every student sent has a projection"

    lines = [
        json.loads(line)
        for line in (result.evidence_dir / "events.jsonl").read_text().splitlines()
        if line.strip()
    ]
    # Records that are not valid events (another producer's, on a shared stack) are kept
    # flagged with their reason and name no batch; every valid event is this batch's.
    events = [line for line in lines if "malformed_reason" not in line]
    assert events, "events were recorded"
    assert {batch_of(line) for line in events} == {result.batch_uuid}
    assert {"callback", "completion"} <= {line["kind"] for line in events}

    assert result.comparisons > 0
    judged = [(c["winner_id"], c["loser_id"]) for c in doc["llm_comparisons"] if c["winner_id"]]
    compared = {essay for pair in judged for essay in pair}
    assert students <= compared, f"students never compared: {sorted(students - compared)}"
    assert component_count(compared | students, judged) == 1, "one connected comparison graph"

    properties = dict(request.node.user_properties)
    assert properties["eng5_batch_uuid"] == result.batch_uuid
    assert properties["eng5_outcome"] == "completed"
    assert properties["eng5_students"] == str(len(students))
    for key in ("eng5_ssr", "eng5_n_cr", "eng5_comparisons"):
        assert key in properties
    for name in ("request.json", "events.jsonl", "assessment_run.json", "run.log"):
        assert (result.evidence_dir / name).is_file(), name
