"""Facts the docs must keep stating (checks of prose, so they live here and not in scenarios/)."""

from __future__ import annotations

import re
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


def documented_modules(text: str) -> set[str]:
    """The paths the "What is where" block of docs/architecture.md names, from its indentation.

    A line ``<indent><name>/`` or ``<indent><name>.py`` followed by its job names a package or
    module; two spaces of indent per level. Deeper lines without such a name continue a job.
    """
    block = text.split("<!-- modules:", 1)[1].split("```", 2)[1]
    names: set[str] = set()
    parents: list[str] = []
    for line in block.strip("\n").splitlines():
        match = re.match(r"( *)(\S+?(?:/|\.py))(?:  +\S|$)", line)
        if match is None:
            continue
        depth = len(match.group(1)) // 2
        name = match.group(2)
        del parents[depth:]
        assert len(parents) == depth, f"docs/architecture.md: {line.strip()!r} has no package"
        names.add("/".join([*parents, name]).removesuffix("/"))
        if name.endswith("/"):
            parents.append(name.removesuffix("/"))
    return names


def package_modules() -> set[str]:
    """Every package (its directory) and module (but ``__init__.py``) of pytest_eng5/."""
    package = ROOT / "pytest_eng5"
    found: set[str] = set()
    for path in package.rglob("*.py"):
        relative = path.relative_to(ROOT)
        if path.name == "__init__.py":
            found.add(relative.parent.as_posix())
        else:
            found.add(relative.as_posix())
    return found


def test_the_architecture_doc_names_every_module_and_only_those() -> None:
    documented = documented_modules((DOCS / "architecture.md").read_text(encoding="utf-8"))
    actual = package_modules()
    assert not actual - documented, (
        f"docs/architecture.md ('What is where') lacks a line for {sorted(actual - documented)}"
    )
    assert not documented - actual, (
        f"docs/architecture.md ('What is where') names modules that are gone: "
        f"{sorted(documented - actual)}"
    )


def test_the_module_list_check_sees_a_missing_line() -> None:
    text = (DOCS / "architecture.md").read_text(encoding="utf-8")
    without_tansu = "\n".join(
        line for line in text.splitlines() if not line.lstrip().startswith("tansu.py ")
    )
    assert "pytest_eng5/stack/tansu.py" in documented_modules(text)
    assert "pytest_eng5/stack/tansu.py" not in documented_modules(without_tansu)
