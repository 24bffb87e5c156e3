"""``python -m pytest_eng5.compare EVIDENCE_DIR...``: the variant comparison from evidence."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from pytest_eng5.compare import (
    DEFAULT_RESAMPLES,
    DEFAULT_SEED,
    CompareInputError,
    compare_folders,
    write_report,
)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m pytest_eng5.compare",
        description="Compare ENG5 variant runs (tau-b with bootstrap intervals, difference to "
        "the baseline, verdict) from the evidence folders a pytest-eng5 session wrote.",
    )
    parser.add_argument("evidence", nargs="+", type=Path, help="evidence folders to read")
    parser.add_argument(
        "--out", type=Path, help="where to write the report (default: the first folder)"
    )
    parser.add_argument("--baseline", help="baseline variant (default: the one the runs record)")
    parser.add_argument("--resamples", type=int, default=DEFAULT_RESAMPLES)
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument(
        "--fail-on-worse",
        action="store_true",
        help="exit 1 when a variant is worse than its baseline",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the comparison; 0 = written, 1 = a variant is worse (with --fail-on-worse), 2 = bad
    input."""
    args = _parser().parse_args(argv)
    try:
        report = compare_folders(
            args.evidence, baseline=args.baseline, resamples=args.resamples, seed=args.seed
        )
    except CompareInputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    out = args.out or (args.evidence[0] if args.evidence[0].is_dir() else args.evidence[0].parent)
    for path in write_report(report, out):
        print(f"wrote {path}")
    worse = report.worse()
    for experiment, variant in worse:
        print(f"worse than the baseline: {experiment}/{variant}")
    return 1 if worse and args.fail_on_worse else 0


if __name__ == "__main__":
    sys.exit(main())
