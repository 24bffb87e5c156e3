"""Fixtures for the stack tests: the embedded infrastructure (Kafka + PostgreSQL) they share."""

from __future__ import annotations

from typing import Any

import pytest

from pytest_eng5.stack.infra import Infrastructure


@pytest.fixture(scope="module")
def embedded_infra(eng5_stack_factory: Any) -> Infrastructure:
    """Tansu (one partition per topic) and PostgreSQL, without the reference services."""
    stack = eng5_stack_factory(stack="embedded", kafka="tansu", services=False)
    assert stack.infrastructure is not None
    return stack.infrastructure
