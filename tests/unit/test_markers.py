"""The main job's selection (``-m eng5_execute``) only needs scenarios/: no test here has it."""

from __future__ import annotations

import ast
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]


def marker_names(tree: ast.AST) -> set[str]:
    names = set()
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Attribute)
            and node.value.attr == "mark"
        ):
            names.add(node.attr)
    return names


def test_no_test_under_tests_is_part_of_the_main_job() -> None:
    offenders = [
        path.relative_to(TESTS)
        for path in TESTS.rglob("*.py")
        if "eng5_execute" in marker_names(ast.parse(path.read_text(encoding="utf-8")))
    ]
    assert offenders == []


def test_the_main_job_tests_live_in_scenarios() -> None:
    scenarios = TESTS.parent / "scenarios"
    marked = [
        path.name
        for path in scenarios.glob("test_*.py")
        if "eng5_execute" in marker_names(ast.parse(path.read_text(encoding="utf-8")))
    ]
    assert sorted(marked) == ["test_anchor_align.py", "test_execute_end_to_end.py"]
