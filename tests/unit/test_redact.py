"""Secret masking: registered values (also as JSON spells them), bearer tokens, JWTs."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import jwt
import pytest
from pydantic import SecretStr

from pytest_eng5.redact import MASK, RedactingFilter, redact, register_secret
from pytest_eng5.runner.config import RunConfig
from pytest_eng5.runner.evidence import EvidenceFolder
from pytest_eng5.runner.identity import BatchIdentity
from pytest_eng5.settings_sources import resolve_settings
from tests.conftest import guest_request


def test_registered_secret_is_masked() -> None:
    register_secret("plain-secret-value-1")
    assert redact("dsn with plain-secret-value-1 inside") == f"dsn with {MASK} inside"


@pytest.mark.parametrize("ensure_ascii", [True, False])
def test_secret_is_masked_after_json_encoding(ensure_ascii: bool) -> None:
    secret = 'lösen"ord\\hemligt-2'
    register_secret(secret)
    encoded = json.dumps({"password": secret}, ensure_ascii=ensure_ascii)
    assert "hemligt" not in redact(encoded)


def test_jwt_and_bearer_tokens_are_masked_without_registration() -> None:
    token = jwt.encode({"sub": "x", "roles": ["admin"]}, "k" * 32, algorithm="HS256")
    text = redact(f"token={token} header=Bearer abcdefgh12345678")
    assert token not in text
    assert "abcdefgh12345678" not in text


def test_short_values_are_not_registered() -> None:
    register_secret("ab")
    assert redact("abc") == "abc"


def test_logging_filter_masks_the_formatted_message(caplog: pytest.LogCaptureFixture) -> None:
    register_secret("logged-secret-3")
    logger = logging.getLogger("eng5-redact-test")
    logger.addFilter(RedactingFilter())
    with caplog.at_level(logging.INFO, logger="eng5-redact-test"):
        logger.info("connecting with %s", "logged-secret-3")
    assert "logged-secret-3" not in caplog.text
    assert MASK in caplog.text


@pytest.fixture
def only_secret_test(monkeypatch: pytest.MonkeyPatch) -> None:
    """The weak secret ``test`` registered in a registry of its own (restored afterwards)."""
    monkeypatch.setattr("pytest_eng5.redact._secrets", set())
    register_secret(SecretStr("test"))


@pytest.mark.usefixtures("only_secret_test")
def test_a_secret_inside_a_longer_word_is_left_alone() -> None:
    assert redact("pulled image latest, contest, test-run, tested") == (
        "pulled image latest, contest, test-run, tested"
    )
    assert redact("postgresql://cj:test@db:5432/cj") == f"postgresql://cj:{MASK}@db:5432/cj"
    assert redact('{"password": "test"}') == f'{{"password": "{MASK}"}}'


@pytest.mark.usefixtures("only_secret_test")
def test_evidence_keeps_words_that_contain_a_secret(tmp_path: Path) -> None:
    identity = BatchIdentity.new("latest-essays")
    with EvidenceFolder(tmp_path, identity) as evidence:
        evidence.write_request(guest_request(identity, "latest_essay"))
        evidence.append_event(
            "callback",
            {"note": "latest", "essay": "latest_essay"},
            topic="t",
            partition=0,
            offset=1,
        )
        evidence.log.info("run started", extra={"batch_label": identity.batch_label})
    for name in ("request.json", "events.jsonl", "run.log"):
        text = (tmp_path / identity.batch_id / name).read_text(encoding="utf-8")
        assert "latest" in text, name
        assert MASK not in text, name
    artefact = redact(json.dumps({"batch_label": identity.batch_label, "tag": "latest"}))
    assert json.loads(artefact) == {"batch_label": "latest-essays", "tag": "latest"}


@pytest.fixture
def own_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    """A registry of secrets of this test's own (restored afterwards)."""
    monkeypatch.setattr("pytest_eng5.redact._secrets", set())


@pytest.mark.usefixtures("own_registry")
@pytest.mark.parametrize(
    "variable", ["HULEEDU_ADMIN_TOKEN", "JWT_SECRET_KEY", "KAFKA_SASL_PASSWORD"]
)
def test_a_token_setting_is_redacted_by_type_and_leaves_longer_words_alone(variable: str) -> None:
    resolve_settings({"stack": "external"}, {}, {variable: "test"})
    assert redact("pulled latest, token=test, tested") == f"pulled latest, token={MASK}, tested"


@pytest.mark.usefixtures("own_registry")
def test_a_run_config_registers_its_tokens(tmp_path: Path) -> None:
    RunConfig(assets=tmp_path, admin_token=SecretStr("run-token-77"))
    assert redact("Bearer-less run-token-77 here") == f"Bearer-less {MASK} here"
