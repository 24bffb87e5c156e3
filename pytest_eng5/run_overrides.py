"""The settings of one run, each layer validated as soon as it is given.

A run starts from the session's settings, then applies the ``eng5_run`` markers (the closest
wins), the ``eng5_variants`` variant, what ``pytest_eng5_adjust_settings`` hooks return and the
factory's keyword arguments. Markers, variants and hooks are applied at collection, so a bad
override is a usage error before any stack starts; the factory's keywords when it is called.
Only settings that feed one run may be overridden: those of the whole session (the stack, its
judge, the comparison report) and the credentials (environment only) are an error naming them;
no error shows the value of a secret or a credential.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest
from pydantic import ValidationError

from pytest_eng5.settings import (
    OPTIONS,
    OPTIONS_BY_NAME,
    Eng5Settings,
    OptionSpec,
    SettingsError,
)

#: the settings one run may override (every other one belongs to the whole session)
PER_RUN_SETTINGS: tuple[str, ...] = tuple(spec.name for spec in OPTIONS if spec.per_run)
#: the overrides of one test (markers, variant, hooks), validated at collection; they are applied
#: to the session settings when its runner is made, as session fixtures may still change those
#: (so nothing derived from the session settings, such as a variant's evidence folder, is kept)
RUN_OVERRIDES_KEY = pytest.StashKey[dict[str, Any]]()
_NEXT_STEP = (
    "fix the override named above; a setting of the whole session is set on the command "
    "line, in the ini file or the environment (pytest --help lists them under 'eng5')"
)


def apply_overrides(settings: Eng5Settings, overrides: Any, source: str) -> Eng5Settings:
    """``settings`` with ``overrides`` applied; a :class:`SettingsError` naming ``source``,
    each bad key and value and the valid choices otherwise."""
    if not isinstance(overrides, Mapping):
        raise SettingsError(
            f"{source}: gave a {type(overrides).__name__}, not a mapping of eng5 "
            "setting names to values",
            next_step="return a dict such as {'max_comparisons': 40}, or None for no change",
        )
    unknown = sorted(str(name) for name in overrides if name not in OPTIONS_BY_NAME)
    if unknown:
        raise SettingsError(
            f"{source}: unknown setting(s) {', '.join(map(repr, unknown))}; the settings of a "
            f"run are: {', '.join(PER_RUN_SETTINGS)}",
            next_step=_NEXT_STEP,
        )
    fixed = [OPTIONS_BY_NAME[name] for name in overrides if not OPTIONS_BY_NAME[name].per_run]
    if fixed:
        raise SettingsError(
            f"{source}: " + "; ".join(_not_per_run(spec, overrides[spec.name]) for spec in fixed),
            next_step=_NEXT_STEP,
        )
    try:
        return Eng5Settings.model_validate({**settings.model_dump(), **overrides})
    except ValidationError as exc:
        raise SettingsError(
            f"{source}: " + "; ".join(_problems(exc, overrides)), next_step=_NEXT_STEP
        ) from None


def _not_per_run(spec: OptionSpec, value: Any) -> str:
    if spec.env_only:
        return f"{spec.name} ({spec.how_to_set()}): a credential, which one run cannot change"
    return (
        f"{spec.given(value)} ({spec.how_to_set()}): a setting of the whole session (the "
        "stack, its judge, the comparison report), which one run cannot change"
    )


def _problems(exc: ValidationError, overrides: Mapping[str, Any]) -> list[str]:
    problems = []
    for err in exc.errors():
        name = ".".join(str(p) for p in err["loc"])
        message = str(err["msg"]).removeprefix("Value error, ")
        if name in overrides:
            problems.append(f"{OPTIONS_BY_NAME[name].given(overrides[name])}: {message}")
        else:
            problems.append(f"{name}: {message}" if name else message)
    return problems


def marker_overrides(node: pytest.Item) -> dict[str, Any]:
    """``eng5_run(**settings)`` markers merged, the closest marker winning."""
    overrides: dict[str, Any] = {}
    for marker in reversed(list(node.iter_markers("eng5_run"))):
        if marker.args:
            raise SettingsError(
                "eng5_run marker: takes keyword arguments only (setting=value), got "
                f"{len(marker.args)} positional argument(s)",
                next_step="write eng5_run(max_comparisons=40, ...)",
            )
        overrides.update(marker.kwargs)
    return overrides


def run_overrides(item: pytest.Item, session: Eng5Settings) -> dict[str, Any]:
    """The overrides of ``item``'s runs before the factory's keywords: markers, variant, hooks,
    each layer validated on top of the ones before it."""
    merged = marker_overrides(item)
    settings = apply_overrides(session, merged, "eng5_run marker")
    callspec = getattr(item, "callspec", None)
    variant = callspec.params.get("eng5_variant") if callspec is not None else None
    if variant is not None:
        extra = variant.settings_overrides()
        settings = apply_overrides(settings, extra, f"eng5_variants variant {variant.variant!r}")
        merged.update(extra)
    hook = item.config.hook.pytest_eng5_adjust_settings
    for extra in hook(settings=settings, node=item):
        if extra is not None:
            source = "a pytest_eng5_adjust_settings hook"  # its values may be secret
            settings = apply_overrides(settings, extra, source)
            merged.update(extra)
    return merged


def check_run_settings(config: pytest.Config, session: Eng5Settings, items: list[Any]) -> None:
    """Resolve the run settings of every test that runs the runner, at collection; every bad
    override of every test is named in one :class:`pytest.UsageError`."""
    problems = []
    for item in items:
        fixtures = getattr(item, "fixturenames", ())
        factories = {"eng5_runner_factory", "eng5_stack_runner_factory"}
        if not factories & set(fixtures) and item.get_closest_marker("eng5_run") is None:
            continue
        try:
            item.stash[RUN_OVERRIDES_KEY] = run_overrides(item, session)
        except SettingsError as exc:
            problems.append(f"{item.nodeid}: {exc.message}")
    if problems:
        raise pytest.UsageError(
            "invalid eng5 run settings:\n  - " + "\n  - ".join(problems) + f"\n  next step: "
            f"{_NEXT_STEP}"
        )
