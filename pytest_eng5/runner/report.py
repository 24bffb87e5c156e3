"""The run report written for every completed run: ``report.md`` and ``scale.png``.

Both are drawn from the artefact document alone (``assessment_run.json`` as a dict), so what
the report says is what the artefact holds: the harness's statistics and ML scores
(``statistics``), anchors and the CJ service's projected grades (``bt_summary``), identity
(``metadata``).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from pytest_eng5.contracts import get_scale
from pytest_eng5.runner.alignment_report import readable_id

REPORT_NAME: Final = "report.md"
SCALE_NAME: Final = "scale.png"
_DPI: Final = 100
#: The grade CJ sends when it could not project (no usable anchors).
NO_PROJECTION: Final = "U"
#: Above this many essays only the anchors keep a label on the scale plot.
_LABEL_ALL_UP_TO: Final = 60


@dataclass(frozen=True)
class ScaleEntry:
    """One essay on the harness's scale, with what the artefact knows about it."""

    essay_id: str
    theta: float
    se: float
    comparisons: int
    is_anchor: bool
    anchor_grade: str | None
    projected_grade: str | None
    cj_theta: float | None


def scale_entries(doc: Mapping[str, Any]) -> list[ScaleEntry]:
    """The essays of the harness fit, highest theta first, joined with ``bt_summary``."""
    scores: Mapping[str, Mapping[str, Any]] = doc.get("statistics", {}).get("scores") or {}
    summary = {str(entry["essay_id"]): entry for entry in doc.get("bt_summary") or []}
    # anchor-align sends the anchors as students: their grades are in the inputs
    known_grades = {
        str(a["essay_id"]): a.get("anchor_grade")
        for a in (doc.get("inputs") or {}).get("anchors") or []
        if a.get("essay_id")
    }
    entries = []
    for essay_id, score in scores.items():
        cj = dict(summary.get(essay_id, {}))
        if cj.get("anchor_grade") is None and known_grades.get(essay_id):
            cj["anchor_grade"] = known_grades[essay_id]
        entries.append(
            ScaleEntry(
                essay_id=essay_id,
                theta=float(score["theta"]),
                se=float(score["se"]),
                comparisons=int(score.get("comparisons", 0)),
                is_anchor=bool(cj.get("is_anchor")) or bool(cj.get("anchor_grade")),
                anchor_grade=cj.get("anchor_grade"),
                projected_grade=cj.get("grade_projection"),
                cj_theta=cj.get("theta"),
            )
        )
    return sorted(entries, key=lambda e: (-e.theta, e.essay_id))


def grade_bands(
    entries: Sequence[ScaleEntry], grade_order: Sequence[str] = ()
) -> list[tuple[str, float, float, int]]:
    """(grade, lowest θ, highest θ, students) of each projected grade, lowest grade first
    (grades outside ``grade_order`` by the middle of their band, after the known ones)."""
    spans: dict[str, list[float]] = {}
    for entry in entries:
        if entry.projected_grade not in (None, "", NO_PROJECTION) and not entry.is_anchor:
            spans.setdefault(entry.projected_grade, []).append(entry.theta)
    bands = [(grade, min(v), max(v), len(v)) for grade, v in spans.items()]
    known = {grade: i for i, grade in enumerate(grade_order)}
    return sorted(bands, key=lambda b: (known.get(b[0], len(known)), (b[1] + b[2]) / 2.0, b[0]))


def _grade_order(scale_id: Any) -> tuple[str, ...]:
    """Lowest → highest grades of the artefact's scale, below-lowest grade first."""
    try:
        scale = get_scale(str(scale_id))
    except ValueError:
        return ()
    below = (scale.below_lowest_grade,) if scale.below_lowest_grade else ()
    return (*below, *scale.grades)


