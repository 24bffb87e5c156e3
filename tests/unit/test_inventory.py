"""Inventory: what an ENG5 asset folder holds, and every way it can be rejected by name."""

from __future__ import annotations

import shutil
from pathlib import Path

import docx
import pytest

from pytest_eng5.errors import InventoryError
from pytest_eng5.runner.inventory import collect_inventory, make_essay_key
from pytest_eng5.sample_data import SAMPLE_ASSETS

LONG_TEXT = "This is a perfectly ordinary essay sentence about my town. " * 5


def make_assets(root: Path, anchors: dict[str, str], students: dict[str, str]) -> Path:
    (root / "anchor_essays").mkdir(parents=True)
    (root / "student_essays").mkdir()
    for name, text in anchors.items():
        (root / "anchor_essays" / name).write_text(text, encoding="utf-8")
    for name, text in students.items():
        (root / "student_essays" / name).write_text(text, encoding="utf-8")
    (root / "instructions.md").write_text("Write about your town.", encoding="utf-8")
    return root


def test_sample_set_inventories_12_anchors_and_24_students() -> None:
    inventory = collect_inventory(SAMPLE_ASSETS)
    assert len(inventory.anchors) == 12
    assert len(inventory.students) == 24
    grades = sorted(a.grade or "" for a in inventory.anchors)
    assert grades == sorted(["F+", "F+", "E-", "E+", "D-", "D+", "C-", "C+", "B", "B", "A", "A"])
    assert inventory.instructions_text
    assert {a.path.suffix for a in inventory.anchors} >= {".docx", ".txt"}


def test_docx_text_is_extracted_by_paragraph(tmp_path: Path) -> None:
    root = make_assets(tmp_path / "a", {}, {})
    document = docx.Document()
    document.add_paragraph("First paragraph of the essay.")
    document.add_paragraph("Second paragraph of the essay.")
    document.save(str(root / "student_essays" / "s1.docx"))
    (student,) = collect_inventory(root).students
    assert student.text == "First paragraph of the essay.\nSecond paragraph of the essay."
    assert student.text_sha256 != student.file_sha256


@pytest.mark.parametrize("name", ["essay.pdf", "essay.rtf", "essay"])
def test_unsupported_file_type_is_rejected_naming_the_file(tmp_path: Path, name: str) -> None:
    root = make_assets(tmp_path / "a", {}, {"ok.txt": LONG_TEXT})
    (root / "student_essays" / name).write_bytes(b"%PDF-1.4 not really")
    with pytest.raises(InventoryError, match=name.replace(".", r"\.")) as info:
        collect_inventory(root)
    assert ".txt" in info.value.next_step


def test_word_lock_files_are_ignored(tmp_path: Path) -> None:
    root = make_assets(tmp_path / "a", {}, {"ok.txt": LONG_TEXT})
    (root / "student_essays" / "~$ok.docx").write_bytes(b"lock")
    assert [s.name for s in collect_inventory(root).students] == ["ok.txt"]


def test_invalid_anchor_grade_names_file_and_lists_scale(tmp_path: Path) -> None:
    root = make_assets(tmp_path / "a", {"anchor_essay_001_G.txt": LONG_TEXT}, {})
    with pytest.raises(InventoryError) as info:
        collect_inventory(root)
    message = str(info.value)
    assert "anchor_essay_001_G.txt" in message
    assert "F+, E-, E+, D-, D+, C-, C+, B, A" in message


def test_anchor_grade_checked_against_the_chosen_scale(tmp_path: Path) -> None:
    national = make_assets(tmp_path / "a", {"anchor_essay_001_7.txt": LONG_TEXT}, {})
    assert (
        collect_inventory(national, grade_scale="eng5_np_national_9_step").anchors[0].grade == "7"
    )
    legacy = make_assets(tmp_path / "b", {"anchor_essay_001_B.txt": LONG_TEXT}, {})
    with pytest.raises(InventoryError, match="1, 2, 3, 4, 5, 6, 7, 8, 9"):
        collect_inventory(legacy, grade_scale="eng5_np_national_9_step")


def test_execute_inventory_skips_local_anchors(tmp_path: Path) -> None:
    root = make_assets(tmp_path / "a", {"anchor_essay_001_G.txt": LONG_TEXT}, {"s.txt": LONG_TEXT})
    inventory = collect_inventory(root, with_anchors=False)
    assert inventory.anchors == ()
    assert len(inventory.students) == 1


def test_empty_essay_is_rejected_naming_the_file(tmp_path: Path) -> None:
    root = make_assets(tmp_path / "a", {}, {"blank.txt": "  \n\t "})
    with pytest.raises(InventoryError, match=r"blank\.txt is empty"):
        collect_inventory(root)


def test_non_utf8_text_is_rejected_naming_the_file(tmp_path: Path) -> None:
    root = make_assets(tmp_path / "a", {}, {})
    (root / "student_essays" / "latin1.txt").write_bytes("Smörgåsbord".encode("latin-1"))
    with pytest.raises(InventoryError, match=r"latin1\.txt is not UTF-8"):
        collect_inventory(root)


def test_two_files_with_the_same_id_are_rejected_naming_both(tmp_path: Path) -> None:
    root = make_assets(tmp_path / "a", {}, {"essay 1.txt": LONG_TEXT, "essay_1.md": LONG_TEXT})
    with pytest.raises(InventoryError) as info:
        collect_inventory(root)
    assert "essay 1.txt" in str(info.value)
    assert "essay_1.md" in str(info.value)


def test_missing_asset_folder_says_so(tmp_path: Path) -> None:
    with pytest.raises(InventoryError, match="does not exist"):
        collect_inventory(tmp_path / "nowhere")


def test_essay_keys_keep_grade_signs_and_fit_the_limit() -> None:
    assert make_essay_key("anchor_F+") == "anchor_F+"
    long_key = make_essay_key("x" * 80)
    assert len(long_key) == 36
    assert make_essay_key("x" * 80) == long_key
    assert make_essay_key("x" * 80) != make_essay_key("x" * 79 + "y")


def test_csv_grades_are_read(tmp_path: Path) -> None:
    root = tmp_path / "copy"
    shutil.copytree(SAMPLE_ASSETS, root)
    inventory = collect_inventory(root)
    assert inventory.anchors_csv is not None
    by_file = {a.name: a.grade for a in inventory.anchors}
    assert inventory.csv_grades == by_file
