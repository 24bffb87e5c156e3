"""StackRequest: one whole stack as the stack package takes it, and the key that tells two apart.

The pytest glue builds it from the session settings (``pytest_eng5.stack_requests``); the stack
never reads those settings.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, is_dataclass
from typing import Any

from pydantic import SecretStr

from pytest_eng5.stack.config import DEFAULT_TOPIC_PARTITIONS, ServicesConfig, StackConfig
from pytest_eng5.stack.external import ExternalRequest

#: where a stack's files go: not part of what the stack is
_FOLDERS = frozenset({"workdir", "log_dir"})


@dataclass(frozen=True)
class StackRequest:
    """The infrastructure, the reference services on it (``None``: none), the operator's
    services of an external stack, and the fault knobs the reference services start with."""

    config: StackConfig
    services: ServicesConfig | None = field(default_factory=ServicesConfig)
    external: ExternalRequest | None = None
    faults: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    def key(self) -> str:
        """Equal for requests that may share one stack (a digest: no secret is kept in it)."""
        text = json.dumps(_plain(self), sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()

    def label(self) -> str:
        """A short readable name for the stack's folders."""
        config = self.config
        embedded = config.kind == "embedded"
        parts: list[str] = [config.kafka_provider if embedded else config.kind]
        if embedded and config.kafka_provider == "apache":
            parts.append(f"{config.kafka_brokers}n")
        if config.topic_partitions != DEFAULT_TOPIC_PARTITIONS:
            parts.append(f"{config.topic_partitions}p")
        if self.services is not None:
            parts.append(self.services.judge)
        return "-".join(parts)


def _plain(value: Any) -> Any:
    """``value`` as JSON-able data, secrets in clear (only their digest is kept), folders out."""
    if is_dataclass(value) and not isinstance(value, type):
        return {
            f.name: _plain(getattr(value, f.name)) for f in fields(value) if f.name not in _FOLDERS
        }
    if isinstance(value, SecretStr):
        return value.get_secret_value()
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    return value
