"""Seed an assignment into a CJ service: instruction, student prompt, anchors.

What an operator does with HuleEdu's cj-admin before a run, done through the runner's one CJ
client (:class:`CJAdminClient`: typed bodies, retries, errors with a next step). Works against
HuleEdu's CJ API and the reference one alike. Idempotent: the instruction upsert keeps its row and
anchors upsert on (assignment, label, scale), so seeding twice leaves one anchor per file. Every
anchor file is checked before the first anchor is sent.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from pytest_eng5.contracts import ContextOrigin
from pytest_eng5.contracts.admin import (
    AssessmentInstructionUpsertRequest,
    StudentPromptUploadRequest,
)
from pytest_eng5.core import RUNNER_FALLBACK_GRADE_SCALE
from pytest_eng5.errors import InventoryError
from pytest_eng5.runner.anchor_registration import AnchorFile, register_anchors
from pytest_eng5.runner.auth import resolve_admin_token
from pytest_eng5.runner.cj_admin import CJAdminClient
from pytest_eng5.runner.inventory import collect_inventory


@dataclass(frozen=True)
class SeedResult:
    """What seeding did and what the CJ API reports afterwards (read back, not assumed)."""

    assignment_id: str
    grade_scale: str
    instruction_id: int
    student_prompt_storage_id: str
    anchors_registered: int
    anchor_ids: dict[str, int] = field(default_factory=dict)
    anchor_count: int = 0
    anchor_count_total: int = 0
    #: anchors CJ accepted but does not list afterwards (HuleEdu's uncommitted writes, H.1)
    not_persisted: tuple[str, ...] = ()


async def seed_assignment(
    client: CJAdminClient,
    assets_dir: Path,
    *,
    assignment_id: str,
    grade_scale: str = RUNNER_FALLBACK_GRADE_SCALE,
    context_origin: str = ContextOrigin.RESEARCH_EXPERIMENT.value,
) -> SeedResult:
    """Upsert the instruction, upload the student prompt and register every anchor file."""
    inventory = collect_inventory(assets_dir, grade_scale=grade_scale, with_anchors=True)
    if inventory.instructions_text is None:
        raise InventoryError(
            f"no instructions file in {assets_dir}",
            next_step="add instructions.md (it becomes the instruction and the student prompt)",
        )
    anchors = [
        AnchorFile(path=a.path, label=a.path.stem, grade=a.grade or "", text=a.text)
        for a in inventory.anchors
    ]
    instruction = await client.upsert_instruction(
        AssessmentInstructionUpsertRequest(
            assignment_id=assignment_id,
            instructions_text=inventory.instructions_text,
            grade_scale=grade_scale,
            context_origin=context_origin,
        )
    )
    prompt = await client.upload_student_prompt(
        StudentPromptUploadRequest(
            assignment_id=assignment_id, prompt_text=inventory.instructions_text
        )
    )
    anchor_ids: dict[str, int] = {}
    not_persisted: tuple[str, ...] = ()
    if anchors:
        report = await register_anchors(
            client, assignment_id, anchors, expected_grade_scale=instruction.grade_scale
        )
        anchor_ids = {item.label: item.anchor_id for item in report.registered}
        not_persisted = report.not_persisted
    summary = await client.get_anchor_summary(assignment_id)
    return SeedResult(
        assignment_id=assignment_id,
        grade_scale=instruction.grade_scale,
        instruction_id=instruction.id,
        student_prompt_storage_id=prompt.student_prompt_storage_id,
        anchors_registered=len(anchor_ids),
        anchor_ids=anchor_ids,
        anchor_count=summary.anchor_count,
        anchor_count_total=summary.anchor_count_total,
        not_persisted=not_persisted,
    )


async def seed_assignment_at(
    cj_url: str,
    env: Mapping[str, str],
    assets_dir: Path,
    *,
    assignment_id: str,
    grade_scale: str = RUNNER_FALLBACK_GRADE_SCALE,
    context_origin: str = ContextOrigin.RESEARCH_EXPERIMENT.value,
) -> SeedResult:
    """:func:`seed_assignment` with a client for ``cj_url`` whose admin token comes from ``env``
    (HuleEdu's order: service-account token, admin token, else minted from JWT_SECRET_KEY)."""
    async with CJAdminClient(cj_url, token=resolve_admin_token(env), env=env) as client:
        return await seed_assignment(
            client,
            assets_dir,
            assignment_id=assignment_id,
            grade_scale=grade_scale,
            context_origin=context_origin,
        )
