"""The anchor alignment report: ``alignment.md`` and ``alignment.png``
(see :mod:`pytest_eng5.runner.alignment` for what the numbers mean)."""

from __future__ import annotations

import math
from collections import defaultdict
from pathlib import Path

from pytest_eng5.runner.alignment import AlignmentResult, AnchorRow

#: Pixel size of the PNG written by :func:`render_plot` (10 × 6 in at 100 dpi).
PLOT_SIZE_PX = (1000, 600)
_PLOT_DPI = 100
_BUILTIN_PROMPT = "(built-in CJ system prompt)"
_NO_RUBRIC = "(no rubric supplied)"


def _cell(text: str) -> str:
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\r", " ").replace("\n", " ")


def _num(value: float | None, digits: int = 3) -> str:
    if value is None or math.isnan(value):
        return "n/a"
    return f"{value:.{digits}f}"


def _percent(part: int, whole: int) -> str:
    if whole == 0:
        return "n/a"
    return f"{100.0 * part / whole:.1f}% ({part} of {whole})"


def _fenced(text: str) -> list[str]:
    """A code block whose fence is longer than any backtick run inside ``text``."""
    longest = run = 0
    for char in text:
        run = run + 1 if char == "`" else 0
        longest = max(longest, run)
    fence = "`" * max(3, longest + 1)
    return [f"{fence}text", text, fence]


def _summary_lines(result: AlignmentResult) -> list[str]:
    n = len(result.rows)
    return [
        "## Summary",
        "",
        "| Metric | Value |",
        "|---|---|",
        f"| Kendall tau-b (expert grade vs BT theta) | {_num(result.tau_b)} |",
        f"| Kendall tau-a (reference-runner normalisation) | {_num(result.tau_a)} |",
        f"| Anchors | {n} |",
        f"| Comparisons (anchor vs anchor) | {result.n_comparisons} |",
        f"| Inverted pairs | {len(result.inversions)} |",
        f"| Inverted comparisons | {result.inverted_comparisons} of {result.n_comparisons} |",
        f"| Zero-win anchors | {len(result.zero_win)} |",
        f"| Exact grade agreement | {_percent(result.exact_matches, n)} |",
        f"| Within ±1 grade step | {_percent(result.within_one_matches, n)} |",
        "",
    ]


def _anchor_lines(result: AlignmentResult) -> list[str]:
    lines = [
        "## Per-anchor results",
        "",
        "| Anchor | Grade | BT theta | SE | BT rank | Expected rank | BT-order grade "
        "| Wins | Losses | Win rate |",
        "|---|---|---:|---:|---:|---:|---|---:|---:|---:|",
    ]
    for row in result.rows:
        rate = "n/a" if row.win_rate is None else f"{100 * row.win_rate:.0f}%"
        lines.append(
            f"| {_cell(row.anchor_id)} | {_cell(row.grade)} | {row.theta:.3f} | {row.se:.3f} "
            f"| {row.bt_rank} | {row.expected_rank:g} | {_cell(row.bt_order_grade)} "
            f"| {row.wins} | {row.losses} | {rate} |"
        )
    return [*lines, ""]


def _inversion_lines(result: AlignmentResult) -> list[str]:
    lines = ["## Inversions", ""]
    if not result.inversions:
        return [*lines, "No lower-graded anchor beat a higher-graded one.", ""]
    lines += [
        "| Higher grade | Lower grade (winner) | Inverted | Mean confidence |",
        "|---|---|---|---:|",
    ]
    for inv in result.inversions:
        lines.append(
            f"| {_cell(inv.higher_id)} ({_cell(inv.higher_grade)}) "
            f"| {_cell(inv.lower_id)} ({_cell(inv.lower_grade)}) "
            f"| {inv.inverted} of {inv.total} comparison{'s' if inv.total != 1 else ''} "
            f"| {_num(inv.mean_confidence, 2)} |"
        )
    lines += ["", "### Justifications of inverted judgements", ""]
    for inv in result.inversions:
        lines.append(f"- {_cell(inv.lower_id)} beat {_cell(inv.higher_id)}:")
        for judgement in inv.judgements:
            text = _cell(judgement.justification or "(no justification)")
            lines.append(f"  - confidence {_num(judgement.confidence, 1)}: {text}")
    return [*lines, ""]


def _zero_win_lines(result: AlignmentResult) -> list[str]:
    lines = ["## Zero-win anchors", ""]
    if not result.zero_win:
        return [*lines, "Every anchor won at least one comparison.", ""]
    rows = {row.anchor_id: row for row in result.rows}
    for anchor in result.zero_win:
        row = rows[anchor]
        lines.append(f"- {_cell(anchor)} ({_cell(row.grade)}): 0 wins in {row.losses} comparisons")
    return [*lines, ""]


