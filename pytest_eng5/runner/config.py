"""What the runner needs to know: where the services are (:class:`Endpoints`, from the core),
what to run (:class:`RunConfig`) and who to tell (:class:`RunHooks`).

``RunConfig`` is the runner's own small configuration; a script builds it directly, the pytest
plugin with :func:`RunConfig.from_values` from the values its settings declaration says feed
each field (``Eng5Settings.run_values``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Final

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator

from pytest_eng5.core import Endpoints
from pytest_eng5.core.names import MAX_PAIRWISE_COMPARISONS
from pytest_eng5.errors import ConfigurationError
from pytest_eng5.redact import register_secret

if TYPE_CHECKING:  # only for annotations: the plugin imports this module at pytest start-up
    from pytest_eng5.contracts import EventEnvelope
    from pytest_eng5.runner.collector import CollectedEvent, ProgressInfo
    from pytest_eng5.runner.identity import BatchIdentity

__all__ = ["Endpoints", "Gates", "LLMOptions", "RunConfig", "RunHooks"]


class LLMOptions(BaseModel):
    """LLM overrides sent with the request (None: CJ's defaults)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    provider: str | None = None
    model: str | None = None
    temperature: float | None = None
    max_tokens: int | None = None
    system_prompt_file: Path | None = None
    rubric_file: Path | None = None
    reasoning_effort: str | None = None
    output_verbosity: str | None = None
    batching_mode: str | None = None


class Gates(BaseModel):
    """Quality gates: a run that misses one raises ``GateError`` (None: no gate)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    min_ssr: float | None = None
    #: Kendall tau-b of the anchors' BT order against their grades: anchor-align runs only
    min_tau_b: float | None = None
    min_n_cr: float | None = None
    #: the largest |share won by the first-presented essay - 0.5| allowed
    max_position_bias: float | None = None


class RunConfig(BaseModel):
    """One runner's configuration (everything but the endpoints); validated when built."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    assets: Path
    evidence_dir: Path = Path("eng5-evidence")
    assignment_id: str | None = None
    course_id: str | None = None
    batch_label: str = "eng5-np-local-batch"
    #: re-attach to (or publish under) this batch uuid
    batch_uuid: str | None = None
    max_comparisons: int | None = None
    #: CJ's own cap on comparisons per batch (HuleEdu's MAX_PAIRWISE_COMPARISONS)
    cj_max_comparisons: int = Field(MAX_PAIRWISE_COMPARISONS, ge=2)
    expected_grade_scale: str | None = None
    course_code: str = "ENG5"
    language: str = "en"
    user_id: str = "eng5_np_research_runner"
    org_id: str | None = None
    llm: LLMOptions = Field(default_factory=LLMOptions)
    gates: Gates = Field(default_factory=Gates)
    no_kafka: bool = False
    no_await: bool = False
    completion_timeout: float = Field(120.0, gt=0)
    completion_grace: float = Field(2.0, ge=0)
    force_reupload: bool = False
    verify_uploads: bool = False
    auto_extract_db: bool = False
    cache_file: Path | None = None
    #: recorded in the artefact only (which stack the run used)
    stack: str = "external"
    #: a variant run of an experiment (recorded in the artefact; read by pytest_eng5.compare)
    experiment: str | None = None
    variant: str | None = None
    variant_repeat: int | None = Field(None, ge=1)
    baseline: str | None = None
    #: CJ admin credentials, by HuleEdu's priority: service-account token, admin token, else a
    #: development token minted with the JWT secret (typed secrets: redacted everywhere)
    service_account_token: SecretStr | None = None
    admin_token: SecretStr | None = None
    jwt_secret: SecretStr | None = None

    @model_validator(mode="after")
    def _register_secrets(self) -> RunConfig:
        for secret in (self.service_account_token, self.admin_token, self.jwt_secret):
            register_secret(secret)
        return self

    def credentials_env(self) -> dict[str, str]:
        """The credentials under HuleEdu's variable names, for the admin client only."""
        named = {
            "HULEEDU_SERVICE_ACCOUNT_TOKEN": self.service_account_token,
            "HULEEDU_ADMIN_TOKEN": self.admin_token,
            "JWT_SECRET_KEY": self.jwt_secret,
        }
        return {name: secret.get_secret_value() for name, secret in named.items() if secret}

    @property
    def await_completion(self) -> bool:
        return not self.no_await and not self.no_kafka

    @property
    def upload_cache_path(self) -> Path:
        return self.cache_file or self.evidence_dir / "content_upload_cache.json"

    @classmethod
    def field_paths(cls) -> tuple[str, ...]:
        """Every value :meth:`from_values` takes: own fields, ``llm.*`` and ``gates.*``."""
        own = [name for name in cls.model_fields if name not in _NESTED]
        nested = [
            f"{part}.{name}" for part, model in _NESTED.items() for name in model.model_fields
        ]
        return (*own, *nested)

    @classmethod
    def from_values(cls, values: Mapping[str, object]) -> RunConfig:
        """Build from flat values keyed by field path (``assets``, ``llm.model``,
        ``gates.min_ssr``); an unknown key is a :class:`ConfigurationError` naming it."""
        valid = cls.field_paths()
        unknown = sorted(set(values) - set(valid))
        if unknown:
            raise ConfigurationError(
                f"RunConfig: unknown setting(s) {', '.join(map(repr, unknown))}; valid: "
                f"{', '.join(valid)}",
                next_step="rename or drop them (llm and gate settings are 'llm.<name>' and "
                "'gates.<name>')",
            )
        own: dict[str, object] = {}
        nested: dict[str, dict[str, object]] = {part: {} for part in _NESTED}
        for path, value in values.items():
            part, _, name = path.rpartition(".")
            (nested[part] if part else own)[name] = value
        return cls.model_validate({**own, **nested})


_NESTED: Final[dict[str, type[BaseModel]]] = {"llm": LLMOptions, "gates": Gates}


@dataclass
class RunHooks:
    """Callbacks into the host (the pytest plugin adapts its ``pytest_eng5_*`` hooks)."""

    before_publish: Callable[[EventEnvelope, BatchIdentity], None] | None = None
    on_event: Callable[[CollectedEvent, BatchIdentity], None] | None = None
    on_progress: Callable[[ProgressInfo], None] | None = None
