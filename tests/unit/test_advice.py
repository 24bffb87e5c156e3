"""Advice that leads somewhere: hints name a real option, messages cite no document sections
the project does not ship."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from pytest_eng5.runner.kafka_io import _publish_error

PACKAGE = Path(__file__).resolve().parents[2] / "pytest_eng5"
SECTION_REFERENCE = re.compile(
    r"§|\b(contracts?|runner|spec|practice|seed) §?[A-Z]?\.?\d+(\.\d+)?\b|\bcontract [A-Z]\b"
)


def runtime_strings(path: Path) -> list[tuple[int, str]]:
    """String literals of a module that are not docstrings (messages, hints, help texts)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }
    return [
        (node.lineno, node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and id(node) not in docstrings
    ]


def test_no_runtime_message_cites_a_section_number() -> None:
    cited = [
        f"{path.relative_to(PACKAGE)}:{line}: {text[:80]}"
        for path in sorted(PACKAGE.rglob("*.py"))
        for line, text in runtime_strings(path)
        if SECTION_REFERENCE.search(text)
    ]
    assert cited == []


def test_the_tansu_hint_names_the_idempotence_option() -> None:
    error = _publish_error("127.0.0.1:9092", "KafkaError: UnknownError (InitProducerId)")
    assert "--eng5-kafka-idempotence=off" in str(error)
    assert "bootstrap address" in str(error)
