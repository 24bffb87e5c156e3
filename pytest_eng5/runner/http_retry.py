"""Bounded retries with exponential backoff for HTTP calls (5xx, connection errors, timeouts).

The helper knows nothing about the services: it re-sends a request a bounded number of times and
hands back the last response (possibly still a 5xx) or re-raises the last transport error. The
callers map what is left to typed errors.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import httpx

logger = logging.getLogger(__name__)

# Errors that say nothing about the request itself; a later attempt may succeed.
# UnsupportedProtocol is a TransportError too, but a bad URL never gets better.
_NOT_RETRYABLE = (httpx.UnsupportedProtocol,)


@dataclass(frozen=True)
class RetryPolicy:
    """How often to try (``attempts`` ≥ 1) and how long to back off between attempts."""

    attempts: int = 3
    base_delay: float = 0.25
    max_delay: float = 4.0

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError(f"RetryPolicy.attempts must be at least 1, got {self.attempts}")
        if self.base_delay < 0 or self.max_delay < 0:
            raise ValueError("RetryPolicy delays must not be negative")

    def delay_before(self, retry_number: int) -> float:
        """Backoff before retry ``retry_number`` (1 for the first retry): base · 2^(n-1), capped."""
        return float(min(self.max_delay, self.base_delay * (2 ** (retry_number - 1))))


def is_retryable_status(status_code: int) -> bool:
    """5xx answers are worth another attempt; everything else is the final word."""
    return status_code >= 500


def is_retryable_error(error: BaseException) -> bool:
    """Connection errors, timeouts and other transport failures (not a malformed URL)."""
    return isinstance(error, httpx.TransportError) and not isinstance(error, _NOT_RETRYABLE)


async def send_with_retries(
    send: Callable[[], Awaitable[httpx.Response]],
    policy: RetryPolicy,
    *,
    description: str = "request",
) -> httpx.Response:
    """Call ``send`` until it returns a non-5xx response or ``policy.attempts`` are used up.

    Returns the last response (which may still be a 5xx); re-raises the last transport error
    when the final attempt failed at the transport level.
    """
    for attempt in range(1, policy.attempts + 1):
        last_attempt = attempt == policy.attempts
        try:
            response = await send()
        except httpx.TransportError as error:
            if last_attempt or not is_retryable_error(error):
                raise
            logger.warning(
                "%s failed (%s: %s); retry %d of %d",
                description,
                type(error).__name__,
                error,
                attempt,
                policy.attempts - 1,
            )
        else:
            if last_attempt or not is_retryable_status(response.status_code):
                return response
            logger.warning(
                "%s answered HTTP %d; retry %d of %d",
                description,
                response.status_code,
                attempt,
                policy.attempts - 1,
            )
        # Backoff between two real attempts, not a wait for a signal.
        await asyncio.sleep(policy.delay_before(attempt))
    raise AssertionError("unreachable: the loop returns or raises on its last attempt")
