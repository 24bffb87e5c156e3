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
    """The request could not be published; nothing was recorded as published."""

    kind = "publish"


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


class ExtractionError(Eng5Error):
    """R5: the batch succeeded but the DB extraction failed."""

    kind = "extraction"


class GateError(Eng5Error):
    """A quality gate (SSR, tau-b, ...) was not met."""

    kind = "gate"
