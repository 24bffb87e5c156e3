"""The declaration: :class:`Eng5Settings`, every pytest-eng5 setting once, and the
:data:`OPTIONS` derived from it."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Annotated, Any, get_args

from pydantic import (
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

from pytest_eng5.redact import register_secret
from pytest_eng5.sample_data import SAMPLE_ASSETS
from pytest_eng5.settings.choices import (
    VARIANT_ID_PATTERN,
    BatchingMode,
    CourseCode,
    Language,
    LLMProvider,
    ReasoningEffort,
    Verbosity,
)
from pytest_eng5.settings.options import (
    Option,
    OptionSpec,
    SettingsError,
    canonical_choice,
    option_type,
)
from pytest_eng5.settings.stack_fields import StackSettings


class Eng5Settings(StackSettings):
    """The resolved settings of a pytest-eng5 session (frozen); the one declaration of them:
    the stack's (:class:`StackSettings`), then the runs'."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    # run inputs
    assets: Annotated[
        Path,
        Option(
            "ENG5 asset folder (default: the bundled sample set)", ("ENG5_ASSETS",), run="assets"
        ),
    ] = SAMPLE_ASSETS
    assignment_id: Annotated[
        str | None,
        Field(max_length=100),
        Option("CJ assignment id", ("ENG5_ASSIGNMENT_ID",), run="assignment_id"),
    ] = None
    course_id: Annotated[
        str | None, Option("course id (metadata only)", ("ENG5_COURSE_ID",), run="course_id")
    ] = None
    batch_label: Annotated[str, Option("human batch label", run="batch_label")] = (
        "eng5-np-local-batch"
    )
    batch_uuid: Annotated[
        str | None, Option("re-attach to this canonical batch uuid", run="batch_uuid")
    ] = None
    max_comparisons: Annotated[
        int | None,
        Option("comparison budget sent to CJ (>= 2; default: CJ's cap)", run="max_comparisons"),
    ] = None
    expected_grade_scale: Annotated[
        str | None,
        Option(
            "assert CJ's grade scale equals this (a known scale name)", run="expected_grade_scale"
        ),
    ] = None
    course_code: Annotated[CourseCode, Option("course code", run="course_code")] = "ENG5"
    language: Annotated[Language, Option("essay language", run="language")] = "en"
    user_id: Annotated[str, Option("user id sent to CJ", run="user_id")] = "eng5_np_research_runner"
    org_id: Annotated[str | None, Option("org id sent to CJ", run="org_id")] = None
    # LLM overrides
    llm_provider: Annotated[
        LLMProvider | None, Option("LLM provider override", run="llm.provider")
    ] = None
    llm_model: Annotated[str | None, Option("LLM model override", run="llm.model")] = None
    llm_temperature: Annotated[
        float | None,
        Field(ge=0.0, le=2.0),
        Option("LLM temperature override (0.0-2.0)", run="llm.temperature"),
    ] = None
    llm_max_tokens: Annotated[
        int | None, Field(gt=0), Option("LLM max tokens override (> 0)", run="llm.max_tokens")
    ] = None
    system_prompt_file: Annotated[
        Path | None, Option("system prompt override file", run="llm.system_prompt_file")
    ] = None
    rubric_file: Annotated[
        Path | None, Option("judge rubric override file", run="llm.rubric_file")
    ] = None
    reasoning_effort: Annotated[
        ReasoningEffort | None, Option("reasoning effort override", run="llm.reasoning_effort")
    ] = None
    output_verbosity: Annotated[
        Verbosity | None, Option("output verbosity override", run="llm.output_verbosity")
    ] = None
    llm_batching_mode: Annotated[
        BatchingMode | None,
        Option("sent as metadata.llm_batching_mode_hint", run="llm.batching_mode"),
    ] = None
    # run behaviour
    no_kafka: Annotated[
        bool, Option("upload and write the envelope, but do not publish", run="no_kafka")
    ] = False
    no_await: Annotated[bool, Option("publish without awaiting completion", run="no_await")] = False
    completion_timeout: Annotated[
        float,
        Field(gt=0, le=86_400),
        Option("seconds to await completion", run="completion_timeout"),
    ] = 120.0
    completion_grace: Annotated[
        float,
        Field(ge=0, le=600),
        Option("seconds to wait for the result after completion", run="completion_grace"),
    ] = 2.0
    force_reupload: Annotated[
        bool, Option("ignore the upload cache and re-upload", run="force_reupload")
    ] = False
    verify_uploads: Annotated[
        bool,
        Option(
            "check cached storage ids exist before reusing them (always on the embedded stack)",
            run="verify_uploads",
        ),
    ] = False
    auto_extract_db: Annotated[
        bool, Option("R5: extract the CJ database after success", run="auto_extract_db")
    ] = False
    evidence_dir: Annotated[Path, Option("evidence root folder", run="evidence_dir")] = Path(
        "eng5-evidence"
    )
    cache_file: Annotated[
        Path | None,
        Option(
            "upload cache file (default: <evidence_dir>/content_upload_cache.json)",
            run="cache_file",
        ),
    ] = None
    # gates
    min_ssr: Annotated[
        float | None,
        Field(ge=0.0, le=1.0),
        Option("fail a run whose SSR is below this", run="gates.min_ssr"),
    ] = None
    min_tau_b: Annotated[
        float | None,
        Field(ge=-1.0, le=1.0),
        Option("fail an anchor-align run whose tau-b is below this", run="gates.min_tau_b"),
    ] = None
    min_n_cr: Annotated[
        float | None,
        Field(ge=0.0),
        Option("fail a run with fewer comparisons per essay", run="gates.min_n_cr"),
    ] = None
    max_position_bias: Annotated[
        float | None,
        Field(ge=0.0, le=0.5),
        Option(
            "fail a run whose share of comparisons won by the first-presented essay is "
            "further than this from 0.5 (0.1: outside 0.4-0.6)",
            run="gates.max_position_bias",
        ),
    ] = None
    # experiments (eng5_variants and the comparison report)
    repeat: Annotated[
        int,
        Field(ge=1, le=100),
        Option("run each eng5_variants variant N times (run-to-run spread)"),
    ] = 1
    experiment: Annotated[
        str | None,
        Field(pattern=VARIANT_ID_PATTERN),
        Option("experiment name recorded with a variant run", run="experiment"),
    ] = None
    variant: Annotated[
        str | None,
        Field(pattern=VARIANT_ID_PATTERN),
        Option("variant id recorded in the artefact (eng5_variants sets it)", run="variant"),
    ] = None
    variant_repeat: Annotated[
        int | None,
        Field(ge=1),
        Option("repeat index recorded with a variant run", run="variant_repeat"),
    ] = None
    baseline: Annotated[
        str | None,
        Field(pattern=VARIANT_ID_PATTERN),
        Option("variant the comparison report measures the others against", run="baseline"),
    ] = None
    fail_on_worse: Annotated[
        bool, Option("fail the session when a variant is worse than its baseline")
    ] = False
    bootstrap_resamples: Annotated[
        int, Field(ge=100, le=100_000), Option("bootstrap resamples of the comparison report")
    ] = 1000

    @field_validator("*", mode="before")
    @classmethod
    def _choices_ignore_case(cls, value: Any, info: Any) -> Any:
        spec = OPTIONS_BY_NAME.get(info.field_name)
        if spec is not None and spec.choices and isinstance(value, str):
            canonical = canonical_choice(spec.choices, value)
            # a choice given as text is the declared value: "3" is kafka_brokers' 3
            declared = get_args(cls.model_fields[info.field_name].annotation)
            return next((d for d in declared if str(d) == canonical), canonical)
        return value

    @field_validator("max_comparisons")
    @classmethod
    def _budget_at_least_two(cls, value: int | None) -> int | None:
        if value is not None and value < 2:
            raise ValueError(
                f"{value} is below 2: CJ cannot pair essays with fewer than 2 comparisons; "
                "set it to at least 2 or leave it unset"
            )
        return value

    @field_validator("batch_uuid")
    @classmethod
    def _batch_uuid_is_a_uuid(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            return str(uuid.UUID(value.strip()))
        except ValueError:
            raise ValueError(
                f"{value!r} is not a UUID; give the batch uuid an earlier run printed "
                "(8-4-4-4-12 hex digits), or drop the option to start a new batch"
            ) from None

    @field_validator("expected_grade_scale")
    @classmethod
    def _known_grade_scale(cls, value: str | None) -> str | None:
        if value is None:
            return None
        from pytest_eng5.contracts.grade_scales import list_available_scales

        known = list_available_scales()
        if value.strip() not in known:
            raise ValueError(f"unknown grade scale {value!r}; valid names: {', '.join(known)}")
        return value.strip()

    @model_validator(mode="after")
    def _check_combinations(self) -> Eng5Settings:
        if not self.batch_label.strip():
            raise ValueError("batch_label must not be blank")
        if self.auto_extract_db and self.no_await:
            raise ValueError("auto_extract_db requires awaiting completion (drop no_await)")
        if self.auto_extract_db and self.no_kafka:
            raise ValueError("auto_extract_db is not allowed with no_kafka (nothing completes)")
        for name in type(self).model_fields:
            value = getattr(self, name)
            if isinstance(value, SecretStr):
                register_secret(value)  # secrets are redacted by their type
        return self

    @property
    def comparison_budget(self) -> int:
        """What CJ will use: the requested budget, capped by CJ's own cap."""
        if self.max_comparisons is None:
            return self.cj_max_comparisons
        return min(self.max_comparisons, self.cj_max_comparisons)

    def dsn(self) -> str | None:
        """The PostgreSQL DSN in clear text (only for a database connection)."""
        return self.postgres_dsn.get_secret_value() if self.postgres_dsn else None

    def run_values(self) -> dict[str, Any]:
        """What the runner's ``RunConfig.from_values`` takes: every setting that feeds the
        runner, under the ``RunConfig`` field it names (``llm.model``, ``gates.min_ssr``)."""
        return {spec.run: getattr(self, spec.name) for spec in OPTIONS if spec.run is not None}

    def merged(self, **overrides: Any) -> Eng5Settings:
        """A copy with ``overrides`` applied and validated again."""
        try:
            return Eng5Settings.model_validate({**self.model_dump(), **overrides})
        except ValidationError as exc:
            raise SettingsError(_describe_validation_error(exc)) from exc


def _options() -> tuple[OptionSpec, ...]:
    specs = []
    for name, field in Eng5Settings.model_fields.items():
        option = next((m for m in field.metadata if isinstance(m, Option)), None)
        if option is None:
            continue
        kind, choices = option_type(field.annotation)
        default = None if name == "assets" else field.default
        specs.append(
            OptionSpec(
                name,
                kind,
                default,
                option.help,
                option.env,
                choices,
                option.stacks,
                option.run,
                option.session,
                option.env_only,
            )
        )
    return tuple(specs)


OPTIONS: tuple[OptionSpec, ...] = _options()
OPTIONS_BY_NAME = {spec.name: spec for spec in OPTIONS}


def validation_problems(exc: ValidationError) -> list[str]:
    parts = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"])
        where = OPTIONS_BY_NAME[loc].where() if loc in OPTIONS_BY_NAME else loc or "settings"
        message = str(err["msg"]).removeprefix("Value error, ")
        parts.append(f"{where}: {message}")
    return parts


def _describe_validation_error(exc: ValidationError) -> str:
    return "invalid eng5 settings: " + "; ".join(validation_problems(exc))
