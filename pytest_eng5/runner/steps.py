"""The steps every mode is made of: inventory, CJ preflight (R3/R4), R1 capacity, the evidence
folder, LLM overrides and the (cached) uploads."""

from __future__ import annotations

from collections.abc import Mapping

from pytest_eng5.contracts import LLMConfigOverrides
from pytest_eng5.core import RUNNER_FALLBACK_GRADE_SCALE, Endpoints, PreflightMode
from pytest_eng5.errors import ConfigurationError
from pytest_eng5.runner.auth import resolve_admin_token
from pytest_eng5.runner.cached_upload import UploadItem, upload_with_cache
from pytest_eng5.runner.capacity import RunMode, ensure_comparison_capacity
from pytest_eng5.runner.cj_admin import CJAdminClient
from pytest_eng5.runner.config import RunConfig
from pytest_eng5.runner.content import ContentClient
from pytest_eng5.runner.evidence import EvidenceFolder
from pytest_eng5.runner.identity import BatchIdentity
from pytest_eng5.runner.inventory import EssayFile, Inventory, collect_inventory, make_essay_key
from pytest_eng5.runner.preflight import AssignmentInfo, anchor_preflight, assignment_preflight
from pytest_eng5.runner.prompts import BUILTIN_SYSTEM_PROMPT, load_prompt_file
from pytest_eng5.runner.results import RunResult
from pytest_eng5.runner.upload_cache import UploadCache

ANCHOR_ALIGN_PREFIX = "student::"


def request_essay_id(local_id: str, identity: BatchIdentity, max_length: int = 36) -> str:
    """Essay id sent to CJ: the local id plus 8 hex of the batch uuid.

    CJ's ``els_essay_id`` is a global primary key, so ids must differ between concurrent
    batches that send the same files; re-attaching keeps them stable.
    """
    return f"{make_essay_key(local_id, max_length - 9)}-{identity.batch_uuid.hex[:8]}"


def anchor_keys(inventory: Inventory, max_length: int = 18) -> dict[str, EssayFile]:
    """Short, readable keys for anchors sent as students (``student::<key>-<batch>`` must fit
    36 characters): the anchors CSV id (``ANCHOR-001``) when there is one, else the end of the
    file stem (``vt_001_F+``); hashed keys only when those would clash."""
    keys: dict[str, EssayFile] = {}
    for essay in inventory.anchors:
        readable = inventory.csv_ids.get(essay.name) or essay.path.stem[-max_length:]
        key = make_essay_key(readable.lstrip("_-"), max_length)
        if key in keys:
            return {make_essay_key(e.local_id, max_length): e for e in inventory.anchors}
        keys[key] = essay
    return keys


def student_essays(inventory: Inventory, identity: BatchIdentity) -> dict[str, EssayFile]:
    """The student essays under the ids sent to CJ."""
    return {request_essay_id(e.local_id, identity): e for e in inventory.students}


def anchors_as_students(inventory: Inventory, identity: BatchIdentity) -> dict[str, EssayFile]:
    """The anchors under the student ids an anchor-align batch sends them with."""
    return {
        ANCHOR_ALIGN_PREFIX + request_essay_id(key, identity, 27): essay
        for key, essay in anchor_keys(inventory).items()
    }


def read_inventory(
    config: RunConfig, *, with_anchors: bool, grade_scale: str | None = None
) -> Inventory:
    return collect_inventory(
        config.assets,
        grade_scale=grade_scale or config.expected_grade_scale or RUNNER_FALLBACK_GRADE_SCALE,
        with_anchors=with_anchors,
    )


def require_assignment(config: RunConfig, mode: str) -> str:
    if not config.assignment_id:
        raise ConfigurationError(
            f"{mode} needs an assignment id", next_step="set --eng5-assignment-id"
        )
    return config.assignment_id


def admin_client(endpoints: Endpoints, config: RunConfig) -> CJAdminClient:
    """The CJ admin client; the run's typed credentials win over the stack's environment."""
    if not endpoints.cj_url:
        raise ConfigurationError(
            "no CJ service URL to run the CJ admin preflight against",
            next_step="set --eng5-cj-url or CJ_SERVICE_URL (or use the embedded stack)",
        )
    env = {**endpoints.env, **config.credentials_env()}
    return CJAdminClient(endpoints.cj_url, token=resolve_admin_token(env), env=env)


