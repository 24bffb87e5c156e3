"""End to end through the judge knobs: a variant whose judge is much noisier (a weak model at
temperature 2.0) is reported as worse than the baseline (docs/experiments.md, effect size)."""

from __future__ import annotations

import pytest

from pytest_eng5.compare import WORSE, compare_folders

pytestmark = pytest.mark.eng5_scenario("experiments")

VARIANTS = {
    "baseline": {"llm_temperature": 0.1},
    "noisy": {"llm_model": "eng5-text-features-weak", "llm_temperature": 2.0},
}


def test_a_much_noisier_judge_is_detected_as_worse(eng5_runner_factory, tmp_path) -> None:
    for variant, settings in VARIANTS.items():
        runner = eng5_runner_factory(
            max_comparisons=132,
            experiment="noise",
            variant=variant,
            variant_repeat=1,
            baseline="baseline",
            evidence_dir=tmp_path / variant,
            **settings,
        )
        assert runner.anchor_align().outcome == "completed"

    (experiment,) = compare_folders([tmp_path]).experiments
    baseline, noisy = experiment.variants
    assert (baseline.variant, noisy.variant) == ("baseline", "noisy")
    assert noisy.settings["llm_model"] == "eng5-text-features-weak"
    assert noisy.comparisons > 66, "the budget above C(12, 2) is used"
    assert noisy.vs_baseline is not None
    assert noisy.vs_baseline.verdict == WORSE, noisy.vs_baseline
