"""Creating the contract topics on a broker (idempotent: existing topics are left alone)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pytest_eng5.stack.config import DEFAULT_TOPIC_PARTITIONS
from pytest_eng5.stack.kafka import METADATA_REQUEST_TIMEOUT, KafkaEndpoint
from pytest_eng5.stack.readiness import StackStartError, run_coroutine

#: Kafka error code for CreateTopics on a topic that exists (fine: creation is idempotent).
TOPIC_ALREADY_EXISTS = 36


async def ensure_topics_async(
    endpoint: KafkaEndpoint,
    topics: Sequence[str],
    *,
    partitions: int = DEFAULT_TOPIC_PARTITIONS,
    replication_factor: int = 1,
    request_timeout: float = METADATA_REQUEST_TIMEOUT,
    check_listed: bool = True,
) -> None:
    """Create the topics that are missing and check every one is in the metadata.

    ``check_listed=False`` leaves that check to the caller: on a cluster the metadata reaches
    each broker a moment after CreateTopics returns, so it is waited for, not asked once.
    """
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic

    admin = AIOKafkaAdminClient(
        **endpoint.admin_kwargs(), request_timeout_ms=max(int(request_timeout * 1000), 1)
    )
    try:
        await admin.start()
        existing = set(await admin.list_topics())
        wanted = [name for name in dict.fromkeys(topics) if name not in existing]
        if wanted:
            response = await admin.create_topics(
                [NewTopic(name, partitions, replication_factor) for name in wanted]
            )
            failures = [
                f"{name}: error {code} {message or ''}".strip()
                for name, code, message in _topic_errors(response)
                if code not in (0, TOPIC_ALREADY_EXISTS)
            ]
            if failures:
                raise StackStartError(
                    f"Kafka at {endpoint.bootstrap} refused to create topics: "
                    + "; ".join(failures),
                    next_step="check the broker log and that the client may create topics",
                )
        missing = sorted(set(topics) - set(await admin.list_topics())) if check_listed else []
        if missing:
            raise StackStartError(
                f"Kafka at {endpoint.bootstrap} does not list the topics {', '.join(missing)} "
                "after creating them",
                next_step="check the broker log",
            )
    finally:
        await admin.close()


def _topic_errors(response: Any) -> list[tuple[str, int, str | None]]:
    errors: list[tuple[str, int, str | None]] = []
    for entry in response.topic_errors:
        name, code = entry[0], entry[1]
        message = entry[2] if len(entry) > 2 else None
        errors.append((name, code, message))
    return errors


def ensure_topics(
    endpoint: KafkaEndpoint,
    topics: Sequence[str],
    timeout: float,
    *,
    partitions: int = DEFAULT_TOPIC_PARTITIONS,
) -> None:
    """Create missing topics (``partitions`` each) within ``timeout`` s; sync wrapper."""
    try:
        run_coroutine(
            ensure_topics_async(
                endpoint, topics, partitions=partitions, request_timeout=min(timeout, 10.0)
            ),
            timeout,
        )
    except TimeoutError as exc:
        raise StackStartError(
            f"creating the topics on Kafka at {endpoint.bootstrap} took longer than "
            f"{timeout:.1f} s",
            next_step="check that the broker answers, or raise the stack start timeout",
        ) from exc
