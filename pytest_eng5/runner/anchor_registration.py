"""register-anchors: validate every anchor file, register them one by one, read back (H.1).

HuleEdu may answer 201 without committing; the read-back through the admin API says which
anchors really persisted.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from pytest_eng5.contracts import (
    RegisterAnchorRequest,
    get_scale,
    grade_from_filename,
    validate_grade_for_scale,
)
from pytest_eng5.contracts.admin import REGISTER_ANCHOR_MIN_TEXT
from pytest_eng5.errors import (
    AnchorRegistrationError,
    Eng5Error,
    InventoryError,
    PreflightError,
)
from pytest_eng5.runner.cj_admin import CJAdminClient
from pytest_eng5.runner.preflight import assignment_preflight

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class AnchorFile:
    """One anchor essay ready to register: its file, label (stem), grade and extracted text."""

    path: Path
    label: str
    grade: str
    text: str

    @classmethod
    def from_path(cls, path: Path, text: str) -> AnchorFile:
        """Label = file stem, grade = HuleEdu's file-name rule; a bad name is an InventoryError."""
        try:
            grade = grade_from_filename(path.name)
        except ValueError as error:
            raise InventoryError(
                str(error), next_step="rename the file so it ends in its grade, e.g. x_C+.docx"
            ) from error
        return cls(path=path, label=path.stem, grade=grade, text=text)


@dataclass(frozen=True)
class RegisteredAnchor:
    label: str
    grade: str
    file_name: str
    anchor_id: int
    storage_id: str


@dataclass(frozen=True)
class RegistrationReport:
    """Outcome of :func:`register_anchors`, with the read-back verdict per label (H.1)."""

    assignment_id: str
    grade_scale: str
    url: str
    registered: tuple[RegisteredAnchor, ...]
    inserted: tuple[str, ...]
    updated: tuple[str, ...]
    not_persisted: tuple[str, ...]
    anchor_count_after: int

    @property
    def all_persisted(self) -> bool:
        return not self.not_persisted

    def summary(self) -> str:
        """One paragraph for the operator."""
        text = (
            f"Registered {len(self.registered)} anchor(s) for assignment {self.assignment_id} "
            f"(scale {self.grade_scale}) via {self.url}: {len(self.inserted)} inserted, "
            f"{len(self.updated)} updated; CJ now lists {self.anchor_count_after} anchor(s)."
        )
        if self.not_persisted:
            text += (
                f" ACCEPTED BUT NOT PERSISTED ({len(self.not_persisted)}): "
                f"{', '.join(self.not_persisted)} — CJ answered 201 but the read-back does not "
                "show them."
            )
        return text


def not_persisted_error(report: RegistrationReport) -> AnchorRegistrationError:
    """The failure of a registration that CJ accepted but did not keep."""
    kept = tuple(a.label for a in report.registered if a.label not in report.not_persisted)
    return AnchorRegistrationError(
        f"register-anchors failed: CJ accepted {len(report.not_persisted)} anchor(s) for "
        f"assignment {report.assignment_id} but does not list them afterwards "
        f"({', '.join(report.not_persisted)}); this CJ build accepts admin writes without "
        f"persisting them, so execute would find no anchors",
        next_step="register the anchors on a CJ build that commits its admin writes (or with "
        "HuleEdu's own anchor tooling against its database), then check with a plan run that "
        "CJ lists them; re-running register-anchors here changes nothing",
        registered=kept,
        pending=report.not_persisted,
    )


def validate_anchor_files(anchors: Sequence[AnchorFile], grade_scale: str) -> None:
    """Everything CJ would reject, checked before the first request (nothing half-sent)."""
    scale = get_scale(grade_scale)
    allowed = list(scale.grades)
    if scale.below_lowest_grade is not None:
        allowed.append(f"{scale.below_lowest_grade} (below lowest)")
    problems: list[str] = []
    seen: dict[str, str] = {}
    for anchor in anchors:
        name = anchor.path.name
        if not validate_grade_for_scale(anchor.grade, grade_scale):
            problems.append(f"{name}: grade {anchor.grade!r} is not on scale {grade_scale}")
        if len(anchor.text) < REGISTER_ANCHOR_MIN_TEXT:
            problems.append(
                f"{name}: text has {len(anchor.text)} characters; CJ requires at least "
                f"{REGISTER_ANCHOR_MIN_TEXT}"
            )
        if not anchor.label.strip():
            problems.append(f"{name}: the anchor label is blank")
        elif anchor.label in seen:
            problems.append(
                f"{name}: label {anchor.label!r} is also used by {seen[anchor.label]}; CJ keys "
                "anchors by label, so one would overwrite the other"
            )
        else:
            seen[anchor.label] = name
    if problems:
        raise InventoryError(
            f"{len(problems)} anchor problem(s) for scale {grade_scale} (grades: "
            f"{', '.join(allowed)}); nothing was sent:\n  " + "\n  ".join(problems),
            next_step="rename or fix the listed files (the grade is the last '_' part of the "
            "file name) and re-run",
        )


