"""Seed an assignment into a CJ API over real HTTP: instruction, student prompt, anchors.

Works against the reference CJ API and against HuleEdu's (same routes). Idempotent: the
instruction upsert keeps its row, and anchors upsert on (assignment, label, scale), so seeding
twice leaves one anchor per file.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from pytest_eng5.contracts.grade_scales import grade_from_filename
from pytest_eng5.errors import (
    AnchorRegistrationError,
    InventoryError,
    PreflightAuthError,
    PreflightError,
    ServiceUnavailableError,
)

ANCHOR_SUFFIXES = (".txt", ".md", ".docx")
INSTRUCTIONS_FILE = "instructions.md"
ANCHORS_DIR = "anchor_essays"


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


def extract_text(path: Path) -> str:
    """Essay text: .txt/.md as UTF-8, .docx as its paragraphs joined with newlines."""
    if path.suffix.lower() == ".docx":
        from docx import Document  # only .docx needs python-docx

        return "\n".join(paragraph.text for paragraph in Document(str(path)).paragraphs)
    return path.read_text(encoding="utf-8")


def anchor_files(assets_dir: Path) -> list[Path]:
    """The anchor essays of an asset folder, sorted by name; unknown file types are an error."""
    folder = assets_dir / ANCHORS_DIR
    if not folder.is_dir():
        raise InventoryError(
            f"No '{ANCHORS_DIR}' folder in {assets_dir}",
            next_step=f"Point assets_dir at a folder with {ANCHORS_DIR}/ and {INSTRUCTIONS_FILE}.",
        )
    files = []
    for path in sorted(folder.iterdir()):
        if path.name.startswith(".") or not path.is_file():
            continue
        if path.suffix.lower() not in ANCHOR_SUFFIXES:
            raise InventoryError(
                f"Anchor file {path.name} has an unsupported type '{path.suffix}'",
                next_step=f"Use one of {', '.join(ANCHOR_SUFFIXES)} or move the file elsewhere.",
            )
        files.append(path)
    return files


def _raise_for_status(response: httpx.Response, what: str) -> None:
    if response.is_success:
        return
    url = str(response.request.url)
    message = f"{what} failed: HTTP {response.status_code} from {url}: {response.text[:300]}"
    if response.status_code in (401, 403):
        raise PreflightAuthError(
            message,
            next_step="Mint an admin token with the CJ service's JWT_SECRET_KEY, aud and iss.",
            url=url,
        )
    if response.status_code >= 500:
        raise ServiceUnavailableError(
            message, next_step="Check the CJ API and Content Service logs, then retry.", url=url
        )
    raise PreflightError(message, next_step="Fix the request named above and retry.", url=url)


async def _post(client: httpx.AsyncClient, url: str, body: dict[str, Any], what: str) -> Any:
    try:
        response = await client.post(url, json=body)
    except httpx.HTTPError as exc:
        raise ServiceUnavailableError(
            f"{what} failed: cannot reach {url}: {exc}",
            next_step="Start the CJ API (and Content Service) or fix the URL.",
            url=url,
        ) from exc
    _raise_for_status(response, what)
    return response.json()


async def seed_assignment(
    cj_url: str,
    token: str,
    assets_dir: Path,
    *,
    assignment_id: str,
    grade_scale: str = "eng5_np_legacy_9_step",
    context_origin: str = "research_experiment",
    timeout_s: float = 30.0,
) -> SeedResult:
    """Upsert the instruction, upload the student prompt and register every anchor file."""
    base = cj_url.rstrip("/")
    instructions = (assets_dir / INSTRUCTIONS_FILE).read_text(encoding="utf-8")
    files = anchor_files(assets_dir)
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(headers=headers, timeout=timeout_s) as client:
        instruction = await _post(
            client,
            f"{base}/admin/v1/assessment-instructions",
            {
                "assignment_id": assignment_id,
                "instructions_text": instructions,
                "grade_scale": grade_scale,
                "context_origin": context_origin,
            },
            "Instruction upsert",
        )
        prompt = await _post(
            client,
            f"{base}/admin/v1/student-prompts",
            {"assignment_id": assignment_id, "prompt_text": instructions},
            "Student prompt upload",
        )
        anchor_ids: dict[str, int] = {}
        for index, path in enumerate(files):
            body = {
                "assignment_id": assignment_id,
                "grade": grade_from_filename(path.name),
                "anchor_label": path.stem,
                "essay_text": extract_text(path),
            }
            try:
                registered = await _post(
                    client, f"{base}/api/v1/anchors/register", body, f"Anchor {path.name}"
                )
            except PreflightError as exc:
                raise AnchorRegistrationError(
                    str(exc.message),
                    next_step=exc.next_step,
                    registered=tuple(anchor_ids),
                    pending=tuple(p.stem for p in files[index:]),
                ) from exc
            anchor_ids[path.stem] = int(registered["anchor_id"])
        try:
            summary_response = await client.get(
                f"{base}/admin/v1/anchors/assignment/{assignment_id}"
            )
        except httpx.HTTPError as exc:
            raise ServiceUnavailableError(
                f"Anchor read-back failed: {exc}", next_step="Check the CJ API.", url=base
            ) from exc
        _raise_for_status(summary_response, "Anchor read-back")
        summary = summary_response.json()
    return SeedResult(
        assignment_id=assignment_id,
        grade_scale=str(instruction["grade_scale"]),
        instruction_id=int(instruction["id"]),
        student_prompt_storage_id=str(prompt["student_prompt_storage_id"]),
        anchors_registered=len(anchor_ids),
        anchor_ids=anchor_ids,
        anchor_count=int(summary["anchor_count"]),
        anchor_count_total=int(summary["anchor_count_total"]),
    )
