"""What a run records about the variant it belongs to (read back by :mod:`pytest_eng5.compare`)."""

from __future__ import annotations

from typing import Any

from pytest_eng5.settings import Eng5Settings

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


def variant_summary(settings: Eng5Settings) -> dict[str, Any]:
    """Experiment, variant, repeat index and baseline, plus the variant's LLM settings (file
    names, not paths); empty for a run that is not part of a variant."""
    if settings.variant is None:
        return {}
    summary: dict[str, Any] = {
        "experiment": settings.experiment,
        "variant": settings.variant,
        "variant_repeat": settings.variant_repeat or 1,
        "baseline": settings.baseline,
    }
    for key in VARIANT_SETTING_KEYS:
        value = getattr(settings, key)
        if value is not None:
            summary[key] = getattr(value, "name", value)
    return summary
