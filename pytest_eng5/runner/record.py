"""The run record: the typed ``assessment_run.json`` artefact of one batch run.

``pytest_eng5/schemas/assessment_run.schema.json`` is generated from :class:`RunRecord`
(``python -m pytest_eng5.runner.record`` rewrites it; a test keeps the two equal).

Checksum convention (the only one): ``validation.artefact_checksum`` is the SHA-256 hex digest
of ``json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False)`` encoded as
UTF-8, computed while the field holds ``""``.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Final, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, JsonValue, model_validator

from pytest_eng5.core.outcome import Outcome

SCHEMA_VERSION: Final = "3.0.0"
CHECKSUM_CONVENTION: Final = (
    "sha256 of json.dumps(doc, sort_keys=True, separators=(',', ':'), ensure_ascii=False) "
    "in UTF-8, with validation.artefact_checksum set to ''"
)
SCHEMA_PATH: Final = Path(__file__).parent.parent / "schemas" / "assessment_run.schema.json"

RunnerMode = Literal["plan", "dry-run", "execute", "anchor-align-test"]
Sha256 = str  # documented by the pattern on each field
_SHA256: Final = r"^[0-9a-f]{64}$"


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_serialization_defaults_required=True)


class RunMetadata(_Record):
    batch_uuid: UUID
    batch_label: str = Field(min_length=1)
    runner_mode: RunnerMode
    assignment_id: str | None = Field(max_length=100)
    course_id: str | None
    course_code: str | None = None
    grade_scale: str | None
    runner_version: str
    git_sha: str = Field(pattern=r"^([0-9a-f]{7,40}|unknown)$")
    generated_at: datetime
    correlation_id: UUID | None = None
    llm_config_overrides: dict[str, JsonValue] | None = None
    #: the (non-secret) settings the run used
    settings: dict[str, JsonValue] = Field(default_factory=dict)


class DocumentBlob(_Record):
    source_path: str
    checksum: Sha256 = Field(pattern=_SHA256)
    content: str


class AnchorRecord(_Record):
    """An anchor essay; in anchor-align runs anchors travel to CJ as students."""

    anchor_id: str = Field(min_length=1)
    essay_id: str | None = Field(None, max_length=36)
    file_name: str | None = None
    anchor_grade: str | None
    is_anchor: Literal[True] = True
    checksum: Sha256 | None = Field(None, pattern=_SHA256)


class StudentRecord(_Record):
    """A student essay; ``essay_id`` is exactly the id sent in ``essays_for_cj``."""

    essay_id: str = Field(min_length=1, max_length=36)
    file_name: str | None = None
    checksum: Sha256 | None = Field(None, pattern=_SHA256)


class RunInputs(_Record):
    instructions: DocumentBlob | None
    prompt_reference: DocumentBlob | None
    anchors: list[AnchorRecord] = Field(default_factory=list)
    students: list[StudentRecord] = Field(default_factory=list)


_STATUS_RULE: dict[str, JsonValue] = {
    "if": {"properties": {"status": {"const": "succeeded"}}},
    "then": {"properties": {"winner_id": {"type": "string"}, "loser_id": {"type": "string"}}},
    "else": {"properties": {"winner_id": {"type": "null"}, "loser_id": {"type": "null"}}},
}


class ComparisonRecord(_Record):
    """One LLM callback; error callbacks are ``failed`` with no winner."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_serialization_defaults_required=True,
        json_schema_extra=_STATUS_RULE,
    )

    sequence: int = Field(ge=1)
    request_id: str = Field(min_length=1)
    correlation_id: UUID
    status: Literal["succeeded", "failed"]
    essay_a_id: str = Field(min_length=1)
    essay_b_id: str = Field(min_length=1)
    winner_id: str | None
    loser_id: str | None
    prompt_hash: Sha256 | None = Field(None, pattern=_SHA256)
    provider: str
    model: str
    tokens_prompt: int = Field(ge=0)
    tokens_completion: int = Field(ge=0)
    cost_usd: float = Field(ge=0)
    response_time_ms: int | None = Field(None, ge=0)
    started_at: datetime
    completed_at: datetime
    confidence: float | None = None
    justification: str | None = None
    failure_reason: str | None = None
    error_code: str | None = None

    @model_validator(mode="after")
    def _winner_matches_status(self) -> ComparisonRecord:
        has_winner = self.winner_id is not None and self.loser_id is not None
        if has_winner != (self.status == "succeeded"):
            raise ValueError("a succeeded comparison has a winner and a loser; a failed one none")
        return self


class BTEntry(_Record):
    essay_id: str
    theta: float
    standard_error: float | None = Field(ge=0)
    rank: int = Field(ge=1)
    comparison_count: int = Field(ge=0)
    wins: int = Field(0, ge=0)
    losses: int = Field(0, ge=0)
    is_anchor: bool
    anchor_grade: str | None = None
    grade_projection: str | None = None


class GradeProjection(_Record):
    essay_id: str
    grade_scale: str | None
    grade: str
    confidence_score: float | None = Field(None, ge=0, le=1)
    confidence_label: str | None = None
    normalized_score: float | None = None
    probabilities: dict[str, float] | None = None
    primary_anchor_id: str | None = None
    anchor_alignment: str | None = None


