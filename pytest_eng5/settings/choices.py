"""The value sets of the settings (choices, stack scopes, id patterns), named once."""

from __future__ import annotations

from typing import Literal, get_args

from pytest_eng5.core.names import StackKind

Idempotence = Literal["auto", "on", "off"]
BatchingMode = Literal["per_request", "serial_bundle", "provider_batch_api"]
CourseCode = Literal["ENG5", "ENG6", "ENG7", "SV1", "SV2", "SV3"]
Language = Literal["en", "sv"]
LLMProvider = Literal["anthropic", "openai", "google", "openrouter", "mock"]
ReasoningEffort = Literal["none", "low", "medium", "high"]
Verbosity = Literal["low", "medium", "high"]

IDEMPOTENCE_CHOICES: tuple[str, ...] = get_args(Idempotence)
BATCHING_MODES: tuple[str, ...] = get_args(BatchingMode)
COURSE_CODES: tuple[str, ...] = get_args(CourseCode)
LANGUAGES: tuple[str, ...] = get_args(Language)
LLM_PROVIDERS: tuple[str, ...] = get_args(LLMProvider)
REASONING_EFFORTS: tuple[str, ...] = get_args(ReasoningEffort)
VERBOSITIES: tuple[str, ...] = get_args(Verbosity)

REFERENCE_STACKS: tuple[StackKind, ...] = ("embedded", "testcontainers")
EXTERNAL: tuple[StackKind, ...] = ("external",)
EMBEDDED: tuple[StackKind, ...] = ("embedded",)
OWN_ENV_PREFIX = "ENG5_"
#: Variant, baseline and experiment ids name evidence folders: letters, digits, ``._-``.
VARIANT_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
