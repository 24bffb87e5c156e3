"""The session settings as the stack's typed requests: the session's stack (an external one
with the names its check reports) and the extra stacks of ``eng5_stack_factory`` (its arguments
validated like every setting). The stack package never reads the settings; messages here name
them as users set them.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NoReturn

from pydantic import SecretStr

from pytest_eng5.core import dsn_from_env
from pytest_eng5.core.names import FAULT_SERVICES
from pytest_eng5.errors import ConfigurationError
from pytest_eng5.settings import OPTIONS_BY_NAME, Eng5Settings, OptionSpec, SettingsError
from pytest_eng5.stack.config import (
    DEFAULT_TOPIC_PARTITIONS,
    KafkaSecurity,
    ServicesConfig,
    StackConfig,
    security_problems,
)
from pytest_eng5.stack.external import ExternalNames, ExternalRequest
from pytest_eng5.stack.factory import StackFactory
from pytest_eng5.stack.request import StackRequest
from pytest_eng5.stack.session import StackContext, running_stack

NO_DATABASE = (
    "no CJ database configured: DB-backed steps (R5 extraction) are off; set "
    "--eng5-postgres-dsn or HULEEDU_DB_HOST/PORT/USER/PASSWORD (database name: "
    "CJ_ASSESSMENT_SERVICE_DB_NAME, default huleedu_cj_assessment) to turn them on"
)
EXTERNAL_NAMES = ExternalNames(
    kafka="--eng5-kafka-bootstrap / KAFKA_BOOTSTRAP_SERVERS",
    cj="--eng5-cj-url / CJ_SERVICE_URL",
    content="--eng5-content-url / CONTENT_SERVICE_URL",
    database="the CJ database (--eng5-postgres-dsn / HULEEDU_DB_*)",
    next_step="point these settings at your HuleEdu dev stack (README: 'Run against a HuleEdu "
    "dev stack'), or drop --eng5-stack=external to use the embedded stack",
)
_SECURITY = "Kafka security (KAFKA_SECURITY_PROTOCOL, KAFKA_SASL_*, KAFKA_SSL_CAFILE)"

#: the settings that change what a stack is; the others belong to the runs (give them to the
#: runner), to the whole session or to the environment (the credentials)
STACK_SETTINGS: tuple[str, ...] = (
    "stack",
    "start_timeout",
    "kafka",
    "kafka_brokers",
    "kafka_version",
    "kafka_bootstrap",
    "kafka_security_protocol",
    "kafka_sasl_mechanism",
    "kafka_ssl_cafile",
    "kafka_idempotence",
    "kafka_image",
    "postgres_image",
    "postgres_dsn",
    "cj_url",
    "content_url",
    "cj_max_comparisons",
    "judge",
    "judge_seed",
)
#: keyword names of the factory call and the setting each one sets
_NAMED = {"judge": "judge", "kafka": "kafka", "brokers": "kafka_brokers"}


def security_settings(
    settings: Eng5Settings,
) -> tuple[str, str | None, str | None, SecretStr | None, str | None]:
    """The Kafka security settings in :class:`KafkaSecurity`'s order."""
    cafile = settings.kafka_ssl_cafile
    return (
        settings.kafka_security_protocol,
        settings.kafka_sasl_mechanism,
        settings.kafka_sasl_username,
        settings.kafka_sasl_password,
        str(cafile) if cafile else None,
    )


def stack_config(
    settings: Eng5Settings,
    workdir: Path,
    log_dir: Path,
    *,
    topic_partitions: int = DEFAULT_TOPIC_PARTITIONS,
    security: KafkaSecurity | None = None,
) -> StackConfig:
    """Map the session settings onto the infrastructure configuration."""
    idempotence = {"auto": None, "on": True, "off": False}[settings.kafka_idempotence]
    return StackConfig(
        kind=settings.stack,
        workdir=workdir,
        log_dir=log_dir,
        start_timeout=settings.start_timeout,
        topic_partitions=topic_partitions,
        kafka_bootstrap=settings.kafka_bootstrap,
        kafka_security=security or KafkaSecurity(*security_settings(settings)),
        kafka_idempotence=idempotence,
        postgres_dsn=settings.postgres_dsn,
        kafka_image=settings.kafka_image,
        postgres_image=settings.postgres_image,
        kafka_provider=settings.kafka,
        kafka_brokers=settings.kafka_brokers,
        kafka_version=settings.kafka_version,
    )


