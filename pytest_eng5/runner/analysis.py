"""Post-run analysis: comparisons from callbacks, run statistics, anchor alignment, gates."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from pytest_eng5.contracts import AssessmentResultV1, LLMComparisonResultV1, get_scale
from pytest_eng5.errors import GateError
from pytest_eng5.runner.alignment import AlignmentComparison, AlignmentResult, build_alignment
from pytest_eng5.runner.alignment_report import render_markdown, render_plot
from pytest_eng5.runner.bt_model import Comparison, fit_maximum_likelihood
from pytest_eng5.runner.config import Gates
from pytest_eng5.runner.inventory import EssayFile, Inventory, sha256_hex
from pytest_eng5.runner.record import (
    AnchorRecord,
    ComparisonGraph,
    DocumentBlob,
    RunInputs,
    StudentRecord,
)
from pytest_eng5.runner.run_statistics import summarize


def preload(*, plotting: bool) -> None:
    """Import the heavy analysis libraries (scipy, matplotlib) ahead of use; run it in a
    thread while a batch is awaited, so the import does not add to the run's duration."""
    import scipy.sparse.csgraph
    import scipy.stats  # noqa: F401

    if plotting:
        import matplotlib.backends.backend_agg  # noqa: F401


@dataclass
class Judgements:
    """The successful comparisons of a run, and how many callbacks carried no winner."""

    comparisons: list[Comparison] = field(default_factory=list)
    detailed: list[AlignmentComparison] = field(default_factory=list)
    failed: int = 0


def judgements(
    callbacks: Sequence[LLMComparisonResultV1], *, among: Collection[str] | None = None
) -> Judgements:
    """Winner/loser pairs from callbacks; error callbacks (no winner) are only counted.

    ``among`` keeps comparisons whose two essays are both in it (e.g. the anchors).
    """
    found = Judgements()
    for callback in callbacks:
        meta = callback.request_metadata
        a, b = str(meta.get("essay_a_id", "")), str(meta.get("essay_b_id", ""))
        if callback.winner is None or not a or not b:
            found.failed += 1
            continue
        if among is not None and (a not in among or b not in among):
            continue
        first_won = callback.winner.value == "Essay A"
        winner, loser = (a, b) if first_won else (b, a)
        found.comparisons.append(Comparison(winner, loser, callback.model, first_won))
        found.detailed.append(
            AlignmentComparison(winner, loser, callback.confidence, callback.justification)
        )
    return found


def run_statistics(comparisons: Sequence[Comparison]) -> dict[str, Any]:
    """SSR (with interval), split-half, N_CR, SEs, misfits and position bias over the
    compared essays, from the harness's ML fit ({} when too few)."""
    ids = sorted({c.winner for c in comparisons} | {c.loser for c in comparisons})
    if len(ids) < 2:
        return {}
    return summarize(ids, comparisons).to_dict()


def student_projections(result: AssessmentResultV1 | None) -> dict[str, str]:
    """Projected grade per student essay id, from the rich result event."""
    if result is None:
        return {}
    return {e.essay_id: e.letter_grade for e in result.essay_results if not e.is_anchor}


def anchor_alignment(
    essays: Mapping[str, EssayFile], found: Judgements, grade_scale: str
) -> AlignmentResult:
    """Bradley–Terry order of the anchors against their expert grades."""
    grades = {eid: e.grade for eid, e in essays.items() if e.grade}
    fit = fit_maximum_likelihood(sorted(essays), found.comparisons)
    return build_alignment(
        anchor_grades=grades,
        grade_order=get_scale(grade_scale).grades,
        fit=fit,
        comparisons=found.detailed,
    )


def write_alignment(
    alignment: AlignmentResult,
    folder: Path,
    *,
    batch_uuid: str,
    batch_label: str,
    system_prompt: str | None,
    rubric: str | None,
) -> None:
    """``alignment.md`` and ``alignment.png`` in the evidence folder."""
    markdown = render_markdown(
        alignment,
        batch_uuid=batch_uuid,
        batch_label=batch_label,
        system_prompt=system_prompt,
        rubric=rubric,
    )
    (folder / "alignment.md").write_text(markdown, encoding="utf-8")
    render_plot(alignment, folder / "alignment.png", batch_uuid=batch_uuid, batch_label=batch_label)


