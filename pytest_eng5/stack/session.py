"""A whole stack for a test session: infrastructure plus services, as one context object.

``embedded`` and ``testcontainers`` start the reference services on top of the
infrastructure; ``external`` starts nothing and points at the operator's services.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from pytest_eng5.core import Endpoints
from pytest_eng5.core.dsn import CJ_DATABASE, CJ_DATABASE_NAME_VARIABLE
from pytest_eng5.core.urls import content_base
from pytest_eng5.errors import ConfigurationError
from pytest_eng5.redact import register_secret
from pytest_eng5.stack.config import StackConfig
from pytest_eng5.stack.external import ExternalRequest, check_external_stack
from pytest_eng5.stack.infra import Infrastructure, running_infrastructure
from pytest_eng5.stack.kafka import KafkaEndpoint
from pytest_eng5.stack.postgres import CONTENT_DATABASE, HuleeduDatabases
from pytest_eng5.stack.request import StackRequest
from pytest_eng5.stack.services import ReferenceServices, start_reference_services


@dataclass
class StackContext:
    """Where everything answers, plus helpers for tests (faults, counters, clients)."""

    kind: str
    kafka: KafkaEndpoint
    postgres_dsn: str | None = field(repr=False)
    cj_url: str | None
    content_url: str | None
    env: Mapping[str, str] = field(repr=False)  # tokens / JWT secret
    log_dir: Path
    infrastructure: Infrastructure | None = None
    services: ReferenceServices | None = None
    pids: list[int] = field(default_factory=list)
    #: TCP access to HuleEdu's databases on the embedded PostgreSQL (None elsewhere)
    databases: HuleeduDatabases | None = None

    def huleedu_facts(self) -> dict[str, str]:
        """``HULEEDU_DB_*`` and the TCP DSNs of both databases, for HuleEdu's own tools."""
        if self.databases is None:
            return {}
        return {
            **self.databases.env(),
            "HULEEDU_CJ_DB_DSN": self.databases.dsn(CJ_DATABASE),
            "HULEEDU_CONTENT_DB_DSN": self.databases.dsn(CONTENT_DATABASE),
        }

    @property
    def is_reference(self) -> bool:
        """True when the CJ/Content services are this project's reference services."""
        return self.services is not None

    def endpoints(self) -> Endpoints:
        """The runner's view of this stack."""
        return Endpoints(
            cj_url=self.cj_url,
            content_url=self.content_url,
            producer_kwargs=self.kafka.producer_kwargs(),
            consumer_kwargs=self.kafka.consumer_kwargs(),
            postgres_dsn=self.postgres_dsn,
            env=self.env,
            content_is_ephemeral=self.is_reference,
        )

    def producer(self, **overrides: Any) -> AIOKafkaProducer:
        """An (unstarted) aiokafka producer for this stack's broker."""
        return AIOKafkaProducer(**{**self.kafka.producer_kwargs(), **overrides})

    def consumer(self, *topics: str, **overrides: Any) -> AIOKafkaConsumer:
        """An (unstarted) aiokafka consumer without a group (use assign()/seek())."""
        return AIOKafkaConsumer(*topics, **{**self.kafka.consumer_kwargs(), **overrides})

    async def connect(self) -> asyncpg.Connection:
        """A connection to the stack's PostgreSQL (the CJ and Content tables)."""
        if self.postgres_dsn is None:
            raise ConfigurationError(
                "this stack has no PostgreSQL DSN",
                next_step="set --eng5-postgres-dsn or HULEEDU_DB_* for an external stack",
            )
        return await asyncpg.connect(self.postgres_dsn, timeout=10)

    def _require_reference(self, what: str) -> ReferenceServices:
        if self.services is None:
            raise ConfigurationError(
                f"{what} needs the reference services (embedded or testcontainers stack)",
                next_step="run this scenario on the embedded stack",
            )
        return self.services

    def content_uploads(self) -> int:
        """How many ``POST /v1/content`` the reference Content Service has answered."""
        services = self._require_reference("counting uploads")
        base = content_base(services.content_url)
        response = httpx.get(f"{base}/_test/stats", timeout=5.0)
        response.raise_for_status()
        return int(response.json()["uploads"])

    def set_faults(self, service: str, **faults: Any) -> None:
        """Set fault knobs of a reference service (``content``, ``cj-api``, ``cj-worker``)."""
        services = self._require_reference("fault injection")
        response = httpx.post(
            f"{services.cj_url}/_test/faults",
            json={"service": service, "faults": faults},
            timeout=5.0,
        )
        if response.status_code == 400:
            raise ConfigurationError(
                f"the reference CJ API refused the faults {faults!r} for {service!r}: "
                f"{response.text[:500]}",
                next_step="use the fault knobs of pytest_eng5.reference.faults.FaultConfig",
            )
        response.raise_for_status()

    def clear_faults(self) -> None:
        services = self._require_reference("fault injection")
        httpx.delete(f"{services.cj_url}/_test/faults", timeout=5.0).raise_for_status()


