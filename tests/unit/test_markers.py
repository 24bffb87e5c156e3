"""The main job's selection (``-m eng5_execute``) only needs scenarios/: no test here or in the
shipped R1-R7 scenarios (pytest_eng5/scenarios/) has it."""

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


def test_no_test_under_tests_or_the_shipped_scenarios_is_part_of_the_main_job() -> None:
    shipped = TESTS.parent / "pytest_eng5" / "scenarios"
    offenders = [
        path.relative_to(TESTS.parent)
        for path in [*TESTS.rglob("*.py"), *shipped.glob("*.py")]
        if "eng5_execute" in marker_names(ast.parse(path.read_text(encoding="utf-8")))
    ]
    assert shipped.joinpath("test_r1_comparison_capacity.py") in shipped.glob("*.py")
    assert offenders == []


def test_the_main_job_tests_live_in_scenarios() -> None:
    scenarios = TESTS.parent / "scenarios"
    marked = [
        path.name
        for path in scenarios.glob("test_*.py")
        if "eng5_execute" in marker_names(ast.parse(path.read_text(encoding="utf-8")))
    ]
    assert sorted(marked) == ["test_anchor_align.py", "test_execute_end_to_end.py"]
