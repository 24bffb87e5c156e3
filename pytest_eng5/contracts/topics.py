"""Kafka topic names of the CJ flow (contract D.1) and the LPS callback event type (D.10)."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Final

from pytest_eng5.contracts.enums import ProcessingEvent

REQUEST_TOPIC: Final = "huleedu.els.cj_assessment.requested.v1"
CALLBACK_TOPIC: Final = "huleedu.llm_provider.comparison_result.v1"
COMPLETED_TOPIC: Final = "huleedu.cj_assessment.completed.v1"
FAILED_TOPIC: Final = "huleedu.cj_assessment.failed.v1"
RESULT_TOPIC: Final = "huleedu.assessment.result.published.v1"
RESOURCE_TOPIC: Final = "huleedu.resource.consumption.v1"

CONTRACT_TOPICS: Final[tuple[str, ...]] = (
    REQUEST_TOPIC,
    CALLBACK_TOPIC,
    COMPLETED_TOPIC,
    FAILED_TOPIC,
    RESULT_TOPIC,
    RESOURCE_TOPIC,
)

# LPS callbacks carry this literal as envelope.event_type, not the topic string.
CALLBACK_EVENT_TYPE: Final = "LLMComparisonResultV1"

EVENT_TOPICS: Final[Mapping[ProcessingEvent, str]] = MappingProxyType(
    {
        ProcessingEvent.ELS_CJ_ASSESSMENT_REQUESTED: REQUEST_TOPIC,
        ProcessingEvent.LLM_COMPARISON_RESULT: CALLBACK_TOPIC,
        ProcessingEvent.CJ_ASSESSMENT_COMPLETED: COMPLETED_TOPIC,
        ProcessingEvent.CJ_ASSESSMENT_FAILED: FAILED_TOPIC,
        ProcessingEvent.ASSESSMENT_RESULT_PUBLISHED: RESULT_TOPIC,
        ProcessingEvent.RESOURCE_CONSUMPTION_REPORTED: RESOURCE_TOPIC,
    }
)


def topic_for_event(event: ProcessingEvent | str) -> str:
    """HuleEdu's ``topic_name()``: the topic of a ProcessingEvent; ValueError when unmapped."""
    try:
        return EVENT_TOPICS[ProcessingEvent(event)]
    except (KeyError, ValueError):
        raise ValueError(
            f"No topic is mapped for event '{event}'. Known events: "
            f"{sorted(member.value for member in EVENT_TOPICS)}"
        ) from None
