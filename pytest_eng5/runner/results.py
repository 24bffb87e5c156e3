"""What a runner call returns: identity, counts, events, artefact, outcome."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pytest_eng5.redact import redact
from pytest_eng5.runner.capacity import CapacityReport
from pytest_eng5.runner.identity import BatchIdentity

#: Run statistics copied into JUnit properties as ``eng5_<key>``.
STATISTICS_PROPERTIES = (
    "ssr",
    "ssr_ci_low",
    "ssr_ci_high",
    "split_half_spearman_brown",
    "n_cr",
    "mean_se",
    "position_bias",
    "position_bias_ci_low",
    "position_bias_ci_high",
    "misfit_judges",
    "n_cr_more_for_ssr_0.8",
    "n_cr_more_for_ssr_0.9",
)

OUTCOMES = (
    "planned",
    "dry-run",
    "registered",
    "not-published",
    "published",
    "completed",
    "failed",
    "timeout",
    "publish-failed",
    "interrupted",
    "rejected",
)


@dataclass
class RunResult:
    """The result of one plan / dry-run / execute / anchor-align / register-anchors call.

    ``events`` holds every accepted event of the batch as ``{"kind", "envelope"}``.

    Filled in as the run goes, so a run that stops with an error still tells how far it got
    (the runner keeps it as ``runner.last_result``).
    """

    mode: str
    identity: BatchIdentity
    outcome: str = "rejected"
    evidence_dir: Path | None = None
    artefact_path: Path | None = None
    assignment_id: str | None = None
    grade_scale: str | None = None
    capacity: CapacityReport | None = None
    anchors_in_cj: int | None = None
    students: int = 0
    anchors_sent: int = 0
    uploaded: int = 0
    reused: int = 0
    published: bool = False
    comparisons: int = 0
    failed_comparisons: int = 0
    ignored_events: dict[str, int] = field(default_factory=dict)
    events: list[dict[str, Any]] = field(default_factory=list, repr=False)
    statistics: dict[str, Any] = field(default_factory=dict)
    alignment: dict[str, Any] = field(default_factory=dict)
    post_run: dict[str, Any] = field(default_factory=dict)
    projections: dict[str, str] = field(default_factory=dict)
    registration: dict[str, Any] = field(default_factory=dict)
    duration_s: float = 0.0
    error: str | None = None
    messages: list[str] = field(default_factory=list)
    started_at: float = field(default_factory=time.monotonic, repr=False)

    def stop_clock(self) -> None:
        """Set ``duration_s`` from the start of the run (idempotent enough: last call wins)."""
        self.duration_s = time.monotonic() - self.started_at

    @property
    def batch_uuid(self) -> str:
        return self.identity.batch_id

    def properties(self) -> list[tuple[str, str]]:
        """Facts for JUnit ``<properties>`` (no secrets: ids, counts, statistics, paths)."""
        props: list[tuple[str, Any]] = [
            ("eng5_mode", self.mode),
            ("eng5_batch_uuid", self.batch_uuid),
            ("eng5_batch_label", self.identity.batch_label),
            ("eng5_outcome", self.outcome),
            ("eng5_assignment_id", self.assignment_id or ""),
            ("eng5_grade_scale", self.grade_scale or ""),
            ("eng5_students", self.students),
            ("eng5_comparisons", self.comparisons),
            ("eng5_uploaded", self.uploaded),
            ("eng5_reused", self.reused),
            ("eng5_duration_s", round(self.duration_s, 3)),
        ]
        for key in STATISTICS_PROPERTIES:
            if key in self.statistics:
                props.append((f"eng5_{key}", self.statistics[key]))
        if "tau_b" in self.alignment:
            props.append(("eng5_tau_b", self.alignment["tau_b"]))
        if "eng5_db_extract" in self.post_run:
            props.append(("eng5_db_extract", self.post_run["eng5_db_extract"].get("status")))
        if self.evidence_dir is not None:
            props.append(("eng5_evidence", str(self.evidence_dir)))
        return [(name, redact(str(value))) for name, value in props]
