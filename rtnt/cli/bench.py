"""`rtnt-bench`: self-check and benchmark any RTNeural JSON or NAM `.nam` model in the native runtime.

    rtnt-bench MODEL.json|MODEL.nam [--slim V] [--json] [--seconds S] [--blocks 1,32,64,128,256,512,1024]
    rtnt-bench --rerun-pareto SWEEP_RUN_ID [--tracking-uri URI] [--out DIR] [--seconds S] [--json]

`--slim` picks a SlimmableContainer's submodel (e.g. `A2.nam --slim 0` is A2-Lite) as NAM Core's
SetSlimmableSize does. The self-check loads the file and compares block-by-block runs (1, 7, 32, ..., 4096, random, two
interleaved instances) with a one-pass run. The benchmark is single-threaded at 48 kHz. Prints a
table, or with --json one JSON object with `rtf`, `rtf_worst`, `gmacs`, `efficiency`,
`sgemm_gmacs` and more. `--rerun-pareto` benchmarks every Pareto-front model of a finished sweep on this
machine instead (`rtnt.sweep.rerun`), prints the table and logs it on the sweep's parent run. Errors are one
line on stderr, exit status 2.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rtnt.cli import add_tracking_uri_argument, run_command
from rtnt.constants import BENCH_BLOCK_SIZES
from rtnt.errors import RtntError

if TYPE_CHECKING:
    from rtnt.sweep.rerun import ParetoRerun
    from rtnt.validate.bench import BenchmarkResult
    from rtnt.validate.native_check import NativeCheck


def build_parser() -> argparse.ArgumentParser:
    """The command-line interface of rtnt-bench."""
    parser = argparse.ArgumentParser(
        prog="rtnt-bench", description="Self-check and benchmark an RTNeural JSON or .nam model natively."
    )
    parser.add_argument("model", type=Path, nargs="?", help="RTNeural JSON or NAM .nam model file")
    parser.add_argument(
        "--rerun-pareto",
        metavar="SWEEP_RUN_ID",
        default=None,
        help="re-benchmark the Pareto front of this sweep (its MLflow parent run) on this machine",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=Path("outputs/pareto_rerun"),
        help="folder for --rerun-pareto's table and model files (default outputs/pareto_rerun/<run id>)",
    )
    add_tracking_uri_argument(parser)
    parser.add_argument(
        "--slim",
        type=float,
        default=None,
        help="SlimmableContainer size in [0, 1] (NAM's SetSlimmableSize; default: the full model)",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    parser.add_argument("--seconds", type=float, default=2.0, help="wall-clock budget of the timed loops (default 2)")
    parser.add_argument(
        "--blocks",
        default=",".join(map(str, BENCH_BLOCK_SIZES)),
        help="comma-separated block sizes (default 1,32,64,128,256,512,1024)",
    )
    return parser


def _block_sizes(text: str) -> list[int]:
    try:
        sizes = [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        raise RtntError(
            f"--blocks {text!r} is not a comma-separated list of whole numbers; e.g. --blocks 1,64,128"
        ) from None
    if not sizes or any(b < 1 or b > 65536 for b in sizes):
        raise RtntError(f"--blocks {text!r}: block sizes must be in [1, 65536]")
    return sizes


@dataclass(frozen=True)
class BenchReport:
    """What rtnt-bench measured: the self-check, then the benchmark."""

    self_check: NativeCheck
    bench: BenchmarkResult

    def to_dict(self) -> dict[str, Any]:
        """The benchmark's JSON record with the self-check under `self_check`."""
        return {**self.bench.to_dict(), "self_check": self.self_check.to_dict()}


