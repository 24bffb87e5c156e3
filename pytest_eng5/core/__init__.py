"""The neutral core of pytest-eng5: names, endpoints and DSN helpers every layer may use.

It sits on :mod:`pytest_eng5.contracts`, :mod:`pytest_eng5.errors` and :mod:`pytest_eng5.redact`
and imports nothing above them, so the runner (the client), the reference services (the fake)
and the stack can share these without importing each other.
"""

from pytest_eng5.contracts.topics import (
    CALLBACK_EVENT_TYPE,
    CALLBACK_TOPIC,
    COMPLETED_TOPIC,
    CONTRACT_TOPICS,
    FAILED_TOPIC,
    REQUEST_TOPIC,
    RESOURCE_TOPIC,
    RESULT_TOPIC,
)
from pytest_eng5.core.dsn import CJ_DATABASE, dsn_from_env
from pytest_eng5.core.endpoints import Endpoints
from pytest_eng5.core.names import (
    DEFAULT_GRADE_SCALE,
    DEFAULT_JUDGE,
    JUDGE_NAMES,
    KAFKA_PROVIDERS,
    PREFLIGHT_MODES,
    RUNNER_FALLBACK_GRADE_SCALE,
    STACK_KINDS,
    JudgeName,
    KafkaProvider,
    PreflightMode,
    StackKind,
)
from pytest_eng5.core.outcome import Outcome

__all__ = [
    "CALLBACK_EVENT_TYPE",
    "CALLBACK_TOPIC",
    "CJ_DATABASE",
    "COMPLETED_TOPIC",
    "CONTRACT_TOPICS",
    "DEFAULT_GRADE_SCALE",
    "DEFAULT_JUDGE",
    "FAILED_TOPIC",
    "JUDGE_NAMES",
    "KAFKA_PROVIDERS",
    "PREFLIGHT_MODES",
    "REQUEST_TOPIC",
    "RESOURCE_TOPIC",
    "RESULT_TOPIC",
    "RUNNER_FALLBACK_GRADE_SCALE",
    "STACK_KINDS",
    "Endpoints",
    "JudgeName",
    "KafkaProvider",
    "Outcome",
    "PreflightMode",
    "StackKind",
    "dsn_from_env",
]
