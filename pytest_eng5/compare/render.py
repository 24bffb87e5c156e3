"""The comparison report as JSON and Markdown (no timestamps, so a rebuild is identical)."""

from __future__ import annotations

import math
from typing import Any

from pytest_eng5.compare.analysis import ComparisonReport, ExperimentComparison, VariantSummary


def _number(value: float | None, digits: int = 4) -> float | None:
    if value is None or math.isnan(value) or math.isinf(value):
        return None
    return round(value, digits)


def variant_dict(v: VariantSummary) -> dict[str, Any]:
    """One variant, JSON-ready."""
    diff = v.vs_baseline
    return {
        "variant": v.variant,
        "is_baseline": v.is_baseline,
        "runs": v.runs,
        "batch_uuids": list(v.batch_uuids),
        "settings": v.settings,
        "tau_b": _number(v.tau_b),
        "tau_b_ci": [_number(v.tau_b_low), _number(v.tau_b_high)],
        "inverted_comparisons": v.inverted_comparisons,
        "inverted_pairs": v.inverted_pairs,
        "exact_agreement": _number(v.exact_agreement),
        "within_one_agreement": _number(v.within_one_agreement),
        "position_a_win_share": _number(v.a_win_share),
        "position_a_win_share_ci": [_number(v.a_win_low), _number(v.a_win_high)],
        "ssr": _number(v.ssr),
        "comparisons": v.comparisons,
        "failed_comparisons": v.failed_comparisons,
        "tokens": v.tokens,
        "cost_usd": _number(v.cost_usd, 6),
        "mean_duration_s": _number(v.duration_s, 3),
        "repeats": {
            "tau_b": [_number(t) for t in v.repeat_tau_b],
            "sd": _number(v.repeat_sd),
            "min": _number(min(v.repeat_tau_b)),
            "max": _number(max(v.repeat_tau_b)),
        },
        "vs_baseline": None
        if diff is None
        else {
            "difference": _number(diff.difference),
            "ci": [_number(diff.low), _number(diff.high)],
            "verdict": diff.verdict,
        },
    }


def report_dict(report: ComparisonReport) -> dict[str, Any]:
    """The whole report, JSON-ready (``comparison.json``)."""
    return {
        "report": "pytest-eng5 variant comparison",
        "confidence_level": report.level,
        "bootstrap_resamples": report.resamples,
        "seed": report.seed,
        "experiments": [
            {
                "experiment": e.experiment,
                "baseline": e.baseline,
                "grade_order": list(e.grade_order),
                "anchors": e.anchors,
                "variants": [variant_dict(v) for v in e.variants],
            }
            for e in report.experiments
        ],
        "worse_than_baseline": [f"{e}/{v}" for e, v in report.worse()],
    }


def _fmt(value: float | None, digits: int = 3) -> str:
    number = _number(value, digits)
    return "-" if number is None else f"{number:.{digits}f}"


def _interval(low: float | None, high: float | None) -> str:
    return f"[{_fmt(low)}, {_fmt(high)}]"


def _settings(v: VariantSummary) -> str:
    text = ", ".join(f"{k}={val}" for k, val in sorted(v.settings.items()))
    return (text or "session settings").replace("|", "\\|")


def _experiment_lines(e: ExperimentComparison, level: float) -> list[str]:
    pct = f"{level:.0%}"
    lines = [
        f"## Experiment `{e.experiment}`",
        "",
        f"Baseline: **{e.baseline}**; {e.anchors} anchors; grades {', '.join(e.grade_order)}.",
        "",
        f"| variant | runs | tau-b | {pct} CI | vs baseline | {pct} CI of the difference | "
        "verdict |",
        "|---|---|---|---|---|---|---|",
    ]
    for v in e.variants:
        d = v.vs_baseline
        lines.append(
            f"| {v.variant}{' (baseline)' if v.is_baseline else ''} | {v.runs} | "
            f"{_fmt(v.tau_b)} | {_interval(v.tau_b_low, v.tau_b_high)} | "
            + (
                "- | - | baseline |"
                if d is None
                else f"{d.difference:+.3f} | {_interval(d.low, d.high)} | **{d.verdict}** |"
            )
        )
    lines += [
        "",
        "| variant | inverted comparisons (pairs) | exact | +-1 step | A-position wins (95% CI) "
        "| SSR | comparisons (failed) | tokens | cost USD | mean duration s |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for v in e.variants:
        lines.append(
            f"| {v.variant} | {v.inverted_comparisons} ({v.inverted_pairs}) | "
            f"{_fmt(v.exact_agreement)} | {_fmt(v.within_one_agreement)} | "
            f"{_fmt(v.a_win_share)} {_interval(v.a_win_low, v.a_win_high)} | {_fmt(v.ssr)} | "
            f"{v.comparisons} ({v.failed_comparisons}) | {v.tokens} | {_fmt(v.cost_usd, 4)} | "
            f"{_fmt(v.duration_s, 1)} |"
        )
    lines += [
        "",
        "| variant | settings | tau-b per run | SD across runs |",
        "|---|---|---|---|",
    ]
    for v in e.variants:
        per_run = ", ".join(_fmt(t) for t in v.repeat_tau_b)
        lines.append(f"| {v.variant} | {_settings(v)} | {per_run} | {_fmt(v.repeat_sd)} |")
    return [*lines, ""]


def render_markdown(report: ComparisonReport) -> str:
    """``comparison.md``."""
    pct = f"{report.level:.0%}"
    lines = [
        "# Variant comparison",
        "",
        f"Kendall tau-b between the anchors' expert grades and their Bradley–Terry order. "
        f"Intervals: {pct} percentile bootstrap, {report.resamples} resamples of each run's "
        f"comparisons (seed {report.seed}), refitted; the difference to the baseline is paired "
        f"by resample on the same anchors. A variant is better or worse when the {pct} interval "
        "of its difference excludes 0.",
        "",
    ]
    worse = report.worse()
    lines += [
        "**Worse than the baseline:** " + ", ".join(f"`{e}/{v}`" for e, v in worse)
        if worse
        else "No variant is worse than its baseline.",
        "",
    ]
    for experiment in report.experiments:
        lines += _experiment_lines(experiment, report.level)
    lines.append("Forest plot: `comparison.png`; every number: `comparison.json`.")
    return "\n".join(lines) + "\n"
