"""The CJ database DSN from HuleEdu's ``HULEEDU_DB_*`` variables.

The names are HuleEdu's: ``HULEEDU_DB_HOST``, ``HULEEDU_CJ_DB_PORT`` (else ``HULEEDU_DB_PORT``),
``HULEEDU_DB_USER``, ``HULEEDU_DB_PASSWORD``, and the CJ service's own database name setting,
``CJ_ASSESSMENT_SERVICE_DB_NAME`` (its ``DB_NAME`` under its env prefix; default
``huleedu_cj_assessment``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final
from urllib.parse import quote

from pytest_eng5.redact import register_secret

CJ_DATABASE: Final = "huleedu_cj_assessment"
#: the CJ service's database name setting (``DB_NAME`` with its ``CJ_ASSESSMENT_SERVICE_`` prefix)
CJ_DATABASE_NAME_VARIABLE: Final = "CJ_ASSESSMENT_SERVICE_DB_NAME"


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
    database = env.get(CJ_DATABASE_NAME_VARIABLE, "").strip() or CJ_DATABASE
    return f"postgresql://{credentials}@{host}:{port}/{quote(database, safe='')}"
