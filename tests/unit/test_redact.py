"""Secret masking: registered values (also as JSON spells them), bearer tokens, JWTs."""

from __future__ import annotations

import json
import logging

import jwt
import pytest

from pytest_eng5.redact import MASK, RedactingFilter, redact, register_secret


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
