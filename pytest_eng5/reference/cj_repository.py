"""The CJ API's tables: assessment instructions and anchor references (every write commits)."""

from __future__ import annotations

import asyncpg

from pytest_eng5.contracts.admin import (
    AssessmentInstructionResponse,
    AssessmentInstructionUpsertRequest,
)
from pytest_eng5.reference.db import Pool

INSTRUCTION_COLUMNS = (
    "id, assignment_id, course_id, instructions_text, grade_scale, context_origin, "
    "student_prompt_storage_id, judge_rubric_storage_id, created_at"
)
STORAGE_ID_COLUMNS = ("student_prompt_storage_id", "judge_rubric_storage_id")


class ImmutableFieldError(Exception):
    """An upsert tried to change grade_scale or context_origin of an existing instruction."""

    def __init__(self, field: str, stored: str, requested: str) -> None:
        super().__init__(
            f"{field} is immutable for existing assessment instructions "
            f"(stored '{stored}', requested '{requested}'); delete the instruction and "
            "create it again to change it"
        )
        self.field = field


# --- assessment instructions ---------------------------------------------------------------


async def fetch_instruction(pool: Pool, assignment_id: str) -> asyncpg.Record | None:
    """The instruction of ``assignment_id``, or None."""
    return await pool.fetchrow(
        f"SELECT {INSTRUCTION_COLUMNS} FROM assessment_instructions WHERE assignment_id = $1",
        assignment_id,
    )


async def list_instructions(
    pool: Pool, grade_scale: str | None, *, limit: int, offset: int
) -> tuple[int, list[asyncpg.Record]]:
    """One page of instructions, newest first, and the total (optionally of one scale)."""
    where = "WHERE grade_scale = $1" if grade_scale else "WHERE $1::text IS NULL"
    total = await pool.fetchval(
        f"SELECT count(*) FROM assessment_instructions {where}", grade_scale
    )
    rows = await pool.fetch(
        f"SELECT {INSTRUCTION_COLUMNS} FROM assessment_instructions {where} "
        "ORDER BY created_at DESC, id DESC LIMIT $2 OFFSET $3",
        grade_scale,
        limit,
        offset,
    )
    return total, rows


async def upsert_instruction(pool: Pool, req: AssessmentInstructionUpsertRequest) -> asyncpg.Record:
    """A.5 upsert: scale and origin immutable, text overwritten, storage ids kept unless given."""
    scope_key = (
        f"assignment:{req.assignment_id}" if req.assignment_id else f"course:{req.course_id}"
    )
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(hashtext($1))", scope_key)
        if req.assignment_id:
            existing = await conn.fetchrow(
                f"SELECT {INSTRUCTION_COLUMNS} FROM assessment_instructions "
                "WHERE assignment_id = $1",
                req.assignment_id,
            )
        else:
            existing = await conn.fetchrow(
                f"SELECT {INSTRUCTION_COLUMNS} FROM assessment_instructions "
                "WHERE course_id = $1 AND assignment_id IS NULL ORDER BY id LIMIT 1",
                req.course_id,
            )
        if existing is not None:
            if existing["grade_scale"] != req.grade_scale:
                raise ImmutableFieldError("grade_scale", existing["grade_scale"], req.grade_scale)
            if existing["context_origin"] != req.context_origin:
                raise ImmutableFieldError(
                    "context_origin", existing["context_origin"], req.context_origin
                )
            row = await conn.fetchrow(
                "UPDATE assessment_instructions SET instructions_text = $2, "
                "student_prompt_storage_id = COALESCE($3, student_prompt_storage_id) "
                f"WHERE id = $1 RETURNING {INSTRUCTION_COLUMNS}",
                existing["id"],
                req.instructions_text,
                req.student_prompt_storage_id,
            )
        else:
            row = await conn.fetchrow(
                "INSERT INTO assessment_instructions (assignment_id, course_id, "
                "instructions_text, grade_scale, context_origin, student_prompt_storage_id) "
                f"VALUES ($1, $2, $3, $4, $5, $6) RETURNING {INSTRUCTION_COLUMNS}",
                req.assignment_id,
                None if req.assignment_id else req.course_id,
                req.instructions_text,
                req.grade_scale,
                req.context_origin,
                req.student_prompt_storage_id,
            )
    assert row is not None  # RETURNING always yields the row written
    return row


