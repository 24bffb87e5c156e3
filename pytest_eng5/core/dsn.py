"""The CJ database DSN from HuleEdu's ``HULEEDU_DB_*`` variables."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final
from urllib.parse import quote

from pytest_eng5.redact import register_secret

CJ_DATABASE: Final = "huleedu_cj_assessment"


def dsn_from_env(env: Mapping[str, str]) -> str | None:
    """A DSN from ``HULEEDU_DB_*`` (None when ``HULEEDU_DB_HOST`` is unset); password redacted."""
    host = env.get("HULEEDU_DB_HOST")
    if not host:
        return None
    port = env.get("HULEEDU_CJ_DB_PORT") or env.get("HULEEDU_DB_PORT") or "5434"
    user = env.get("HULEEDU_DB_USER") or "huleedu_user"
    password = env.get("HULEEDU_DB_PASSWORD")
    credentials = quote(user, safe="")
    if password:
        register_secret(password)
        register_secret(quote(password, safe=""))
        credentials += ":" + quote(password, safe="")
    return f"postgresql://{credentials}@{host}:{port}/{CJ_DATABASE}"
