"""Fault knobs of the reference services, shared through PostgreSQL.

The CJ API's test-only endpoint (``POST /_test/faults``) and the stack's ``--faults`` start
option write a :class:`FaultConfig` per service into ``reference_faults``; each service reads
its row when it handles work, so a scenario can change faults without restarting anything.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from pytest_eng5.core.names import FaultService

FAULTS_DDL = """
CREATE TABLE IF NOT EXISTS reference_faults (
    service    varchar(32) PRIMARY KEY,
    config     jsonb NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
)
"""


class FaultConfig(BaseModel):
    """What a reference service should do wrong. The defaults mean: nothing."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    http_pass_first: int = Field(
        0, ge=0, description="let the next N matching HTTP requests through before failing"
    )
    http_5xx_count: int = Field(0, ge=0, description="fail the next N matching HTTP requests")
    http_5xx_rate: float = Field(0.0, ge=0.0, le=1.0, description="fail this share of requests")
    http_latency_ms: int = Field(0, ge=0, description="delay every matching HTTP request")
    http_path_prefix: str = Field("", description="only requests whose path starts with this")
    drop_callback_rate: float = Field(0.0, ge=0.0, le=1.0)
    duplicate_callback_rate: float = Field(0.0, ge=0.0, le=1.0)
    malformed_callback_rate: float = Field(0.0, ge=0.0, le=1.0)
    judge_error_rate: float = Field(0.0, ge=0.0, le=1.0, description="error callbacks")
    judge_delay_ms: int = Field(0, ge=0, description="slow judge: delay per comparison")
    force_failure: bool = Field(False, description="publish CJAssessmentFailedV1 for every batch")
    pairing_groups: int = Field(
        1,
        ge=1,
        description="cj-worker: pair essays only within this many disjoint groups (a pairing "
        "whose comparisons cannot connect the batch)",
    )
    huleedu_head_quirks: bool = Field(
        False,
        description="CJ API only: behave as HuleEdu HEAD (generic 500 for admin errors, admin "
        "writes not persisted, HTTP-date datetimes; see reference/huleedu_head.py)",
    )
    seed: int = 0


async def read_faults(conn: Any, service: FaultService) -> FaultConfig:
    """Read the current faults of ``service`` (an asyncpg connection or pool)."""
    raw = await conn.fetchval("SELECT config FROM reference_faults WHERE service = $1", service)
    if raw is None:
        return FaultConfig()
    data = json.loads(raw) if isinstance(raw, str) else raw
    return FaultConfig.model_validate(data)


async def write_faults(conn: Any, service: FaultService, faults: FaultConfig) -> None:
    """Set the faults of ``service``; ``FaultConfig()`` clears them."""
    await conn.execute(
        "INSERT INTO reference_faults (service, config) VALUES ($1, $2::jsonb) "
        "ON CONFLICT (service) DO UPDATE SET config = EXCLUDED.config, updated_at = now()",
        service,
        faults.model_dump_json(),
    )
