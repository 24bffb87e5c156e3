"""The suite's modules import as top-level names (rootdir-relative, no packages), so a name that
two folders share resolves to whichever was imported first: the test then passes or fails with
the order of collection (``tests/stack`` once imported ``embedded_config`` from ``conftest``
and got ``tests/integration/conftest.py`` when that ran first)."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SUITE = sorted(p for folder in ("tests", "scenarios") for p in (ROOT / folder).rglob("*.py"))


def test_no_module_imports_a_conftest_by_its_bare_name() -> None:
    bare = re.compile(r"^(from conftest import|import conftest\b)", re.M)  # not in pytester text
    offenders = [str(p.relative_to(ROOT)) for p in SUITE if bare.search(p.read_text())]
    assert offenders == [], "put shared helpers in a module with a name of its own"


def test_module_names_other_than_conftest_are_unique() -> None:
    names = Counter(p.stem for p in SUITE if p.stem not in ("conftest", "__init__"))
    assert [name for name, count in names.items() if count > 1] == []
