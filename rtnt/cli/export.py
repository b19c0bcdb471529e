"""`rtnt-export lv2 <run id | model.json> --name NAME [--out DIR] [--force] [--tracking-uri URI] [--portable]`,
`rtnt-export register <run id> [--name NAME] [--tracking-uri URI]` and
`rtnt-export ir <run id | model.json> --out cab.wav [--against TARGET [DRY]] [--tracking-uri URI]` and
`rtnt-export graybox-view <run id | model.json> --out DIR [--tracking-uri URI]`.

`lv2` builds an LV2 plugin bundle `<out>/<name>.lv2` from an MLflow run (its model.json artifact; the
run's export gate must say ready unless --force) or from an RTNeural JSON file, and prints the
bundle path and the plugin URI. `register` registers a gated run's exported model file in the MLflow
model registry (`rtnt.tracking.registry.register_model`) and prints the name and version. `ir` writes a
gray-box run's final FIR (its cabinet) as a 48 kHz float WAV (`rtnt.export.ir`), with `--against` also a picture
of its response over a capture's long-term spectrum. `graybox-view` draws what a
gray-box file does (each EQ's magnitude response, each nonlinearity's curve, the learned parameters as a table;
`rtnt.export.graybox_view`) into DIR.
Errors are one line on stderr (`error: ...`), exit status 2.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from rtnt.cli import add_tracking_uri_argument, run_command

DEFAULT_LV2_DIR = "~/.lv2"


def build_parser() -> argparse.ArgumentParser:
    """The command-line interface of rtnt-export."""
    parser = argparse.ArgumentParser(prog="rtnt-export", description="Export an rtnt model for use outside the lab.")
    formats = parser.add_subparsers(dest="format", required=True, metavar="FORMAT")
    lv2 = formats.add_parser(
        "lv2",
        help="an LV2 plugin bundle (Linux hosts, DAWs, MOD-style pedals)",
        description="Build an LV2 plugin bundle <out>/<name>.lv2 that runs the model in rtnt's native runtime.",
    )
    lv2.add_argument("source", help="MLflow run id, or the path of an RTNeural model.json")
    lv2.add_argument("--name", required=True, help='plugin name shown by hosts, e.g. "My Crunch"')
    lv2.add_argument(
        "--out", default=DEFAULT_LV2_DIR, type=Path, help=f"folder for the bundle (default: {DEFAULT_LV2_DIR})"
    )
    lv2.add_argument("--force", action="store_true", help="export a run even though its export gate said not ready")
    add_tracking_uri_argument(lv2)
    lv2.add_argument(
        "--portable",
        action="store_true",
        help="build without -march=native, for copying the bundle to other x86-64 machines",
    )
    register = formats.add_parser(
        "register",
        help="register a run that passed its export gate in the MLflow model registry",
        description="Register the exported model file (model.json or model.nam) of a run that passed its export "
        "gate as a new version in the MLflow model registry.",
    )
    register.add_argument("run_id", help="MLflow run id")
    register.add_argument("--name", default="", help="registered model name (default: <preset>-<capture>)")
    add_tracking_uri_argument(register)
    ir = formats.add_parser(
        "ir",
        help="a gray-box run's cabinet FIR as a 48 kHz float WAV impulse response",
        description="Write the final FIR of a gray-box chain (e.g. graybox/wiener_hammerstein_cab) as a WAV.",
    )
    ir.add_argument("source", help="MLflow run id, or the path of a gray-box model.json")
    ir.add_argument("--out", required=True, type=Path, help="the WAV file to write, e.g. cab.wav")
    ir.add_argument(
        "--against",
        nargs="+",
        type=Path,
        metavar=("TARGET", "DRY"),
        help="also draw <out>.png: the IR's response over TARGET's long-term spectrum (and DRY through the IR)",
    )
    add_tracking_uri_argument(ir)
    view = formats.add_parser(
        "graybox-view",
        help="plots of a gray-box file's EQ responses and nonlinearity curves, and its learned parameters",
        description="Write eq_response.png, nonlinearity.png, parameters.csv and parameters.md of a gray-box "
        "model.json (computed from the file) into a folder.",
    )
    view.add_argument("source", help="MLflow run id, or the path of a gray-box model.json")
    view.add_argument("--out", required=True, type=Path, help="the folder to write into")
    add_tracking_uri_argument(view)
    return parser


def _on_lv2_path(folder: Path) -> bool:
    """True when LV2 hosts search `folder` (LV2_PATH, else the default Linux search path)."""
    default = "~/.lv2:/usr/local/lib/lv2:/usr/lib/lv2"
    paths = os.environ.get("LV2_PATH") or default
    return any(Path(p).expanduser().resolve() == folder.resolve() for p in paths.split(os.pathsep) if p)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # keep stderr to one line
    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")
    if args.format == "register":
        return run_command(lambda: _register(args))
    if args.format == "ir":
        from rtnt.export.ir import draw_cabinet_against, write_cabinet_ir

        def export_ir() -> None:
            out = write_cabinet_ir(args.source, args.out, args.tracking_uri)
            print(f"impulse response: {out}")
            if args.against:
                print(f"response against the capture: {draw_cabinet_against(out, args.against)}")

        return run_command(export_ir)
    if args.format == "graybox-view":
        from rtnt.export.graybox_view import export_graybox_view

        def export_view() -> None:
            for path in export_graybox_view(args.source, args.out, args.tracking_uri):
                print(path)

        return run_command(export_view)
    from rtnt.export.lv2 import bundle_uri, export_lv2

    def export() -> None:
        bundle = export_lv2(
            args.source, args.name, args.out, force=args.force, tracking_uri=args.tracking_uri, portable=args.portable
        )
        print(f"bundle: {bundle}")
        print(f"uri:    {bundle_uri(bundle)}")
        if not _on_lv2_path(bundle.parent):
            print(f"note:   hosts find it when LV2_PATH includes {bundle.parent}")

    return run_command(export)


def _register(args: argparse.Namespace) -> None:
    from rtnt.tracking.registry import register_model

    registered = register_model(args.run_id, args.name, tracking_uri=args.tracking_uri)
    print(f"registered: {registered.name} version {registered.version}")
    print(f"source:     {registered.source}")
    print(f"uri:        models:/{registered.name}/{registered.version}")


if __name__ == "__main__":
    sys.exit(main())
