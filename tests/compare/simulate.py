"""Simulated variant runs: BT judgements of known anchors, for testing the comparison itself."""

from __future__ import annotations

import itertools
import json
import math
from pathlib import Path

import numpy as np

from pytest_eng5.compare.runs import Judged, VariantRun

GRADE_ORDER = ("F+", "E-", "E+", "D-", "D+", "C-", "C+", "B", "A")
#: Twelve anchors like the sample set's: two per grade at the ends, one in the middle.
ANCHOR_GRADES = {
    f"anchor-{k:02d}": grade
    for k, grade in enumerate(
        ("F+", "F+", "E-", "E+", "D-", "D+", "C-", "C+", "B", "B", "A", "A"), start=1
    )
}
#: True abilities: one logit per grade step.
TRUE_THETA = {anchor: float(GRADE_ORDER.index(g)) for anchor, g in ANCHOR_GRADES.items()}


def simulate_run(
    variant: str,
    *,
    noise: float,
    seed: int,
    repeat: int = 1,
    rounds: int = 1,
    position_bias: float = 0.0,
    experiment: str = "simulated",
    baseline: str = "baseline",
) -> VariantRun:
    """One run: each anchor pair judged ``rounds`` times; P(A wins) = logistic(d / noise + bias)."""
    rng = np.random.default_rng(seed)
    judged = []
    for _ in range(rounds):
        for a, b in itertools.combinations(sorted(ANCHOR_GRADES), 2):
            if rng.random() < 0.5:
                a, b = b, a
            z = (TRUE_THETA[a] - TRUE_THETA[b]) / noise + position_bias
            a_wins = rng.random() < 1.0 / (1.0 + math.exp(-z))
            judged.append(Judged(a, b, True) if a_wins else Judged(b, a, False))
    return VariantRun(
        experiment=experiment,
        variant=variant,
        repeat=repeat,
        baseline=baseline,
        batch_uuid=f"{variant}-{seed:04d}-{repeat}",
        mode="anchor-align-test",
        grade_order=GRADE_ORDER,
        anchor_grades=dict(ANCHOR_GRADES),
        judged=tuple(judged),
        failed_comparisons=0,
        ssr=None,
        tokens=0,
        cost_usd=0.0,
        duration_s=None,
    )


def write_evidence(run: VariantRun, root: Path) -> Path:
    """An evidence folder with the parts of ``assessment_run.json`` the comparison reads."""
    folder = root / run.experiment / run.variant / f"r{run.repeat}" / run.batch_uuid
    folder.mkdir(parents=True)
    essay = {anchor: f"student::{anchor}-{run.batch_uuid[:8]}" for anchor in run.anchor_grades}
    comparisons = [
        {
            "status": "succeeded",
            "essay_a_id": essay[j.winner if j.winner_was_a else j.loser],
            "essay_b_id": essay[j.loser if j.winner_was_a else j.winner],
            "winner_id": essay[j.winner],
            "loser_id": essay[j.loser],
            "tokens_prompt": 700,
            "tokens_completion": 40,
        }
        for j in run.judged
    ]
    doc = {
        "metadata": {
            "batch_uuid": run.batch_uuid,
            "runner_mode": run.mode,
            "grade_scale": "eng5_np_legacy_9_step",
            "settings": {
                "experiment": run.experiment,
                "variant": run.variant,
                "variant_repeat": run.repeat,
                "baseline": run.baseline,
                "llm_temperature": 0.1,
            },
        },
        "inputs": {
            "anchors": [
                {"anchor_id": a, "essay_id": essay[a], "anchor_grade": g, "is_anchor": True}
                for a, g in run.anchor_grades.items()
            ]
        },
        "llm_comparisons": comparisons,
        "statistics": {"ssr": 0.8},
        "costs": {"total_usd": 0.0},
        "validation": {"runner_status": {"durations": {"wait_seconds": 2.5}}},
    }
    path = folder / "assessment_run.json"
    path.write_text(json.dumps(doc), encoding="utf-8")
    return path
