"""Every pytest-eng5 setting, and the one place where they are resolved.

Each setting is a CLI option ``--eng5-*``, an ini key ``eng5_*`` and, where HuleEdu already has
one, an environment variable. Precedence: CLI > env > ini > default. The result is a frozen
:class:`Eng5Settings`. This module does not import pytest, so the runner can use it too.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from pytest_eng5.core.names import JUDGE_NAMES, STACK_KINDS, StackKind
from pytest_eng5.errors import ConfigurationError
from pytest_eng5.sample_data import SAMPLE_ASSETS

OptionType = Literal["str", "int", "float", "bool", "path", "choice"]

IDEMPOTENCE_CHOICES = ("auto", "on", "off")
BATCHING_MODES = ("per_request", "serial_bundle", "provider_batch_api")
COURSE_CODES = ("ENG5", "ENG6", "ENG7", "SV1", "SV2", "SV3")
LANGUAGES = ("en", "sv")
LLM_PROVIDERS = ("anthropic", "openai", "google", "openrouter", "mock")
SECURITY_PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
SASL_MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")
REASONING_EFFORTS = ("none", "low", "medium", "high")
VERBOSITIES = ("low", "medium", "high")


@dataclass(frozen=True)
class OptionSpec:
    """One setting: its field name, type, default, help and where else it may come from."""

    name: str
    type: OptionType
    default: Any
    help: str
    env: tuple[str, ...] = ()
    choices: tuple[str, ...] = ()

    @property
    def cli_flag(self) -> str:
        return "--eng5-" + self.name.replace("_", "-")

    @property
    def ini_key(self) -> str:
        return "eng5_" + self.name


OPTIONS: tuple[OptionSpec, ...] = (
    # stack
    OptionSpec(
        "stack", "choice", "embedded", "which stack to run on", ("ENG5_STACK",), STACK_KINDS
    ),
    OptionSpec("start_timeout", "float", 30.0, "seconds a stack process may take to be ready"),
    OptionSpec("require_services", "bool", False, "fail (not skip) when a stack is unavailable"),
    OptionSpec(
        "kafka_bootstrap",
        "str",
        None,
        "external Kafka bootstrap servers",
        ("KAFKA_BOOTSTRAP_SERVERS",),
    ),
    OptionSpec(
        "kafka_security_protocol",
        "choice",
        "PLAINTEXT",
        "Kafka security protocol",
        ("KAFKA_SECURITY_PROTOCOL",),
        SECURITY_PROTOCOLS,
    ),
    OptionSpec(
        "kafka_sasl_mechanism",
        "choice",
        None,
        "SASL mechanism (credentials come from KAFKA_SASL_USERNAME / KAFKA_SASL_PASSWORD)",
        ("KAFKA_SASL_MECHANISM",),
        SASL_MECHANISMS,
    ),
    OptionSpec("kafka_ssl_cafile", "path", None, "CA file for Kafka SSL", ("KAFKA_SSL_CAFILE",)),
    OptionSpec(
        "kafka_idempotence",
        "choice",
        "on",
        "idempotent producers (acks=all), as HuleEdu's clients use; on for every stack "
        "(auto = on; off only to test a non-idempotent client)",
        (),
        IDEMPOTENCE_CHOICES,
    ),
    OptionSpec(
        "postgres_dsn", "str", None, "external PostgreSQL DSN (CJ database)", ("ENG5_POSTGRES_DSN",)
    ),
    OptionSpec(
        "cj_url",
        "str",
        None,
        "CJ Assessment Service base URL (external stack)",
        ("CJ_SERVICE_URL",),
    ),
    OptionSpec(
        "content_url", "str", None, "Content Service URL (external stack)", ("CONTENT_SERVICE_URL",)
    ),
    OptionSpec(
        "judge",
        "choice",
        "text_features",
        "judge of the reference CJ worker",
        ("ENG5_JUDGE",),
        JUDGE_NAMES,
    ),
    OptionSpec("judge_seed", "int", 0, "seed of the reference judge"),
    # run inputs
    OptionSpec("assets", "path", None, "ENG5 asset folder (default: the bundled sample set)"),
    OptionSpec("assignment_id", "str", None, "CJ assignment id", ("ENG5_ASSIGNMENT_ID",)),
    OptionSpec("course_id", "str", None, "course id (metadata only)", ("ENG5_COURSE_ID",)),
    OptionSpec("batch_label", "str", "eng5-np-local-batch", "human batch label"),
    OptionSpec("batch_uuid", "str", None, "re-attach to this canonical batch uuid"),
    OptionSpec("max_comparisons", "int", None, "comparison cap sent to CJ (>= 2)"),
    OptionSpec("expected_grade_scale", "str", None, "assert CJ's grade scale equals this"),
    OptionSpec("course_code", "choice", "ENG5", "course code", (), COURSE_CODES),
    OptionSpec("language", "choice", "en", "essay language", (), LANGUAGES),
    OptionSpec("user_id", "str", "eng5_np_research_runner", "user id sent to CJ"),
    OptionSpec("org_id", "str", None, "org id sent to CJ"),
    # LLM overrides
    OptionSpec("llm_provider", "choice", None, "LLM provider override", (), LLM_PROVIDERS),
    OptionSpec("llm_model", "str", None, "LLM model override"),
    OptionSpec("llm_temperature", "float", None, "LLM temperature override (0.0-2.0)"),
    OptionSpec("llm_max_tokens", "int", None, "LLM max tokens override (> 0)"),
    OptionSpec("system_prompt_file", "path", None, "system prompt override file"),
    OptionSpec("rubric_file", "path", None, "judge rubric override file"),
    OptionSpec(
        "reasoning_effort", "choice", None, "reasoning effort override", (), REASONING_EFFORTS
    ),
    OptionSpec("output_verbosity", "choice", None, "output verbosity override", (), VERBOSITIES),
    OptionSpec(
        "llm_batching_mode",
        "choice",
        None,
        "sent as metadata.llm_batching_mode_hint",
        (),
        BATCHING_MODES,
    ),
    # run behaviour
    OptionSpec("no_kafka", "bool", False, "upload and write the envelope, but do not publish"),
    OptionSpec("no_await", "bool", False, "publish without awaiting completion"),
    OptionSpec("completion_timeout", "float", 120.0, "seconds to await completion"),
    OptionSpec("completion_grace", "float", 2.0, "seconds to wait for the result after completion"),
    OptionSpec("force_reupload", "bool", False, "ignore the upload cache and re-upload"),
    OptionSpec(
        "verify_uploads", "bool", False, "check cached storage ids exist before reusing them"
    ),
    OptionSpec("auto_extract_db", "bool", False, "R5: extract the CJ database after success"),
    OptionSpec("evidence_dir", "path", Path("eng5-evidence"), "evidence root folder"),
    OptionSpec(
        "cache_file",
        "path",
        None,
        "upload cache file (default: <evidence_dir>/content_upload_cache.json)",
    ),
    # gates
    OptionSpec("min_ssr", "float", None, "fail a run whose SSR is below this"),
    OptionSpec("min_tau_b", "float", None, "fail an anchor-align run whose tau-b is below this"),
    OptionSpec("min_n_cr", "float", None, "fail a run with fewer comparisons per essay"),
)
OPTIONS_BY_NAME = {spec.name: spec for spec in OPTIONS}


class Eng5Settings(BaseModel):
    """The resolved settings of a pytest-eng5 session (frozen)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    stack: StackKind = "embedded"
    start_timeout: float = Field(30.0, gt=0, le=600)
    require_services: bool = False
    kafka_bootstrap: str | None = None
    kafka_security_protocol: str = "PLAINTEXT"
    kafka_sasl_mechanism: str | None = None
    kafka_ssl_cafile: Path | None = None
    kafka_idempotence: Literal["auto", "on", "off"] = "on"
    kafka_image: str = "confluentinc/cp-kafka:7.6.0"
    postgres_image: str = "postgres:16-alpine"
    postgres_dsn: str | None = Field(None, repr=False)
    cj_url: str | None = None
    content_url: str | None = None
    judge: str = "text_features"
    judge_seed: int = 0
    assets: Path = SAMPLE_ASSETS
    assignment_id: str | None = Field(None, max_length=100)
    course_id: str | None = None
    batch_label: str = "eng5-np-local-batch"
    batch_uuid: str | None = None
    max_comparisons: int | None = None
    expected_grade_scale: str | None = None
    course_code: str = "ENG5"
    language: str = "en"
    user_id: str = "eng5_np_research_runner"
    org_id: str | None = None
    llm_provider: str | None = None
    llm_model: str | None = None
    llm_temperature: float | None = Field(None, ge=0.0, le=2.0)
    llm_max_tokens: int | None = Field(None, gt=0)
    system_prompt_file: Path | None = None
    rubric_file: Path | None = None
    reasoning_effort: str | None = None
    output_verbosity: str | None = None
    llm_batching_mode: str | None = None
    no_kafka: bool = False
    no_await: bool = False
    completion_timeout: float = Field(120.0, gt=0, le=86_400)
    completion_grace: float = Field(2.0, ge=0, le=600)
    force_reupload: bool = False
    verify_uploads: bool = False
    auto_extract_db: bool = False
    evidence_dir: Path = Path("eng5-evidence")
    cache_file: Path | None = None
    min_ssr: float | None = Field(None, ge=0.0, le=1.0)
    min_tau_b: float | None = Field(None, ge=-1.0, le=1.0)
    min_n_cr: float | None = Field(None, ge=0.0)

    @model_validator(mode="after")
    def _check_combinations(self) -> Eng5Settings:
        if not self.batch_label.strip():
            raise ValueError("batch_label must not be blank")
        if self.auto_extract_db and self.no_await:
            raise ValueError("auto_extract_db requires awaiting completion (drop no_await)")
        if self.auto_extract_db and self.no_kafka:
            raise ValueError("auto_extract_db is not allowed with no_kafka (nothing completes)")
        if self.expected_grade_scale is not None and not self.expected_grade_scale.strip():
            raise ValueError("expected_grade_scale must not be blank when given")
        return self

    @property
    def await_completion(self) -> bool:
        return not self.no_await and not self.no_kafka

    @property
    def upload_cache_path(self) -> Path:
        return self.cache_file or self.evidence_dir / "content_upload_cache.json"

    def merged(self, **overrides: Any) -> Eng5Settings:
        """A copy with ``overrides`` applied and validated again."""
        try:
            return Eng5Settings.model_validate({**self.model_dump(), **overrides})
        except ValidationError as exc:
            raise SettingsError(_describe_validation_error(exc)) from exc