async def register_anchors(
    client: CJAdminClient,
    assignment_id: str,
    anchors: Sequence[AnchorFile],
    *,
    expected_grade_scale: str | None = None,
) -> RegistrationReport:
    """Register anchors one by one after validating all of them, then read back (H.1).

    A failure part-way raises :class:`AnchorRegistrationError` with exact ``registered`` and
    ``pending`` labels (the failing one is pending).
    """
    if not anchors:
        raise InventoryError(
            f"No anchor essays to register for assignment {assignment_id}.",
            next_step="put anchor files named <...>_<grade>.docx or .txt in the anchor folder",
        )
    info = await assignment_preflight(
        client,
        assignment_id,
        expected_grade_scale=expected_grade_scale,
        mode="register-anchors",
        rubric_override=False,
    )
    try:
        get_scale(info.grade_scale)
    except ValueError as error:
        raise PreflightError(
            f"CJ says assignment {assignment_id} uses grade scale {info.grade_scale!r}, which "
            f"this harness does not know: {error}",
            next_step="use a registered scale for the assignment (cj-admin scales list)",
        ) from error
    validate_anchor_files(anchors, info.grade_scale)

    before = await client.get_anchor_summary(assignment_id)
    labels_before = {item.anchor_label for item in before.anchors}
    register_url = f"{client.base_url}/api/v1/anchors/register"
    registered: list[RegisteredAnchor] = []
    for index, anchor in enumerate(anchors):
        request = RegisterAnchorRequest(
            assignment_id=assignment_id,
            grade=anchor.grade,
            anchor_label=anchor.label,
            essay_text=anchor.text,
        )
        try:
            response = await client.register_anchor(request)
        except Eng5Error as error:
            done = tuple(item.label for item in registered)
            pending = tuple(item.label for item in anchors[index:])
            raise AnchorRegistrationError(
                f"Anchor registration stopped at {anchor.path.name} ({index + 1} of "
                f"{len(anchors)}): {error.message} Registered: {len(done)}; pending: "
                f"{len(pending)} ({', '.join(pending)}).",
                next_step="fix the cause and re-run register-anchors; re-registering the "
                f"{len(done)} done is an upsert by label (same rows, no duplicates)",
                registered=done,
                pending=pending,
            ) from error
        registered.append(
            RegisteredAnchor(
                label=anchor.label,
                grade=anchor.grade,
                file_name=anchor.path.name,
                anchor_id=response.anchor_id,
                storage_id=response.storage_id,
            )
        )
        logger.info("registered anchor %s (grade %s)", anchor.label, anchor.grade)

    after = await client.get_anchor_summary(assignment_id)
    stored = {item.anchor_label: item for item in after.anchors}
    inserted: list[str] = []
    updated: list[str] = []
    not_persisted: list[str] = []
    for item in registered:
        row = stored.get(item.label)
        # A rolled-back update leaves the old row pointing at the old blob.
        if row is None or row.text_storage_id != item.storage_id:
            not_persisted.append(item.label)
        elif item.label in labels_before:
            updated.append(item.label)
        else:
            inserted.append(item.label)
    if not_persisted:
        logger.warning(
            "CJ accepted %d anchor(s) that the read-back does not show: %s",
            len(not_persisted),
            ", ".join(not_persisted),
        )
    return RegistrationReport(
        assignment_id=assignment_id,
        grade_scale=info.grade_scale,
        url=register_url,
        registered=tuple(registered),
        inserted=tuple(inserted),
        updated=tuple(updated),
        not_persisted=tuple(not_persisted),
        anchor_count_after=after.anchor_count,
    )
