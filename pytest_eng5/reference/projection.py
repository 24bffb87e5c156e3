"""Grade projection from anchor essays (pure; contract §E.11).

Calibration, per scale grade (lowest → highest, index ``i`` of ``n`` grades):

- the *expected position* ``(i + 0.5) / n`` is put on the Bradley–Terry scale by the
  least-squares line of anchor BT score on anchor position (slope floored at a small positive
  value, so expected positions always rise with the grade);
- ≥ 3 anchors: mean and variance of their BT scores; 1–2 anchors: their mean shrunk toward the
  expected position with weight ``count / 3``; no anchors: the expected position;
- the means are made non-decreasing by weighted isotonic regression (pool adjacent violators,
  weight = anchor count, 0.5 for grades without anchors) and then strictly increasing by 1e-6;
- band boundaries are the midpoints between consecutive means (outer bounds ±∞).

Per student: the primary grade is the grade of the band holding its BT score; on scales with a
below-lowest grade (the ENG5 ones) a student in the lowest band more than 2 SD below that
grade's mean gets the below-lowest grade. Grade probabilities are the Gaussian likelihood
(grade variance + SE²) times the scale prior, normalised; confidence = 1 − normalised entropy,
capped at 0.69 (MID) when SE ≥ 1.0 and 0.39 (LOW) when SE ≥ 1.5; label HIGH ≥ 0.7, MID ≥ 0.4.

Needs ≥ 2 distinct anchor grades from the scale's ``grades``; otherwise
``projections_available`` is false and every student gets ``U`` / 0.0 / ``LOW``. Anchor grades
outside ``grades`` (e.g. a below-lowest ``F`` anchor) do not calibrate. The swedish ±
modifiers are not applied: the band grade is the projected grade.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Literal

from pytest_eng5.contracts.grade_scales import GradeScale

ConfidenceLabel = Literal["HIGH", "MID", "LOW"]

NO_GRADE: Final = "U"
HIGH_THRESHOLD: Final = 0.7
MID_THRESHOLD: Final = 0.4
SE_CAP_LOW: Final = 1.5
SE_CAP_MID: Final = 1.0
BELOW_LOWEST_SDS: Final = 2.0
MIN_SLOPE: Final = 1e-3
MIN_SD: Final = 0.05
STRICT_STEP: Final = 1e-6

# EssayResultV1.normalized_score (contract D.8); anything else maps to 0.0.
NORMALIZED_SCORES: Final[Mapping[str, float]] = {
    "A": 1.00,
    "A-": 0.93,
    "B+": 0.87,
    "B": 0.80,
    "B-": 0.73,
    "C+": 0.67,
    "C": 0.60,
    "C-": 0.53,
    "D+": 0.47,
    "D": 0.40,
    "D-": 0.33,
    "E+": 0.27,
    "E": 0.20,
    "E-": 0.13,
    "F+": 0.07,
    "F": 0.0,
    "U": 0.0,
}


def normalized_score(letter_grade: str) -> float:
    """The D.8 letter → score map; unknown grades give 0.0."""
    return NORMALIZED_SCORES.get(letter_grade, 0.0)


@dataclass(frozen=True)
class AnchorPoint:
    essay_id: str
    grade: str
    bt_score: float


@dataclass(frozen=True)
class StudentPoint:
    essay_id: str
    bt_score: float
    bt_se: float


@dataclass(frozen=True)
class GradeCalibration:
    """Per-grade centre and spread on the BT scale, plus the band boundaries."""

    grades: tuple[str, ...]
    means: tuple[float, ...]
    sds: tuple[float, ...]
    anchor_counts: tuple[int, ...]
    boundaries: tuple[float, ...]  # len(grades) - 1 inner boundaries

    def band_index(self, score: float) -> int:
        """Index of the grade whose band holds ``score``."""
        for index, upper in enumerate(self.boundaries):
            if score < upper:
                return index
        return len(self.grades) - 1


@dataclass(frozen=True)
class StudentProjection:
    essay_id: str
    primary_grade: str
    confidence_score: float
    confidence_label: ConfidenceLabel
    probabilities: Mapping[str, float]
    population_prior: float | None


@dataclass(frozen=True)
class ProjectionSummary:
    projections_available: bool
    scale_id: str
    projections: Mapping[str, StudentProjection]
    calibration: GradeCalibration | None
    anchor_grades: Mapping[str, str] = field(default_factory=dict)

    def calibration_info(self) -> dict[str, Any]:
        """JSON-ready calibration facts for ``grade_projections.calculation_metadata``."""
        if self.calibration is None:
            return {"grade_scale": self.scale_id, "anchor_count": len(self.anchor_grades)}
        cal = self.calibration
        return {
            "grade_scale": self.scale_id,
            "grade_centers": dict(zip(cal.grades, cal.means, strict=True)),
            "grade_sds": dict(zip(cal.grades, cal.sds, strict=True)),
            "grade_boundaries": list(cal.boundaries),
            "anchor_count": len(self.anchor_grades),
            "anchor_grades": dict(self.anchor_grades),
        }


def unavailable(scale: GradeScale, students: Sequence[StudentPoint]) -> ProjectionSummary:
    """Every student gets U / 0.0 / LOW."""
    projections = {
        s.essay_id: StudentProjection(s.essay_id, NO_GRADE, 0.0, "LOW", {}, None) for s in students
    }
    return ProjectionSummary(False, scale.scale_id, projections, None)


def project_grades(
    scale: GradeScale, anchors: Sequence[AnchorPoint], students: Sequence[StudentPoint]
) -> ProjectionSummary:
    """Project every student onto ``scale`` using the anchors (see module docstring)."""
    usable = [a for a in anchors if a.grade in scale.grades]
    anchor_grades = {a.essay_id: a.grade for a in usable}
    if len({a.grade for a in usable}) < 2:
        summary = unavailable(scale, students)
        return ProjectionSummary(False, scale.scale_id, summary.projections, None, anchor_grades)
    calibration = calibrate(scale, usable)
    projections = {s.essay_id: _project_one(scale, calibration, s) for s in students}
    return ProjectionSummary(True, scale.scale_id, projections, calibration, anchor_grades)


def calibrate(scale: GradeScale, anchors: Sequence[AnchorPoint]) -> GradeCalibration:
    """Grade means/SDs and band boundaries from anchors whose grades are on ``scale``."""
    grades = scale.grades
    n = len(grades)
    by_grade: dict[int, list[float]] = {i: [] for i in range(n)}
    for anchor in anchors:
        by_grade[grades.index(anchor.grade)].append(anchor.bt_score)

    positions = [(grades.index(a.grade) + 0.5) / n for a in anchors]
    scores = [a.bt_score for a in anchors]
    slope, intercept = _least_squares(positions, scores)
    slope = max(slope, MIN_SLOPE)
    # Spacing between adjacent expected positions; half of it is the default spread.
    default_sd = max(slope / n / 2.0, MIN_SD)

    raw_means: list[float] = []
    sds: list[float] = []
    counts: list[int] = []
    for i in range(n):
        expected = intercept + slope * (i + 0.5) / n
        values = by_grade[i]
        counts.append(len(values))
        if len(values) >= 3:
            mean = sum(values) / len(values)
            var = sum((v - mean) ** 2 for v in values) / (len(values) - 1)
            raw_means.append(mean)
            sds.append(max(math.sqrt(var), MIN_SD))
        elif values:
            weight = len(values) / 3.0
            raw_means.append(weight * (sum(values) / len(values)) + (1.0 - weight) * expected)
            sds.append(default_sd)
        else:
            raw_means.append(expected)
            sds.append(default_sd)

    weights = [float(c) if c else 0.5 for c in counts]
    means = isotonic_increasing(raw_means, weights)
    for i in range(1, n):
        means[i] = max(means[i], means[i - 1] + STRICT_STEP)
    boundaries = tuple((means[i] + means[i + 1]) / 2.0 for i in range(n - 1))
    return GradeCalibration(grades, tuple(means), tuple(sds), tuple(counts), boundaries)


def isotonic_increasing(values: Sequence[float], weights: Sequence[float]) -> list[float]:
    """Weighted least-squares non-decreasing fit (pool adjacent violators)."""
    blocks: list[list[float]] = []  # [mean, weight, size]
    for value, weight in zip(values, weights, strict=True):
        blocks.append([value, weight, 1.0])
        while len(blocks) > 1 and blocks[-2][0] > blocks[-1][0]:
            m2, w2, s2 = blocks.pop()
            m1, w1, s1 = blocks.pop()
            total = w1 + w2
            blocks.append([(m1 * w1 + m2 * w2) / total, total, s1 + s2])
    fitted: list[float] = []
    for mean, _, size in blocks:
        fitted.extend([mean] * int(size))
    return fitted


def _least_squares(xs: Sequence[float], ys: Sequence[float]) -> tuple[float, float]:
    mean_x = sum(xs) / len(xs)
    mean_y = sum(ys) / len(ys)
    sxx = sum((x - mean_x) ** 2 for x in xs)
    if sxx == 0.0:
        return 0.0, mean_y
    slope = sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys, strict=True)) / sxx
    return slope, mean_y - slope * mean_x


def _project_one(
    scale: GradeScale, cal: GradeCalibration, student: StudentPoint
) -> StudentProjection:
    se = student.bt_se if math.isfinite(student.bt_se) else SE_CAP_LOW
    likelihoods: list[float] = []
    for mean, sd, grade in zip(cal.means, cal.sds, cal.grades, strict=True):
        var = sd * sd + se * se
        density = math.exp(-((student.bt_score - mean) ** 2) / (2.0 * var)) / math.sqrt(var)
        likelihoods.append(density * scale.priors.get(grade, 0.0))
    total = sum(likelihoods)
    if total <= 0.0:
        probabilities = [1.0 / len(cal.grades)] * len(cal.grades)
    else:
        probabilities = [value / total for value in likelihoods]

    band = cal.band_index(student.bt_score)
    grade = cal.grades[band]
    if (
        band == 0
        and scale.below_lowest_grade is not None
        and student.bt_score < cal.means[0] - BELOW_LOWEST_SDS * cal.sds[0]
    ):
        grade = scale.below_lowest_grade

    entropy = -sum(p * math.log(p) for p in probabilities if p > 0.0)
    score = 1.0 - entropy / math.log(len(probabilities))
    if se >= SE_CAP_LOW:
        score = min(score, MID_THRESHOLD - 0.01)
    elif se >= SE_CAP_MID:
        score = min(score, HIGH_THRESHOLD - 0.01)
    score = min(max(score, 0.0), 1.0)
    return StudentProjection(
        essay_id=student.essay_id,
        primary_grade=grade,
        confidence_score=score,
        confidence_label=confidence_label(score),
        probabilities=dict(zip(cal.grades, probabilities, strict=True)),
        population_prior=scale.priors.get(grade),
    )


def confidence_label(score: float) -> ConfidenceLabel:
    """HIGH ≥ 0.7, MID ≥ 0.4, else LOW."""
    if score >= HIGH_THRESHOLD:
        return "HIGH"
    if score >= MID_THRESHOLD:
        return "MID"
    return "LOW"