def _num(value: Any, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def render_markdown(doc: Mapping[str, Any]) -> str:
    """``report.md``: reliability, the comparisons still needed, judge diagnostics, the scale."""
    meta = doc.get("metadata", {})
    stats: Mapping[str, Any] = doc.get("statistics") or {}
    uuid = str(meta.get("batch_uuid", ""))
    lines = [
        f"# Run report: {meta.get('batch_label', '')}",
        "",
        f"- batch uuid: `{uuid}`",
        f"- mode: {meta.get('runner_mode', '')}; grade scale: {meta.get('grade_scale') or '-'}",
        f"- generated: {meta.get('generated_at', '')}",
        "",
        f"![BT scale]({SCALE_NAME})",
        "",
    ]
    if not stats:
        lines += ["No statistics: too few successful comparisons.", ""]
        return "\n".join(lines)
    ci = stats.get("ssr_ci") or {}
    lines += [
        "## Reliability",
        "",
        f"Fit: {stats.get('fit')}. {stats.get('cj_reported_scores', '')}.",
        "",
        "| statistic | value |",
        "|---|---|",
        f"| SSR | {_num(stats.get('ssr'))} |",
        f"| SSR 95 % interval | {_num(stats.get('ssr_ci_low'))} – {_num(stats.get('ssr_ci_high'))}"
        f" ({ci.get('method', '-')}, {ci.get('n_resamples', '-')} resamples, "
        f"seed {ci.get('seed', '-')}) |",
        f"| split-half r (Spearman–Brown) | {_num(stats.get('split_half_r'))} "
        f"({_num(stats.get('split_half_spearman_brown'))}) over {stats.get('split_half_n')} "
        "splits |",
        f"| essays / comparisons | {stats.get('n_items')} / {stats.get('n_comparisons')} |",
        f"| N_CR (comparisons per essay) | {_num(stats.get('n_cr'), 2)} |",
        f"| mean / max SE | {_num(stats.get('mean_se'))} / {_num(stats.get('max_se'))} |",
        f"| comparison graph components | {stats.get('n_components')} |",
        f"| essays never compared | {stats.get('n_uncompared')} |",
        f"| all-win/all-loss essays (eps-adjusted) | {len(stats.get('extreme_adjusted') or [])} |",
        "",
    ]
    needs = stats.get("comparisons_needed") or {}
    lines += [
        "## Comparisons per essay still needed",
        "",
        f"Method: {needs.get('method', '-')}. Projected from this run's SSR "
        f"{_num(stats.get('ssr'))} at N_CR {_num(stats.get('n_cr'), 2)}; '-' when the SSR is "
        "0 (nothing to project from).",
        "",
        "| target SSR | more comparisons per essay |",
        "|---|---|",
        f"| 0.8 | {_num(stats.get('n_cr_more_for_ssr_0.8'), 1)} |",
        f"| 0.9 | {_num(stats.get('n_cr_more_for_ssr_0.9'), 1)} |",
        "",
    ]
    lines += _judge_section(stats)
    lines += _scale_section(doc, uuid)
    return "\n".join(lines)


def _judge_section(stats: Mapping[str, Any]) -> list[str]:
    position = stats.get("position") or {}
    lines = ["## Judge diagnostics", ""]
    if position:
        lines.append(
            f"Position bias: the first-presented essay won {position['first_won']} of "
            f"{position['n']} comparisons, share {_num(stats.get('position_bias'))} (95 % "
            f"{position.get('method', '')} interval {_num(stats.get('position_bias_ci_low'))}"
            f" – {_num(stats.get('position_bias_ci_high'))}; 0.5 is no bias)."
        )
    else:
        lines.append("Position bias: unknown (no comparison said which essay came first).")
    lines += ["", "| judge | infit | outfit | comparisons | misfit |", "|---|---|---|---|---|"]
    flagged = set(stats.get("misfit_judges") or [])
    for judge, fit in (stats.get("judge_fit") or {}).items():
        lines.append(
            f"| {judge} | {_num(fit.get('infit'))} | {_num(fit.get('outfit'))} | {fit.get('n')} "
            f"| {'yes' if judge in flagged else ''} |"
        )
    scripts = stats.get("misfit_scripts") or []
    lines += ["", f"Misfitting essays (infit > mean + 2 SD): {', '.join(scripts) or 'none'}.", ""]
    return lines


def _scale_section(doc: Mapping[str, Any], uuid: str) -> list[str]:
    entries = scale_entries(doc)
    lines = [
        "## Scale",
        "",
        "θ and SE from the harness's ML fit; CJ θ is the score the CJ service reported.",
        "",
        "| rank | essay | anchor grade | projected grade | θ | SE | comparisons | CJ θ |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for rank, e in enumerate(entries, start=1):
        lines.append(
            f"| {rank} | {readable_id(e.essay_id, uuid)} | "
            f"{e.anchor_grade or ('anchor' if e.is_anchor else '')} | "
            f"{e.projected_grade or ''} | {e.theta:.3f} | {e.se:.3f} | {e.comparisons} | "
            f"{_num(e.cj_theta)} |"
        )
    lines.append("")
    return lines


def render_scale_plot(doc: Mapping[str, Any], path: Path) -> None:
    """``scale.png``: the BT scale with ±1.96 SE bars, anchors with their grades, projected
    grade bands; beside it the histogram of comparisons per essay and the key numbers."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D
    from matplotlib.ticker import MaxNLocator

    meta = doc.get("metadata", {})
    stats: Mapping[str, Any] = doc.get("statistics") or {}
    uuid = str(meta.get("batch_uuid", ""))
    entries = list(reversed(scale_entries(doc)))  # lowest at the bottom
    bands = grade_bands(entries, _grade_order(meta.get("grade_scale")))
    scale_height = min(max(4.0, 0.2 * len(entries) + 1.2), 14.0)
    band_height = 0.6 + 0.22 * max(len(bands), 1)
    figure = Figure(figsize=(12.0, scale_height + band_height + 0.6))
    FigureCanvasAgg(figure)
    grid = figure.add_gridspec(
        3,
        2,
        width_ratios=(2.3, 1.0),
        height_ratios=(scale_height / 2, scale_height / 2, band_height),
    )
    scale = figure.add_subplot(grid[0:2, 0])
    rows = list(range(len(entries)))
    colors = ["tab:orange" if e.is_anchor else "tab:blue" for e in entries]
    scale.errorbar(
        [e.theta for e in entries],
        rows,
        xerr=[1.96 * e.se for e in entries],
        fmt="none",
        ecolor="tab:gray",
        elinewidth=1.0,
        capsize=2,
    )
    scale.scatter([e.theta for e in entries], rows, c=colors, s=22, zorder=3)
    _draw_bands(figure.add_subplot(grid[2, 0], sharex=scale), bands)
    label_all = len(entries) <= _LABEL_ALL_UP_TO
    labels = []
    for e in entries:
        name = readable_id(e.essay_id, uuid)
        if e.is_anchor:
            labels.append(f"{name} [{e.anchor_grade or 'anchor'}]")
        else:
            grade = f" ({e.projected_grade})" if e.projected_grade else ""
            labels.append(f"{name}{grade}" if label_all else "")
    scale.set_yticks(rows, labels=labels, fontsize=7 if len(entries) > 30 else 8)
    for tick, entry in zip(scale.get_yticklabels(), entries, strict=True):
        if entry.is_anchor:
            tick.set_color("tab:orange")
            tick.set_fontweight("bold")
    scale.set_ylim(-0.8, len(entries) - 0.2)
    scale.tick_params(axis="x", labelbottom=True)
    scale.set_ylabel("essay (by θ); anchors [grade], students (projected grade)")
    scale.axvline(0.0, color="lightgray", linewidth=0.8, zorder=0)
    handles = [
        Line2D([], [], color="tab:gray", label="±1.96 SE (95 %)"),
        Line2D([], [], marker="o", linestyle="", color="tab:blue", label="student"),
        Line2D([], [], marker="o", linestyle="", color="tab:orange", label="anchor [grade]"),
    ]
    scale.legend(handles=handles, loc="lower right", fontsize=7, framealpha=0.9)
    scale.set_title("Bradley–Terry scale", fontsize=10)

    histogram = figure.add_subplot(grid[0, 1])
    counts = Counter(e.comparisons for e in entries)
    if counts:
        values = sorted(counts)
        histogram.bar(values, [counts[v] for v in values], color="tab:blue", width=0.8)
    histogram.xaxis.set_major_locator(MaxNLocator(integer=True))
    histogram.yaxis.set_major_locator(MaxNLocator(integer=True))
    histogram.set_xlabel("comparisons per essay")
    histogram.set_ylabel("essays")
    histogram.set_title("Comparisons per essay", fontsize=10)

    facts = figure.add_subplot(grid[1:3, 1])
    facts.axis("off")
    facts.text(0.0, 1.0, _facts_text(stats), va="top", ha="left", fontsize=9, family="monospace")
    figure.suptitle(f"{meta.get('batch_label', '')}  ·  batch {uuid}", fontsize=11)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=_DPI, format="png")


def _draw_bands(axes: Any, bands: Sequence[tuple[str, float, float, int]]) -> None:
    """One row per projected grade: the θ range of the students CJ gave that grade."""
    for row, (_, low, high, count) in enumerate(bands):
        axes.plot(
            [low, high],
            [row, row],
            color="tab:green",
            linewidth=6,
            solid_capstyle="butt",
            marker="|",
            markersize=12,
            markeredgewidth=2,
        )
        axes.annotate(
            f"{count}",
            (high, row),
            xytext=(4, 0),
            textcoords="offset points",
            va="center",
            fontsize=7,
        )
    axes.set_yticks(range(len(bands)), labels=[grade for grade, *_ in bands], fontsize=8)
    axes.set_ylim(-0.7, max(len(bands), 1) - 0.3)
    axes.set_ylabel("projected\ngrade", fontsize=8)
    axes.set_xlabel("BT ability θ (logits, harness ML fit)")
    axes.set_title(
        "Projected grade bands: θ range of the students CJ gave each grade (count at the right)"
        if bands
        else "Projected grade bands: none (CJ sent no projected grades)",
        fontsize=8,
    )
    axes.grid(axis="x", color="lightgray", linewidth=0.5)


def _facts_text(stats: Mapping[str, Any]) -> str:
    return "\n".join(
        [
            f"SSR          {_num(stats.get('ssr'))}",
            f"  95 % CI    {_num(stats.get('ssr_ci_low'))} – {_num(stats.get('ssr_ci_high'))}",
            f"N_CR         {_num(stats.get('n_cr'), 2)}",
            f"essays       {stats.get('n_items', '-')}",
            f"comparisons  {stats.get('n_comparisons', '-')}",
            f"components   {stats.get('n_components', '-')}",
            f"first-position wins {_num(stats.get('position_bias'))}",
            f"more per essay for SSR 0.8: {_num(stats.get('n_cr_more_for_ssr_0.8'), 1)}",
            f"more per essay for SSR 0.9: {_num(stats.get('n_cr_more_for_ssr_0.9'), 1)}",
        ]
    )


def write_run_report(doc: Mapping[str, Any], folder: Path) -> tuple[Path, Path]:
    """Write ``report.md`` and ``scale.png`` into ``folder``; returns their paths."""
    folder.mkdir(parents=True, exist_ok=True)
    report = folder / REPORT_NAME
    report.write_text(render_markdown(doc), encoding="utf-8")
    plot = folder / SCALE_NAME
    render_scale_plot(doc, plot)
    return report, plot
