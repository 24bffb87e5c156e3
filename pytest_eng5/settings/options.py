"""What a setting is to pytest: :class:`Option` marks a declared field as a user setting,
:class:`OptionSpec` is that setting as CLI option, ini key and env variables."""

from __future__ import annotations

import types
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, get_args, get_origin

from pydantic import SecretStr

from pytest_eng5.core.names import StackKind
from pytest_eng5.errors import ConfigurationError

OptionType = Literal["str", "int", "float", "bool", "path", "choice", "secret"]


@dataclass(frozen=True)
class Option:
    """Marks a field of ``Eng5Settings`` as a user setting (CLI option + ini key).

    ``stacks``: the stack kinds the setting applies to (None: every stack); giving it on the
    command line or in the ini file for another stack is a usage error. ``run``: the field of
    the runner's ``RunConfig`` it feeds (``"max_comparisons"``, ``"llm.model"``,
    ``"gates.min_ssr"``), None for a setting of the stack or the session. ``session``: fixed
    for the whole session although the runner reads it (the stack uses it too), so a per-run
    override (marker, hook, factory keyword, variant) cannot change it. ``env_only``: read
    from the environment only (a credential: never on a command line, in an ini file or in a
    per-run override).
    """

    help: str
    env: tuple[str, ...] = ()
    stacks: tuple[StackKind, ...] | None = None
    run: str | None = None
    session: bool = False
    env_only: bool = False


class SettingsError(ConfigurationError):
    """A setting has a bad value; the message names the setting and the valid values."""


@dataclass(frozen=True)
class OptionSpec:
    """One setting as pytest sees it, derived from its field in ``Eng5Settings``."""

    name: str
    type: OptionType
    default: Any
    help: str
    env: tuple[str, ...] = ()
    choices: tuple[str, ...] = ()
    stacks: tuple[str, ...] | None = None
    #: the ``RunConfig`` field it feeds (see :class:`Option`)
    run: str | None = None
    session: bool = False
    #: read from the environment only: no CLI option, no ini key
    env_only: bool = False

    @property
    def per_run(self) -> bool:
        """Whether one run may override it (marker, hook, factory keyword, variant); never a
        credential, which comes from the environment only."""
        return self.run is not None and not self.session and not self.env_only

    @property
    def cli_flag(self) -> str:
        return "--eng5-" + self.name.replace("_", "-")

    @property
    def ini_key(self) -> str:
        return "eng5_" + self.name

    @property
    def secret(self) -> bool:
        return self.type == "secret"

    @property
    def hides_value(self) -> bool:
        """A secret or a credential: error messages name it, never show its value."""
        return self.secret or self.env_only

    def applies_to(self, stack: str) -> bool:
        """Whether it is a setting of ``stack`` (giving it for another one is an error)."""
        return self.stacks is None or stack in self.stacks

    def where(self) -> str:
        """Its names as a label: the CLI flag, ini key and env variable (env only: the last)."""
        if self.env_only:
            return f"env {self.env[0]}"
        return f"{self.cli_flag} / ini {self.ini_key}" + (
            f" / env {self.env[0]}" if self.env else ""
        )

    def how_to_set(self) -> str:
        """Where a user gives it, for an error: ``environment only: set VAR`` for a credential."""
        return f"environment only: set {self.env[0]}" if self.env_only else self.where()

    def given(self, value: Any) -> str:
        """``name=value`` for an error message; the name alone when the value is hidden."""
        return self.name if self.hides_value else f"{self.name}={value!r}"


def option_type(annotation: Any) -> tuple[OptionType, tuple[str, ...]]:
    """The option type of a field annotation, and its choices when it is a ``Literal``."""
    if get_origin(annotation) in (typing.Union, types.UnionType):
        annotation = next(a for a in get_args(annotation) if a is not type(None))
    if get_origin(annotation) is Literal:
        return "choice", tuple(str(a) for a in get_args(annotation))
    simple: dict[Any, OptionType] = {
        bool: "bool",
        int: "int",
        float: "float",
        Path: "path",
        str: "str",
        SecretStr: "secret",
    }
    return simple[annotation], ()


def canonical_choice(choices: tuple[str, ...], value: str) -> str:
    """The choice spelled as declared (choices are case-insensitive), else ``value``."""
    lowered = value.strip().lower()
    return next((c for c in choices if c.lower() == lowered), value)
