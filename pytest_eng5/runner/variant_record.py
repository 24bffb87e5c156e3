"""What a run records about the variant it belongs to (read back by :mod:`pytest_eng5.compare`)."""

from __future__ import annotations

from typing import Any

from pytest_eng5.runner.config import RunConfig

#: The run settings a variant may change that the comparison report shows per variant.
VARIANT_SETTING_KEYS = (
    "llm_provider",
    "llm_model",
    "llm_temperature",
    "llm_max_tokens",
    "system_prompt_file",
    "rubric_file",
    "max_comparisons",
)


def variant_summary(config: RunConfig) -> dict[str, Any]:
    """Experiment, variant, repeat index and baseline, plus the variant's LLM settings (file
    names, not paths); empty for a run that is not part of a variant."""
    if config.variant is None:
        return {}
    summary: dict[str, Any] = {
        "experiment": config.experiment,
        "variant": config.variant,
        "variant_repeat": config.variant_repeat or 1,
        "baseline": config.baseline,
    }
    llm = config.llm
    values = {
        "llm_provider": llm.provider,
        "llm_model": llm.model,
        "llm_temperature": llm.temperature,
        "llm_max_tokens": llm.max_tokens,
        "system_prompt_file": llm.system_prompt_file,
        "rubric_file": llm.rubric_file,
        "max_comparisons": config.max_comparisons,
    }
    for key in VARIANT_SETTING_KEYS:
        value = values[key]
        if value is not None:
            summary[key] = getattr(value, "name", value)
    return summary
