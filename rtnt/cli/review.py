"""`rtnt-review RUN_ID approved|rejected [--note TEXT]`: record a listening review on an MLflow run."""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence

from rtnt.cli import add_tracking_uri_argument, run_command


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="rtnt-review",
        description="Record a listening review on an MLflow run and re-evaluate its export gate.",
    )
    parser.add_argument("run_id", help="MLflow run id")
    parser.add_argument("decision", choices=("approved", "rejected"))
    parser.add_argument("--note", default="", help="free text stored as the review.note tag")
    add_tracking_uri_argument(parser)
    args = parser.parse_args(argv)
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # keep stderr to one line
    from rtnt.tracking.review import record_review

    def review() -> None:
        result = record_review(args.run_id, args.decision, args.note, args.tracking_uri)
        print(f"run {args.run_id}: review {args.decision}; gate {result.summary}")
        for c in result.criteria:
            print(f"  {'pass' if c.passed else 'FAIL'}  {c.name}: {c.reason}")

    return run_command(review)
