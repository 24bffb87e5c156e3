"""Where settings come from: CLI options, ini keys and environment variables.

:func:`resolve_settings` turns raw values into a validated :class:`Eng5Settings`, reporting
every problem at once; :func:`options_markdown_table` is the README's options table. Both
follow the declaration in :mod:`pytest_eng5.settings`.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from pytest_eng5.settings import (
    OPTIONS,
    OPTIONS_BY_NAME,
    OWN_ENV_PREFIX,
    Eng5Settings,
    OptionSpec,
    SettingsError,
    canonical_choice,
    validation_problems,
)


def _convert(spec: OptionSpec, raw: Any, source: str) -> Any:
    """A raw CLI/ini/env value in the option's type (None/blank: not given)."""
    if raw is None:
        return None
    if isinstance(raw, str):
        raw = raw.strip()
        if raw == "":
            return None
    try:
        if spec.type == "bool":
            if isinstance(raw, bool):
                return raw
            lowered = str(raw).lower()
            if lowered in ("1", "true", "yes", "on"):
                return True
            if lowered in ("0", "false", "no", "off"):
                return False
            raise ValueError(raw)
        if spec.type == "int":
            return int(raw)
        if spec.type == "float":
            return float(raw)
        if spec.type == "path":
            return Path(str(raw)).expanduser()
    except ValueError:
        raise SettingsError(
            f"{spec.where()}: {_shown(spec, raw)} (from {source}) is not a valid {spec.type}",
            next_step=f"give {_source_name(spec, source)} a {spec.type} value",
        ) from None
    value = str(raw)
    if spec.type == "choice":
        canonical = canonical_choice(spec.choices, value)
        if canonical not in spec.choices:
            raise SettingsError(
                f"{spec.where()}: {_shown(spec, value)} (from {source}) is not one of: "
                f"{', '.join(spec.choices)}",
                next_step=f"choose one of {', '.join(spec.choices)}",
            )
        return canonical
    return value


def _shown(spec: OptionSpec, raw: Any) -> str:
    return "the value" if spec.hides_value else repr(raw)


def _source_name(spec: OptionSpec, source: str) -> str:
    """The flag, ini key or env variable a bad value came from (the one to fix)."""
    named = {"the command line": spec.cli_flag, "the ini file": f"ini {spec.ini_key}"}
    return named.get(source, source.removeprefix("env "))


def reads_env(name: str, stack: str) -> bool:
    """Whether env variable ``name`` is read: ours always, HuleEdu's only for external."""
    return name.startswith(OWN_ENV_PREFIX) or stack == "external"


def credentials_env(env: Mapping[str, str]) -> dict[str, str]:
    """The variables of ``env`` that env-only settings (the credentials) read, for a caller that
    takes its other settings from its own arguments (the stack CLI)."""
    names = {name for spec in OPTIONS if spec.env_only for name in spec.env}
    return {name: value for name, value in env.items() if name in names}


def resolve_settings(
    cli: Mapping[str, Any], ini: Mapping[str, Any], env: Mapping[str, str]
) -> Eng5Settings:
    """Resolve every option with precedence CLI > env > ini > default.

    ``cli`` and ``ini`` map option names to raw values (None or "" = not given). Every
    problem is collected and reported in one :class:`SettingsError`.
    """
    problems: list[str] = []
    values: dict[str, Any] = {}
    explicit: dict[str, str] = {}  # name -> where a user gave it (CLI or ini)

    def resolve(spec: OptionSpec, stack: str) -> None:
        given = None if spec.env_only else cli.get(spec.name)
        in_ini = None if spec.env_only else ini.get(spec.name)
        for source, raw in (
            ("the command line", given),
            *((f"env {name}", env.get(name)) for name in spec.env if reads_env(name, stack)),
            ("the ini file", in_ini),
        ):
            try:
                value = _convert(spec, raw, source)
            except SettingsError as exc:
                problems.append(exc.message)
                return
            if value is not None:
                values[spec.name] = value
                if source == "the command line":
                    explicit[spec.name] = spec.cli_flag
                elif source == "the ini file":
                    explicit[spec.name] = f"ini {spec.ini_key}"
                return

    resolve(OPTIONS_BY_NAME["stack"], "")
    stack = str(values.get("stack", "embedded"))
    for spec in OPTIONS:
        if spec.name != "stack":
            resolve(spec, stack)
    for name, where in explicit.items():
        stacks = OPTIONS_BY_NAME[name].stacks
        if stacks is not None and not OPTIONS_BY_NAME[name].applies_to(stack):
            problems.append(
                f"{where} applies to --eng5-stack={' or '.join(stacks)} only, not to "
                f"the {stack} stack; drop it, or select --eng5-stack={stacks[0]}"
            )
    try:
        settings = Eng5Settings.model_validate(values)
    except ValidationError as exc:
        problems.extend(validation_problems(exc))
        settings = None
    if problems or settings is None:
        raise SettingsError(
            "invalid eng5 settings:\n  - " + "\n  - ".join(problems),
            next_step="fix the settings named above (pytest --help lists them under 'eng5')",
        )
    return settings


def options_markdown_table() -> str:
    """The options table of the README (a test keeps the README in step with this)."""
    rows = ["| CLI | ini | env | default | meaning |", "|---|---|---|---|---|"]
    for spec in OPTIONS:
        default = "" if spec.default is None else f"`{spec.default}`"
        if spec.name == "assets":
            default = "bundled sample set"
        choices = " (" + " \\| ".join(spec.choices) + ")" if spec.choices else ""
        env = ", ".join(f"`{name}`" for name in spec.env)
        notes = ""
        if spec.stacks is not None:
            notes += f"; {' / '.join(spec.stacks)} stack only"
        if spec.secret:
            notes += "; secret, never shown"
        cli_cell, ini_cell = (
            ("(env only)", "") if spec.env_only else (f"`{spec.cli_flag}`", f"`{spec.ini_key}`")
        )
        rows.append(
            f"| {cli_cell} | {ini_cell} | {env} | {default} | {spec.help}{choices}{notes} |"
        )
    return "\n".join(rows) + "\n"
