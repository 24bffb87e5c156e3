"""Notice, while a batch is awaited, that the broker is gone.

aiokafka's fetcher does not raise when the broker stops: ``getmany`` keeps returning nothing
while the client reconnects in the background, so a dead broker would look like a slow batch
until the completion timeout. While no record arrives, :class:`BrokerWatch` asks the broker
for its metadata (``consumer.topics()``, bounded) now and then; when every ask fails for
``gone_after`` seconds, the broker is reported gone (an infrastructure fault, not a timeout).
A broker that answers again in between (a restart, a leader change) resets the watch.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any, Final

from aiokafka.errors import KafkaError

#: ask after this many seconds without a record, and at most this often
PROBE_INTERVAL_SECONDS: Final = 1.0
#: a metadata request that has not answered in this time counts as failed
PROBE_TIMEOUT_SECONDS: Final = 5.0
#: the broker is gone when every ask failed for this long
GONE_AFTER_SECONDS: Final = 6.0


@dataclass
class BrokerGone:
    """What the failed asks said, for the error message."""

    seconds: float
    attempts: int
    last_error: str


@dataclass
class BrokerWatch:
    """Call :meth:`saw_records` after records arrived and :meth:`check` after a quiet poll."""

    interval: float = PROBE_INTERVAL_SECONDS
    probe_timeout: float = PROBE_TIMEOUT_SECONDS
    gone_after: float = GONE_AFTER_SECONDS
    _last_sign_of_life: float = field(default_factory=time.monotonic)
    _last_probe: float = field(default_factory=time.monotonic)
    _failing_since: float | None = None
    _failures: int = 0

    def saw_records(self) -> None:
        self._last_sign_of_life = time.monotonic()
        self._failing_since = None
        self._failures = 0

    async def check(self, consumer: Any, within: float) -> BrokerGone | None:
        """Ask the broker (for at most ``within`` seconds) if it is time to; a
        :class:`BrokerGone` once it has been gone long enough, else None."""
        now = time.monotonic()
        if now - max(self._last_sign_of_life, self._last_probe) < self.interval:
            return None
        self._last_probe = now
        try:
            async with asyncio.timeout(max(0.05, min(self.probe_timeout, within))):
                await consumer.topics()
        except (KafkaError, OSError, TimeoutError) as exc:
            self._failures += 1
            if self._failing_since is None:
                self._failing_since = now
            failing = time.monotonic() - self._failing_since
            if failing >= self.gone_after and self._failures >= 2:
                detail = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
                return BrokerGone(round(failing, 1), self._failures, detail)
            return None
        self.saw_records()  # an answer is a sign of life too
        return None
