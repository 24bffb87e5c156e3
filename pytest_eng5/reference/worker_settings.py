"""How the reference CJ worker connects and behaves (filled by :mod:`.worker_main`'s CLI)."""

from __future__ import annotations

from dataclasses import dataclass

from pytest_eng5.core.names import DEFAULT_JUDGE, MAX_PAIRWISE_COMPARISONS
from pytest_eng5.errors import ConfigurationError


@dataclass(frozen=True)
class WorkerSettings:
    """How the worker connects and behaves; the CLI of :mod:`.worker_main` fills it."""

    bootstrap_servers: str
    dsn: str
    content_url: str
    judge_name: str = DEFAULT_JUDGE
    judge_seed: int = 0
    max_pairwise_comparisons: int = MAX_PAIRWISE_COMPARISONS
    idempotent_producer: bool = False
    callback_timeout_s: float = 10.0
    pair_generation_seed: int = 0
    client_id: str = "reference-cj-worker"
    fetch_max_wait_ms: int = 10
    http_timeout_s: float = 10.0

    def __post_init__(self) -> None:
        if self.max_pairwise_comparisons < 1:
            raise ConfigurationError(
                f"max_pairwise_comparisons must be >= 1, got {self.max_pairwise_comparisons}",
                next_step=f"pass --max-pairwise-comparisons {MAX_PAIRWISE_COMPARISONS} (HuleEdu's "
                "default) or larger",
            )
        if self.callback_timeout_s <= 0:
            raise ConfigurationError(
                f"callback_timeout_s must be > 0, got {self.callback_timeout_s}",
                next_step="pass --callback-timeout-s 10 (or more for a slow real LLM judge)",
            )