def render_markdown(
    result: AlignmentResult,
    *,
    batch_uuid: str,
    batch_label: str,
    system_prompt: str | None,
    rubric: str | None,
) -> str:
    """The alignment report as Markdown (summary, anchors, inversions, zero-win, prompts)."""
    lines = [
        f"# Anchor Alignment Report: {batch_label}",
        "",
        f"- Batch UUID: `{batch_uuid}`",
        f"- Grade scale (lowest → highest): {', '.join(result.grade_order)}",
        "",
        *_summary_lines(result),
        *_anchor_lines(result),
        *_inversion_lines(result),
        *_zero_win_lines(result),
    ]
    if result.missing_anchors:
        lines += [
            "## Anchors missing from the BT fit",
            "",
            *(f"- {_cell(anchor)}" for anchor in result.missing_anchors),
            "",
        ]
    lines += [
        "## Prompts used",
        "",
        "### System prompt",
        "",
        *_fenced(_BUILTIN_PROMPT if system_prompt is None else system_prompt),
        "",
        "### Judge rubric",
        "",
        *_fenced(_NO_RUBRIC if rubric is None else rubric),
        "",
    ]
    return "\n".join(lines)


# --- plot ----------------------------------------------------------------------------------


def readable_id(essay_id: str, batch_uuid: str = "") -> str:
    """The essay id without the harness's ``student::`` prefix and batch suffix."""
    text = essay_id.rsplit("::", 1)[-1]
    suffix = "-" + batch_uuid[:8]
    return text.removesuffix(suffix) if batch_uuid and text.endswith(suffix) else text


def render_plot(
    result: AlignmentResult, path: Path, *, batch_uuid: str = "", batch_label: str = ""
) -> None:
    """PNG of expert grade (x, scale order) against BT theta (y) with ±1.96 SE bars.

    Each anchor is labelled by its readable id, upright above its bar; anchor pairs in which
    the lower grade won are joined by a red dashed line. Uses the Agg canvas directly, so no
    display or pyplot state is involved. Anchors that share a grade are spread a little
    sideways so their bars and labels stay apart.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg  # heavy: only to draw
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D

    figure = Figure(figsize=(PLOT_SIZE_PX[0] / _PLOT_DPI, PLOT_SIZE_PX[1] / _PLOT_DPI))
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    by_grade: dict[int, list[AnchorRow]] = defaultdict(list)
    for row in result.rows:
        by_grade[row.grade_index].append(row)
    where: dict[str, tuple[float, float]] = {}
    for grade_index, rows in by_grade.items():
        width = 0.3 if len(rows) > 1 else 0.0
        for k, row in enumerate(sorted(rows, key=lambda r: r.theta)):
            offset = width * (k / (len(rows) - 1) - 0.5) if len(rows) > 1 else 0.0
            x = grade_index + offset
            where[row.anchor_id] = (x, row.theta)
            axes.errorbar(
                [x],
                [row.theta],
                yerr=[1.96 * row.se],
                fmt="o",
                capsize=3,
                color="tab:blue",
                ecolor="tab:gray",
                zorder=3,
            )
            axes.annotate(
                readable_id(row.anchor_id, batch_uuid),
                (x, row.theta + 1.96 * row.se),
                xytext=(0, 3),
                textcoords="offset points",
                rotation=90,
                ha="center",
                va="bottom",
                fontsize=7,
            )
    for inversion in result.inversions:
        (x1, y1), (x2, y2) = where[inversion.higher_id], where[inversion.lower_id]
        axes.plot(
            [x1, x2],
            [y1, y2],
            color="tab:red",
            linestyle="--",
            zorder=2,
            linewidth=0.8 + 2.0 * inversion.inverted / max(inversion.total, 1),
            alpha=0.8,
        )
    axes.set_xticks(range(len(result.grade_order)), labels=list(result.grade_order))
    axes.set_xlim(-0.6, len(result.grade_order) - 0.4)
    if result.rows:  # room above the highest bar for the vertical labels
        low = min(r.theta - 1.96 * r.se for r in result.rows)
        high = max(r.theta + 1.96 * r.se for r in result.rows)
        axes.set_ylim(low - 0.05 * (high - low + 1.0), high + 0.3 * (high - low + 1.0))
    axes.axhline(0.0, color="lightgray", linewidth=0.8, zorder=0)
    axes.set_xlabel("Expert grade (scale order)")
    axes.set_ylabel("BT ability θ (logits, harness ML fit)")
    axes.legend(
        handles=[
            Line2D(
                [],
                [],
                color="tab:gray",
                marker="o",
                markerfacecolor="tab:blue",
                label="anchor: θ ± 1.96 SE (95 %)",
            ),
            Line2D(
                [],
                [],
                color="tab:red",
                linestyle="--",
                label=f"inverted pair: lower grade won ({result.inverted_comparisons} "
                "comparisons; thicker = more often)",
            ),
        ],
        loc="upper center",
        bbox_to_anchor=(0.5, -0.1),
        ncol=2,
        fontsize=8,
        frameon=False,
    )
    axes.set_title(
        f"Anchor alignment: Kendall tau-b = {_num(result.tau_b)} "
        f"({len(result.rows)} anchors, {result.n_comparisons} comparisons)\n"
        f"{batch_label}  ·  batch {batch_uuid}",
        fontsize=10,
    )
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=_PLOT_DPI, format="png")
