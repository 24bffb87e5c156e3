"""The contract topic names, re-exported from :mod:`pytest_eng5.contracts.topics` (one source)."""

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

__all__ = [
    "CALLBACK_EVENT_TYPE",
    "CALLBACK_TOPIC",
    "COMPLETED_TOPIC",
    "CONTRACT_TOPICS",
    "FAILED_TOPIC",
    "REQUEST_TOPIC",
    "RESOURCE_TOPIC",
    "RESULT_TOPIC",
]
