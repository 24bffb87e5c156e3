"""R2: the canonical batch identity — a UUID for the wire, a human label for people."""

from __future__ import annotations

import re
from dataclasses import dataclass
from uuid import UUID, uuid4

from pytest_eng5.errors import ConfigurationError

_UNSAFE_CHARS = re.compile(r"[^A-Za-z0-9._-]")
SAFE_LABEL_MAX_LENGTH = 64


@dataclass(frozen=True)
class BatchIdentity:
    """``batch_uuid`` is what CJ sees (entity_id, Kafka key); ``batch_label`` is for humans."""

    batch_uuid: UUID
    batch_label: str

    @classmethod
    def new(cls, label: str, batch_uuid: UUID | str | None = None) -> BatchIdentity:
        """A fresh identity, or one re-attached to an existing batch via ``batch_uuid``."""
        if not label or not label.strip():
            raise ConfigurationError(
                "batch label must not be blank",
                next_step="pass a short human-readable label, e.g. eng5-pilot-1",
            )
        if batch_uuid is None:
            return cls(batch_uuid=uuid4(), batch_label=label.strip())
        if isinstance(batch_uuid, UUID):
            return cls(batch_uuid=batch_uuid, batch_label=label.strip())
        try:
            parsed = UUID(str(batch_uuid).strip())
        except ValueError:
            raise ConfigurationError(
                f"batch uuid {batch_uuid!r} is not a UUID",
                next_step="pass the batch_uuid printed by the original run (36-character UUID), "
                "or leave it unset to start a new batch",
            ) from None
        return cls(batch_uuid=parsed, batch_label=label.strip())

    @property
    def batch_id(self) -> str:
        """The canonical id as it appears on the wire (``str(batch_uuid)``)."""
        return str(self.batch_uuid)

    @property
    def safe_label(self) -> str:
        """The label made safe for file names: ``[A-Za-z0-9._-]`` kept, others → ``-``, ≤ 64."""
        return _UNSAFE_CHARS.sub("-", self.batch_label)[:SAFE_LABEL_MAX_LENGTH]