def _external(
    settings: Eng5Settings, workdir: Path, log_dir: Path, environ: Mapping[str, str]
) -> tuple[StackConfig, ExternalRequest]:
    found = security_problems(*security_settings(settings))
    kafka_problems = tuple(f"{_SECURITY}: {problem} ({step})" for problem, step in found)
    # A KafkaSecurity refuses bad settings: the check reports them instead, with the rest.
    security = KafkaSecurity() if kafka_problems else None
    config = stack_config(settings, workdir, log_dir, security=security)
    dsn = settings.dsn() or dsn_from_env(environ)
    external = ExternalRequest(
        cj_url=settings.cj_url,
        content_url=settings.content_url,
        postgres_dsn=SecretStr(dsn) if dsn else None,
        kafka_problems=kafka_problems,
        names=EXTERNAL_NAMES,
    )
    return config, external


def session_request(
    settings: Eng5Settings,
    workdir: Path,
    log_dir: Path | None = None,
    *,
    topic_partitions: int = DEFAULT_TOPIC_PARTITIONS,
    services: bool = True,
    faults: Mapping[str, Mapping[str, Any]] | None = None,
    environ: Mapping[str, str] | None = None,
) -> StackRequest:
    """The stack these settings ask for (``services=False``: Kafka and PostgreSQL only).

    ``log_dir`` defaults to ``<evidence_dir>/stack-logs/<worker>``.
    """
    log_dir = log_dir or settings.evidence_dir / "stack-logs" / worker_name()
    if settings.stack == "external":
        environ = os.environ if environ is None else environ
        config, external = _external(settings, workdir, log_dir, environ)
        return StackRequest(config, None, external)
    config = stack_config(settings, workdir, log_dir, topic_partitions=topic_partitions)
    reference = ServicesConfig(
        settings.judge,
        settings.judge_seed,
        settings.cj_max_comparisons,
        settings.reference_jwt_secret,
    )
    return StackRequest(config, reference if services else None, None, dict(faults or {}))


def stack_request(
    base: Eng5Settings,
    root: Path,
    *,
    partitions: int | None = None,
    judge: str | None = None,
    faults: Mapping[str, Mapping[str, Any]] | None = None,
    kafka: str | None = None,
    brokers: int | None = None,
    services: bool = True,
    **overrides: Any,
) -> StackRequest:
    """Validate a factory call against the settings declaration; errors name the argument.

    ``root`` is the factory's folder (it gives each stack it starts a folder of its own).
    """
    call = "eng5_stack_factory"
    unknown = sorted(set(overrides) - set(Eng5Settings.model_fields))
    if unknown:
        raise SettingsError(
            f"{call}: unknown setting(s) {', '.join(unknown)}",
            next_step="use the keyword arguments partitions, judge, faults, kafka, brokers, "
            f"services, or one of the stack settings {', '.join(STACK_SETTINGS)}",
        )
    misplaced = [OPTIONS_BY_NAME[name] for name in sorted(set(overrides) - set(STACK_SETTINGS))]
    if misplaced:
        _not_stack_settings(call, misplaced)
    changes = dict(overrides)
    for keyword, value in (("judge", judge), ("kafka", kafka), ("brokers", brokers)):
        if value is None:
            continue
        name = _NAMED[keyword]
        if name in changes and keyword != name:
            raise SettingsError(
                f"{call}: {keyword}= and {name}= set the same setting",
                next_step=f"give only {keyword}=",
            )
        changes[name] = value
    try:
        settings = base.merged(**changes)
    except SettingsError as exc:
        given = ", ".join(f"{name}=..." for name in changes)  # names only: values may be secret
        raise SettingsError(
            f"{call}({given}): {exc.message}",
            next_step="fix the argument named above (the valid values are listed)",
        ) from None
    given_as = {name: name for name in overrides} | {
        _NAMED[keyword]: keyword
        for keyword, value in (("judge", judge), ("kafka", kafka), ("brokers", brokers))
        if value is not None
    }
    _check_stack_scope(call, settings.stack, given_as)
    embedded = settings.stack == "embedded"
    if brokers is not None and not (embedded and settings.kafka == "apache"):
        raise ConfigurationError(
            f"{call}: brokers={brokers} needs the Apache Kafka cluster of the embedded stack",
            next_step="add kafka='apache' (Tansu is always one node), or drop brokers",
        )
    if partitions is not None:
        if isinstance(partitions, bool) or not isinstance(partitions, int) or partitions < 1:
            raise ConfigurationError(
                f"{call}: partitions={partitions!r} is not a number of partitions",
                next_step="give a whole number of at least 1",
            )
        if settings.stack == "external" or settings.kafka == "apache":
            raise ConfigurationError(
                f"{call}: partitions={partitions} applies only to a stack whose topics this "
                "project creates on Tansu or a container broker",
                next_step="drop partitions (the Apache cluster creates three per topic; an "
                "external stack has its own)",
            )
    checked = _checked_faults(call, faults or {}, services and settings.stack != "external")
    return session_request(
        settings,
        root,
        root,
        topic_partitions=partitions or DEFAULT_TOPIC_PARTITIONS,
        services=services,
        faults=checked,
    )