class SettingsError(ConfigurationError):
    """A setting has a bad value; the message names the setting and the valid values."""


def _convert(spec: OptionSpec, raw: Any, source: str) -> Any:
    if raw is None:
        return None
    if isinstance(raw, str):
        raw = raw.strip()
        if raw == "":
            return None
    where = f"{spec.cli_flag} / {spec.ini_key}" + (f" / {spec.env[0]}" if spec.env else "")
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
            f"{where}: {raw!r} (from {source}) is not a valid {spec.type}",
            next_step=f"give {spec.cli_flag} a {spec.type} value",
        ) from None
    value = str(raw)
    if spec.type == "choice" and value not in spec.choices:
        raise SettingsError(
            f"{where}: {value!r} (from {source}) is not one of: {', '.join(spec.choices)}",
            next_step=f"choose one of {', '.join(spec.choices)}",
        )
    return value


def resolve_settings(
    cli: Mapping[str, Any], ini: Mapping[str, Any], env: Mapping[str, str]
) -> Eng5Settings:
    """Resolve every option with precedence CLI > env > ini > default.

    ``cli`` and ``ini`` map option names to raw values (None or "" = not given).
    """
    values: dict[str, Any] = {}
    for spec in OPTIONS:
        value: Any = None
        for source, raw in (
            ("the command line", cli.get(spec.name)),
            *((f"env {name}", env.get(name)) for name in spec.env),
            ("the ini file", ini.get(spec.name)),
        ):
            value = _convert(spec, raw, source)
            if value is not None:
                break
        if value is not None:
            values[spec.name] = value
    try:
        return Eng5Settings.model_validate(values)
    except ValidationError as exc:
        raise SettingsError(_describe_validation_error(exc)) from exc


def _describe_validation_error(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"])
        flag = OPTIONS_BY_NAME[loc].cli_flag if loc in OPTIONS_BY_NAME else loc or "settings"
        parts.append(f"{flag}: {err['msg']}")
    return "invalid eng5 settings: " + "; ".join(parts)


def options_markdown_table() -> str:
    """The options table of the README (a test keeps the README in step with this)."""
    rows = ["| CLI | ini | env | default | meaning |", "|---|---|---|---|---|"]
    for spec in OPTIONS:
        default = "" if spec.default is None else f"`{spec.default}`"
        if spec.name == "assets":
            default = "bundled sample set"
        choices = " (" + " \\| ".join(spec.choices) + ")" if spec.choices else ""
        env = ", ".join(f"`{name}`" for name in spec.env)
        rows.append(
            f"| `{spec.cli_flag}` | `{spec.ini_key}` | {env} | {default} | {spec.help}{choices} |"
        )
    return "\n".join(rows) + "\n"
