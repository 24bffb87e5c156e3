"""The main job (``pytest -m eng5_execute`` over scenarios/) on asset folders other than the
sample set: it holds for any valid folder and any judge, and R1 stops a budget that cannot
connect the essays before anything is sent, and lets the same 500 students through once the
budget can connect them.

Each test runs the real main job in a subprocess with ``--eng5-assets``, as an operator would.
"""

from __future__ import annotations

import json
import random
import re
import shutil
import string
from pathlib import Path

import pytest

from pytest_eng5.sample_data import OWN_ASSETS_ASSIGNMENT_ID, SAMPLE_ASSETS

SCENARIOS = Path(__file__).resolve().parents[2] / "scenarios"
# each test is a whole main-job session (its stack included); the inner run is bounded at 900 s
pytestmark = pytest.mark.timeout(930)


def sample_sentences() -> list[str]:
    text = " ".join(
        path.read_text(encoding="utf-8")
        for path in sorted((SAMPLE_ASSETS / "student_essays").glob("*.txt"))
    )
    return [s.strip() for s in re.split(r"(?<=[.!?])\s+", text) if len(s.split()) > 3]


def own_assets(
    root: Path, students: int, *, anchors: int | None = None, sentences: int = 10, seed: int = 7
) -> Path:
    """The sample instructions and anchors (all, with anchors.csv, or the first ``anchors``),
    with ``students`` new essays named as real ENG5 exports are (spaces and parentheses), each
    of its own text."""
    shutil.copytree(SAMPLE_ASSETS, root, ignore=shutil.ignore_patterns("student_essays"))
    if anchors is not None:
        (root / "anchors.csv").unlink()
        for extra in sorted((root / "anchor_essays").iterdir())[anchors:]:
            extra.unlink()
    folder = root / "student_essays"
    folder.mkdir()
    rng = random.Random(seed)
    pool = sample_sentences()
    for n in range(students):
        code = "".join(rng.choices(string.ascii_uppercase, k=8))
        body = " ".join(rng.sample(pool, k=rng.randint(sentences // 2, sentences)))
        (folder / f"{code} {n + 1} (SA24D ENG 5 WRITING 2025).txt").write_text(
            f"My summer in Stockholm\n\n{body}\n", encoding="utf-8"
        )
    return root


def main_job(pytester: pytest.Pytester, assets: Path, *args: str) -> pytest.RunResult:
    return pytester.runpytest_subprocess(
        str(SCENARIOS),
        "-m",
        "eng5_execute",
        f"--eng5-assets={assets}",
        "--eng5-evidence-dir=evidence",
        "-p",
        "no:cacheprovider",
        "--timeout=900",
        *args,
        timeout=900,
    )


def test_thirty_real_looking_essays_with_a_coin_flip_judge(
    pytester: pytest.Pytester, tmp_path: Path
) -> None:
    assets = own_assets(tmp_path / "class-9b", students=30, anchors=8)
    result = main_job(pytester, assets, "--eng5-judge=coin_flip")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["*execute*completed*"])
    # the execute ran on the folder's own assignment: CJ ranked its 8 anchors, not the sample's
    [execute] = [
        doc
        for doc in map(json.loads, map(Path.read_text, pytester.path.rglob("assessment_run.json")))
        if doc["metadata"]["runner_mode"] == "execute"
    ]
    assert execute["metadata"]["assignment_id"] == OWN_ASSETS_ASSIGNMENT_ID
    assert sum(entry["is_anchor"] for entry in execute["bt_summary"]) == 8


def test_five_hundred_students_with_cjs_default_cap_fail_r1_before_anything_is_sent(
    pytester: pytest.Pytester, tmp_path: Path
) -> None:
    assets = own_assets(tmp_path / "year-group", students=500, sentences=4)
    result = main_job(pytester, assets, "-k", "test_full_execute")
    result.assert_outcomes(failed=1)
    out = result.stdout.str()
    assert "a budget of 120 comparisons cannot connect 512 essays" in out
    assert "500 students + 12 anchors" in out
    assert "--eng5-max-comparisons to at least 511" in out
    assert "CJ's cap (--eng5-cj-max-comparisons, 120)" in out
    assert not list((pytester.path / "evidence").glob("*/request.json")), "nothing was sent"


def test_five_hundred_students_pass_once_the_budget_connects_them(
    pytester: pytest.Pytester, tmp_path: Path
) -> None:
    assets = own_assets(tmp_path / "year-group", students=500, sentences=4)
    budget = "1100"  # over twice the 511 that connect 512 essays, so the pairing can link them
    result = main_job(
        pytester,
        assets,
        "-k",
        "test_full_execute",
        f"--eng5-max-comparisons={budget}",
        f"--eng5-cj-max-comparisons={budget}",
    )
    result.assert_outcomes(passed=1)
    result.stdout.re_match_lines([rf".*execute\s+completed\s+{budget}\s+\S+\s+1\s.*"])


STRAY_RECORDS = '''
"""Another producer on a shared stack: a record that is not an event lands on the callback
topic while the main job's batch is awaited."""

import asyncio
import threading

import pytest
from aiokafka import AIOKafkaProducer

from pytest_eng5.contracts.topics import CALLBACK_TOPIC

stack = {}


@pytest.fixture(autouse=True, scope="session")
def _stack_kafka(eng5_stack):
    stack["kafka"] = eng5_stack.kafka


async def _send_stray_record():
    producer = AIOKafkaProducer(**stack["kafka"].producer_kwargs())
    await producer.start()
    try:
        await producer.send_and_wait(CALLBACK_TOPIC, b"not an event")
    finally:
        await producer.stop()


def pytest_eng5_event_received(event, identity):
    if event.kind == "callback" and not stack.get("sent"):
        stack["sent"] = True
        # the hook runs on the collector's loop: send from a loop of our own
        thread = threading.Thread(target=asyncio.run, args=(_send_stray_record(),))
        thread.start()
        thread.join(timeout=30)
'''


def test_a_stray_record_on_a_contract_topic_does_not_fail_the_main_job(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(stray_records=STRAY_RECORDS)
    result = main_job(pytester, SAMPLE_ASSETS, "-k", "test_full_execute", "-p", "stray_records")
    result.assert_outcomes(passed=1)
    [events] = (pytester.path / "evidence").rglob("events.jsonl")
    assert '"malformed_reason": "not JSON' in events.read_text(encoding="utf-8")
