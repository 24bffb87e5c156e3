"""What a runner call returns: identity, counts, events, artefact, outcome."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from pytest_eng5.core.outcome import Outcome
from pytest_eng5.redact import redact
from pytest_eng5.runner.capacity import CapacityReport
from pytest_eng5.runner.identity import BatchIdentity
from pytest_eng5.runner.record import ComparisonGraph, TopicOffset

#: Run statistics copied into JUnit properties as ``eng5_<key>`` (``eng5_n_cr`` comes from the
#: comparison graph, or the statistics when there is none).
STATISTICS_PROPERTIES = (
    "ssr",
    "ssr_ci_low",
    "ssr_ci_high",
    "split_half_spearman_brown",
    "mean_se",
    "position_bias",
    "position_bias_ci_low",
    "position_bias_ci_high",
    "misfit_judges",
    "n_cr_more_for_ssr_0.8",
    "n_cr_more_for_ssr_0.9",
)

OUTCOMES: Final = tuple(outcome.value for outcome in Outcome)


@dataclass
class RunResult:
    """The result of one plan / dry-run / execute / anchor-align / register-anchors call.

    ``events`` holds every accepted event of the batch as ``{"kind", "envelope"}``.

    Filled in as the run goes, so a run that stops with an error still tells how far it got
    (the runner keeps it as ``runner.last_result``).
    """

    mode: str
    identity: BatchIdentity
    outcome: Outcome = Outcome.REJECTED
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
    #: what stopped the run (message and next step), None when it ended as planned
    error: str | None = None
    #: ``Eng5Error.kind`` of that error, or the exception type's name
    error_kind: str | None = None
    #: where the request was stored on the request topic (None: not confirmed)
    publish: TopicOffset | None = None
    comparison_graph: ComparisonGraph | None = None
    #: essays sent that CJ did not score
    missing_essay_ids: list[str] = field(default_factory=list)
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
            ("eng5_outcome", self.outcome.value),
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
        if self.comparison_graph is not None:
            props.append(("eng5_n_cr", self.comparison_graph.n_cr))
            props.append(("eng5_graph_components", self.comparison_graph.components))
        elif "n_cr" in self.statistics:
            props.append(("eng5_n_cr", self.statistics["n_cr"]))
        if "tau_b" in self.alignment:
            props.append(("eng5_tau_b", self.alignment["tau_b"]))
        if "eng5_db_extract" in self.post_run:
            props.append(("eng5_db_extract", self.post_run["eng5_db_extract"].get("status")))
        if self.evidence_dir is not None:
            props.append(("eng5_evidence", str(self.evidence_dir)))
        return [(name, redact(str(value))) for name, value in props]