def _check_stack_scope(call: str, stack: str, given_as: Mapping[str, str]) -> None:
    """A setting of another stack is an error, as on the command line (names only)."""
    wrong = []
    for name, argument in given_as.items():
        spec = OPTIONS_BY_NAME.get(name)
        if spec is not None and spec.stacks is not None and not spec.applies_to(stack):
            kinds = " or ".join(repr(kind) for kind in spec.stacks)
            wrong.append(f"{argument}= applies to stack={kinds} only, not to the {stack} stack")
    if wrong:
        raise SettingsError(
            f"{call}: " + "; ".join(wrong),
            next_step="drop the arguments named above, or ask for the stack they apply to",
        )


def _not_stack_settings(call: str, specs: list[OptionSpec]) -> NoReturn:
    """Raise for settings that a stack does not take; values are never shown."""
    run = [spec.name for spec in specs if spec.per_run]
    if run:
        raise SettingsError(
            f"{call}: {', '.join(run)} is a run setting, not a stack setting",
            next_step="give it to the runner (eng5_runner_factory, eng5_stack_runner_factory "
            "or an eng5_run marker)",
        )
    credentials = [f"{spec.name} ({spec.how_to_set()})" for spec in specs if spec.env_only]
    if credentials:
        raise SettingsError(
            f"{call}: {', '.join(credentials)} is a credential, which every stack takes from "
            "the environment",
            next_step="drop it from the call and set the variable named above",
        )
    named = ", ".join(f"{spec.name} ({spec.how_to_set()})" for spec in specs)
    raise SettingsError(
        f"{call}: {named} is a setting of the whole session, not of one stack",
        next_step="drop it from the call and set it for the session where named",
    )


def _checked_faults(
    call: str, faults: Mapping[str, Mapping[str, Any]], reference: bool
) -> dict[str, dict[str, Any]]:
    if faults and not reference:
        raise ConfigurationError(
            f"{call}: faults need the reference services",
            next_step="drop faults, or ask for an embedded or testcontainers stack with services",
        )
    unknown = sorted(set(faults) - set(FAULT_SERVICES))
    if unknown:
        raise ConfigurationError(
            f"{call}: faults for unknown service(s) {', '.join(unknown)}",
            next_step=f"key faults by one of {', '.join(FAULT_SERVICES)}",
        )
    return {service: dict(knobs) for service, knobs in faults.items()}


class Eng5StackFactory(StackFactory):
    """``factory(partitions=..., judge=..., faults=..., kafka=..., brokers=..., **settings)``:
    a :class:`StackFactory` whose calls are validated against the session settings ``base``."""

    def __init__(self, base: Eng5Settings, root: Path) -> None:
        super().__init__(root)
        self.base = base

    def __call__(self, **arguments: Any) -> StackContext:
        """A running stack for these arguments (see :func:`stack_request`); the same one for
        the same arguments."""
        return self.get(stack_request(self.base, self.root, **arguments))


def worker_name() -> str:
    return os.environ.get("PYTEST_XDIST_WORKER", "main")


@contextmanager
def session_stack(settings: Eng5Settings, tmp_path_factory: Any) -> Iterator[StackContext]:
    """The pytest session's stack (one per xdist worker, see ``stack/infra.py``)."""
    workdir = Path(tmp_path_factory.mktemp("eng5-stack"))
    with running_stack(session_request(settings, workdir)) as context:
        yield context
