"""The operator's own stack: every part of it is checked at once, before any run.

Kafka, the CJ service, the Content Service and (when one is given) the CJ database are probed
side by side, and every one that does not answer is named in the same error, together with the
problems the caller found in its settings. The database is optional: without it only the
DB-backed steps (R5 extraction) are off.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace

import httpx
from pydantic import SecretStr

from pytest_eng5.errors import ConfigurationError, Eng5Error
from pytest_eng5.redact import redact
from pytest_eng5.stack.config import StackConfig
from pytest_eng5.stack.kafka import KafkaEndpoint, external_kafka
from pytest_eng5.stack.postgres import external_postgres

HTTP_PROBE_TIMEOUT_S = 5.0


@dataclass(frozen=True)
class ExternalNames:
    """How the errors name each part of an external stack (the caller says how it is set)."""

    kafka: str = "the Kafka bootstrap servers"
    cj: str = "the CJ service URL"
    content: str = "the Content Service URL"
    database: str = "the CJ database"
    next_step: str = "point the external stack's settings at a running HuleEdu stack"


@dataclass(frozen=True)
class ExternalRequest:
    """The operator's services, beside the Kafka settings of the stack's ``StackConfig``.

    ``kafka_problems`` are what the caller found wrong in the Kafka security settings (a
    ``KafkaSecurity`` refuses them): they are reported with every other problem, and Kafka is
    not probed.
    """

    cj_url: str | None
    content_url: str | None
    #: the CJ database (optional), a typed secret (it may hold a password)
    postgres_dsn: SecretStr | None = None
    kafka_problems: tuple[str, ...] = ()
    names: ExternalNames = ExternalNames()


@dataclass(frozen=True)
class ExternalStack:
    """What the checks found: where each part answers (``postgres_dsn`` None: no database)."""

    kafka: KafkaEndpoint
    cj_url: str
    content_url: str
    postgres_dsn: str | None


def content_health_url(content_url: str) -> str:
    """``/healthz`` of the Content Service whose API is ``content_url`` (``.../v1/content``)."""
    return content_url.rstrip("/").removesuffix("/v1/content") + "/healthz"


def _http_answers(url: str, name: str) -> None:
    try:
        httpx.get(url, timeout=HTTP_PROBE_TIMEOUT_S)
    except httpx.HTTPError as exc:
        raise ConfigurationError(
            redact(f"{name}: nothing answers at {url} ({type(exc).__name__}: {exc})")
        ) from None


def check_external_stack(config: StackConfig, request: ExternalRequest) -> ExternalStack:
    """Probe every part of an external stack; raise one error naming each problem."""
    names = request.names
    cj_url, content_url = request.cj_url, request.content_url
    given = (
        (names.kafka, config.kafka_bootstrap),
        (names.cj, cj_url),
        (names.content, content_url),
    )
    problems = [f"{name} is not set" for name, value in given if not value]
    problems += request.kafka_problems
    probes: dict[str, Callable[[], object]] = {}
    if config.kafka_bootstrap and not request.kafka_problems:
        probes["kafka"] = lambda: external_kafka(config)
    if cj_url:
        cj_health = cj_url.rstrip("/") + "/healthz"
        probes["cj"] = lambda: _http_answers(cj_health, names.cj)
    if content_url:
        content_health = content_health_url(content_url)
        probes["content"] = lambda: _http_answers(content_health, names.content)
    if request.postgres_dsn:
        database = replace(config, kafka_bootstrap=None, postgres_dsn=request.postgres_dsn)
        probes["database"] = lambda: external_postgres(database)
    with ThreadPoolExecutor(max_workers=len(probes) or 1) as pool:
        futures = {name: pool.submit(probe) for name, probe in probes.items()}
    found: dict[str, object] = {}
    for name, future in futures.items():
        try:
            found[name] = future.result()
        except Eng5Error as exc:
            problems.append(
                f"{names.database}: {exc.message}" if name == "database" else exc.message
            )
    if problems or not (cj_url and content_url):  # (no url: a problem above)
        raise ConfigurationError(
            "the external stack cannot be used:\n  - " + "\n  - ".join(problems),
            next_step=names.next_step,
        )
    kafka = found["kafka"]
    assert isinstance(kafka, KafkaEndpoint)
    dsn = request.postgres_dsn.get_secret_value() if request.postgres_dsn else None
    return ExternalStack(kafka, cj_url, content_url, dsn)
