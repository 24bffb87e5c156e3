"""The HuleEdu ``EventEnvelope`` (contract D.2) with two-phase parsing and byte encoding."""

from __future__ import annotations

import json
from typing import Any, Final, TypeVar
from uuid import UUID, uuid4

from pydantic import BaseModel, ConfigDict, Field

from pytest_eng5.contracts.timeparse import TolerantDatetime, utcnow

RUNNER_SOURCE_SERVICE: Final = "eng5_np_batch_runner"

ModelT = TypeVar("ModelT", bound=BaseModel)


class EventEnvelope(BaseModel):
    """Every Kafka message of the CJ flow; ``data`` is a model on build and a dict after parse."""

    model_config = ConfigDict(populate_by_name=True, extra="ignore")

    event_id: UUID = Field(default_factory=uuid4)
    event_type: str
    event_timestamp: TolerantDatetime = Field(default_factory=utcnow)
    source_service: str
    schema_version: int = 1
    correlation_id: UUID = Field(default_factory=uuid4)
    data_schema_uri: str | None = None
    data: Any
    metadata: dict[str, Any] | None = None

    def data_as(self, model_cls: type[ModelT]) -> ModelT:
        """Second phase of the parse: validate ``data`` as ``model_cls``."""
        if isinstance(self.data, model_cls):
            return self.data
        if isinstance(self.data, BaseModel):
            return model_cls.model_validate(self.data.model_dump(mode="json"))
        return model_cls.model_validate(self.data)

    def to_json_dict(self) -> dict[str, Any]:
        """The wire form as a dict (UUIDs as strings, datetimes ISO 8601)."""
        dumped: dict[str, Any] = self.model_dump(mode="json", by_alias=True)
        return dumped

    def to_bytes(self) -> bytes:
        """UTF-8 JSON of ``model_dump(mode="json")`` — what goes into the Kafka value."""
        return json.dumps(self.to_json_dict()).encode("utf-8")

    @classmethod
    def from_bytes(cls, raw: bytes) -> EventEnvelope:
        """First phase of the parse; raises pydantic ``ValidationError`` on bad JSON or fields."""
        return cls.model_validate_json(raw)
