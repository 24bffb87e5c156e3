"""Datetimes as HuleEdu actually sends them: ISO 8601 or RFC 1123 HTTP-dates (A.5, H.3)."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator

# e.g. "Wed, 25 Nov 2026 02:38:26 GMT" (Flask/Quart's default JSON provider)
_HTTP_DATE = re.compile(
    r"^[A-Za-z]{3},\s+\d{1,2}\s+[A-Za-z]{3}\s+\d{4}\s+\d{2}:\d{2}:\d{2}\s+(GMT|UTC|[+-]\d{4})$"
)


def utcnow() -> datetime:
    """The current time, timezone-aware in UTC."""
    return datetime.now(UTC)


def parse_http_date(value: Any) -> Any:
    """Turn an RFC 1123 HTTP-date string into an aware datetime; leave anything else alone."""
    if isinstance(value, str) and _HTTP_DATE.match(value.strip()):
        try:
            parsed = parsedate_to_datetime(value.strip())
        except (TypeError, ValueError):
            return value  # let pydantic report the original string
        return parsed
    return value


def assume_utc(value: datetime) -> datetime:
    """HuleEdu writes naive UTC in places (e.g. completed_at); make every datetime aware."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


TolerantDatetime = Annotated[datetime, BeforeValidator(parse_http_date), AfterValidator(assume_utc)]
"""A datetime field that accepts ISO 8601 and HTTP-dates, and treats naive values as UTC."""
