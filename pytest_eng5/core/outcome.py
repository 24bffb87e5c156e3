"""The one vocabulary of run outcomes, shared by results, the artefact, its schema, the summary
table, ``eng5_expect`` and the JUnit properties."""

from __future__ import annotations

from enum import StrEnum


class Outcome(StrEnum):
    """How one runner call ended (the value is what files, JUnit and markers show)."""

    #: stopped by a check before anything was uploaded or published
    REJECTED = "rejected"
    PLANNED = "planned"
    DRY_RUN = "dry_run"
    REGISTERED = "registered"
    #: uploaded and the envelope written, publishing switched off
    NOT_PUBLISHED = "not_published"
    #: the broker refused the request: it is not on the topic
    PUBLISH_FAILED = "publish_failed"
    #: the publish was not acknowledged: it may be on the topic (re-attach before re-publishing)
    PUBLISH_UNCONFIRMED = "publish_unconfirmed"
    PUBLISHED = "published"
    COMPLETED = "completed"
    #: completed, but the rich result event never arrived
    COMPLETED_RESULT_MISSING = "completed_result_missing"
    #: CJ completed a batch in which no comparison succeeded
    NO_COMPARISONS = "no_comparisons"
    #: the comparisons do not connect every essay: the scores of the parts are not comparable
    DISCONNECTED_GRAPH = "disconnected_graph"
    #: CJ scored fewer (or other) essays than were sent
    ESSAYS_MISSING = "essays_missing"
    BATCH_FAILED = "batch_failed"
    TIMEOUT = "timeout"
    #: the broker failed while the batch was awaited (not a timeout of the batch)
    INFRASTRUCTURE_ERROR = "infrastructure_error"
    #: Ctrl-C, SIGTERM or a cancelled task
    INTERRUPTED = "interrupted"
    #: an unexpected exception (a bug, or a hook that raised)
    ERROR = "error"

    @property
    def partial(self) -> bool:
        """True when the batch's data may be incomplete (the run stopped before the end)."""
        return self in _PARTIAL

    @property
    def meaningless(self) -> bool:
        """True for a batch that ended but whose scores cannot be used."""
        return self in _MEANINGLESS


_PARTIAL = frozenset(
    {
        Outcome.BATCH_FAILED,
        Outcome.TIMEOUT,
        Outcome.INFRASTRUCTURE_ERROR,
        Outcome.INTERRUPTED,
        Outcome.ERROR,
    }
)
_MEANINGLESS = frozenset(
    {Outcome.NO_COMPARISONS, Outcome.DISCONNECTED_GRAPH, Outcome.ESSAYS_MISSING}
)