async def set_instruction_storage_id(
    pool: Pool, assignment_id: str, column: str, storage_id: str
) -> asyncpg.Record | None:
    """Point the instruction at a new prompt/rubric blob; grade scale and origin untouched."""
    if column not in STORAGE_ID_COLUMNS:
        raise ValueError(f"not a storage-id column: {column}")
    return await pool.fetchrow(
        f"UPDATE assessment_instructions SET {column} = $2 WHERE assignment_id = $1 "
        f"RETURNING {INSTRUCTION_COLUMNS}",
        assignment_id,
        storage_id,
    )


async def delete_instruction_of_assignment(pool: Pool, assignment_id: str) -> bool:
    """Delete the assignment's instruction; False when there was none."""
    deleted = await pool.fetchval(
        "DELETE FROM assessment_instructions WHERE assignment_id = $1 RETURNING id",
        assignment_id,
    )
    return deleted is not None


async def delete_instructions_of_course(pool: Pool, course_id: str) -> bool:
    """Delete the course-level instructions (no assignment); False when there were none."""
    deleted = await pool.fetch(
        "DELETE FROM assessment_instructions "
        "WHERE course_id = $1 AND assignment_id IS NULL RETURNING id",
        course_id,
    )
    return bool(deleted)


def instruction_response(row: asyncpg.Record) -> AssessmentInstructionResponse:
    """The wire model of an instruction row."""
    return AssessmentInstructionResponse(
        id=row["id"],
        assignment_id=row["assignment_id"],
        course_id=row["course_id"],
        instructions_text=row["instructions_text"],
        grade_scale=row["grade_scale"],
        context_origin=row["context_origin"],
        student_prompt_storage_id=row["student_prompt_storage_id"],
        created_at=row["created_at"],
    )


# --- anchor references ---------------------------------------------------------------------


async def fetch_anchors(pool: Pool, assignment_id: str) -> list[asyncpg.Record]:
    """All anchor references of the assignment, every scale, oldest first."""
    return await pool.fetch(
        "SELECT id, assignment_id, anchor_label, grade, grade_scale, text_storage_id, "
        "created_at FROM anchor_essay_references WHERE assignment_id = $1 ORDER BY id",
        assignment_id,
    )


async def upsert_anchor(
    pool: Pool, *, assignment_id: str, label: str, grade: str, grade_scale: str, storage_id: str
) -> int:
    """A.6 upsert on (assignment_id, anchor_label, grade_scale); the id is stable."""
    anchor_id = await pool.fetchval(
        "INSERT INTO anchor_essay_references "
        "(assignment_id, anchor_label, grade, grade_scale, text_storage_id) "
        "VALUES ($1, $2, $3, $4, $5) "
        "ON CONFLICT (assignment_id, anchor_label, grade_scale) DO UPDATE "
        "SET text_storage_id = EXCLUDED.text_storage_id, grade = EXCLUDED.grade RETURNING id",
        assignment_id,
        label,
        grade,
        grade_scale,
        storage_id,
    )
    return int(anchor_id)


async def count_rows(pool: Pool) -> dict[str, int]:
    """Row counts of the CJ API's tables (for the database summary health route)."""
    return {
        "assessment_instructions": await pool.fetchval(
            "SELECT count(*) FROM assessment_instructions"
        ),
        "anchor_essay_references": await pool.fetchval(
            "SELECT count(*) FROM anchor_essay_references"
        ),
    }
