"""`rtnt-capture`: inspect a capture pair, or write a reamp signal with calibration blips."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from rtnt.cli import run_command
from rtnt.errors import RtntError


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="rtnt-capture", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)
    ins = sub.add_parser("inspect", help="report levels, noise, latency evidence and hygiene of a capture")
    ins.add_argument("input", help="dry DI file")
    ins.add_argument("target", help="the device's output for that DI")
    ins.add_argument("--json", action="store_true", help="print the report as one JSON object")
    ins.add_argument("--out", help="folder for report.json and PNG plots (default capture_report/<target name>)")
    ins.add_argument("--latency", type=int, help="known latency in samples instead of the estimate")
    ins.add_argument("--nudge", type=int, default=0, help="samples added to the automatic estimate")
    ins.add_argument("--channel", type=int, help="channel to take from multi-channel files")
    ins.add_argument("--resample", action="store_true", help="resample files that are not at 48 kHz")
    rs = sub.add_parser("reamp-signal", help="write DI preceded by silence, calibration blips and a sweep")
    rs.add_argument("di", help="dry DI file")
    rs.add_argument("out", help="output WAV to play through the device")
    rs.add_argument("--channel", type=int, help="channel to take from a multi-channel DI")
    return p


def _inspect(args: argparse.Namespace) -> None:
    from rtnt.capture.io import load_capture_pair
    from rtnt.capture.report import inspect_capture

    pair = load_capture_pair(args.input, args.target, channel=args.channel, resample=args.resample)
    report = inspect_capture(pair, latency="auto" if args.latency is None else args.latency, latency_nudge=args.nudge)
    out = Path(args.out) if args.out else Path("capture_report") / Path(args.target).stem
    out.mkdir(parents=True, exist_ok=True)
    data = report.to_dict()
    (out / "report.json").write_text(json.dumps(data, indent=2) + "\n")
    from rtnt.plots import capture_plots

    plots = capture_plots(report, out)
    if args.json:
        print(json.dumps(data))
        return
    from rich.console import Console

    console = Console()
    console.print(report.to_table())
    console.print(f"saved {out / 'report.json'} and {len(plots)} plot(s) in {out}")


def _reamp_signal(args: argparse.Namespace) -> None:
    import soundfile as sf

    from rtnt.capture.io import read_mono
    from rtnt.capture.reamp import make_reamp_signal

    di, rate = read_mono(args.di, "input", args.channel)
    out = Path(args.out)
    if out.suffix.lower() != ".wav":
        raise RtntError(f"output {out} must be a .wav file; name it e.g. reamp.wav")
    signal = make_reamp_signal(di, rate)
    sf.write(str(out), signal, rate, subtype="PCM_24")
    print(f"wrote {out}: {len(signal) / rate:.2f} s at {rate} Hz; play it through the device and record the output")


def main(argv: list[str] | None = None) -> int:
    """Entry point; errors a user can cause print `error: ...` and exit 2."""
    args = _parser().parse_args(argv)
    return run_command(lambda: _inspect(args) if args.command == "inspect" else _reamp_signal(args))


if __name__ == "__main__":
    sys.exit(main())
