"""Variants as parametrized tests (``eng5_variants``), ``--eng5-repeat``, and the comparison
report the controlling process writes at session end (also under xdist).

A scenario module marks a test with ``eng5_variants({"baseline": {...}, "lower-temp": {...}})``;
each variant (times ``--eng5-repeat``) becomes one parametrized test whose ``eng5_runner`` runs
with the variant's settings, recording experiment, variant id and repeat index in the artefact
and writing its evidence under ``<evidence_dir>/experiments/<experiment>/<variant>/r<k>/``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from pytest_eng5.settings import OPTIONS, OPTIONS_BY_NAME, VARIANT_ID_PATTERN, Eng5Settings

MARKER = (
    "eng5_variants(variants, *, baseline=None, experiment=None): run the test once per variant "
    "(a mapping of readable variant id -> eng5 run settings) and --eng5-repeat times each; the "
    "session's comparison report measures every variant against the baseline (default: the "
    "first)"
)
EXPERIMENTS_FOLDER = "experiments"
#: What a variant cannot set, from the declaration: the settings of the whole session (the
#: stack, its judge, the report) and the credentials (environment only).
SESSION_SETTINGS = frozenset(spec.name for spec in OPTIONS if not spec.per_run)
#: What the variant machinery sets itself, to record the variant and keep its evidence apart.
VARIANT_SETTINGS = frozenset(
    {"evidence_dir", "cache_file", "experiment", "variant", "variant_repeat", "baseline"}
)


@dataclass(frozen=True)
class VariantParam:
    """One parametrized run: a variant of an experiment, repeat ``repeat``."""

    experiment: str
    variant: str
    repeat: int
    baseline: str
    overrides: Mapping[str, Any] = field(default_factory=dict)

    def settings_overrides(self) -> dict[str, Any]:
        """The variant's settings plus what records it. Its evidence folder is not among them:
        it is under the session's evidence root when the run starts (:meth:`evidence_folder`),
        which session fixtures may move after collection."""
        return {
            **self.overrides,
            "experiment": self.experiment,
            "variant": self.variant,
            "variant_repeat": self.repeat,
            "baseline": self.baseline,
        }

    def evidence_folder(self, session: Eng5Settings) -> Path:
        """This run's evidence folder under the session's experiments root."""
        return experiments_root(session) / self.experiment / self.variant / f"r{self.repeat}"


def experiments_root(settings: Eng5Settings) -> Path:
    """Where variant runs keep their evidence and the session writes its comparison report."""
    return settings.evidence_dir / EXPERIMENTS_FOLDER


def _experiment_name(definition: Any) -> str:
    module = Path(str(definition.fspath)).stem.removeprefix("test_")
    function = definition.originalname.removeprefix("test_")
    return re.sub(r"[^A-Za-z0-9._-]", "-", f"{module}.{function}")[:64]


def _check_id(kind: str, value: Any) -> str:
    if not isinstance(value, str) or re.fullmatch(VARIANT_ID_PATTERN, value) is None:
        raise pytest.UsageError(
            f"eng5_variants: {kind} {value!r} is not a readable id; use letters, digits and "
            "'._-' (it names the evidence folder), e.g. 'baseline' or 'language-control'"
        )
    return value


def _check_settings(variant: str, settings: Any) -> dict[str, Any]:
    if not isinstance(settings, Mapping):
        raise pytest.UsageError(
            f"eng5_variants: variant {variant!r} needs a mapping of eng5 settings, got "
            f"{type(settings).__name__}"
        )
    unknown = sorted(set(settings) - set(OPTIONS_BY_NAME))
    if unknown:
        valid = sorted(set(OPTIONS_BY_NAME) - SESSION_SETTINGS - VARIANT_SETTINGS)
        raise pytest.UsageError(
            f"eng5_variants: variant {variant!r} has unknown setting(s) {', '.join(unknown)}; "
            f"valid: {', '.join(valid)}"
        )
    fixed = [OPTIONS_BY_NAME[name] for name in sorted(set(settings) & SESSION_SETTINGS)]
    if fixed:
        named = ", ".join(f"{spec.name} ({spec.how_to_set()})" for spec in fixed)
        raise pytest.UsageError(
            f"eng5_variants: variant {variant!r} sets {named}, which belong to the whole session "
            "(the stack, its judge and the credentials are shared by the variants); drop them "
            "from the variant and set them for the session where named"
        )
    recorded = sorted(set(settings) & VARIANT_SETTINGS)
    if recorded:
        raise pytest.UsageError(
            f"eng5_variants: variant {variant!r} sets {', '.join(recorded)}, which eng5_variants "
            "sets itself (each variant records its ids and keeps its evidence under "
            f"<evidence_dir>/{EXPERIMENTS_FOLDER}); drop them from the variant"
        )
    return dict(settings)


def variant_params(marker: pytest.Mark, definition: Any, repeat: int) -> list[VariantParam]:
    """The parametrized runs an ``eng5_variants`` marker asks for, validated."""
    unknown = set(marker.kwargs) - {"baseline", "experiment"}
    if len(marker.args) != 1 or unknown or not isinstance(marker.args[0], Mapping):
        raise pytest.UsageError(
            "eng5_variants takes one mapping of variant id -> settings, plus optional "
            "baseline= and experiment=, e.g. eng5_variants({'baseline': {}, "
            "'warm': {'llm_temperature': 1.0}}, baseline='baseline')"
        )
    variants = {
        _check_id("variant id", k): _check_settings(k, v) for k, v in marker.args[0].items()
    }
    if len(variants) < 2:
        raise pytest.UsageError("eng5_variants needs at least two variants to compare")
    baseline = marker.kwargs.get("baseline") or next(iter(variants))
    if baseline not in variants:
        raise pytest.UsageError(
            f"eng5_variants: baseline {baseline!r} is not one of the variants "
            f"({', '.join(variants)})"
        )
    experiment = _check_id(
        "experiment", marker.kwargs.get("experiment") or _experiment_name(definition)
    )
    return [
        VariantParam(experiment, name, k, baseline, settings)
        for name, settings in variants.items()
        for k in range(1, repeat + 1)
    ]


def parametrize(metafunc: pytest.Metafunc, settings: Eng5Settings) -> None:
    """Parametrize ``eng5_variant`` for a test marked ``eng5_variants``."""
    marker = metafunc.definition.get_closest_marker("eng5_variants")
    if marker is None:
        return
    if "eng5_variant" not in metafunc.fixturenames:
        raise pytest.UsageError(
            f"{metafunc.definition.nodeid}: eng5_variants needs the eng5_runner or "
            "eng5_runner_factory fixture (the variant's settings reach the runs through it)"
        )
    params = variant_params(marker, metafunc.definition, settings.repeat)
    ids = [p.variant if settings.repeat == 1 else f"{p.variant}-r{p.repeat}" for p in params]
    metafunc.parametrize("eng5_variant", params, ids=ids, indirect=True)


@pytest.fixture
def eng5_variant(request: pytest.FixtureRequest) -> VariantParam | None:
    """The variant this test runs (``eng5_variants``), or None for an ordinary test."""
    param: VariantParam | None = getattr(request, "param", None)
    return param
