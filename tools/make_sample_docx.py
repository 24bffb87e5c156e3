"""Build the .docx essays and ``anchors.csv`` of the shipped ENG5-like sample set.

The text of every .docx essay lives in ``pytest_eng5/sample_data/docx_sources/<folder>/<stem>.txt``
(one paragraph per blank-line separated block). This script writes
``pytest_eng5/sample_data/eng5_np_sample/<folder>/<stem>.docx`` with one Word paragraph per block,
then rewrites ``anchors.csv`` from the anchor file names. The output is byte-stable: core
properties carry fixed values and the zip entries a fixed timestamp.

Run from anywhere:  python tools/make_sample_docx.py
"""

from __future__ import annotations

import csv
import io
import zipfile
from datetime import UTC, datetime
from pathlib import Path

from docx import Document

SAMPLE_DATA = Path(__file__).resolve().parents[1] / "pytest_eng5" / "sample_data"
SOURCES = SAMPLE_DATA / "docx_sources"
TARGET = SAMPLE_DATA / "eng5_np_sample"
FIXED_TIME = datetime(2017, 3, 1, 8, 0, 0, tzinfo=UTC)
ZIP_TIME = (2017, 3, 1, 8, 0, 0)
ESSAY_SUFFIXES = (".docx", ".txt", ".md")


def paragraphs_of(text: str) -> list[str]:
    """Split a source text into paragraphs: blocks separated by blank lines, lines joined."""
    blocks = [block.split("\n") for block in text.strip().split("\n\n")]
    return [" ".join(line.strip() for line in block if line.strip()) for block in blocks]


def docx_bytes(paragraphs: list[str], title: str) -> bytes:
    """Return a .docx with one paragraph per entry and fixed metadata, byte-stable."""
    document = Document()
    for paragraph in paragraphs:
        document.add_paragraph(paragraph)
    props = document.core_properties
    props.author = "pytest-eng5 sample generator"
    props.last_modified_by = "pytest-eng5 sample generator"
    props.title = title
    props.created = FIXED_TIME
    props.modified = FIXED_TIME
    props.last_printed = FIXED_TIME
    props.revision = 1
    raw = io.BytesIO()
    document.save(raw)
    return _restamp_zip(raw.getvalue())


def _restamp_zip(data: bytes) -> bytes:
    # python-docx stamps zip entries with the current time; rewrite them with a fixed one.
    out = io.BytesIO()
    with (
        zipfile.ZipFile(io.BytesIO(data)) as source,
        zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target,
    ):
        for info in source.infolist():
            entry = zipfile.ZipInfo(info.filename, date_time=ZIP_TIME)
            entry.compress_type = zipfile.ZIP_DEFLATED
            entry.external_attr = 0o644 << 16
            target.writestr(entry, source.read(info.filename))
    return out.getvalue()


def build_docx_files() -> list[Path]:
    """Write every .docx essay from its source text; return the written paths."""
    written = []
    for source in sorted(SOURCES.glob("*/*.txt")):
        target = TARGET / source.parent.name / f"{source.stem}.docx"
        paragraphs = paragraphs_of(source.read_text(encoding="utf-8"))
        target.write_bytes(docx_bytes(paragraphs, title=paragraphs[0]))
        written.append(target)
    return written


def grade_from_name(name: str) -> str:
    """The grade token of a HuleEdu anchor file name (text after the last underscore)."""
    return Path(name).stem.rsplit("_", 1)[-1]


def write_anchors_csv() -> Path:
    """Write ``anchors.csv`` (ANCHOR-ID, FILE-NAME, GRADE) from the anchor file names."""
    anchors = sorted(
        path.name for path in (TARGET / "anchor_essays").iterdir() if path.suffix in ESSAY_SUFFIXES
    )
    csv_path = TARGET / "anchors.csv"
    with csv_path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(["ANCHOR-ID", "FILE-NAME", "GRADE"])
        for number, name in enumerate(anchors, start=1):
            writer.writerow([f"ANCHOR-{number:03d}", name, grade_from_name(name)])
    return csv_path


def main() -> None:
    for path in build_docx_files():
        print(f"wrote {path.relative_to(SAMPLE_DATA)}")
    print(f"wrote {write_anchors_csv().relative_to(SAMPLE_DATA)}")


if __name__ == "__main__":
    main()
