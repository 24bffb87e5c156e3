"""Where Kafka answers: the endpoint every provider hands back, readiness, external.

Each provider (embedded Tansu, :mod:`pytest_eng5.stack.tansu`; testcontainers,
:mod:`pytest_eng5.stack.containers`; Apache Kafka, :mod:`pytest_eng5.stack.apache_kafka`;
external, :func:`external_kafka`) hands back a :class:`KafkaEndpoint`, which carries everything
an aiokafka client needs: the bootstrap address, the security settings and whether the producer
is idempotent (on by default for every provider). Readiness is a metadata request answering.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from pytest_eng5.stack.config import KafkaSecurity, StackConfig
from pytest_eng5.stack.readiness import StackStartError, poll_until

METADATA_REQUEST_TIMEOUT = 2.0


@dataclass(frozen=True)
class KafkaEndpoint:
    """Where Kafka answers and how to talk to it; builds aiokafka keyword arguments."""

    bootstrap: str
    security: KafkaSecurity
    idempotence: bool
    provider: str = "external"

    def _common_kwargs(self) -> dict[str, Any]:
        security = self.security
        kwargs: dict[str, Any] = {
            "bootstrap_servers": self.bootstrap,
            "security_protocol": security.security_protocol,
        }
        if security.uses_sasl:
            kwargs["sasl_mechanism"] = security.sasl_mechanism
            kwargs["sasl_plain_username"] = security.sasl_username
            password = security.sasl_password
            kwargs["sasl_plain_password"] = password.get_secret_value() if password else None
        if security.uses_ssl:
            from aiokafka.helpers import create_ssl_context

            kwargs["ssl_context"] = create_ssl_context(cafile=security.ssl_cafile)
        return kwargs

    def producer_kwargs(self) -> dict[str, Any]:
        """Arguments for ``AIOKafkaProducer`` (acks=all, idempotence as the broker allows)."""
        return {**self._common_kwargs(), "acks": "all", "enable_idempotence": self.idempotence}

    def consumer_kwargs(self) -> dict[str, Any]:
        """Arguments for ``AIOKafkaConsumer`` (add topics or use ``assign()`` yourself)."""
        return self._common_kwargs()

    def admin_kwargs(self) -> dict[str, Any]:
        """Arguments for ``AIOKafkaAdminClient``."""
        return self._common_kwargs()


async def fetch_topic_names(
    endpoint: KafkaEndpoint, request_timeout: float = METADATA_REQUEST_TIMEOUT
) -> list[str]:
    """Send a metadata request (bounded by ``request_timeout`` s) and return the topic names."""
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(
        **endpoint.admin_kwargs(), request_timeout_ms=max(int(request_timeout * 1000), 1)
    )
    try:
        await admin.start()
        topics: list[str] = await admin.list_topics()
        return topics
    finally:
        await admin.close()


async def metadata_answers(
    endpoint: KafkaEndpoint, request_timeout: float = METADATA_REQUEST_TIMEOUT
) -> bool:
    """True when the broker answers a metadata request (the readiness signal)."""
    await fetch_topic_names(endpoint, request_timeout)
    return True


async def port_accepts(address: str) -> bool:
    """True when ``host:port`` accepts a TCP connection (closed again at once)."""
    host, _, port = address.rpartition(":")
    try:
        _, writer = await asyncio.open_connection(host, int(port))
    except OSError:
        return False
    writer.close()
    await writer.wait_closed()
    return True


async def broker_then_metadata(broker: str, endpoint: KafkaEndpoint) -> bool:
    """Readiness behind the adapter: the broker's own port accepts, then metadata answers
    through the adapter (the adapter accepts before the broker is up, so it cannot tell)."""
    if not await port_accepts(broker):
        return False
    return await metadata_answers(endpoint)


def wait_for_metadata(endpoint: KafkaEndpoint, timeout: float, *, what: str) -> None:
    """Poll a metadata request until the broker answers; raise :class:`StackStartError` if not."""
    poll_until(
        lambda: metadata_answers(endpoint, min(timeout, METADATA_REQUEST_TIMEOUT)),
        timeout=timeout,
        what=what,
        next_step="check KAFKA_BOOTSTRAP_SERVERS, the network path and the security settings "
        "(protocol, SASL mechanism, credentials, CA file)",
        poll_interval=0.5,
    )


def external_kafka(config: StackConfig) -> KafkaEndpoint:
    """An external cluster: nothing is started, reachability is checked with a metadata request."""
    if not config.kafka_bootstrap:
        raise StackStartError(
            "no Kafka bootstrap servers given for the external stack",
            next_step="set KAFKA_BOOTSTRAP_SERVERS",
        )
    idempotence = True if config.kafka_idempotence is None else config.kafka_idempotence
    endpoint = KafkaEndpoint(
        config.kafka_bootstrap, config.kafka_security, idempotence, provider="external"
    )
    wait_for_metadata(endpoint, config.start_timeout, what=f"Kafka at {config.kafka_bootstrap}")
    return endpoint
