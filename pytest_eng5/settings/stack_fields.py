"""The declaration of the stack's settings: where a session runs and with which credentials.

:class:`StackSettings` is the first part of ``Eng5Settings`` (the runs' settings follow in
:mod:`.model`); every field with an :class:`Option` is a user setting.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from pytest_eng5.core.names import (
    DEFAULT_JUDGE,
    MAX_PAIRWISE_COMPARISONS,
    ApacheBrokerCount,
    JudgeName,
    KafkaProvider,
    SaslMechanism,
    SecurityProtocol,
    StackKind,
)
from pytest_eng5.settings.choices import (
    EMBEDDED,
    EXTERNAL,
    REFERENCE_STACKS,
    Idempotence,
)
from pytest_eng5.settings.options import Option


def _external(help_text: str, *env: str) -> Option:
    return Option(help_text, env, EXTERNAL)


def _secret(help_text: str, env: str, run: str | None = None) -> Option:
    """A credential of the external stack: read from ``env`` only, never argv or a file."""
    return Option(help_text, (env,), EXTERNAL, run=run, env_only=True)


class StackSettings(BaseModel):
    """The settings of the stack (and its credentials); frozen, unknown names refused."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    # stack
    stack: Annotated[
        StackKind, Option("which stack to run on", ("ENG5_STACK",), run="stack", session=True)
    ] = "embedded"
    start_timeout: Annotated[
        float, Field(gt=0, le=600), Option("seconds a stack process may take to be ready")
    ] = 30.0
    require_services: Annotated[
        bool, Option("also fail (not skip) tests other than the main job when the stack is down")
    ] = False
    kafka: Annotated[
        KafkaProvider,
        Option(
            "broker of the embedded stack: Tansu, or an Apache Kafka KRaft cluster started "
            "from Maven's jars (needs java and mvn)",
            ("ENG5_KAFKA",),
            EMBEDDED,
        ),
    ] = "tansu"
    kafka_brokers: Annotated[
        ApacheBrokerCount, Option("nodes of the Apache Kafka cluster", (), EMBEDDED)
    ] = 3
    kafka_version: Annotated[
        str,
        Field(pattern=r"^4\.\d+\.\d+$"),
        Option("Apache Kafka version (4.x, resolved with Maven)", (), EMBEDDED),
    ] = "4.4.0"
    kafka_bootstrap: Annotated[
        str | None, _external("external Kafka bootstrap servers", "KAFKA_BOOTSTRAP_SERVERS")
    ] = None
    kafka_security_protocol: Annotated[
        SecurityProtocol, _external("Kafka security protocol", "KAFKA_SECURITY_PROTOCOL")
    ] = "PLAINTEXT"
    kafka_sasl_mechanism: Annotated[
        SaslMechanism | None,
        _external(
            "SASL mechanism (credentials come from KAFKA_SASL_USERNAME / KAFKA_SASL_PASSWORD)",
            "KAFKA_SASL_MECHANISM",
        ),
    ] = None
    kafka_sasl_username: Annotated[
        str | None, _secret("Kafka SASL username", "KAFKA_SASL_USERNAME")
    ] = None
    kafka_sasl_password: Annotated[
        SecretStr | None, _secret("Kafka SASL password", "KAFKA_SASL_PASSWORD")
    ] = None
    kafka_ssl_cafile: Annotated[
        Path | None, _external("CA file for Kafka SSL", "KAFKA_SSL_CAFILE")
    ] = None
    kafka_idempotence: Annotated[
        Idempotence,
        Option(
            "idempotent producers (acks=all), as HuleEdu's clients use; on for every stack "
            "(auto = on; off only to test a non-idempotent client)"
        ),
    ] = "on"
    kafka_image: str = "confluentinc/cp-kafka:7.6.0"
    postgres_image: str = "postgres:16-alpine"
    postgres_dsn: Annotated[
        SecretStr | None,
        _external(
            "external PostgreSQL DSN (CJ database; optional, default built from HULEEDU_DB_*)",
            "ENG5_POSTGRES_DSN",
        ),
    ] = None
    service_account_token: Annotated[
        SecretStr | None,
        _secret(
            "CJ admin token of a service account (used first)",
            "HULEEDU_SERVICE_ACCOUNT_TOKEN",
            run="service_account_token",
        ),
    ] = None
    admin_token: Annotated[
        SecretStr | None,
        _secret("CJ admin token (JWT)", "HULEEDU_ADMIN_TOKEN", run="admin_token"),
    ] = None
    jwt_secret: Annotated[
        SecretStr | None,
        _secret(
            "JWT secret of the CJ service: without a token, a development admin token is "
            "minted with it (refused in production)",
            "JWT_SECRET_KEY",
            run="jwt_secret",
        ),
    ] = None
    cj_url: Annotated[
        str | None, _external("CJ Assessment Service base URL (external stack)", "CJ_SERVICE_URL")
    ] = None
    content_url: Annotated[
        str | None, _external("Content Service URL (external stack)", "CONTENT_SERVICE_URL")
    ] = None
    cj_max_comparisons: Annotated[
        int,
        Field(ge=2),
        Option(
            "CJ's cap on comparisons per batch (HuleEdu's MAX_PAIRWISE_COMPARISONS); the "
            "reference CJ uses it, for an external stack set it to that stack's value",
            ("ENG5_CJ_MAX_COMPARISONS",),
            run="cj_max_comparisons",
            session=True,
        ),
    ] = MAX_PAIRWISE_COMPARISONS
    judge: Annotated[
        JudgeName, Option("judge of the reference CJ worker", ("ENG5_JUDGE",), REFERENCE_STACKS)
    ] = DEFAULT_JUDGE
    judge_seed: Annotated[int, Option("seed of the reference judge", (), REFERENCE_STACKS)] = 0
    reference_jwt_secret: Annotated[
        SecretStr | None,
        Option(
            "JWT secret of the reference services (default: a new random one per stack)",
            ("ENG5_REFERENCE_JWT_SECRET",),
            REFERENCE_STACKS,
            env_only=True,
        ),
    ] = None
