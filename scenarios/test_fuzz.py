"""Fuzzing: odd files and odd events give typed errors or clean skips, never a crash."""

from __future__ import annotations

import json
import shutil
import tempfile
import uuid
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pytest_eng5.contracts import CALLBACK_TOPIC, COMPLETED_TOPIC, FAILED_TOPIC, RESULT_TOPIC
from pytest_eng5.errors import InventoryError
from pytest_eng5.runner.collector import BatchEventFilter
from pytest_eng5.runner.identity import BatchIdentity
from pytest_eng5.runner.inventory import Inventory, collect_inventory

pytestmark = pytest.mark.eng5_scenario("fuzz")

NAMES = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="/\x00"),
    min_size=1,
    max_size=40,
).filter(lambda n: n not in (".", ".."))
SUFFIXES = st.sampled_from([".txt", ".md", ".docx", ".pdf", ".rtf", "", ".TXT"])
CONTENTS = st.one_of(
    st.binary(max_size=300),
    st.text(max_size=300).map(lambda t: t.encode("utf-8", "surrogatepass")),
)


@given(
    files=st.lists(
        st.tuples(st.sampled_from(["anchor_essays", "student_essays"]), NAMES, SUFFIXES, CONTENTS),
        max_size=6,
    ),
)
def test_inventory_raises_only_typed_errors(files) -> None:
    root = Path(tempfile.mkdtemp(prefix="eng5-fuzz-"))
    try:
        (root / "anchor_essays").mkdir()
        (root / "student_essays").mkdir()
        for folder, name, suffix, data in files:
            try:
                (root / folder / f"{name}{suffix}").write_bytes(data)
            except OSError:
                continue  # a name the file system refuses is not the inventory's problem
        outcome: InventoryError | Inventory
        try:
            outcome = collect_inventory(root)
        except InventoryError as error:
            outcome = error
        if isinstance(outcome, InventoryError):
            assert outcome.message
            assert outcome.next_step
        else:
            for essay in (*outcome.anchors, *outcome.students):
                assert essay.text.strip()
                assert len(essay.local_id) <= 36
    finally:
        shutil.rmtree(root)


IDENTITY = BatchIdentity.new("fuzz", uuid.uuid4())
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=5)
    ),
    max_leaves=20,
)


def envelope_like(data: object) -> bytes:
    return json.dumps(
        {
            "event_id": str(uuid.uuid4()),
            "event_type": "x",
            "source_service": "fuzz",
            "data": data,
        }
    ).encode()


@given(
    topic=st.sampled_from([CALLBACK_TOPIC, COMPLETED_TOPIC, FAILED_TOPIC, RESULT_TOPIC]),
    raw=st.one_of(
        st.binary(max_size=200),
        JSON_VALUES.map(lambda v: json.dumps(v).encode()),
        JSON_VALUES.map(envelope_like),
        st.dictionaries(
            st.sampled_from(["entity_id", "batch_id", "request_metadata", "winner", "status"]),
            JSON_VALUES,
            max_size=5,
        ).map(
            lambda d: envelope_like(
                {**d, "entity_id": str(IDENTITY.batch_uuid), "batch_id": str(IDENTITY.batch_uuid)}
            )
        ),
    ),
)
def test_collector_filter_never_crashes_on_odd_events(topic: str, raw: bytes) -> None:
    batch_filter = BatchEventFilter(IDENTITY)
    event = batch_filter.handle(topic, 0, 0, raw)
    counts = batch_filter.run.counts
    if event is None:
        assert sum(counts.values()) <= 1
    else:
        assert event.topic == topic
