"""The operator's own stack: every setting it needs is checked at once, before any run.

Missing settings are listed together; Kafka, the CJ service, the Content Service and (when
one is configured) the CJ database are probed side by side, and every one that does not
answer is named in the same error. The database is optional: without it only the DB-backed
steps (R5 extraction) are off.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx
from pydantic import SecretStr

from pytest_eng5.core import dsn_from_env
from pytest_eng5.errors import ConfigurationError, Eng5Error
from pytest_eng5.redact import redact
from pytest_eng5.settings import Eng5Settings
from pytest_eng5.stack.config import (
    StackConfig,
    security_problems,
    security_settings,
    stack_config,
)
from pytest_eng5.stack.kafka import KafkaEndpoint, external_kafka
from pytest_eng5.stack.postgres import external_postgres

HTTP_PROBE_TIMEOUT_S = 5.0
NO_DATABASE = (
    "no CJ database configured: DB-backed steps (R5 extraction) are off; set "
    "--eng5-postgres-dsn or HULEEDU_DB_HOST/PORT/USER/PASSWORD (database name: "
    "CJ_ASSESSMENT_SERVICE_DB_NAME, default huleedu_cj_assessment) to turn them on"
)


@dataclass(frozen=True)
class ExternalStack:
    """What the checks found: the Kafka endpoint, the CJ database DSN (None: no database)."""

    kafka: KafkaEndpoint
    postgres_dsn: str | None

    @property
    def database_note(self) -> str | None:
        return None if self.postgres_dsn else NO_DATABASE


def content_health_url(content_url: str) -> str:
    """``/healthz`` of the Content Service whose API is ``content_url`` (``.../v1/content``)."""
    return content_url.rstrip("/").removesuffix("/v1/content") + "/healthz"


def _http_answers(url: str, setting: str) -> None:
    try:
        httpx.get(url, timeout=HTTP_PROBE_TIMEOUT_S)
    except httpx.HTTPError as exc:
        raise ConfigurationError(
            redact(f"{setting}: nothing answers at {url} ({type(exc).__name__}: {exc})")
        ) from None


def _security_problems(settings: Eng5Settings) -> list[str]:
    """The Kafka security settings' problems (all of them), each with its next step."""
    where = "Kafka security (KAFKA_SECURITY_PROTOCOL, KAFKA_SASL_*, KAFKA_SSL_CAFILE)"
    found = security_problems(*security_settings(settings))
    return [f"{where}: {problem} ({step})" for problem, step in found]


def check_external_stack(
    settings: Eng5Settings,
    workdir: Path,
    log_dir: Path,
    environ: Mapping[str, str] | None = None,
) -> ExternalStack:
    """Check every setting of an external stack; raise one error naming each problem."""
    environ = os.environ if environ is None else environ
    missing = [
        flag
        for flag, value in (
            ("--eng5-kafka-bootstrap / KAFKA_BOOTSTRAP_SERVERS", settings.kafka_bootstrap),
            ("--eng5-cj-url / CJ_SERVICE_URL", settings.cj_url),
            ("--eng5-content-url / CONTENT_SERVICE_URL", settings.content_url),
        )
        if not value
    ]
    problems = [f"{flag} is not set" for flag in missing]
    security = _security_problems(settings)
    problems += security
    dsn = settings.dsn() or dsn_from_env(environ)
    probes: dict[str, Callable[[], object]] = {}
    if settings.kafka_bootstrap and not security:
        config = stack_config(settings, workdir, log_dir)
        probes["kafka"] = lambda: external_kafka(config)
    if settings.cj_url:
        cj_health = settings.cj_url.rstrip("/") + "/healthz"
        probes["cj"] = lambda: _http_answers(cj_health, "--eng5-cj-url / CJ_SERVICE_URL")
    if settings.content_url:
        content_health = content_health_url(settings.content_url)
        probes["content"] = lambda: _http_answers(
            content_health, "--eng5-content-url / CONTENT_SERVICE_URL"
        )
    if dsn:
        database = StackConfig(
            "external",
            workdir,
            log_dir,
            start_timeout=settings.start_timeout,
            postgres_dsn=SecretStr(dsn),
        )
        probes["database"] = lambda: external_postgres(database)
    with ThreadPoolExecutor(max_workers=len(probes) or 1) as pool:
        futures = {name: pool.submit(probe) for name, probe in probes.items()}
    found: dict[str, object] = {}
    for name, future in futures.items():
        try:
            found[name] = future.result()
        except Eng5Error as exc:
            where = "the CJ database (--eng5-postgres-dsn / HULEEDU_DB_*)"
            problems.append(f"{where}: {exc.message}" if name == "database" else exc.message)
    if problems:
        raise ConfigurationError(
            "the external stack cannot be used:\n  - " + "\n  - ".join(problems),
            next_step="point these settings at your HuleEdu dev stack (README: 'Run against "
            "a HuleEdu dev stack'), or drop --eng5-stack=external to use the embedded stack",
        )
    kafka = found["kafka"]
    assert isinstance(kafka, KafkaEndpoint)
    return ExternalStack(kafka, dsn)
