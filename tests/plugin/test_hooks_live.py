"""The run hooks on a real stack: events reach ``pytest_eng5_event_received``, and a
``pytest_eng5_before_publish`` that raises stops the run with nothing published."""

from __future__ import annotations

import pytest

CONFTEST = """
    import json
    from pathlib import Path

    SEEN = Path("seen.jsonl")

    def pytest_eng5_before_publish(envelope, identity):
        if identity.batch_label == "veto":
            raise RuntimeError("vetoed by a hook")

    def pytest_eng5_event_received(event, identity):
        with SEEN.open("a") as handle:
            handle.write(json.dumps({"kind": event.kind, "batch": identity.batch_id}) + "\\n")
"""

MODULE = """
    import json
    from pathlib import Path

    import pytest

    def run(factory, sample, label):
        return factory(assignment_id=sample.assignment_id, course_id=sample.course_id,
                       max_comparisons=72, batch_label=label)

    def test_events_reach_the_hook(eng5_runner_factory, eng5_sample_assignment):
        result = run(eng5_runner_factory, eng5_sample_assignment, "watched").execute()
        seen = [json.loads(line) for line in Path("seen.jsonl").read_text().splitlines()]
        assert {s["batch"] for s in seen} == {result.batch_uuid}
        assert sum(s["kind"] == "callback" for s in seen) == result.comparisons
        assert {"completion", "result"} <= {s["kind"] for s in seen}

    def test_a_raising_before_publish_hook_stops_the_run(
        eng5_runner_factory, eng5_sample_assignment
    ):
        runner = run(eng5_runner_factory, eng5_sample_assignment, "veto")
        with pytest.raises(RuntimeError, match="vetoed"):
            runner.execute()
        result = runner.last_result
        assert not result.published
        request = json.loads((result.evidence_dir / "request.json").read_text())
        assert request["data"]["entity_id"] == result.batch_uuid
"""


def test_run_hooks_on_the_embedded_stack(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(test_hooks=MODULE)
    result = pytester.runpytest_subprocess(
        "--eng5-evidence-dir=evidence", "-p", "no:cacheprovider", timeout=240
    )
    result.assert_outcomes(passed=2)
