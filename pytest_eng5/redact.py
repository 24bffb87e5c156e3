"""Secret redaction for logs, artefacts and JUnit properties.

Known secrets (tokens, passwords, JWT keys; ``SecretStr`` values) are registered once and
masked wherever they stand as a value of their own: a registered secret is masked only where
it is not part of a longer word, so a secret ``test`` masks ``password=test`` but leaves the
word ``latest`` alone. Anything that looks like a JWT or a bearer token is masked as well, so
a token that was never registered still cannot leak.
"""

from __future__ import annotations

import json
import logging
import re
import threading
from functools import cache

from pydantic import SecretStr

MASK = "***REDACTED***"
_JWT_RE = re.compile(r"eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}")
_BEARER_RE = re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._~+/=-]{8,}")
_MIN_SECRET_LEN = 4

_lock = threading.Lock()
_secrets: set[str] = set()


#: characters that continue a word: a secret next to one of these is part of another word
_WORD = r"[\w-]"


@cache
def _standalone(secret: str) -> re.Pattern[str]:
    return re.compile(f"(?<!{_WORD}){re.escape(secret)}(?!{_WORD})")


def register_secret(value: str | SecretStr | None) -> None:
    """Remember a secret value so that :func:`redact` masks it everywhere it stands alone."""
    if isinstance(value, SecretStr):
        value = value.get_secret_value()
    if value and len(value) >= _MIN_SECRET_LEN:
        # Evidence is redacted after JSON encoding: mask the escaped spellings as well.
        spellings = {value, json.dumps(value)[1:-1], json.dumps(value, ensure_ascii=False)[1:-1]}
        with _lock:
            _secrets.update(spellings)


def redact(text: str) -> str:
    """Return ``text`` with registered secrets, bearer tokens and JWT-like strings masked."""
    with _lock:
        secrets = sorted(_secrets, key=len, reverse=True)
    for secret in secrets:
        if secret in text:
            text = _standalone(secret).sub(MASK, text)
    text = _BEARER_RE.sub(lambda m: m.group(1) + MASK, text)
    return _JWT_RE.sub(MASK, text)


class RedactingFilter(logging.Filter):
    """Logging filter that redacts the formatted message of every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg = cleaned
            record.args = None
        return True
