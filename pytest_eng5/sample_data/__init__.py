"""The shipped ENG5-like sample asset set (written for this project) and a tiny text reader.

``SAMPLE_ASSETS`` holds ``instructions.md``, ``anchors.csv``, ``anchor_essays/`` (12 graded
anchors) and ``student_essays/`` (24 essays). ``docx_sources/`` next to it keeps the plain text
that ``tools/make_sample_docx.py`` turns into the .docx essays; it is not part of the asset set.
"""

from __future__ import annotations

import uuid
from pathlib import Path

SAMPLE_ASSETS = Path(__file__).parent / "eng5_np_sample"
#: Prompt and rubric files for experiments: ``system/001_baseline.txt``,
#: ``system/003_language_control.txt`` and ``rubric/003_language_control.txt``.
SAMPLE_PROMPTS = Path(__file__).parent / "prompts"
#: the assignment the sample set is seeded as on the reference stack (stable across sessions)
SAMPLE_ASSIGNMENT_ID = str(uuid.uuid5(uuid.NAMESPACE_URL, "pytest-eng5/sample/eng5_np_sample"))
SAMPLE_COURSE_ID = str(uuid.uuid5(uuid.NAMESPACE_URL, "pytest-eng5/sample/course"))
#: the assignment an asset folder other than the sample set is seeded as on the reference stack
OWN_ASSETS_ASSIGNMENT_ID = str(uuid.uuid5(uuid.NAMESPACE_URL, "pytest-eng5/own-assets"))


def read_sample_text(path: Path) -> str:
    """Return an essay's text: .txt/.md as UTF-8, .docx as its paragraphs joined by newlines."""
    if path.suffix.lower() == ".docx":
        from docx import Document  # imported lazily: only .docx files need python-docx

        return "\n".join(paragraph.text for paragraph in Document(str(path)).paragraphs)
    return path.read_text(encoding="utf-8")
