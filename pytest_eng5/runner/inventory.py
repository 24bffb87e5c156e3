"""ENG5 asset inventory: which essays exist, their text, checksums, ids and anchor grades.

Everything that cannot be sent is rejected here, naming the file, before any network call:
unsupported file types, non-UTF-8 text, empty essays, anchor grades that are not on the scale,
and two files that would get the same essay id.
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from pytest_eng5.contracts.grade_scales import (
    get_scale,
    grade_from_filename,
    validate_grade_for_scale,
)
from pytest_eng5.core import RUNNER_FALLBACK_GRADE_SCALE
from pytest_eng5.errors import InventoryError

SUPPORTED_SUFFIXES = (".txt", ".md", ".docx")
ANCHOR_DIR = "anchor_essays"
STUDENT_DIR = "student_essays"
MAX_ESSAY_ID = 36
_ID_UNSAFE = re.compile(r"[^A-Za-z0-9_+-]+")
_CSV_ID_COLUMNS = ("ANCHOR-ID", "anchor_id")
_CSV_FILE_COLUMNS = ("FILE-NAME", "file_name")
_CSV_GRADE_COLUMNS = ("grade", "pred_mode_grade")

Role = Literal["anchor", "student"]


@dataclass(frozen=True)
class EssayFile:
    """One essay on disk with its extracted text and identity."""

    path: Path
    role: Role
    text: str
    text_sha256: str
    file_sha256: str
    local_id: str
    grade: str | None = None

    @property
    def name(self) -> str:
        return self.path.name


@dataclass(frozen=True)
class Inventory:
    """What an ENG5 asset folder holds."""

    root: Path
    instructions_path: Path | None
    instructions_text: str | None
    anchors: tuple[EssayFile, ...]
    students: tuple[EssayFile, ...]
    anchors_csv: Path | None = None
    csv_grades: dict[str, str] = field(default_factory=dict)
    csv_ids: dict[str, str] = field(default_factory=dict)
    grade_scale: str = RUNNER_FALLBACK_GRADE_SCALE

    def summary(self) -> dict[str, object]:
        return {
            "root": str(self.root),
            "instructions": self.instructions_path.name if self.instructions_path else None,
            "anchors": len(self.anchors),
            "students": len(self.students),
            "anchors_csv": self.anchors_csv.name if self.anchors_csv else None,
            "grade_scale": self.grade_scale,
        }


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def make_essay_key(raw: str, max_length: int = MAX_ESSAY_ID) -> str:
    """A stable id made from a file stem: unsafe characters become ``_``; long ones are hashed.

    Unlike the reference runner, ``+`` and ``-`` survive, so grade signs stay visible.
    """
    cleaned = _ID_UNSAFE.sub("_", raw).strip("_") or "essay"
    if len(cleaned) <= max_length:
        return cleaned
    digest = sha256_hex(cleaned.encode())[:8]
    return f"{cleaned[: max_length - 9]}_{digest}"


def extract_text(path: Path, raw: bytes) -> str:
    """Essay text from .txt/.md (UTF-8) or .docx (one line per paragraph)."""
    suffix = path.suffix.lower()
    if suffix in (".txt", ".md"):
        try:
            return raw.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise InventoryError(
                f"{path.name} is not UTF-8 text ({exc.reason} at byte {exc.start})",
                next_step=f"re-save {path} as UTF-8",
            ) from None
    if suffix == ".docx":
        return _docx_text(path, raw)
    raise InventoryError(
        f"{path.name}: unsupported essay file type {suffix or '(none)'!r}",
        next_step=f"convert it to one of {', '.join(SUPPORTED_SUFFIXES)} or remove it from "
        f"{path.parent}",
    )


def _docx_text(path: Path, raw: bytes) -> str:
    import docx

    try:
        document = docx.Document(io.BytesIO(raw))
    except (zipfile.BadZipFile, KeyError, ValueError) as exc:
        raise InventoryError(
            f"{path.name} is not a readable .docx file ({exc})",
            next_step=f"open and re-save {path} in Word, or export it as .txt",
        ) from None
    return "\n".join(paragraph.text for paragraph in document.paragraphs)


def essay_files(folder: Path) -> list[Path]:
    """The essay files of ``folder`` (none when it is missing); hidden and Word lock files are
    skipped, any other type is an :class:`InventoryError`."""
    if not folder.is_dir():
        return []
    files = []
    for path in sorted(folder.iterdir()):
        if not path.is_file() or path.name.startswith(("~$", ".")):
            continue
        if path.suffix.lower() not in SUPPORTED_SUFFIXES:
            raise InventoryError(
                f"{path.name}: unsupported essay file type {path.suffix or '(none)'!r} "
                f"in {folder.name}/",
                next_step=f"convert it to one of {', '.join(SUPPORTED_SUFFIXES)} or move it "
                "out of the asset folder",
            )
        files.append(path)
    return files


def load_essay(path: Path, role: Role, grade: str | None = None) -> EssayFile:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise InventoryError(
            f"{path.name} cannot be read ({exc.strerror or exc})",
            next_step=f"check the file's permissions, or remove {path}",
        ) from None
    text = extract_text(path, raw)
    if not text.strip():
        raise InventoryError(
            f"{path.name} is empty (no text after extraction)",
            next_step=f"add the essay text to {path} or remove the file",
        )
    return EssayFile(
        path=path,
        role=role,
        text=text,
        text_sha256=sha256_hex(text.encode()),
        file_sha256=sha256_hex(raw),
        local_id=make_essay_key(path.stem),
        grade=grade,
    )


def anchor_grade(path: Path, grade_scale: str) -> str:
    """The anchor's grade from its file name, checked against ``grade_scale``."""
    scale = get_scale(grade_scale)
    try:
        grade = grade_from_filename(path.name)
    except ValueError:
        grade = ""
    last_token = path.stem.rsplit("_", 1)[-1].strip().upper()
    if not validate_grade_for_scale(grade, grade_scale) and validate_grade_for_scale(
        last_token, grade_scale
    ):
        # HuleEdu's rule strips trailing digits (``A1`` -> ``A``), which would erase the
        # numeric grades of the national 9-step scale; a token that is itself a grade wins.
        grade = last_token
    if not grade or not validate_grade_for_scale(grade, grade_scale):
        raise InventoryError(
            f"{path.name}: no valid {grade_scale} grade in the file name "
            f"(found {grade or 'nothing'!r}); valid grades: {', '.join(scale.grades)}",
            next_step="name anchors like anchor_essay_..._<GRADE>.docx with a grade of the "
            "assignment's scale",
        )
    return grade


