"""The worker's command line and its /healthz endpoint (no infrastructure needed)."""

from __future__ import annotations

import httpx
import pytest

from pytest_eng5.errors import ConfigurationError
from pytest_eng5.reference.worker import CJWorker
from pytest_eng5.reference.worker_main import build_parser, create_health_app, settings_from_args
from pytest_eng5.reference.worker_settings import WorkerSettings

REQUIRED = [
    "--bootstrap", "127.0.0.1:9092",
    "--dsn", "postgresql://u@/db?host=/tmp/x",
    "--content-url", "http://127.0.0.1:1/v1/content",
    "--health-port", "8099",
]  # fmt: skip


def test_cli_defaults() -> None:
    settings = settings_from_args(build_parser().parse_args(REQUIRED))
    assert settings.bootstrap_servers == "127.0.0.1:9092"
    assert settings.judge_name == "text_features"
    assert settings.judge_seed == 0
    assert settings.max_pairwise_comparisons == 120
    assert settings.idempotent_producer is False


def test_cli_options() -> None:
    args = build_parser().parse_args(
        [
            *REQUIRED,
            "--judge", "coin_flip",
            "--judge-seed", "5",
            "--max-pairwise-comparisons", "40",
            "--idempotent-producer",
            "--callback-timeout-s", "2.5",
        ]
    )  # fmt: skip
    settings = settings_from_args(args)
    assert (settings.judge_name, settings.judge_seed) == ("coin_flip", 5)
    assert settings.max_pairwise_comparisons == 40
    assert settings.idempotent_producer is True
    assert settings.callback_timeout_s == 2.5


def test_cli_rejects_unknown_judge() -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args([*REQUIRED, "--judge", "oracle"])


def test_settings_reject_a_zero_budget() -> None:
    with pytest.raises(ConfigurationError, match="max_pairwise_comparisons"):
        WorkerSettings("b", "d", "c", max_pairwise_comparisons=0)


@pytest.mark.asyncio
async def test_healthz_is_503_until_ready() -> None:
    worker = CJWorker(WorkerSettings("127.0.0.1:1", "postgresql://x", "http://127.0.0.1:1"))
    transport = httpx.ASGITransport(app=create_health_app(worker))
    async with httpx.AsyncClient(transport=transport, base_url="http://worker") as client:
        assert (await client.get("/healthz")).status_code == 503
        worker._ready.set()  # what start() does once the positions are set
        assert (await client.get("/healthz")).status_code == 200
