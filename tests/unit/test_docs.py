"""Facts the docs must keep stating (checks of prose, so they live here and not in scenarios/)."""

from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
DOC = DOCS / "anchor-grades.md"


def test_anchor_grade_doc_states_ownership_and_enforcement() -> None:
    text = DOC.read_text(encoding="utf-8")
    for fact in (
        "CJ owns",
        "assessment_instructions.grade_scale",
        "anchor_essay_references",
        "uq_anchor_assignment_label_scale",
        "POST /api/v1/anchors/register",
        "eng5_np_legacy_9_step",
        "below-lowest",
    ):
        assert fact in text, f"docs/anchor-grades.md should state {fact!r}"


def test_the_architecture_doc_shows_the_enforced_layers() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    contracts = config["tool"]["importlinter"]["contracts"]
    layers = next(c for c in contracts if c["id"] == "layers")["layers"]
    text = (DOCS / "architecture.md").read_text(encoding="utf-8")
    block = text.split("<!-- layers:", 1)[1].split("```", 2)[1]
    assert block.strip().splitlines() == layers
