"""Service URLs as HuleEdu configures them, normalised once for the client, the fakes and the
stack: trimmed, no trailing slash, http(s) only; the Content Service's ends in /v1/content."""

from __future__ import annotations

from typing import Final

from pytest_eng5.errors import ConfigurationError

CONTENT_PATH: Final = "/v1/content"


def service_url(url: str | None, *, service: str, env_var: str, example: str) -> str:
    """``url`` trimmed, without a trailing slash; ConfigurationError if blank or not http(s)."""
    cleaned = (url or "").strip().rstrip("/")
    if not cleaned:
        raise ConfigurationError(
            f"The {service} URL is empty.",
            next_step=f"set {env_var} (e.g. {example}) or pass the URL",
        )
    if not cleaned.startswith(("http://", "https://")):
        raise ConfigurationError(
            f"The {service} URL {cleaned!r} is not an http(s) URL.",
            next_step=f"set {env_var} to e.g. {example}",
        )
    return cleaned


def content_endpoint(url: str | None) -> str:
    """The Content Service URL ending in ``/v1/content``, given with or without that suffix."""
    cleaned = service_url(
        url,
        service="Content Service",
        env_var="CONTENT_SERVICE_URL",
        example="http://localhost:8001/v1/content",
    )
    return cleaned if cleaned.endswith(CONTENT_PATH) else cleaned + CONTENT_PATH


def content_base(url: str | None) -> str:
    """The Content Service's base URL (its ``/_test`` and ``/healthz`` routes hang off it)."""
    return content_endpoint(url).removesuffix(CONTENT_PATH)