#: what the runner needs from the environment of an external stack (JWT claims, environment
#: name, CJ database)
RUNNER_ENV_PREFIXES = ("HULEEDU_", "JWT_", "ENVIRONMENT", CJ_DATABASE_NAME_VARIABLE)
#: the CJ admin credentials travel as typed secrets (settings, then RunConfig), not in this copy
CREDENTIAL_VARIABLES = frozenset(
    {"HULEEDU_SERVICE_ACCOUNT_TOKEN", "HULEEDU_ADMIN_TOKEN", "JWT_SECRET_KEY"}
)


def runner_env(environ: Mapping[str, str]) -> dict[str, str]:
    """Only the variables the runner reads, so no unrelated secret travels with it."""
    return {
        k: v
        for k, v in environ.items()
        if k.startswith(RUNNER_ENV_PREFIXES) and k not in CREDENTIAL_VARIABLES
    }


@contextmanager
def running_stack(request: StackRequest) -> Iterator[StackContext]:
    """Start the requested stack; stop everything it started on exit (also on Ctrl-C).

    ``request.services`` None starts Kafka and PostgreSQL only (no reference services); an
    external stack starts nothing and is checked at once (``stack/external.py``).
    """
    config = request.config
    if config.kind == "external":
        yield _external_context(config, request.external)
        return
    with running_infrastructure(config) as infra:
        if request.services is None:
            yield _infrastructure_context(config, infra)
            return
        given = request.services.jwt_secret
        jwt_secret = given.get_secret_value() if given else secrets.token_hex(32)
        register_secret(jwt_secret)
        services = start_reference_services(
            kafka=infra.kafka,
            postgres_dsn=infra.postgres.dsn,
            content_dsn=infra.postgres.content_dsn,
            jwt_secret=jwt_secret,
            log_dir=config.log_dir,
            timeout=config.start_timeout,
            judge=request.services.judge,
            judge_seed=request.services.judge_seed,
            max_pairwise_comparisons=request.services.max_pairwise_comparisons,
        )
        try:
            yield StackContext(
                kind=config.kind,
                kafka=infra.kafka,
                postgres_dsn=infra.postgres.dsn,
                cj_url=services.cj_url,
                content_url=services.content_url,
                env={
                    "JWT_SECRET_KEY": jwt_secret,
                    "ENVIRONMENT": "development",
                    **infra.postgres.huleedu_env(),
                },
                log_dir=config.log_dir,
                infrastructure=infra,
                services=services,
                pids=[*infra.pids, *(p.pid for p in services.processes)],
                databases=infra.postgres.tcp,
            )
        finally:
            services.stop()


def _infrastructure_context(config: StackConfig, infra: Infrastructure) -> StackContext:
    return StackContext(
        kind=config.kind,
        kafka=infra.kafka,
        postgres_dsn=infra.postgres.dsn,
        cj_url=None,
        content_url=None,
        env=dict(infra.postgres.huleedu_env()),
        log_dir=config.log_dir,
        infrastructure=infra,
        pids=list(infra.pids),
        databases=infra.postgres.tcp,
    )


def _external_context(config: StackConfig, external: ExternalRequest | None) -> StackContext:
    if external is None:
        raise ConfigurationError(
            "an external stack needs the operator's CJ and Content services",
            next_step="give the StackRequest an ExternalRequest with their URLs",
        )
    checked = check_external_stack(config, external)
    return StackContext(
        kind="external",
        kafka=checked.kafka,
        postgres_dsn=checked.postgres_dsn,
        cj_url=checked.cj_url,
        content_url=checked.content_url,
        env=runner_env(os.environ),
        log_dir=config.log_dir,
    )
