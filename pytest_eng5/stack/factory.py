"""Extra stacks for one test session, in the pytest-postgresql factory style.

:class:`StackFactory` starts a stack with some settings of its own (partitions, judge, fault
knobs, broker, ...), validated like every other way of giving a setting. An identical request
gets the running stack back (its fault knobs reset to what it was asked with), unless one of its
processes has died, which starts a fresh one. :meth:`StackFactory.close` stops them all.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

from pydantic import SecretStr

from pytest_eng5.core.names import FAULT_SERVICES
from pytest_eng5.errors import ConfigurationError
from pytest_eng5.settings import OPTIONS_BY_NAME, Eng5Settings, OptionSpec, SettingsError
from pytest_eng5.stack.config import DEFAULT_TOPIC_PARTITIONS
from pytest_eng5.stack.session import StackContext, running_stack

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
#: keyword names of :meth:`StackFactory.__call__` and the setting each one sets
_NAMED = {"judge": "judge", "kafka": "kafka", "brokers": "kafka_brokers"}


@dataclass(frozen=True)
class StackRequest:
    """One validated request for a stack: what it runs, and what it starts with."""

    settings: Eng5Settings
    partitions: int = DEFAULT_TOPIC_PARTITIONS
    services: bool = True
    faults: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    def key(self) -> str:
        """Equal for requests that may share one stack (a digest: no secret is kept in it)."""
        values = {name: _plain(getattr(self.settings, name)) for name in STACK_SETTINGS}
        text = json.dumps(
            [values, self.partitions, self.services, self.faults], sort_keys=True, default=str
        )
        return hashlib.sha256(text.encode()).hexdigest()

    def label(self) -> str:
        """A short readable name for the stack's folders."""
        parts: list[str] = [
            self.settings.kafka if self.settings.stack == "embedded" else self.settings.stack
        ]
        if self.settings.kafka == "apache" and self.settings.stack == "embedded":
            parts.append(f"{self.settings.kafka_brokers}n")
        if self.partitions != DEFAULT_TOPIC_PARTITIONS:
            parts.append(f"{self.partitions}p")
        if self.services:
            parts.append(self.settings.judge)
        return "-".join(parts)


def _plain(value: Any) -> Any:
    return value.get_secret_value() if isinstance(value, SecretStr) else value


def stack_request(
    base: Eng5Settings,
    *,
    partitions: int | None = None,
    judge: str | None = None,
    faults: Mapping[str, Mapping[str, Any]] | None = None,
    kafka: str | None = None,
    brokers: int | None = None,
    services: bool = True,
    **overrides: Any,
) -> StackRequest:
    """Validate a factory call against the settings declaration; errors name the argument."""
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
    return StackRequest(
        settings,
        partitions or DEFAULT_TOPIC_PARTITIONS,
        services,
        _checked_faults(call, faults or {}, services and settings.stack != "external"),
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


@dataclass
class _Running:
    request: StackRequest
    context: StackContext
    exit_stack: ExitStack

    def alive(self) -> bool:
        infra = self.context.infrastructure
        handles = [*(infra.processes if infra is not None else ())]
        if self.context.services is not None:
            handles.extend(self.context.services.processes)
        return all(handle.is_running() for handle in handles)


class StackFactory:
    """``factory(partitions=..., judge=..., faults=..., kafka=..., brokers=..., **settings)``.

    ``root`` holds one folder per started stack (its work directory and its logs).
    """

    def __init__(self, base: Eng5Settings, root: Path) -> None:
        self.base = base
        self.root = root
        self._running: dict[str, _Running] = {}
        self._started = 0

    def __call__(self, **arguments: Any) -> StackContext:
        """A running stack for these arguments (see :func:`stack_request`); the same one for
        the same arguments."""
        request = stack_request(self.base, **arguments)
        key = request.key()
        running = self._running.get(key)
        if running is not None and not running.alive():
            self._stop(self._running.pop(key))
            running = None
        if running is None:
            running = self._start(request)
            self._running[key] = running
        if running.context.services is not None:
            running.context.clear_faults()
            for service, knobs in request.faults.items():
                running.context.set_faults(service, **knobs)
        return running.context

    def _start(self, request: StackRequest) -> _Running:
        self._started += 1
        folder = self.root / f"{self._started:02d}-{request.label()}"
        exit_stack = ExitStack()
        try:
            context = exit_stack.enter_context(
                running_stack(
                    request.settings,
                    folder / "work",
                    log_dir=folder / "logs",
                    topic_partitions=request.partitions,
                    reference_services=request.services,
                )
            )
        except BaseException:
            exit_stack.close()
            raise
        return _Running(request, context, exit_stack)

    def stop(self, stack: StackContext) -> None:
        """Stop one stack now (e.g. at the end of the module that needed it)."""
        for key, running in list(self._running.items()):
            if running.context is stack:
                self._stop(self._running.pop(key))
                return

    def _stop(self, running: _Running) -> None:
        running.exit_stack.close()

    def close(self) -> None:
        """Stop every stack still running, newest first; each stop is bounded by the stack."""
        errors: list[BaseException] = []
        while self._running:
            _, running = self._running.popitem()
            try:
                self._stop(running)
            except Exception as exc:
                errors.append(exc)
        if errors:
            raise errors[0]
