"""The shipped ENG5-like sample set: counts, grades, formats, lengths, CSV and .docx sources."""

from __future__ import annotations

import csv
import importlib.util
import itertools
import re
from collections import Counter
from pathlib import Path
from types import ModuleType

import pytest

from pytest_eng5.sample_data import SAMPLE_ASSETS, read_sample_text

ANCHOR_DIR = SAMPLE_ASSETS / "anchor_essays"
STUDENT_DIR = SAMPLE_ASSETS / "student_essays"
ESSAY_SUFFIXES = {".docx", ".txt", ".md"}
EXPECTED_GRADES = Counter(
    {"F+": 2, "E-": 1, "E+": 1, "D-": 1, "D+": 1, "C-": 1, "C+": 1, "B": 2, "A": 2}
)
ANCHOR_NAME_RE = re.compile(r"^anchor_essay_eng_5_17_vt_(\d{3})_([A-F][+-]?)\.(docx|txt|md)$")
STUDENT_NAME_RE = re.compile(r"^student_essay_(\d{2})\.(docx|txt|md)$")
WORD_RE = re.compile(r"[A-Za-z]+(?:['’][A-Za-z]+)*")
GENERATOR = Path(__file__).resolve().parents[2] / "tools" / "make_sample_docx.py"


def essay_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix in ESSAY_SUFFIXES)


def grade_of(path: Path) -> str:
    return path.stem.rsplit("_", 1)[-1]


def load_generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("make_sample_docx", GENERATOR)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_folder_holds_only_the_expected_entries() -> None:
    assert sorted(p.name for p in SAMPLE_ASSETS.iterdir()) == [
        "anchor_essays",
        "anchors.csv",
        "instructions.md",
        "student_essays",
    ]
    assert [p for p in ANCHOR_DIR.iterdir() if p.suffix not in ESSAY_SUFFIXES] == []
    assert [p for p in STUDENT_DIR.iterdir() if p.suffix not in ESSAY_SUFFIXES] == []


def test_instructions_state_the_task() -> None:
    text = (SAMPLE_ASSETS / "instructions.md").read_text(encoding="utf-8")
    assert "Phones in School" in text
    assert "Your task" in text
    assert "150 and 300 words" in text


def test_twelve_anchors_with_the_legacy_grade_multiset() -> None:
    anchors = essay_files(ANCHOR_DIR)
    matches = [ANCHOR_NAME_RE.match(p.name) for p in anchors]
    assert all(matches), [p.name for p, m in zip(anchors, matches, strict=True) if not m]
    assert [m.group(1) for m in matches if m] == [f"{n:03d}" for n in range(1, 13)]
    assert Counter(grade_of(p) for p in anchors) == EXPECTED_GRADES


def test_twenty_four_students_numbered_01_to_24() -> None:
    students = essay_files(STUDENT_DIR)
    numbers = [m.group(1) for p in students if (m := STUDENT_NAME_RE.match(p.name))]
    assert numbers == [f"{n:02d}" for n in range(1, 25)]


@pytest.mark.parametrize("folder", [ANCHOR_DIR, STUDENT_DIR], ids=["anchors", "students"])
def test_formats_are_mixed(folder: Path) -> None:
    suffixes = Counter(p.suffix for p in essay_files(folder))
    assert suffixes[".docx"] >= 5
    assert suffixes[".txt"] >= 5
    if folder is STUDENT_DIR:
        assert suffixes[".md"] >= 1


@pytest.mark.parametrize(
    "path", essay_files(ANCHOR_DIR) + essay_files(STUDENT_DIR), ids=lambda p: p.name
)
def test_every_essay_has_120_to_350_words(path: Path) -> None:
    words = len(WORD_RE.findall(read_sample_text(path)))
    assert 120 <= words <= 350, f"{path.name}: {words} words"


def test_docx_essays_keep_their_paragraphs() -> None:
    from docx import Document

    for path in essay_files(ANCHOR_DIR) + essay_files(STUDENT_DIR):
        if path.suffix == ".docx":
            paragraphs = [p.text for p in Document(str(path)).paragraphs]
            assert len(paragraphs) >= 2, path.name
            assert all(text.strip() for text in paragraphs), path.name


def test_anchors_csv_matches_the_files() -> None:
    with (SAMPLE_ASSETS / "anchors.csv").open(encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        assert reader.fieldnames == ["ANCHOR-ID", "FILE-NAME", "GRADE"]
        rows = list(reader)
    assert sorted(row["FILE-NAME"] for row in rows) == [p.name for p in essay_files(ANCHOR_DIR)]
    for row in rows:
        assert row["GRADE"] == grade_of(Path(row["FILE-NAME"])), row
    assert len({row["ANCHOR-ID"] for row in rows}) == len(rows)


def test_no_two_essays_are_identical_or_near_copies() -> None:
    texts = {
        p.name: read_sample_text(p) for p in essay_files(ANCHOR_DIR) + essay_files(STUDENT_DIR)
    }
    normalised = {name: " ".join(WORD_RE.findall(text.lower())) for name, text in texts.items()}
    assert len(set(normalised.values())) == len(normalised)
    for (name_a, a), (name_b, b) in itertools.combinations(normalised.items(), 2):
        bigrams_a = set(itertools.pairwise(a.split()))
        bigrams_b = set(itertools.pairwise(b.split()))
        overlap = len(bigrams_a & bigrams_b) / min(len(bigrams_a), len(bigrams_b))
        assert overlap < 0.5, f"{name_a} and {name_b} share {overlap:.0%} of their word pairs"


def test_docx_files_match_their_sources() -> None:
    generator = load_generator()
    sources = sorted((generator.SOURCES).glob("*/*.txt"))
    assert len(sources) >= 10
    for source in sources:
        target = SAMPLE_ASSETS / source.parent.name / f"{source.stem}.docx"
        assert target.is_file(), f"{target.name} missing: run python tools/make_sample_docx.py"
        expected = "\n".join(generator.paragraphs_of(source.read_text(encoding="utf-8")))
        assert read_sample_text(target) == expected, f"{target.name} is stale"
    # every .docx essay has a source, so regeneration reproduces the whole set
    docx_stems = {p.stem for p in SAMPLE_ASSETS.glob("*/*.docx")}
    assert docx_stems == {s.stem for s in sources}


def test_docx_generation_is_byte_stable() -> None:
    generator = load_generator()
    paragraphs = ["A heading", "First paragraph of text.", "Second paragraph."]
    first = generator.docx_bytes(paragraphs, title="A heading")
    second = generator.docx_bytes(paragraphs, title="A heading")
    assert first == second
    assert first[:2] == b"PK"


def test_read_sample_text_joins_docx_paragraphs(tmp_path: Path) -> None:
    generator = load_generator()
    path = tmp_path / "essay.docx"
    path.write_bytes(generator.docx_bytes(["Title", "Body one.", "Body two."], title="Title"))
    assert read_sample_text(path) == "Title\nBody one.\nBody two."
    (tmp_path / "essay.md").write_text("# Title\n\nBody å.\n", encoding="utf-8")
    assert read_sample_text(tmp_path / "essay.md") == "# Title\n\nBody å.\n"
