"""`rtnt-compare`: a comparison table (Markdown, CSV) and plots of rtnt runs from any MLflow store.

    rtnt-compare [--experiment NAME] [--filter MLFLOW_FILTER] [--tracking-uri URI] [--loss-curves] --out DIR

The tracking URI is `--tracking-uri`, else $MLFLOW_TRACKING_URI, else the local store
`sqlite:///<repo>/mlruns/mlflow.db`. Errors (unknown experiment, bad filter, no matching runs) are
one line on stderr, exit status 2.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rtnt.cli import add_tracking_uri_argument, run_command


def build_parser() -> argparse.ArgumentParser:
    """The command-line interface of rtnt-compare."""
    parser = argparse.ArgumentParser(
        prog="rtnt-compare",
        description="Compare rtnt runs logged in MLflow: comparison.md, comparison.csv and plots in --out.",
    )
    parser.add_argument("--experiment", help="MLflow experiment name (default: every experiment in the store)")
    parser.add_argument(
        "--filter",
        dest="filter_string",
        help="MLflow search filter, e.g. \"tags.capture = 'highgain_amp' and tags.family = 'wavenet'\"",
    )
    add_tracking_uri_argument(parser)
    parser.add_argument("--loss-curves", action="store_true", help="also plot the overlaid per-epoch loss curves")
    parser.add_argument("--title", help="title of comparison.md (default: the experiment name)")
    parser.add_argument("--out", required=True, type=Path, help="output folder (created)")
    return parser


def run(args: argparse.Namespace) -> list[Path]:
    """Load the selected runs and write the comparison; return the written files."""
    from rtnt.compare import load_loss_histories, load_runs, write_comparison
    from rtnt.tracking.uri import existing_tracking_uri

    tracking_uri = existing_tracking_uri(args.tracking_uri)
    runs = load_runs(tracking_uri, experiment=args.experiment, filter_string=args.filter_string)
    selection = " and ".join(
        part
        for part in (
            f"experiment `{args.experiment}`" if args.experiment else "",
            f"filter `{args.filter_string}`" if args.filter_string else "",
        )
        if part
    )
    histories = None
    if args.loss_curves and not runs.empty:
        finished = runs[runs["status"] == "FINISHED"]
        histories = load_loss_histories(tracking_uri, list(finished["run_id"]))
    title = args.title or (f"{args.experiment}" if args.experiment else "rtnt comparison")
    return write_comparison(runs, args.out, title=title, selection=selection, loss_histories=histories)


def main(argv: list[str] | None = None) -> int:
    """Console entry point of `rtnt-compare`."""
    args = build_parser().parse_args(argv)

    def compare() -> None:
        for path in run(args):
            print(path)

    return run_command(compare)


if __name__ == "__main__":
    sys.exit(main())
