"""Typed errors of the ENG5 harness.

Every error says what was wrong (``str(error)``) and what the operator should do next
(``error.next_step``). The plugin shows both; nothing here imports pytest.
"""

from __future__ import annotations

from pathlib import Path


class Eng5Error(Exception):
    """Base class: a message plus the next step for the operator."""

    kind = "error"

    def __init__(self, message: str, *, next_step: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.next_step = next_step

    def __str__(self) -> str:
        if self.next_step:
            return f"{self.message}\n  next step: {self.next_step}"
        return self.message


class ConfigurationError(Eng5Error):
    """A setting or a combination of settings cannot work."""

    kind = "configuration"


class InventoryError(Eng5Error):
    """The asset folder holds something that cannot be sent (bad file, bad grade, clash)."""

    kind = "inventory"


class CapacityError(Eng5Error):
    """R1: the inputs cannot yield a valid CJ comparison batch."""

    kind = "capacity"


class PreflightError(Eng5Error):
    """A CJ admin preflight failed; subclasses name the cause."""

    kind = "preflight"

    def __init__(self, message: str, *, next_step: str = "", url: str = "") -> None:
        super().__init__(message, next_step=next_step)
        self.url = url


class PreflightNotFoundError(PreflightError):
    kind = "preflight-not-found"


class PreflightAuthError(PreflightError):
    kind = "preflight-auth"


class GradeScaleMismatchError(PreflightError):
    kind = "grade-scale-mismatch"


class AnchorsMissingError(PreflightError):
    kind = "anchors-missing"


class ServiceUnavailableError(PreflightError):
    kind = "service-unavailable"


class AnchorRegistrationError(Eng5Error):
    """register-anchors stopped part-way; ``registered`` and ``pending`` say where."""

    kind = "anchor-registration"

    def __init__(
        self,
        message: str,
        *,
        next_step: str = "",
        registered: tuple[str, ...] = (),
        pending: tuple[str, ...] = (),
    ) -> None:
        super().__init__(message, next_step=next_step)
        self.registered = registered
        self.pending = pending


class UploadError(Eng5Error):
    """A Content Service upload failed; earlier uploads are already in the cache."""

    kind = "upload"

    def __init__(
        self, message: str, *, next_step: str = "", uploaded: int = 0, failed: tuple[str, ...] = ()
    ) -> None:
        super().__init__(message, next_step=next_step)
        self.uploaded = uploaded
        self.failed = failed


class PublishError(Eng5Error):
    """The broker refused the request: it is not on the topic (publishing again is safe)."""

    kind = "publish"


class PublishUnconfirmedError(PublishError):
    """The publish was not acknowledged (a request timeout, a lost connection): the request may
    be on the topic, so re-attach (or check the topic) before publishing again."""

    kind = "publish-unconfirmed"


class InfrastructureError(Eng5Error):
    """A broker or service failed underneath a well-configured run (not a setting to fix)."""

    kind = "infrastructure"


class BrokerUnavailableError(InfrastructureError):
    """The Kafka broker did not answer when the collector was being positioned."""

    kind = "broker-unavailable"


class KafkaReadError(InfrastructureError):
    """Reading the batch's events from Kafka failed; the evidence gathered so far is kept."""

    kind = "kafka-read"

    def __init__(self, message: str, *, next_step: str = "", evidence_dir: Path | None = None):
        super().__init__(message, next_step=next_step)
        self.evidence_dir = evidence_dir


class BrokerLostError(KafkaReadError):
    """The broker stopped answering while the batch was awaited (not a timeout of the batch)."""

    kind = "broker-lost"


class AwaitTimeoutError(Eng5Error):
    """The batch did not finish in time; the evidence gathered so far is kept."""

    kind = "await-timeout"

    def __init__(self, message: str, *, next_step: str = "", evidence_dir: Path | None = None):
        super().__init__(message, next_step=next_step)
        self.evidence_dir = evidence_dir


class BatchFailedError(Eng5Error):
    """CJ reported the batch as failed (failed event or failed completion status)."""

    kind = "batch-failed"

    def __init__(self, message: str, *, next_step: str = "", reason: str = "") -> None:
        super().__init__(message, next_step=next_step)
        self.reason = reason


class UnusableBatchError(Eng5Error):
    """CJ ended the batch, but its scores cannot be used: no comparison succeeded, the
    comparisons do not connect every essay, or essays sent were not scored."""

    kind = "unusable-batch"

    def __init__(
        self, message: str, *, next_step: str = "", outcome: str, missing: tuple[str, ...] = ()
    ) -> None:
        super().__init__(message, next_step=next_step)
        self.outcome = outcome
        self.missing = missing


class HookError(Eng5Error):
    """A host callback (a ``pytest_eng5_*`` hook under pytest) raised while the run went on."""

    kind = "hook"


class ExtractionError(Eng5Error):
    """R5: the batch succeeded but the DB extraction failed."""

    kind = "extraction"


class GateError(Eng5Error):
    """A quality gate (SSR, tau-b, ...) was not met."""

    kind = "gate"
