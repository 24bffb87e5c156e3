"""Fixtures for the stack tests: one embedded stack shared by the module that asks for it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from pytest_eng5.stack.config import StackConfig
from pytest_eng5.stack.infra import Infrastructure, running_infrastructure


def embedded_config(base: Path, **overrides: object) -> StackConfig:
    return StackConfig(
        "embedded",
        workdir=base / "work",
        log_dir=base / "logs",
        **overrides,  # type: ignore[arg-type]
    )


@pytest.fixture(scope="module")
def embedded_infra(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Infrastructure]:
    with running_infrastructure(embedded_config(tmp_path_factory.mktemp("stack"))) as infra:
        yield infra