async def assignment_info(
    client: CJAdminClient, config: RunConfig, assignment_id: str, mode: PreflightMode
) -> AssignmentInfo:
    return await assignment_preflight(
        client,
        assignment_id,
        expected_grade_scale=config.expected_grade_scale,
        mode=mode,
        rubric_override=config.llm.rubric_file is not None,
    )


async def preflight(
    config: RunConfig,
    endpoints: Endpoints,
    result: RunResult,
    mode: PreflightMode,
    *,
    anchors_needed: bool,
) -> int | None:
    """R3 (+R4 for execute): resolve the assignment in CJ; return CJ's anchor count."""
    if not config.assignment_id:
        result.grade_scale = config.expected_grade_scale or RUNNER_FALLBACK_GRADE_SCALE
        return None
    async with admin_client(endpoints, config) as client:
        info = await assignment_info(client, config, config.assignment_id, mode)
        result.grade_scale = info.grade_scale
        result.messages.append(
            f"assignment {info.assignment_id}: grade_scale={info.grade_scale}, "
            f"context_origin={info.context_origin}, student prompt "
            f"{'present' if info.student_prompt_present else 'missing'}"
        )
        if not anchors_needed:
            return None
        anchors = await anchor_preflight(client, config.assignment_id)
    result.anchors_in_cj = anchors.anchor_count
    return int(anchors.anchor_count)


def check_capacity(
    config: RunConfig, result: RunResult, mode: RunMode, anchors: int, students: int
) -> None:
    report = ensure_comparison_capacity(
        mode=mode,
        anchor_count=anchors,
        student_count=students,
        max_comparisons=config.max_comparisons,
        cj_cap=config.cj_max_comparisons,
    )
    result.capacity = report
    if report.warning:
        result.messages.append("warning: " + report.warning)


def open_evidence(config: RunConfig, result: RunResult) -> EvidenceFolder:
    evidence = EvidenceFolder(config.evidence_dir, result.identity)
    result.evidence_dir = evidence.folder
    evidence.log.info(
        "run started",
        extra={
            "mode": result.mode,
            "batch_uuid": result.batch_uuid,
            "batch_label": result.identity.batch_label,
        },
    )
    return evidence


def llm_overrides(config: RunConfig, mode: str) -> LLMConfigOverrides | None:
    llm = config.llm
    system_prompt = load_prompt_file(llm.system_prompt_file, "system prompt")
    rubric = load_prompt_file(llm.rubric_file, "rubric")
    if mode == "anchor-align-test" and system_prompt is None:
        system_prompt = BUILTIN_SYSTEM_PROMPT
    values = {
        "provider_override": llm.provider,
        "model_override": llm.model,
        "temperature_override": llm.temperature,
        "max_tokens_override": llm.max_tokens,
        "system_prompt_override": system_prompt,
        "judge_rubric_override": rubric,
        "reasoning_effort": llm.reasoning_effort,
        "output_verbosity": llm.output_verbosity,
    }
    if all(v is None for v in values.values()):
        return None
    return LLMConfigOverrides.model_validate(values)


async def upload(
    config: RunConfig,
    endpoints: Endpoints,
    result: RunResult,
    essays: Mapping[str, EssayFile],
    evidence: EvidenceFolder,
) -> dict[str, str]:
    """Upload the essays (reusing cached storage ids); return storage id per essay id."""
    if not endpoints.content_url:
        raise ConfigurationError(
            "no Content Service URL to upload essays to",
            next_step="set --eng5-content-url or CONTENT_SERVICE_URL",
        )
    cache = UploadCache(config.upload_cache_path, endpoints.content_url)
    items = [
        UploadItem(key_sha256=e.text_sha256, name=e.name, data=e.text.encode())
        for e in essays.values()
    ]
    async with ContentClient(endpoints.content_url) as client:
        outcome = await upload_with_cache(
            cache,
            client,
            items,
            force_reupload=config.force_reupload,
            verify_cached=config.verify_uploads or endpoints.content_is_ephemeral,
        )
    result.uploaded, result.reused = outcome.uploaded, outcome.reused
    if outcome.ignored_reason:
        result.messages.append(f"upload cache ignored ({outcome.ignored_reason})")
    evidence.log.info(
        "uploads done",
        extra={
            "uploaded": outcome.uploaded,
            "reused": outcome.reused,
            "cache": str(config.upload_cache_path),
        },
    )
    return {eid: outcome.storage_ids[e.text_sha256] for eid, e in essays.items()}
