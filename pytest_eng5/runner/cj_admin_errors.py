"""Why a CJ admin call failed: HTTP answers mapped to typed errors with the next step.

HuleEdu answers every admin error with the same generic 500 (contract H.2); local checks of the
token (claims, signature) and a probe listing with the same token tell auth, not found and a
server fault apart.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

import httpx

from pytest_eng5.contracts import AdminErrorBody, GenericServerErrorBody
from pytest_eng5.errors import (
    PreflightAuthError,
    PreflightError,
    PreflightNotFoundError,
    ServiceUnavailableError,
)
from pytest_eng5.runner.auth import AdminToken, claim_problems, verify_signature_locally
from pytest_eng5.runner.cj_responses import error_detail, parse_error_body

AUTH_NEXT_STEP = (
    "verify the token: HULEEDU_SERVICE_ACCOUNT_TOKEN / HULEEDU_ADMIN_TOKEN / JWT_SECRET_KEY "
    "(the CJ service's value); run verify-auth"
)
NOT_FOUND_NEXT_STEP = (
    "seed assessment instructions with cj-admin instructions upsert --assignment-id <id> "
    "--grade-scale <scale> (check with cj-admin instructions list), then register anchors"
)
UNAVAILABLE_NEXT_STEP = (
    "check that the CJ service is running and that CJ_SERVICE_URL points at it; "
    "see the CJ service log for the cause"
)


@dataclass(frozen=True)
class AdminErrorExplainer:
    """Turns a failed admin answer into a typed error, for one client's token and settings.

    ``probe_listing`` lists one instruction with the same token and says whether that worked.
    """

    token: AdminToken | None
    env: Mapping[str, str]
    attempts: int
    probe_listing: Callable[[], Awaitable[tuple[bool, str]]]

    @property
    def token_source(self) -> str:
        return self.token.source if self.token else "none"

    async def explain(
        self, response: httpx.Response, url: str, what: str, *, assignment_scoped: bool
    ) -> PreflightError:
        """The typed error for ``response`` (an unexpected status) from ``url``."""
        status = response.status_code
        parsed = parse_error_body(response)
        detail = error_detail(parsed, response)
        if status in (401, 403):
            kind = "authentication" if status == 401 else "authorisation (role 'admin' missing?)"
            return PreflightAuthError(
                f"{what}: CJ refused the admin token ({kind}; HTTP {status}) at {url}: {detail}. "
                f"Token source: {self.token_source}.",
                next_step=AUTH_NEXT_STEP,
                url=url,
            )
        if status == 404:
            hint = ""
            if not isinstance(parsed, AdminErrorBody):
                hint = (
                    " The body is not a HuleEdu error, so the route itself may be missing: "
                    "/admin/v1 is disabled when the CJ service runs with ENVIRONMENT=production "
                    "unless CJ_ASSESSMENT_SERVICE_ENABLE_ADMIN_ENDPOINTS is set."
                )
            return PreflightNotFoundError(
                f"{what}: not found (HTTP 404) at {url}: {detail}.{hint}",
                next_step=NOT_FOUND_NEXT_STEP,
                url=url,
            )
        if status >= 500 and isinstance(parsed, GenericServerErrorBody):
            return await self._generic_500(url, what, assignment_scoped=assignment_scoped)
        if status >= 500:
            return ServiceUnavailableError(
                f"{what}: {url} answered HTTP {status} after {self.attempts} attempt(s): {detail}",
                next_step=UNAVAILABLE_NEXT_STEP,
                url=url,
            )
        return PreflightError(
            f"{what}: unexpected HTTP {status} from {url}: {detail}",
            next_step="check CJ_SERVICE_URL and the CJ service log",
            url=url,
        )

    async def _generic_500(self, url: str, what: str, *, assignment_scoped: bool) -> PreflightError:
        """HuleEdu answers every admin error with the same 500 (H.2); tell the causes apart."""
        head = (
            f"{what}: {url} answered HTTP 500 with HuleEdu's generic body "
            '("Internal server error") after '
            f"{self.attempts} attempt(s). HuleEdu returns this for every admin error, "
            "so it means one of: auth, not found, server fault. Local checks: "
        )
        token = self.token
        problems = claim_problems(token.claims if token else None, self.env)
        if problems:
            return PreflightAuthError(
                head
                + "the token's claims (decoded locally) show: "
                + "; ".join(problems)
                + f" (token source: {self.token_source}) → most likely auth.",
                next_step=AUTH_NEXT_STEP,
                url=url,
            )
        checks = ["the token's claims look valid (exp in the future, roles ∋ admin, aud, iss)"]
        if token is not None:
            signature_ok, signature_detail = verify_signature_locally(token.value, self.env)
            checks.append(f"signature {signature_detail}")
            if signature_ok is False:
                return PreflightAuthError(
                    head + "; ".join(checks) + " → most likely auth.",
                    next_step=AUTH_NEXT_STEP,
                    url=url,
                )
        if assignment_scoped:
            probe_ok, probe_detail = await self.probe_listing()
            checks.append(probe_detail)
            if probe_ok:
                return PreflightNotFoundError(
                    head + "; ".join(checks) + " → most likely not found (no "
                    "assessment_instructions row for this assignment).",
                    next_step=NOT_FOUND_NEXT_STEP,
                    url=url,
                )
        return ServiceUnavailableError(
            head + "; ".join(checks) + " → auth (token signed with a different JWT_SECRET_KEY) "
            "or a server fault.",
            next_step="run verify-auth (it checks the signature when JWT_SECRET_KEY is set here) "
            "and read the CJ service log",
            url=url,
        )
