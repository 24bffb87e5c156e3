"""Grade-scale registry (contract B.3) and the runner's grade-from-filename rule (runner §3.3)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import PurePath
from types import MappingProxyType


@dataclass(frozen=True)
class GradeScale:
    """One registered scale; ``grades`` run lowest → highest."""

    scale_id: str
    display_name: str
    grades: tuple[str, ...]
    priors: Mapping[str, float]
    below_lowest_grade: str | None = None

    @property
    def allows_below_lowest(self) -> bool:
        return self.below_lowest_grade is not None


def _uniform(grades: tuple[str, ...]) -> Mapping[str, float]:
    return MappingProxyType({grade: 1.0 / len(grades) for grade in grades})


_SWEDISH_GRADES = ("F", "E", "D", "D+", "C", "C+", "B", "A")
_LEGACY_GRADES = ("F+", "E-", "E+", "D-", "D+", "C-", "C+", "B", "A")
_NATIONAL_GRADES = ("1", "2", "3", "4", "5", "6", "7", "8", "9")

GRADE_SCALES: Mapping[str, GradeScale] = MappingProxyType(
    {
        "swedish_8_anchor": GradeScale(
            scale_id="swedish_8_anchor",
            display_name="Swedish National Exam (8-anchor)",
            grades=_SWEDISH_GRADES,
            priors=MappingProxyType(
                {
                    "F": 0.02,
                    "E": 0.08,
                    "D": 0.15,
                    "D+": 0.20,
                    "C": 0.25,
                    "C+": 0.15,
                    "B": 0.10,
                    "A": 0.05,
                }
            ),
            below_lowest_grade=None,
        ),
        "eng5_np_legacy_9_step": GradeScale(
            scale_id="eng5_np_legacy_9_step",
            display_name="ENG5 NP Legacy (9-step)",
            grades=_LEGACY_GRADES,
            priors=_uniform(_LEGACY_GRADES),
            below_lowest_grade="F",
        ),
        "eng5_np_national_9_step": GradeScale(
            scale_id="eng5_np_national_9_step",
            display_name="ENG5 NP National (9-step)",
            grades=_NATIONAL_GRADES,
            priors=_uniform(_NATIONAL_GRADES),
            below_lowest_grade="0",
        ),
    }
)


def list_available_scales() -> list[str]:
    """Registered scale ids, sorted."""
    return sorted(GRADE_SCALES)


def get_scale(scale_id: str) -> GradeScale:
    """The scale with this id; ValueError (HuleEdu's message) when unknown."""
    try:
        return GRADE_SCALES[scale_id]
    except KeyError:
        raise ValueError(
            f"Unknown grade scale '{scale_id}'. "
            f"Available scales: {', '.join(list_available_scales())}"
        ) from None


def validate_grade_for_scale(grade: str, scale_id: str) -> bool:
    """True when ``grade`` is a scale grade or its below-lowest grade (exact, case-sensitive)."""
    scale = get_scale(scale_id)
    return grade in scale.grades or (
        scale.below_lowest_grade is not None and grade == scale.below_lowest_grade
    )


def grade_index(grade: str, scale_id: str) -> int:
    """0-based position lowest → highest; -1 for the below-lowest grade; ValueError otherwise."""
    scale = get_scale(scale_id)
    if grade in scale.grades:
        return scale.grades.index(grade)
    if scale.below_lowest_grade is not None and grade == scale.below_lowest_grade:
        return -1
    raise ValueError(f"Grade '{grade}' is not valid for scale '{scale_id}'")


_TRAILING_DIGITS = re.compile(r"[0-9]+$")


def grade_from_filename(name: str) -> str:
    """HuleEdu's anchor-grade rule: last ``_`` token of the stem, trailing digits dropped, upper.

    No scale check happens here (``notes_misc.txt`` → ``MISC``); CJ validates at registration.
    """
    stem = PurePath(name).stem
    candidate = stem.rsplit("_", 1)[-1]
    grade = _TRAILING_DIGITS.sub("", candidate).strip().upper()
    if not grade:
        raise ValueError(
            f"No grade can be read from file name '{name}': the text after the last '_' of the "
            "stem is empty once trailing digits are removed. Rename the file so it ends in its "
            "grade, e.g. 'anchor_007_C+.docx'."
        )
    return grade
