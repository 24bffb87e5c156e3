"""CJ Assessment Service client: admin preflights (R3, R4), anchor registration, verify-auth.

Contract A (routes, auth, error bodies) and H (what a live HuleEdu really does: every admin error
is a generic 500, writes may not persist). Every error names the URL and the next step; nothing
escapes as a bare traceback (runner weaknesses 11, 12, 13).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Literal, Self, TypeVar

import httpx
from pydantic import BaseModel, ValidationError

from pytest_eng5.contracts import (
    AdminErrorBody,
    AnchorSummaryResponse,
    AssessmentInstructionListResponse,
    AssessmentInstructionResponse,
    ContextOrigin,
    FlatErrorBody,
    GenericServerErrorBody,
    RegisterAnchorRequest,
    RegisterAnchorResponse,
    get_scale,
    grade_from_filename,
    parse_admin_error,
    validate_grade_for_scale,
)
from pytest_eng5.contracts.admin import REGISTER_ANCHOR_MIN_TEXT
from pytest_eng5.errors import (
    AnchorRegistrationError,
    AnchorsMissingError,
    ConfigurationError,
    Eng5Error,
    GradeScaleMismatchError,
    InventoryError,
    PreflightAuthError,
    PreflightError,
    PreflightNotFoundError,
    ServiceUnavailableError,
)
from pytest_eng5.runner.auth import (
    AdminToken,
    claim_problems,
    describe_claims,
    verify_signature_locally,
)
from pytest_eng5.runner.http_retry import RetryPolicy, send_with_retries

logger = logging.getLogger(__name__)

ModelT = TypeVar("ModelT", bound=BaseModel)
PreflightMode = Literal["plan", "dry-run", "execute", "anchor-align-test", "register-anchors"]

DEFAULT_TIMEOUT_SECONDS = 15.0
BODY_EXCERPT = 200
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
REGISTER_NEXT_STEP = "register anchors first (register_anchors() fixture method / cj-admin)"


def _excerpt(text: str) -> str:
    return text[:BODY_EXCERPT]


class CJAdminClient:
    """Async client for the CJ admin API and anchor registration (use ``async with``).

    ``token`` is needed for ``/admin/v1/*``; ``env`` supplies ``JWT_AUDIENCE``/``JWT_ISSUER``/
    ``JWT_SECRET_KEY`` for the local token checks that explain HuleEdu's generic 500s.
    """

    def __init__(
        self,
        base_url: str,
        *,
        token: AdminToken | None = None,
        timeout: float = DEFAULT_TIMEOUT_SECONDS,
        retry: RetryPolicy | None = None,
        env: Mapping[str, str] | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        cleaned = (base_url or "").strip().rstrip("/")
        if not cleaned:
            raise ConfigurationError(
                "The CJ service URL is empty.",
                next_step="set CJ_SERVICE_URL (e.g. http://localhost:9095) or pass the URL",
            )
        if not cleaned.startswith(("http://", "https://")):
            raise ConfigurationError(
                f"The CJ service URL {cleaned!r} is not an http(s) URL.",
                next_step="set CJ_SERVICE_URL to e.g. http://localhost:9095",
            )
        self.base_url = cleaned
        self.token = token
        self.retry = retry or RetryPolicy()
        self._env: Mapping[str, str] = env or {}
        self._http = httpx.AsyncClient(timeout=httpx.Timeout(timeout), transport=transport)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the underlying HTTP connection pool."""
        await self._http.aclose()

    # --- admin reads ---------------------------------------------------------------------

    async def get_assignment(self, assignment_id: str) -> AssessmentInstructionResponse:
        """``GET /admin/v1/assessment-instructions/assignment/{id}``."""
        path = f"/admin/v1/assessment-instructions/assignment/{assignment_id}"
        body, url, response = await self._admin_get(path, what="Assignment preflight")
        return self._validate(AssessmentInstructionResponse, body, url, response)

    async def get_anchor_summary(self, assignment_id: str) -> AnchorSummaryResponse:
        """``GET /admin/v1/anchors/assignment/{id}``."""
        path = f"/admin/v1/anchors/assignment/{assignment_id}"
        body, url, response = await self._admin_get(path, what="Anchor preflight")
        return self._validate(AnchorSummaryResponse, body, url, response)

    async def list_instructions(
        self, page: int = 1, page_size: int = 50, *, grade_scale: str | None = None
    ) -> AssessmentInstructionListResponse:
        """``GET /admin/v1/assessment-instructions`` (newest first)."""
        params: dict[str, str | int] = {"page": page, "page_size": page_size}
        if grade_scale:
            params["grade_scale"] = grade_scale
        body, url, response = await self._admin_get(
            "/admin/v1/assessment-instructions",
            what="Listing assessment instructions",
            params=params,
            assignment_scoped=False,
        )
        return self._validate(AssessmentInstructionListResponse, body, url, response)

    # --- anchor registration -------------------------------------------------------------

    async def register_anchor(self, request: RegisterAnchorRequest) -> RegisterAnchorResponse:
        """``POST /api/v1/anchors/register``; 201 expected, ``{"error": str}`` otherwise.

        The endpoint is unauthenticated at HuleEdu; the admin header is sent anyway when a
        token is known, so a deployment that adds auth keeps working.
        """
        url = f"{self.base_url}/api/v1/anchors/register"
        label = request.effective_label
        headers = self._correlation_headers()
        if self.token is not None:
            headers.update(self.token.authorization_header())
        response = await self._send(
            "POST",
            url,
            what=f"Registering anchor '{label}'",
            headers=headers,
            json=request.model_dump(),
        )
        if response.status_code == 201:
            return self._validate(
                RegisterAnchorResponse, _json_or_raise(response, url), url, response
            )
        error_text = _flat_error_text(response)
        next_step = (
            "check the CJ service log and the Content Service (CJ stores the text there); re-run"
            if response.status_code >= 500
            else "fix the anchor (grade valid for the assignment's scale, text ≥ 100 characters) "
            "or seed the assignment's instructions, then re-run"
        )
        raise AnchorRegistrationError(
            f"CJ did not register anchor '{label}' (grade {request.grade}): HTTP "
            f"{response.status_code} from POST {url}"
            + (f" after {self.retry.attempts} attempts" if response.status_code >= 500 else "")
            + f": {error_text}",
            next_step=next_step,
        )

    # --- verify-auth ---------------------------------------------------------------------

    async def verify_token(self) -> dict[str, Any]:
        """Decode the token locally and confirm it against the admin API (list, page_size=1).

        Returns ``{"source", "claims", "claim_problems", "signature", "confirmed", "detail"}``;
        never the token. HTTP failures are reported in ``detail``, not raised.
        """
        token = self._require_token("verify-auth")
        claims = describe_claims(token.value)
        problems = claim_problems(token.claims, self._env)
        signature_ok, signature_detail = verify_signature_locally(token.value, self._env)
        try:
            listing = await self.list_instructions(page=1, page_size=1)
        except PreflightError as error:
            confirmed, detail = False, str(error)
        else:
            confirmed = True
            detail = (
                f"the admin API at {self.base_url}/admin/v1 accepted the token "
                f"({listing.total} assessment instruction(s) visible)"
            )
        return {
            "source": token.source,
            "claims": claims,
            "claim_problems": problems,
            "signature": {"verified": signature_ok, "detail": signature_detail},
            "confirmed": confirmed,
            "detail": detail,
        }

    # --- plumbing ------------------------------------------------------------------------

    def _require_token(self, what: str) -> AdminToken:
        if self.token is None:
            raise ConfigurationError(
                f"{what} needs an admin token for {self.base_url}/admin/v1, and none was given.",
                next_step="set HULEEDU_SERVICE_ACCOUNT_TOKEN or HULEEDU_ADMIN_TOKEN "
                "(or JWT_SECRET_KEY in development)",
            )
        return self.token

    @staticmethod
    def _correlation_headers() -> dict[str, str]:
        return {"X-Correlation-ID": str(uuid.uuid4()), "Accept": "application/json"}

    async def _send(
        self,
        method: str,
        url: str,
        *,
        what: str,
        headers: dict[str, str],
        params: Mapping[str, str | int] | None = None,
        json: Any = None,
    ) -> httpx.Response:
        async def attempt() -> httpx.Response:
            return await self._http.request(method, url, headers=headers, params=params, json=json)

        try:
            return await send_with_retries(attempt, self.retry, description=f"{method} {url}")
        except httpx.TimeoutException as error:
            raise ServiceUnavailableError(
                f"{what}: {method} {url} timed out after {self.retry.attempts} attempt(s) "
                f"({type(error).__name__}).",
                next_step=UNAVAILABLE_NEXT_STEP,
                url=url,
            ) from error
        except httpx.TransportError as error:
            raise ServiceUnavailableError(
                f"{what}: cannot reach {url} after {self.retry.attempts} attempt(s) "
                f"({type(error).__name__}: {error}).",
                next_step=UNAVAILABLE_NEXT_STEP,
                url=url,
            ) from error

    async def _admin_get(
        self,
        path: str,
        *,
        what: str,
        params: Mapping[str, str | int] | None = None,
        assignment_scoped: bool = True,
    ) -> tuple[Any, str, httpx.Response]:
        token = self._require_token(what)
        url = f"{self.base_url}{path}"
        headers = self._correlation_headers() | token.authorization_header()
        response = await self._send("GET", url, what=what, headers=headers, params=params)
        if response.status_code == 200:
            return _json_or_raise(response, url, what=what), url, response
        raise await self._admin_error(response, url, what, assignment_scoped=assignment_scoped)

    async def _admin_error(
        self, response: httpx.Response, url: str, what: str, *, assignment_scoped: bool
    ) -> PreflightError:
        status = response.status_code
        parsed = _parsed_error(response)
        detail = _admin_error_detail(parsed, response)
        if status in (401, 403):
            kind = "authentication" if status == 401 else "authorisation (role 'admin' missing?)"
            return PreflightAuthError(
                f"{what}: CJ refused the admin token ({kind}; HTTP {status}) at {url}: {detail}. "
                f"Token source: {self._token_source()}.",
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
            return await self._explain_generic_500(url, what, assignment_scoped=assignment_scoped)
        if status >= 500:
            return ServiceUnavailableError(
                f"{what}: {url} answered HTTP {status} after {self.retry.attempts} attempt(s): "
                f"{detail}",
                next_step=UNAVAILABLE_NEXT_STEP,
                url=url,
            )
        return PreflightError(
            f"{what}: unexpected HTTP {status} from {url}: {detail}",
            next_step="check CJ_SERVICE_URL and the CJ service log",
            url=url,
        )

    async def _explain_generic_500(
        self, url: str, what: str, *, assignment_scoped: bool
    ) -> PreflightError:
        """HuleEdu answers every admin error with the same 500 (H.2); tell the causes apart."""
        head = (
            f"{what}: {url} answered HTTP 500 with HuleEdu's generic body "
            '("Internal server error") after '
            f"{self.retry.attempts} attempt(s). HuleEdu returns this for every admin error "
            "(contract H.2), so it means one of: auth, not found, server fault. Local checks: "
        )
        token = self.token
        problems = claim_problems(token.claims if token else None, self._env)
        if problems:
            return PreflightAuthError(
                head
                + "the token's claims (decoded locally) show: "
                + "; ".join(problems)
                + f" (token source: {self._token_source()}) → most likely auth.",
                next_step=AUTH_NEXT_STEP,
                url=url,
            )
        checks = ["the token's claims look valid (exp in the future, roles ∋ admin, aud, iss)"]
        if token is not None:
            signature_ok, signature_detail = verify_signature_locally(token.value, self._env)
            checks.append(f"signature {signature_detail}")
            if signature_ok is False:
                return PreflightAuthError(
                    head + "; ".join(checks) + " → most likely auth.",
                    next_step=AUTH_NEXT_STEP,
                    url=url,
                )
        if assignment_scoped:
            probe_ok, probe_detail = await self._probe_listing()
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

    async def _probe_listing(self) -> tuple[bool, str]:
        """List one instruction with the same token: success proves auth works."""
        try:
            await self.list_instructions(page=1, page_size=1)
        except Eng5Error as error:
            first_line = error.message.split(". ", 1)[0]
            return False, f"listing instructions with the same token failed too ({first_line})"
        return True, "listing instructions with the same token succeeded, so auth works"

    def _token_source(self) -> str:
        return self.token.source if self.token else "none"

    @staticmethod
    def _validate(model: type[ModelT], body: Any, url: str, response: httpx.Response) -> ModelT:
        try:
            return model.model_validate(body)
        except ValidationError as error:
            first = error.errors()[0]
            location = ".".join(str(part) for part in first["loc"]) or "(body)"
            raise PreflightError(
                f"{url} answered HTTP {response.status_code} with JSON that is not a "
                f"{model.__name__} ({location}: {first['msg']}); body starts: "
                f"{_excerpt(response.text)!r}",
                next_step="check that CJ_SERVICE_URL points at the CJ Assessment Service and "
                "that its version matches the HuleEdu contract",
                url=url,
            ) from error


def _json_or_raise(response: httpx.Response, url: str, *, what: str = "CJ") -> Any:
    try:
        return response.json()
    except ValueError as error:
        raise PreflightError(
            f"{what}: {url} answered HTTP {response.status_code} with a body that is not JSON; "
            f"it starts: {_excerpt(response.text)!r}",
            next_step="check that CJ_SERVICE_URL points at the CJ Assessment Service "
            "(not a proxy or another service)",
            url=url,
        ) from error


def _parsed_error(
    response: httpx.Response,
) -> AdminErrorBody | GenericServerErrorBody | FlatErrorBody | None:
    try:
        body = response.json()
    except ValueError:
        return None
    return parse_admin_error(body)


def _admin_error_detail(
    parsed: AdminErrorBody | GenericServerErrorBody | FlatErrorBody | None,
    response: httpx.Response,
) -> str:
    if isinstance(parsed, AdminErrorBody):
        error = parsed.error
        extra = f" {error.details}" if error.details else ""
        return f"{error.code}: {error.message}{extra}"
    if isinstance(parsed, GenericServerErrorBody):
        return f"{parsed.error}: {parsed.message}"
    if isinstance(parsed, FlatErrorBody):
        return parsed.error
    return repr(_excerpt(response.text)) if response.text else "(empty body)"


def _flat_error_text(response: httpx.Response) -> str:
    parsed = _parsed_error(response)
    if isinstance(parsed, FlatErrorBody | GenericServerErrorBody | AdminErrorBody):
        return _admin_error_detail(parsed, response)
    return repr(_excerpt(response.text)) if response.text else "(empty body)"


# --- preflights (R3, R4) -----------------------------------------------------------------


@dataclass(frozen=True)
class AssignmentInfo:
    """What the assignment preflight learned from CJ (R3: CJ owns the grade scale)."""

    assignment_id: str
    grade_scale: str
    context_origin: str
    student_prompt_present: bool
    instructions_id: int
    student_prompt_storage_id: str | None = None


@dataclass(frozen=True)
class AnchorInfo:
    """What the anchor preflight learned: anchors for the instruction's scale and overall."""

    assignment_id: str
    grade_scale: str
    anchor_count: int
    total: int
    by_scale: dict[str, int]
    labels: tuple[str, ...]


async def assignment_preflight(
    client: CJAdminClient,
    assignment_id: str,
    *,
    expected_grade_scale: str | None,
    mode: PreflightMode,
    rubric_override: bool,
) -> AssignmentInfo:
    """R3: resolve the assignment through CJ and check it suits ``mode``.

    Raises :class:`GradeScaleMismatchError` (both values quoted), :class:`PreflightError` when
    execute has no student prompt, :class:`ConfigurationError` for a rubric override on a
    ``canonical_national`` assignment in execute, and the client's mapped HTTP errors.
    """
    if not assignment_id or not assignment_id.strip():
        raise ConfigurationError(
            "The assignment id is empty.", next_step="pass the CJ assignment id (a UUID)"
        )
    row = await client.get_assignment(assignment_id)
    url = f"{client.base_url}/admin/v1/assessment-instructions/assignment/{assignment_id}"
    if row.assignment_id != assignment_id:
        raise PreflightError(
            f"CJ answered the lookup of assignment {assignment_id!r} with instructions for "
            f"assignment_id={row.assignment_id!r} (course_id={row.course_id!r}).",
            next_step="check the assignment id; inspect with cj-admin instructions list",
            url=url,
        )
    if expected_grade_scale is not None:
        if not expected_grade_scale.strip():
            raise ConfigurationError(
                "The expected grade scale is blank.",
                next_step=f"omit it, or set it to CJ's value {row.grade_scale!r}",
            )
        if expected_grade_scale != row.grade_scale:
            raise GradeScaleMismatchError(
                f"Grade scale mismatch for assignment {assignment_id}: expected "
                f"{expected_grade_scale!r}, but CJ's assessment_instructions say "
                f"{row.grade_scale!r}.",
                next_step="CJ owns the grade scale: fix the expectation, or recreate the "
                "assignment's instructions with the intended scale (cj-admin instructions)",
                url=url,
            )
    prompt_present = bool(row.student_prompt_storage_id)
    if mode == "execute" and not prompt_present:
        raise PreflightError(
            f"Assignment {assignment_id} has no student prompt in CJ "
            "(student_prompt_storage_id is empty); execute needs one for the comparisons.",
            next_step=f"upload a prompt: cj-admin prompts upload --assignment-id {assignment_id} "
            "--prompt-file <file>",
            url=url,
        )
    if (
        mode == "execute"
        and rubric_override
        and row.context_origin == ContextOrigin.CANONICAL_NATIONAL.value
    ):
        raise ConfigurationError(
            f"Assignment {assignment_id} has context_origin=canonical_national, where CJ "
            "rejects a judge rubric override (contract E.2), and this run sets one.",
            next_step="drop the judge rubric override, or use a research_experiment assignment",
        )
    return AssignmentInfo(
        assignment_id=assignment_id,
        grade_scale=row.grade_scale,
        context_origin=row.context_origin,
        student_prompt_present=prompt_present,
        instructions_id=row.id,
        student_prompt_storage_id=row.student_prompt_storage_id,
    )


async def anchor_preflight(client: CJAdminClient, assignment_id: str) -> AnchorInfo:
    """R4: anchors are a CJ precondition; zero for the instruction's scale is an error."""
    summary = await client.get_anchor_summary(assignment_id)
    info = AnchorInfo(
        assignment_id=summary.assignment_id,
        grade_scale=summary.grade_scale,
        anchor_count=summary.anchor_count,
        total=summary.anchor_count_total,
        by_scale=dict(summary.anchor_count_by_scale),
        labels=tuple(item.anchor_label for item in summary.anchors),
    )
    if info.anchor_count <= 0:
        elsewhere = ""
        if info.total > 0:
            elsewhere = (
                f" ({info.total} anchor(s) exist for other scales: {info.by_scale}; CJ only "
                "uses anchors of the instruction's scale)"
            )
        raise AnchorsMissingError(
            f"Assignment {assignment_id} has no anchors for its grade scale "
            f"{info.grade_scale!r}{elsewhere}.",
            next_step=REGISTER_NEXT_STEP,
            url=f"{client.base_url}/admin/v1/anchors/assignment/{assignment_id}",
        )
    return info


# --- register-anchors --------------------------------------------------------------------


@dataclass(frozen=True)
class AnchorFile:
    """One anchor essay ready to register: its file, label (stem), grade and extracted text."""

    path: Path
    label: str
    grade: str
    text: str

    @classmethod
    def from_path(cls, path: Path, text: str) -> AnchorFile:
        """Label = file stem, grade = HuleEdu's file-name rule; a bad name is an InventoryError."""
        try:
            grade = grade_from_filename(path.name)
        except ValueError as error:
            raise InventoryError(
                str(error), next_step="rename the file so it ends in its grade, e.g. x_C+.docx"
            ) from error
        return cls(path=path, label=path.stem, grade=grade, text=text)


@dataclass(frozen=True)
class RegisteredAnchor:
    label: str
    grade: str
    file_name: str
    anchor_id: int
    storage_id: str


@dataclass(frozen=True)
class RegistrationReport:
    """Outcome of :func:`register_anchors`, with the read-back verdict per label (H.1)."""

    assignment_id: str
    grade_scale: str
    url: str
    registered: tuple[RegisteredAnchor, ...]
    inserted: tuple[str, ...]
    updated: tuple[str, ...]
    not_persisted: tuple[str, ...]
    anchor_count_after: int

    @property
    def all_persisted(self) -> bool:
        return not self.not_persisted

    def summary(self) -> str:
        """One paragraph for the operator."""
        text = (
            f"Registered {len(self.registered)} anchor(s) for assignment {self.assignment_id} "
            f"(scale {self.grade_scale}) via {self.url}: {len(self.inserted)} inserted, "
            f"{len(self.updated)} updated; CJ now lists {self.anchor_count_after} anchor(s)."
        )
        if self.not_persisted:
            text += (
                f" ACCEPTED BUT NOT PERSISTED ({len(self.not_persisted)}): "
                f"{', '.join(self.not_persisted)} — CJ answered 201 but the read-back does not "
                "show them (HuleEdu's admin writes are not committed, contract H.1)."
            )
        return text


def _validate_anchor_files(anchors: Sequence[AnchorFile], grade_scale: str) -> None:
    """Everything CJ would reject, checked before the first request (nothing half-sent)."""
    scale = get_scale(grade_scale)
    allowed = list(scale.grades)
    if scale.below_lowest_grade is not None:
        allowed.append(f"{scale.below_lowest_grade} (below lowest)")
    problems: list[str] = []
    seen: dict[str, str] = {}
    for anchor in anchors:
        name = anchor.path.name
        if not validate_grade_for_scale(anchor.grade, grade_scale):
            problems.append(f"{name}: grade {anchor.grade!r} is not on scale {grade_scale}")
        if len(anchor.text) < REGISTER_ANCHOR_MIN_TEXT:
            problems.append(
                f"{name}: text has {len(anchor.text)} characters; CJ requires at least "
                f"{REGISTER_ANCHOR_MIN_TEXT}"
            )
        if not anchor.label.strip():
            problems.append(f"{name}: the anchor label is blank")
        elif anchor.label in seen:
            problems.append(
                f"{name}: label {anchor.label!r} is also used by {seen[anchor.label]}; CJ keys "
                "anchors by label, so one would overwrite the other"
            )
        else:
            seen[anchor.label] = name
    if problems:
        raise InventoryError(
            f"{len(problems)} anchor problem(s) for scale {grade_scale} (grades: "
            f"{', '.join(allowed)}); nothing was sent:\n  " + "\n  ".join(problems),
            next_step="rename or fix the listed files (the grade is the last '_' part of the "
            "file name) and re-run",
        )


async def register_anchors(
    client: CJAdminClient,
    assignment_id: str,
    anchors: Sequence[AnchorFile],
    *,
    expected_grade_scale: str | None = None,
) -> RegistrationReport:
    """Register anchors one by one after validating all of them, then read back (H.1).

    A failure part-way raises :class:`AnchorRegistrationError` with exact ``registered`` and
    ``pending`` labels (the failing one is pending).
    """
    if not anchors:
        raise InventoryError(
            f"No anchor essays to register for assignment {assignment_id}.",
            next_step="put anchor files named <...>_<grade>.docx or .txt in the anchor folder",
        )
    info = await assignment_preflight(
        client,
        assignment_id,
        expected_grade_scale=expected_grade_scale,
        mode="register-anchors",
        rubric_override=False,
    )
    try:
        get_scale(info.grade_scale)
    except ValueError as error:
        raise PreflightError(
            f"CJ says assignment {assignment_id} uses grade scale {info.grade_scale!r}, which "
            f"this harness does not know: {error}",
            next_step="use a registered scale for the assignment (cj-admin scales list)",
        ) from error
    _validate_anchor_files(anchors, info.grade_scale)

    before = await client.get_anchor_summary(assignment_id)
    labels_before = {item.anchor_label for item in before.anchors}
    register_url = f"{client.base_url}/api/v1/anchors/register"
    registered: list[RegisteredAnchor] = []
    for index, anchor in enumerate(anchors):
        request = RegisterAnchorRequest(
            assignment_id=assignment_id,
            grade=anchor.grade,
            anchor_label=anchor.label,
            essay_text=anchor.text,
        )
        try:
            response = await client.register_anchor(request)
        except Eng5Error as error:
            done = tuple(item.label for item in registered)
            pending = tuple(item.label for item in anchors[index:])
            raise AnchorRegistrationError(
                f"Anchor registration stopped at {anchor.path.name} ({index + 1} of "
                f"{len(anchors)}): {error.message} Registered: {len(done)}; pending: "
                f"{len(pending)} ({', '.join(pending)}).",
                next_step="fix the cause and re-run register-anchors; re-registering the "
                f"{len(done)} done is an upsert by label (same rows, no duplicates)",
                registered=done,
                pending=pending,
            ) from error
        registered.append(
            RegisteredAnchor(
                label=anchor.label,
                grade=anchor.grade,
                file_name=anchor.path.name,
                anchor_id=response.anchor_id,
                storage_id=response.storage_id,
            )
        )
        logger.info("registered anchor %s (grade %s)", anchor.label, anchor.grade)

    after = await client.get_anchor_summary(assignment_id)
    stored = {item.anchor_label: item for item in after.anchors}
    inserted: list[str] = []
    updated: list[str] = []
    not_persisted: list[str] = []
    for item in registered:
        row = stored.get(item.label)
        # A rolled-back update leaves the old row pointing at the old blob.
        if row is None or row.text_storage_id != item.storage_id:
            not_persisted.append(item.label)
        elif item.label in labels_before:
            updated.append(item.label)
        else:
            inserted.append(item.label)
    if not_persisted:
        logger.warning(
            "CJ accepted %d anchor(s) that the read-back does not show: %s",
            len(not_persisted),
            ", ".join(not_persisted),
        )
    return RegistrationReport(
        assignment_id=assignment_id,
        grade_scale=info.grade_scale,
        url=register_url,
        registered=tuple(registered),
        inserted=tuple(inserted),
        updated=tuple(updated),
        not_persisted=tuple(not_persisted),
        anchor_count_after=after.anchor_count,
    )