def run(args: argparse.Namespace) -> BenchReport:
    """Load the model once, self-check it, then benchmark it; raise RtntError if it fails the check."""
    from rtnt.native import NativeModel, native_available
    from rtnt.validate.bench import benchmark_native
    from rtnt.validate.native_check import self_check

    if not native_available():
        raise RtntError(
            "the native runtime rtnt._native is not built; install rtnt with `pip install -e .` "
            "(needs a C++17 compiler)"
        )
    if not args.model.is_file():
        raise RtntError(f"model file {args.model} does not exist; pass the path of an RTNeural JSON or .nam file")
    if not args.seconds > 0:
        raise RtntError(f"--seconds {args.seconds} must be > 0")
    sizes = _block_sizes(args.blocks)
    model = NativeModel.from_file(args.model, slim=args.slim)
    check = self_check(model)
    if not check.finite:
        raise RtntError(
            f"{args.model}: self-check failed: the output holds NaN or inf (on a quiet test signal or a full-scale "
            "1 kHz sine); the model is unstable or its weights are too large"
        )
    if not check.passed:
        bad = max(check.case_errors, key=check.case_errors.get)
        raise RtntError(
            f"{args.model}: self-check failed: worst block-size deviation {check.max_error:.3g} ({bad}) exceeds "
            f"{check.tolerance:g}; the model or the runtime is faulty"
        )
    return BenchReport(check, benchmark_native(model, block_sizes=sizes, seconds=args.seconds, slim=args.slim))


def _print_table(report: BenchReport) -> None:
    from rich.console import Console
    from rich.table import Table

    r = report.bench
    table = Table(title=f"rtnt-bench {r.model}")
    for col in ("block", "RTF mean", "RTF p99", "p99/mean", "cost p99/mean", "GMAC/s", "efficiency"):
        table.add_column(col, justify="right")
    for b in r.block_sizes:
        table.add_row(
            str(b),
            f"{r.rtf[b]:.1f}",
            f"{r.rtf_p99[b]:.1f}",
            f"{r.stability[b]:.2f}",
            f"{r.cost_stability[b]:.2f}",
            f"{r.gmacs[b]:.2f}",
            f"{r.efficiency[b]:.3f}",
        )
    console = Console()
    console.print(r.description)
    console.print(
        f"self-check passed (max block-size deviation {report.self_check.max_error:.2g}); "
        f"{r.macs_per_sample:.0f} MACs/sample; single-thread sgemm {r.sgemm_gmacs:.1f} GMAC/s"
    )
    console.print(table)
    console.print(f"worst-case RTF {r.rtf_worst:.1f} (block {r.rtf_worst_block}, 99th-percentile block time)")
    console.print(
        "p99/mean: RTF p99 / RTF mean of the wall times; cost p99/mean: the same for each block's fastest time "
        "over the replays (the runtime's own variation, without the machine's interruptions)"
    )


def rerun_front(args: argparse.Namespace) -> ParetoRerun:
    """`--rerun-pareto`: the sweep's Pareto front benchmarked on this machine."""
    from rtnt.sweep.rerun import rerun_pareto
    from rtnt.tracking.uri import existing_tracking_uri

    if not args.seconds > 0:
        raise RtntError(f"--seconds {args.seconds} must be > 0")
    uri = existing_tracking_uri(args.tracking_uri)
    return rerun_pareto(args.rerun_pareto, uri, args.out / args.rerun_pareto, seconds=args.seconds)


def _print_rerun(result: ParetoRerun, *, as_json: bool) -> None:
    frame = result.frame()
    if as_json:
        print(json.dumps({"cpu": result.cpu, "sgemm_gmacs": result.sgemm_gmacs, "trials": frame.to_dict("records")}))
        return
    print(
        f"Pareto front of study {result.study} re-benchmarked on {result.cpu} (sgemm {result.sgemm_gmacs:.1f} GMAC/s)"
    )
    print(frame.to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    print(f"table: {', '.join(map(str, result.files))} (logged on run {result.sweep_run_id} under sweep/rerun_pareto/)")


def main(argv: list[str] | None = None) -> int:
    """Entry point of the rtnt-bench console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if (args.model is None) == (args.rerun_pareto is None):
        parser.error("give either a MODEL file or --rerun-pareto SWEEP_RUN_ID")
    if args.rerun_pareto is not None:
        return run_command(lambda: _print_rerun(rerun_front(args), as_json=args.json))
    return run_command(lambda: _report(run(args), as_json=args.json))


def _report(report: BenchReport, *, as_json: bool) -> None:
    if as_json:
        print(json.dumps(report.to_dict()))
    else:
        _print_table(report)


if __name__ == "__main__":
    sys.exit(main())