def comparison_graph(
    essay_ids: Iterable[str], comparisons: Sequence[Comparison]
) -> ComparisonGraph:
    """Connected components and N_CR of the batch's comparison graph.

    Nodes are the essays sent plus any essay the comparisons name (CJ's own anchors); an
    essay never compared is a component of its own.
    """
    nodes = sorted(
        set(essay_ids) | {c.winner for c in comparisons} | {c.loser for c in comparisons}
    )
    if not nodes:
        return ComparisonGraph(essays=0, comparisons=0, components=0, n_cr=0.0)
    index = {essay_id: position for position, essay_id in enumerate(nodes)}
    rows = [index[c.winner] for c in comparisons]
    cols = [index[c.loser] for c in comparisons]
    adjacency = coo_matrix(([1] * len(rows), (rows, cols)), shape=(len(nodes), len(nodes)))
    components, _ = connected_components(adjacency, directed=False)
    return ComparisonGraph(
        essays=len(nodes),
        comparisons=len(comparisons),
        components=int(components),
        n_cr=round(2 * len(comparisons) / len(nodes), 2),
    )


def missing_essays(sent: Iterable[str], result: AssessmentResultV1 | None) -> list[str]:
    """Essays sent that CJ's rich result does not score ([] when there is no result)."""
    if result is None:
        return []
    scored = {essay.essay_id for essay in result.essay_results}
    return sorted(essay_id for essay_id in sent if essay_id not in scored)


def check_gates(
    gates: Gates,
    mode: str,
    statistics: Mapping[str, object],
    alignment: Mapping[str, object],
    batch_uuid: str,
) -> list[str]:
    """Raise :class:`GateError` for the first configured gate the run misses.

    tau-b measures the anchors' order, which only anchor-align runs produce: in other modes
    its gate does not apply, and the returned notes say so.
    """
    check_position_bias(gates.max_position_bias, statistics, batch_uuid)
    notes: list[str] = []
    checks: list[tuple[str, float | None, object]] = [
        ("SSR", gates.min_ssr, statistics.get("ssr")),
        ("N_CR", gates.min_n_cr, statistics.get("n_cr")),
    ]
    if mode == "anchor-align-test":
        checks.append(("Kendall tau-b", gates.min_tau_b, alignment.get("tau_b")))
    elif gates.min_tau_b is not None:
        notes.append(
            f"the tau-b gate ({gates.min_tau_b:.3f}) applies to anchor-align runs only; "
            f"not checked for this {mode} run"
        )
    for name, threshold, value in checks:
        if threshold is None:
            continue
        if not isinstance(value, int | float):
            raise GateError(
                f"{name} could not be computed for batch {batch_uuid} (too few comparisons "
                f"or essays), so the gate {threshold:.3f} is not met",
                next_step="collect more comparisons, or drop the gate for this run",
            )
        if float(value) < threshold:
            raise GateError(
                f"{name} {float(value):.3f} is below the gate {threshold:.3f} (batch {batch_uuid})",
                next_step="collect more comparisons (raise max comparisons), or review "
                "the judge/prompt; the evidence folder has the details",
            )
    return notes


def check_position_bias(
    limit: float | None, statistics: Mapping[str, object], batch_uuid: str
) -> None:
    """The position-bias gate: |share won by the first-presented essay − 0.5| ≤ ``limit``."""
    if limit is None:
        return
    share = statistics.get("position_bias")
    if not isinstance(share, int | float):
        raise GateError(
            f"position bias could not be computed for batch {batch_uuid} (no comparison "
            f"said which essay was presented first), so the gate {limit:.3f} is not met",
            next_step="collect comparisons whose callbacks carry essay_a_id/essay_b_id, "
            "or drop --eng5-max-position-bias",
        )
    if abs(float(share) - 0.5) > limit:
        low, high = statistics.get("position_bias_ci_low"), statistics.get("position_bias_ci_high")
        raise GateError(
            f"the first-presented essay won {float(share):.3f} of the comparisons (95 % CI "
            f"{low}-{high}), further than {limit:.3f} from 0.5 (batch {batch_uuid})",
            next_step="the judge prefers one position: review the prompt or the model, or "
            "randomise/swap the presentation order; the evidence folder has the details",
        )


def artefact_inputs(inventory: Inventory, essays: Mapping[str, EssayFile]) -> RunInputs:
    """The record's ``inputs``: the instructions, and every essay under the id sent to CJ."""
    blob = None
    if inventory.instructions_path is not None and inventory.instructions_text is not None:
        blob = DocumentBlob(
            source_path=inventory.instructions_path.name,
            checksum=sha256_hex(inventory.instructions_text.encode()),
            content=inventory.instructions_text,
        )
    anchors = [
        AnchorRecord(
            anchor_id=e.local_id,
            essay_id=eid,
            file_name=e.name,
            anchor_grade=e.grade,
            checksum=e.file_sha256,
        )
        for eid, e in essays.items()
        if e.role == "anchor"
    ]
    students = [
        StudentRecord(essay_id=eid, file_name=e.name, checksum=e.file_sha256)
        for eid, e in essays.items()
        if e.role == "student"
    ]
    return RunInputs(instructions=blob, prompt_reference=blob, anchors=anchors, students=students)
