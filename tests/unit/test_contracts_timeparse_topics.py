"""Tolerant datetimes (A.5, H.3) and the topic table (D.1)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from pydantic import TypeAdapter, ValidationError

from pytest_eng5.contracts import (
    CALLBACK_EVENT_TYPE,
    CALLBACK_TOPIC,
    COMPLETED_TOPIC,
    CONTRACT_TOPICS,
    FAILED_TOPIC,
    REQUEST_TOPIC,
    RESOURCE_TOPIC,
    RESULT_TOPIC,
    ProcessingEvent,
    TolerantDatetime,
    topic_for_event,
    utcnow,
)

ADAPTER: TypeAdapter[datetime] = TypeAdapter(TolerantDatetime)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Wed, 25 Nov 2026 02:38:26 GMT", datetime(2026, 11, 25, 2, 38, 26, tzinfo=UTC)),
        ("Tue, 25 Nov 2025 22:25:13 GMT", datetime(2025, 11, 25, 22, 25, 13, tzinfo=UTC)),
        ("2026-11-25T02:38:26Z", datetime(2026, 11, 25, 2, 38, 26, tzinfo=UTC)),
        ("2026-11-25T02:38:26.5+00:00", datetime(2026, 11, 25, 2, 38, 26, 500000, tzinfo=UTC)),
        ("2026-11-25T02:38:26", datetime(2026, 11, 25, 2, 38, 26, tzinfo=UTC)),
        (
            "2026-11-25T03:38:26+01:00",
            datetime(2026, 11, 25, 3, 38, 26, tzinfo=timezone(timedelta(hours=1))),
        ),
        (datetime(2026, 1, 1, 12, 0), datetime(2026, 1, 1, 12, 0, tzinfo=UTC)),
    ],
)
def test_tolerant_datetime_accepts_iso_and_http_dates(raw: object, expected: datetime) -> None:
    parsed = ADAPTER.validate_python(raw)

    assert parsed == expected
    assert parsed.tzinfo is not None


def test_tolerant_datetime_keeps_the_offset() -> None:
    parsed = ADAPTER.validate_python("2026-11-25T03:38:26+01:00")

    assert parsed.utcoffset() == timedelta(hours=1)


def test_http_date_parses_from_json_too() -> None:
    parsed = ADAPTER.validate_json('"Wed, 25 Nov 2026 02:38:26 GMT"')

    assert parsed == datetime(2026, 11, 25, 2, 38, 26, tzinfo=UTC)


@pytest.mark.parametrize(
    "raw", ["not a date", "Wed, 31 Feb 2026 02:38:26 GMT", "25/11/2026 02:38", ""]
)
def test_tolerant_datetime_rejects_garbage(raw: str) -> None:
    with pytest.raises(ValidationError):
        ADAPTER.validate_python(raw)


def test_utcnow_is_aware_utc() -> None:
    now = utcnow()

    assert now.utcoffset() == timedelta(0)


def test_contract_topics_are_the_six_cj_flow_topics() -> None:
    assert CONTRACT_TOPICS == (
        "huleedu.els.cj_assessment.requested.v1",
        "huleedu.llm_provider.comparison_result.v1",
        "huleedu.cj_assessment.completed.v1",
        "huleedu.cj_assessment.failed.v1",
        "huleedu.assessment.result.published.v1",
        "huleedu.resource.consumption.v1",
    )
    assert CALLBACK_EVENT_TYPE == "LLMComparisonResultV1"


@pytest.mark.parametrize(
    ("event", "topic"),
    [
        ("els.cj_assessment.requested", REQUEST_TOPIC),
        ("llm_provider.comparison_result", CALLBACK_TOPIC),
        ("cj_assessment.completed", COMPLETED_TOPIC),
        ("cj_assessment.failed", FAILED_TOPIC),
        ("assessment.result.published", RESULT_TOPIC),
        ("resource.consumption.reported", RESOURCE_TOPIC),
    ],
)
def test_topic_for_event(event: str, topic: str) -> None:
    assert topic_for_event(event) == topic
    assert topic_for_event(ProcessingEvent(event)) == topic


def test_topic_for_unmapped_event_raises() -> None:
    with pytest.raises(ValueError, match=r"No topic is mapped for event 'batch\.cj_assessment"):
        topic_for_event("batch.cj_assessment.initiate.command")