def _check_unique_ids(essays: Iterable[EssayFile]) -> None:
    seen: dict[str, EssayFile] = {}
    for essay in essays:
        other = seen.get(essay.local_id)
        if other is not None:
            raise InventoryError(
                f"{other.path.name} and {essay.path.name} map to the same essay id "
                f"{essay.local_id!r}",
                next_step="rename one of the two files",
            )
        seen[essay.local_id] = essay


def find_instructions(root: Path) -> Path | None:
    """The folder's instructions file: the first .md/.txt whose name says instruction or prompt."""
    candidates = sorted(
        p
        for p in root.iterdir()
        if p.is_file()
        and p.suffix.lower() in (".md", ".txt")
        and ("instruction" in p.name.lower() or "prompt" in p.name.lower())
    )
    return candidates[0] if candidates else None


def _read_anchors_csv(path: Path) -> tuple[dict[str, str], dict[str, str]]:
    """File name -> expert grade, and file name -> anchor id, from an anchors CSV
    (HuleEdu column names)."""
    try:
        rows = list(csv.DictReader(io.StringIO(path.read_text(encoding="utf-8-sig"))))
    except (UnicodeDecodeError, csv.Error) as exc:
        raise InventoryError(
            f"{path.name} cannot be read as a UTF-8 CSV ({exc})",
            next_step=f"fix or remove {path}",
        ) from None
    grades: dict[str, str] = {}
    ids: dict[str, str] = {}
    for row in rows:
        file_name = next((row[c] for c in _CSV_FILE_COLUMNS if row.get(c)), None)
        if not file_name:
            continue
        grade = next(
            (v for k, v in row.items() if k and k.lower() in _CSV_GRADE_COLUMNS and v), None
        )
        anchor_id = next((row[c] for c in _CSV_ID_COLUMNS if row.get(c)), None)
        if grade:
            grades[file_name.strip()] = grade.strip()
        if anchor_id:
            ids[file_name.strip()] = anchor_id.strip()
    return grades, ids


def asset_folder_problems(root: Path) -> list[str]:
    """Every problem of an asset folder that needs no network, one line each (empty: fine).

    The folder must exist and hold ``student_essays/``; every essay file (students and
    anchors) must be of a supported type, readable, decodable and not empty.
    """
    root = Path(root)
    if not root.is_dir():
        return [f"asset folder {root} does not exist"]
    if not (root / STUDENT_DIR).is_dir():
        return [f"asset folder {root} has no {STUDENT_DIR}/ folder"]
    problems: list[str] = []
    for folder in (root / ANCHOR_DIR, root / STUDENT_DIR):
        if not folder.is_dir():
            continue
        for path in sorted(folder.iterdir()):
            if path.is_dir() or path.name.startswith(("~$", ".")):
                continue  # a broken link is reported below, not skipped
            where = f"{folder.name}/{path.name}"
            try:
                load_essay(path, "student")
            except InventoryError as exc:
                problems.append(f"{where}: {exc.message.removeprefix(path.name).lstrip(': ')}")
    if not problems and not essay_files(root / STUDENT_DIR):
        problems.append(f"{root / STUDENT_DIR} holds no essays ({', '.join(SUPPORTED_SUFFIXES)})")
    return problems


def collect_inventory(
    root: Path, *, grade_scale: str = RUNNER_FALLBACK_GRADE_SCALE, with_anchors: bool = True
) -> Inventory:
    """Read an ENG5 asset folder; raise :class:`InventoryError` naming the first bad file.

    ``with_anchors=False`` skips the local anchors (execute runs are student-only: CJ owns
    the anchors, so local anchor files are neither needed nor checked).
    """
    root = Path(root)
    if not root.is_dir():
        raise InventoryError(
            f"asset folder {root} does not exist",
            next_step="point --eng5-assets at a folder with anchor_essays/ and student_essays/",
        )
    get_scale(grade_scale)
    anchor_files = essay_files(root / ANCHOR_DIR) if with_anchors else []
    anchors = tuple(load_essay(p, "anchor", anchor_grade(p, grade_scale)) for p in anchor_files)
    students = tuple(load_essay(p, "student") for p in essay_files(root / STUDENT_DIR))
    _check_unique_ids((*anchors, *students))
    instructions = find_instructions(root)
    csv_files = sorted(root.glob("*.csv"))
    anchors_csv = csv_files[0] if csv_files else None
    csv_grades, csv_ids = _read_anchors_csv(anchors_csv) if anchors_csv else ({}, {})
    return Inventory(
        root=root,
        instructions_path=instructions,
        instructions_text=instructions.read_text(encoding="utf-8") if instructions else None,
        anchors=anchors,
        students=students,
        anchors_csv=anchors_csv,
        csv_grades=csv_grades,
        csv_ids=csv_ids,
        grade_scale=grade_scale,
    )