class TokenCount(_Record):
    key: str
    provider: str
    model: str
    prompt_tokens: int = Field(ge=0)
    completion_tokens: int = Field(ge=0)
    total_tokens: int = Field(ge=0)
    usd: float = Field(ge=0)
    comparisons: int = Field(ge=0)


class Costs(_Record):
    total_usd: float = Field(0.0, ge=0)
    token_counts: list[TokenCount] = Field(default_factory=list)


class RunStatistics(BaseModel):
    """Run statistics (SSR, split-half, N_CR, fit, ...). Typed fields are checked; the
    statistics module may add more (subclass or add fields here), unknown keys are kept."""

    model_config = ConfigDict(extra="allow", json_schema_serialization_defaults_required=True)

    ssr: float | None = None
    split_half_spearman_brown: float | None = None
    n_cr: float | None = Field(None, ge=0)
    mean_se: float | None = Field(None, ge=0)
    tau_b: float | None = Field(None, ge=-1, le=1)


class ManifestEntry(_Record):
    path: str
    sha256: Sha256 = Field(pattern=_SHA256)
    bytes: int = Field(ge=0)


class CliEnvironment(_Record):
    python: str
    os: str
    platform: str | None = None


class ObservedEvents(_Record):
    llm_comparisons: int = Field(0, ge=0)
    completions: int = Field(0, ge=0)
    assessment_results: int = Field(0, ge=0)
    failures: int = Field(0, ge=0)
    foreign: int = Field(0, ge=0)
    duplicates: int = Field(0, ge=0)
    malformed: int = Field(0, ge=0)


class TopicOffset(_Record):
    """A position on one partition of a topic."""

    topic: str
    partition: int = Field(ge=0)
    offset: int = Field(ge=0)


class ComparisonGraph(_Record):
    """Essays (nodes) and successful comparisons (edges) of the batch.

    ``components`` > 1 means some essays' scores cannot be compared with the others';
    ``n_cr`` is comparisons per essay (2 x comparisons / essays).
    """

    essays: int = Field(ge=0)
    comparisons: int = Field(ge=0)
    components: int = Field(ge=0)
    n_cr: float = Field(ge=0)


class RunnerStatus(_Record):
    outcome: Outcome
    partial_data: bool
    timeout_seconds: float = Field(ge=0)
    observed_events: ObservedEvents = Field(default_factory=ObservedEvents)
    result_missing: bool = False
    failure_reason: str | None = None
    error_kind: str | None = None
    durations: dict[str, float] = Field(default_factory=dict)
    #: where the request was stored on the request topic
    publish: TopicOffset | None = None
    #: where the collector started reading (before publishing); attach starts there again
    collector_offsets: list[TopicOffset] = Field(default_factory=list)
    comparison_graph: ComparisonGraph | None = None
    #: essays sent but not scored by CJ (HuleEdu drops essays whose text it cannot fetch)
    missing_essay_ids: list[str] = Field(default_factory=list)


class Validation(_Record):
    artefact_checksum: str = Field("", pattern=r"^([0-9a-f]{64})?$")
    checksum_convention: str = CHECKSUM_CONVENTION
    manifest: list[ManifestEntry] = Field(default_factory=list)
    cli_environment: CliEnvironment
    runner_status: RunnerStatus
    post_run: dict[str, JsonValue] = Field(default_factory=dict)


class RunRecord(_Record):
    """ENG5 NP assessment run artefact (pytest-eng5): one file per batch run,
    ``<evidence>/<batch_uuid>/assessment_run.json``."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_serialization_defaults_required=True,
        title="ENG5 NP assessment run artefact (pytest-eng5)",
        json_schema_extra={
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "$id": "https://pytest-eng5.invalid/schemas/assessment_run.schema.json",
        },
    )

    schema_version: str = Field(SCHEMA_VERSION, pattern=r"^3\.\d+\.\d+$")
    metadata: RunMetadata
    inputs: RunInputs
    llm_comparisons: list[ComparisonRecord] = Field(default_factory=list)
    bt_summary: list[BTEntry] = Field(default_factory=list)
    grade_projections: list[GradeProjection] = Field(default_factory=list)
    costs: Costs = Field(default_factory=Costs)
    statistics: RunStatistics = Field(default_factory=RunStatistics)
    validation: Validation

    @property
    def outcome(self) -> Outcome:
        return self.validation.runner_status.outcome


def record_schema() -> dict[str, JsonValue]:
    """The JSON schema of :class:`RunRecord` as written (every field present, so required)."""
    schema: dict[str, JsonValue] = RunRecord.model_json_schema(mode="serialization")
    return schema


def schema_text() -> str:
    """The stored schema file's text."""
    return json.dumps(record_schema(), indent=2, ensure_ascii=False) + "\n"


if __name__ == "__main__":  # pragma: no cover - regenerates the stored schema
    SCHEMA_PATH.write_text(schema_text(), encoding="utf-8")
