"""Where the services answer: what a stack hands the runner."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Endpoints:
    """Where the services are: the stack fixture or the operator provides these."""

    cj_url: str | None
    content_url: str | None
    producer_kwargs: Mapping[str, Any]
    consumer_kwargs: Mapping[str, Any]
    postgres_dsn: str | None = None
    #: token/JWT/DB variables (secrets: never shown in a repr)
    env: Mapping[str, str] = field(default_factory=dict, repr=False)
    #: the Content Service's storage ends with its stack (the embedded one): a later stack may
    #: answer on the same URL without the blobs, so cached storage ids are checked before reuse
    content_is_ephemeral: bool = False
