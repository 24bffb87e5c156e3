"""Transactional outbox of the reference CJ worker (``event_outbox``, contract §D.12).

Each event is first written as a row (envelope JSON, topic, key), then relayed to Kafka and
marked published. Rows left unpublished (e.g. the worker stopped in between) are relayed by
:func:`relay_pending` on the next start. Kafka key = ``aggregate_id`` (HuleEdu's rule).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any, Final, Literal
from uuid import UUID, uuid4

from pytest_eng5.contracts.envelope import EventEnvelope

AggregateType = Literal["cj_batch", "assessment_result", "resource_consumption"]
SendFn = Callable[[str, bytes, bytes], Awaitable[None]]
"""``send(topic, key, value)``: publish one Kafka record and wait for the ack."""

_log = logging.getLogger(__name__)

RELAY_BATCH: Final = 100


async def write_outbox_row(
    conn: Any,
    *,
    aggregate_id: str,
    aggregate_type: AggregateType,
    topic: str,
    envelope: EventEnvelope,
) -> UUID:
    """Insert one unpublished row; returns its id."""
    row_id = uuid4()
    await conn.execute(
        "INSERT INTO event_outbox (id, aggregate_id, aggregate_type, event_type, event_data,"
        " event_key, topic) VALUES ($1, $2, $3, $4, $5::jsonb, $6, $7)",
        row_id,
        aggregate_id,
        aggregate_type,
        envelope.event_type,
        json.dumps(envelope.to_json_dict()),
        aggregate_id,
        topic,
    )
    return row_id


async def relay_rows(conn: Any, send: SendFn, row_ids: list[UUID]) -> int:
    """Publish the given rows in order; mark each published, or record its error. Returns
    how many were published."""
    published = 0
    for row_id in row_ids:
        row = await conn.fetchrow(
            "SELECT topic, event_key, event_data FROM event_outbox"
            " WHERE id = $1 AND published_at IS NULL",
            row_id,
        )
        if row is None:
            continue
        data = row["event_data"]
        value = data.encode("utf-8") if isinstance(data, str) else json.dumps(data).encode("utf-8")
        key = (row["event_key"] or "").encode("utf-8")
        try:
            await send(row["topic"], key, value)
        except Exception as exc:  # the row stays unpublished for the next relay
            _log.warning("outbox row %s to %s not published: %s", row_id, row["topic"], exc)
            await conn.execute(
                "UPDATE event_outbox SET retry_count = retry_count + 1, last_error = $2"
                " WHERE id = $1",
                row_id,
                str(exc)[:2000],
            )
            continue
        await conn.execute("UPDATE event_outbox SET published_at = now() WHERE id = $1", row_id)
        published += 1
    return published


async def relay_pending(conn: Any, send: SendFn) -> int:
    """Publish every unpublished row, oldest first. Returns how many were published."""
    rows = await conn.fetch(
        "SELECT id FROM event_outbox WHERE published_at IS NULL ORDER BY created_at LIMIT $1",
        RELAY_BATCH,
    )
    return await relay_rows(conn, send, [row["id"] for row in rows])
