"""Grade projection from anchor essays (pure; contract §E.11).

Calibration, per scale grade (lowest → highest, index ``i`` of ``n`` grades):

- the *expected position* ``(i + 0.5) / n`` is put on the Bradley–Terry scale by the
  least-squares line of anchor BT score on anchor position (slope floored at a small positive
  value, so expected positions always rise with the grade);
- ≥ 3 anchors: the mean of their BT scores; 1–2 anchors: their mean shrunk toward the
  expected position with weight ``count / 3``; no anchors: the expected position;
- the means are made non-decreasing by weighted isotonic regression (pool adjacent violators,
  weight = anchor count, 0.5 for grades without anchors) and then strictly increasing by 1e-6;
- one spread ``s`` for every grade: the pooled within-grade SD of the anchors (grades with
  ≥ 2 anchors), or half the spacing of the expected positions when no grade has two;
- on scales with a below-lowest grade (the ENG5 ones) that grade is one more component, centred
  ``2 · 2 s`` below the lowest grade with the lowest grade's prior, so its boundary with the
  lowest grade is HuleEdu's "more than 2 SD below the lowest grade's mean".

Per student with BT score ``x`` and standard error ``SE``: grade probabilities are
``π_g · N(x; μ_g, s² + SE²)``, normalised (π = the scale's prior), and **the primary grade is
the most probable grade**. With one spread for all grades the log-probabilities are linear in
``x`` with slopes rising with the grade, so a higher score never gets a lower grade, and the
band boundaries (:meth:`GradeCalibration.bands`) follow from the same model. Confidence =
1 − normalised entropy, capped at 0.69 (MID) when SE ≥ 1.0 and 0.39 (LOW) when SE ≥ 1.5;
label HIGH ≥ 0.7, MID ≥ 0.4.

Needs ≥ 2 distinct anchor grades from the scale's ``grades``; otherwise
``projections_available`` is false and every student gets ``U`` / 0.0 / ``LOW``. Anchor grades
outside ``grades`` (e.g. a below-lowest ``F`` anchor) do not calibrate. The swedish ±
modifiers are not applied: the band grade is the projected grade.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
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
    """Per-grade centres, their common spread and prior, lowest first; on scales with a
    below-lowest grade that grade comes first, with ``anchor_counts`` 0."""

    grades: tuple[str, ...]
    means: tuple[float, ...]
    sds: tuple[float, ...]
    anchor_counts: tuple[int, ...]
    priors: tuple[float, ...] = ()

    def log_weights(self, score: float, se: float) -> list[float]:
        """log(π_g) + log N(score; μ_g, s_g² + SE²) per grade (−inf for a zero prior)."""
        priors = self.priors or (1.0,) * len(self.grades)
        out = []
        for mean, sd, prior in zip(self.means, self.sds, priors, strict=True):
            var = sd * sd + se * se
            log_prior = math.log(prior) if prior > 0.0 else -math.inf
            out.append(log_prior - (score - mean) ** 2 / (2.0 * var) - 0.5 * math.log(var))
        return out

    def probabilities(self, score: float, se: float) -> list[float]:
        """Normalised grade probabilities at ``score`` with standard error ``se``."""
        logs = self.log_weights(score, se)
        top = max(logs)
        if top == -math.inf:
            return [1.0 / len(logs)] * len(logs)
        weights = [math.exp(value - top) for value in logs]
        total = sum(weights)
        return [w / total for w in weights]

    def most_probable(self, score: float, se: float) -> int:
        """Index of the most probable grade (the lowest index on an exact tie)."""
        logs = self.log_weights(score, se)
        return logs.index(max(logs))

    def bands(self, se: float = 0.0) -> list[tuple[str, float, float]]:
        """(grade, lower, upper) of each grade that is most probable somewhere, lowest first.

        The log-weights are lines in the score with rising slopes (one spread for all
        grades), so each band is one interval: the upper envelope of those lines.
        """
        var = self.sds[0] ** 2 + se * se
        # log-weight = intercept + score · μ/var, up to a term every grade shares
        lines = [
            (mean / var, intercept)
            for mean, intercept in zip(self.means, self.log_weights(0.0, se), strict=True)
        ]
        bands: list[tuple[str, float, float]] = []
        lower = -math.inf
        current = _lowest_winner(lines)
        while True:
            crossings = [
                ((lines[current][1] - lines[g][1]) / (lines[g][0] - lines[current][0]), g)
                for g in range(current + 1, len(lines))
                if lines[g][0] > lines[current][0] and lines[g][1] > -math.inf
            ]
            if not crossings:
                bands.append((self.grades[current], lower, math.inf))
                return bands
            upper, following = min(crossings, key=lambda item: (item[0], -item[1]))
            if upper > lower:
                bands.append((self.grades[current], lower, upper))
                lower = upper
            current = following


def _lowest_winner(lines: Sequence[tuple[float, float]]) -> int:
    """The grade most probable far below every centre: the smallest slope with a finite
    intercept (ties: the larger intercept)."""
    finite = [g for g, (_, intercept) in enumerate(lines) if intercept > -math.inf]
    return min(finite, key=lambda g: (lines[g][0], -lines[g][1]))


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
            "grade_priors": dict(zip(cal.grades, cal.priors, strict=True)),
            "grade_bands_at_se0": [
                [grade, _finite_or_none(low), _finite_or_none(high)]
                for grade, low, high in cal.bands()
            ],
            "anchor_count": len(self.anchor_grades),
            "anchor_grades": dict(self.anchor_grades),
        }


def _finite_or_none(value: float) -> float | None:
    return value if math.isfinite(value) else None


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
    """Grade centres, the common spread and the priors from anchors whose grades are on
    ``scale``; the below-lowest grade, when the scale has one, is the first component."""
    grades = scale.grades
    n = len(grades)
    by_grade: dict[int, list[float]] = {i: [] for i in range(n)}
    for anchor in anchors:
        by_grade[grades.index(anchor.grade)].append(anchor.bt_score)

    positions = [(grades.index(a.grade) + 0.5) / n for a in anchors]
    scores = [a.bt_score for a in anchors]
    slope, intercept = _least_squares(positions, scores)
    slope = max(slope, MIN_SLOPE)

    raw_means: list[float] = []
    counts: list[int] = []
    for i in range(n):
        expected = intercept + slope * (i + 0.5) / n
        values = by_grade[i]
        counts.append(len(values))
        if len(values) >= 3:
            raw_means.append(sum(values) / len(values))
        elif values:
            weight = len(values) / 3.0
            raw_means.append(weight * (sum(values) / len(values)) + (1.0 - weight) * expected)
        else:
            raw_means.append(expected)

    weights = [float(c) if c else 0.5 for c in counts]
    means = isotonic_increasing(raw_means, weights)
    for i in range(1, n):
        means[i] = max(means[i], means[i - 1] + STRICT_STEP)
    spread = _pooled_sd(by_grade.values(), default=slope / n / 2.0)
    priors = [scale.priors.get(grade, 0.0) for grade in grades]
    names = list(grades)
    if scale.below_lowest_grade is not None:
        names.insert(0, scale.below_lowest_grade)
        means.insert(0, means[0] - 2.0 * BELOW_LOWEST_SDS * spread)
        counts.insert(0, 0)
        priors.insert(0, priors[0])
    return GradeCalibration(
        tuple(names), tuple(means), (spread,) * len(names), tuple(counts), tuple(priors)
    )


def _pooled_sd(groups: Iterable[Sequence[float]], default: float) -> float:
    """Pooled within-group SD over groups with ≥ 2 values (``default`` when none), ≥ MIN_SD."""
    squares, freedom = 0.0, 0
    for values in groups:
        if len(values) >= 2:
            mean = sum(values) / len(values)
            squares += sum((v - mean) ** 2 for v in values)
            freedom += len(values) - 1
    spread = math.sqrt(squares / freedom) if freedom else default
    return max(spread, MIN_SD)


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
    probabilities = cal.probabilities(student.bt_score, se)
    grade = cal.grades[cal.most_probable(student.bt_score, se)]

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
