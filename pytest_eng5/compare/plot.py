"""``comparison.png``: a forest plot of tau-b with its bootstrap interval per variant."""

from __future__ import annotations

import math
from pathlib import Path

from pytest_eng5.compare.analysis import ComparisonReport

_BASELINE_COLOUR = "#1f4e9c"
_COLOURS = {"better": "#1a7f37", "worse": "#c62828", "no detectable difference": "#555555"}


def render_forest_plot(report: ComparisonReport, path: Path) -> None:
    """One panel per experiment; the baseline in blue with a dashed line at its tau-b."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    rows = [len(e.variants) for e in report.experiments]
    fig, axes = plt.subplots(
        len(rows),
        1,
        figsize=(9, 1.4 + sum(0.55 * r + 0.9 for r in rows)),
        squeeze=False,
        gridspec_kw={"height_ratios": [r + 1 for r in rows]},
    )
    pct = f"{report.level:.0%}"
    for ax, experiment in zip(axes[:, 0], report.experiments, strict=True):
        variants = experiment.variants
        for y, v in enumerate(reversed(variants)):
            diff = v.vs_baseline
            verdict = diff.verdict if diff is not None else "baseline"
            colour = _BASELINE_COLOUR if v.is_baseline else _COLOURS[verdict]
            low, high = v.tau_b_low, v.tau_b_high
            if not (math.isnan(low) or math.isnan(high)):
                ax.plot([low, high], [y, y], color=colour, linewidth=2.5)
            ax.plot(v.tau_b, y, "D" if v.is_baseline else "o", color=colour, markersize=8)
            note = "baseline" if diff is None else f"{verdict} ({diff.difference:+.3f})"
            ax.annotate(
                note,
                (1.0, y),
                xycoords=("axes fraction", "data"),
                xytext=(8, 0),
                textcoords="offset points",
                va="center",
                color=colour,
                fontsize=9,
            )
        baseline = variants[0]
        ax.axvline(baseline.tau_b, color=_BASELINE_COLOUR, linestyle="--", linewidth=1)
        ax.set_yticks(range(len(variants)))
        ax.set_yticklabels(
            [f"{v.variant} ({v.runs} run{'s' if v.runs > 1 else ''})" for v in reversed(variants)],
            fontsize=10,
        )
        ax.set_ylim(-0.7, len(variants) - 0.3)
        lows = [v.tau_b_low for v in variants if not math.isnan(v.tau_b_low)]
        ax.set_xlim(min([0.0, *lows]) - 0.05, 1.02)  # the lowest interval end, with a margin
        ax.set_xlabel(f"Kendall tau-b, anchors' grades vs BT order ({pct} bootstrap interval)")
        ax.set_title(
            f"{experiment.experiment} ({experiment.anchors} anchors; baseline = "
            f"{experiment.baseline})",
            fontsize=11,
            loc="left",
        )
        ax.grid(axis="x", alpha=0.3)
    fig.suptitle("Variant comparison", fontsize=13, x=0.02, ha="left")
    fig.tight_layout()
    fig.subplots_adjust(right=0.72)
    fig.savefig(path, dpi=100)
    plt.close(fig)
