"""CJ preflights: the assignment's instructions (R3) and its anchors (R4), read via the admin API.

CJ owns the grade scale and the anchors; a run checks both before it sends anything.
"""

from __future__ import annotations

from dataclasses import dataclass

from pytest_eng5.contracts import ContextOrigin
from pytest_eng5.core import PreflightMode
from pytest_eng5.errors import (
    AnchorsMissingError,
    ConfigurationError,
    GradeScaleMismatchError,
    PreflightError,
)
from pytest_eng5.runner.cj_admin import CJAdminClient

REGISTER_NEXT_STEP = "register anchors first (register_anchors() fixture method / cj-admin)"


@dataclass(frozen=True)
class AssignmentInfo:
    """What the assignment preflight learned from CJ (R3: CJ owns the grade scale)."""

    assignment_id: str
    grade_scale: str
    context_origin: str
    student_prompt_present: bool
    instructions_id: int
    student_prompt_storage_id: str | None = None


@dataclass(frozen=True)
class AnchorInfo:
    """What the anchor preflight learned: anchors for the instruction's scale and overall."""

    assignment_id: str
    grade_scale: str
    anchor_count: int
    total: int
    by_scale: dict[str, int]
    labels: tuple[str, ...]


async def assignment_preflight(
    client: CJAdminClient,
    assignment_id: str,
    *,
    expected_grade_scale: str | None,
    mode: PreflightMode,
    rubric_override: bool,
) -> AssignmentInfo:
    """R3: resolve the assignment through CJ and check it suits ``mode``.

    Raises :class:`GradeScaleMismatchError` (both values quoted), :class:`PreflightError` when
    execute has no student prompt, :class:`ConfigurationError` for a rubric override on a
    ``canonical_national`` assignment in execute, and the client's mapped HTTP errors.
    """
    if not assignment_id or not assignment_id.strip():
        raise ConfigurationError(
            "The assignment id is empty.", next_step="pass the CJ assignment id (a UUID)"
        )
    row = await client.get_assignment(assignment_id)
    url = f"{client.base_url}/admin/v1/assessment-instructions/assignment/{assignment_id}"
    if row.assignment_id != assignment_id:
        raise PreflightError(
            f"CJ answered the lookup of assignment {assignment_id!r} with instructions for "
            f"assignment_id={row.assignment_id!r} (course_id={row.course_id!r}).",
            next_step="check the assignment id; inspect with cj-admin instructions list",
            url=url,
        )
    if expected_grade_scale is not None:
        if not expected_grade_scale.strip():
            raise ConfigurationError(
                "The expected grade scale is blank.",
                next_step=f"omit it, or set it to CJ's value {row.grade_scale!r}",
            )
        if expected_grade_scale != row.grade_scale:
            raise GradeScaleMismatchError(
                f"Grade scale mismatch for assignment {assignment_id}: expected "
                f"{expected_grade_scale!r}, but CJ's assessment_instructions say "
                f"{row.grade_scale!r}.",
                next_step="CJ owns the grade scale: fix the expectation, or recreate the "
                "assignment's instructions with the intended scale (cj-admin instructions)",
                url=url,
            )
    prompt_present = bool(row.student_prompt_storage_id)
    if mode == "execute" and not prompt_present:
        raise PreflightError(
            f"Assignment {assignment_id} has no student prompt in CJ "
            "(student_prompt_storage_id is empty); execute needs one for the comparisons.",
            next_step=f"upload a prompt: cj-admin prompts upload --assignment-id {assignment_id} "
            "--prompt-file <file>",
            url=url,
        )
    if (
        mode == "execute"
        and rubric_override
        and row.context_origin == ContextOrigin.CANONICAL_NATIONAL.value
    ):
        raise ConfigurationError(
            f"Assignment {assignment_id} has context_origin=canonical_national, where CJ "
            "rejects a judge rubric override, and this run sets one.",
            next_step="drop the judge rubric override, or use a research_experiment assignment",
        )
    return AssignmentInfo(
        assignment_id=assignment_id,
        grade_scale=row.grade_scale,
        context_origin=row.context_origin,
        student_prompt_present=prompt_present,
        instructions_id=row.id,
        student_prompt_storage_id=row.student_prompt_storage_id,
    )


async def anchor_preflight(client: CJAdminClient, assignment_id: str) -> AnchorInfo:
    """R4: anchors are a CJ precondition; zero for the instruction's scale is an error."""
    summary = await client.get_anchor_summary(assignment_id)
    info = AnchorInfo(
        assignment_id=summary.assignment_id,
        grade_scale=summary.grade_scale,
        anchor_count=summary.anchor_count,
        total=summary.anchor_count_total,
        by_scale=dict(summary.anchor_count_by_scale),
        labels=tuple(item.anchor_label for item in summary.anchors),
    )
    if info.anchor_count <= 0:
        elsewhere = ""
        if info.total > 0:
            elsewhere = (
                f" ({info.total} anchor(s) exist for other scales: {info.by_scale}; CJ only "
                "uses anchors of the instruction's scale)"
            )
        raise AnchorsMissingError(
            f"Assignment {assignment_id} has no anchors for its grade scale "
            f"{info.grade_scale!r}{elsewhere}.",
            next_step=REGISTER_NEXT_STEP,
            url=f"{client.base_url}/admin/v1/anchors/assignment/{assignment_id}",
        )
    return info
