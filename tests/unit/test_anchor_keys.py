"""Anchors sent as students get short keys a person can read in the alignment report."""

from __future__ import annotations

import shutil
from pathlib import Path

from pytest_eng5.runner.identity import BatchIdentity
from pytest_eng5.runner.inventory import collect_inventory
from pytest_eng5.runner.steps import ANCHOR_ALIGN_PREFIX, anchor_keys, request_essay_id
from pytest_eng5.sample_data import SAMPLE_ASSETS

TEXT = "A short but perfectly valid anchor essay about my home town and its people. " * 3


def test_csv_anchor_ids_become_the_keys() -> None:
    inventory = collect_inventory(SAMPLE_ASSETS)
    keys = anchor_keys(inventory)
    assert sorted(keys) == [f"ANCHOR-{n:03d}" for n in range(1, 13)]
    identity = BatchIdentity.new("label")
    for key in keys:
        assert len(ANCHOR_ALIGN_PREFIX + request_essay_id(key, identity, 27)) <= 36


def test_without_a_csv_the_end_of_the_file_name_is_the_key(tmp_path: Path) -> None:
    root = tmp_path / "assets"
    shutil.copytree(SAMPLE_ASSETS, root)
    (root / "anchors.csv").unlink()
    keys = anchor_keys(collect_inventory(root))
    assert "eng_5_17_vt_001_F+" in keys
    assert keys["eng_5_17_vt_012_A"].grade == "A"


def test_clashing_readable_keys_fall_back_to_distinct_hashed_keys(tmp_path: Path) -> None:
    (tmp_path / "anchor_essays").mkdir()
    (tmp_path / "student_essays").mkdir()
    for prefix in ("first_set", "second_set"):
        name = f"{prefix}_essay_eng_5_17_vt_001_B.txt"
        (tmp_path / "anchor_essays" / name).write_text(TEXT, encoding="utf-8")
    keys = anchor_keys(collect_inventory(tmp_path))
    assert len(keys) == 2
    assert all(len(key) <= 18 for key in keys)
