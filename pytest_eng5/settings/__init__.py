"""Every pytest-eng5 setting, declared once, and the one place where they are resolved.

:class:`Eng5Settings` (:mod:`.model`) is the declaration: each field with an :class:`Option`
is a CLI option ``--eng5-*``, an ini key ``eng5_*`` and, where HuleEdu already has one, an
environment variable. The options table, the README table and the validation all come from
it, and the same validation runs on every path (CLI, ini, env, ``eng5_run`` markers, hooks,
factory keywords). Precedence: CLI > env > ini > default.

Environment variables named ``ENG5_*`` are ours and always read. HuleEdu's generic ones
(``KAFKA_*``, ``CJ_SERVICE_URL``, ...) describe an external stack and are read only when the
external stack is selected, so they cannot break unrelated test suites of the same venv.
This package does not import pytest.
"""

from pytest_eng5.settings.choices import (
    BATCHING_MODES,
    COURSE_CODES,
    EMBEDDED,
    EXTERNAL,
    IDEMPOTENCE_CHOICES,
    LANGUAGES,
    LLM_PROVIDERS,
    OWN_ENV_PREFIX,
    REASONING_EFFORTS,
    REFERENCE_STACKS,
    VARIANT_ID_PATTERN,
    VERBOSITIES,
)
from pytest_eng5.settings.model import OPTIONS, OPTIONS_BY_NAME, Eng5Settings, validation_problems
from pytest_eng5.settings.options import (
    Option,
    OptionSpec,
    OptionType,
    SettingsError,
    canonical_choice,
)

__all__ = [
    "BATCHING_MODES",
    "COURSE_CODES",
    "EMBEDDED",
    "EXTERNAL",
    "IDEMPOTENCE_CHOICES",
    "LANGUAGES",
    "LLM_PROVIDERS",
    "OPTIONS",
    "OPTIONS_BY_NAME",
    "OWN_ENV_PREFIX",
    "REASONING_EFFORTS",
    "REFERENCE_STACKS",
    "VARIANT_ID_PATTERN",
    "VERBOSITIES",
    "Eng5Settings",
    "Option",
    "OptionSpec",
    "OptionType",
    "SettingsError",
    "canonical_choice",
    "validation_problems",
]
