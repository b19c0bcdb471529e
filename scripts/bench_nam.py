"""Benchmark the native runtime on NAM `.nam` models beside NAM Core and write docs/benchmarks/nam_native.md.

    python scripts/bench_nam.py [--out docs/benchmarks/nam_native.md] [--repeats 3] [--seconds 10]

Models (shared/conformance/nam/models): wavenet_a1_standard.nam, A2.nam (its default submodel,
A2-Full, 8 channels) and A2.nam at slim 0 (A2-Lite, 3 channels). For each: rtnt's real-time factor
(audio seconds / wall seconds, single thread, 48 kHz, 10 s of the demo guitar input, best of 3
runs each starting from a prewarmed reset) at blocks 64 and 128, next to NAM Core's figures measured
on this machine (quoted below, not re-measured here: NAM Core is not part of this repository), and
the largest error of rtnt's output against every canonical NAM Core vector of the model. The
machine's load is recorded with the figures: the machine is shared, so re-run this on an idle one.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import soundfile as sf

from rtnt.config import PACKAGE_DIR, REPO_DIR, shared_dir
from rtnt.constants import SAMPLE_RATE
from rtnt.native import NativeModel

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_native import cpu_ticks, machine  # noqa: E402

BLOCKS = (64, 128)
NAM_DIR = shared_dir() / "conformance" / "nam"
TOLERANCE = "5e-5 absolute, or 1e-4 of the output peak where that is larger"


@dataclass(frozen=True)
class Peer:
    """NAM Core's RTF on this machine, as measured for issue 14 (benchmodel, single thread)."""

    path: str
    rtf_b64: float
    rtf_b128: float


@dataclass(frozen=True)
class Case:
    """One benchmarked model: file, slim value, the index.json model id of its vectors, NAM Core's
    exact-tanh and fast-tanh (the NAM plugin's default) figures, and rtnt's target."""

    label: str
    file: str
    slim: float | None
    model_id: str
    peers: dict[str, Peer]
    target_peer: str
    target_factor: float


CASES = (
    Case(
        "wavenet_a1_standard.nam",
        "wavenet_a1_standard.nam",
        None,
        "wavenet_a1_standard",
        {"exact std::tanh": Peer("generic", 2.6, 2.4), "fast tanh (NAM plugin default)": Peer("generic", 12.6, 13.6)},
        "fast tanh (NAM plugin default)",
        1.5,
    ),
    Case(
        "A2.nam -> A2-Full, 8 ch",
        "A2.nam",
        None,
        "A2_full",
        {"": Peer("hand-written A2 fast path", 10.1, 10.3)},
        "",
        1.0,
    ),
    Case(
        "A2.nam slim 0 -> A2-Lite, 3 ch",
        "A2.nam",
        0.0,
        "A2_lite",
        {"": Peer("hand-written A2 fast path", 32.1, 28.1)},
        "",
        1.0,
    ),
)


def guitar(seconds: float) -> np.ndarray:
    """`seconds` of the demo capture's dry guitar input (rtnt/demo/input.flac), mono float32."""
    x, sr = sf.read(PACKAGE_DIR / "demo" / "input.flac", dtype="float32", always_2d=True)
    if sr != SAMPLE_RATE:
        raise SystemExit(f"rtnt/demo/input.flac is {sr} Hz, expected {SAMPLE_RATE}")
    n = int(seconds * SAMPLE_RATE)
    if len(x) < n:
        raise SystemExit(f"rtnt/demo/input.flac holds {len(x) / sr:.1f} s, fewer than --seconds {seconds}")
    return np.ascontiguousarray(x[:n, 0])


@dataclass(frozen=True)
class Timing:
    """RTFs of the timed runs: by wall time (the figure), and by this thread's CPU time, which a
    busy machine's preemptions do not lower (its caches and memory bandwidth still can)."""

    wall: list[float]
    cpu: list[float]


def time_runs(model: NativeModel, x: np.ndarray, block: int, repeats: int) -> Timing:
    """`repeats` timed runs over x in blocks of `block`, each from reset()."""
    model.prepare(block)
    wall, cpu = [], []
    for _ in range(repeats):
        model.reset()
        t0 = time.thread_time()
        timing = model.time_blocks(x, block, warmup=0)  # runs in C++ on this thread
        cpu_seconds = time.thread_time() - t0
        audio = len(timing.times) * block / SAMPLE_RATE
        wall.append(audio / timing.total)
        cpu.append(audio / max(cpu_seconds, 1e-9))
    return Timing(wall, cpu)


def conformance_error(case: Case) -> tuple[float, float, int]:
    """(max abs error, max error / tolerance, entries) over every canonical-variant vector of the model:
    b64, b1 and b64_noprewarm of each input, run as NAM Core ran them."""
    index = json.loads((NAM_DIR / "vectors" / "index.json").read_text())
    worst = ratio = 0.0
    count = 0
    for e in index["entries"]:
        if e["model_id"] != case.model_id or e["variant"] not in ("b64", "b1", "b64_noprewarm"):
            continue
        model = NativeModel.from_file(NAM_DIR / e["model_file"], slim=e["slim"], prewarm=e["prewarm_on_reset"])
        model.prepare(e["max_block"])
        x = np.fromfile(NAM_DIR / e["input_file"], dtype="<f4")
        want = np.fromfile(NAM_DIR / e["output_file"], dtype="<f4").astype(np.float64)
        err = float(np.max(np.abs(model.process_blocks(x, e["block_size"]) - want)))
        worst = max(worst, err)
        ratio = max(ratio, err / max(5e-5, 1e-4 * e["output_peak"]))
        count += 1
    return worst, ratio, count


def report(rows: list[dict], info: dict, load_before: list[float], load_after: list[float], busy: float, args) -> str:
    lines = [
        "# NAM `.nam` models in the native runtime, beside NAM Core",
        "",
        f"Generated by `python scripts/bench_nam.py` on {datetime.now(timezone.utc).isoformat(timespec='seconds')}.",
        "",
        "## Machine",
        "",
        f"- cpu: {info['cpu']}, {info['logical_cores']} logical cores; {info['platform']}",
        f"- native build: {info['native_build']}",
        f"- load average (1, 5, 15 min) before: {load_before}, after: {load_after}; during the timed runs the CPUs "
        f"were {busy:.0%} busy (this benchmark alone is {1 / (info['logical_cores'] or 1):.0%}). "
        "The machine is shared: "
        "figures taken at a load above 1 understate rtnt; re-run on an idle machine for final figures.",
        "",
        "## Real-time factor",
        "",
        f"rtnt: single thread, {SAMPLE_RATE} Hz, {args.seconds:g} s of the demo guitar input "
        f"(rtnt/demo/input.flac), best of {args.repeats} runs per block size, each from a prewarmed `reset()`, "
        "timed in C++ around every `process()` call (`rtnt._native.bench`). NAM Core: figures measured on this "
        "machine for issue 14 with NAM Core's `benchmodel` (quoted, not re-measured by this script). Both runtimes "
        "built and timed side by side in one run, on another host: docs/benchmarks/nam_side_by_side.md "
        "(scripts/bench_nam_side_by_side.py).",
        "",
        "The last two columns give rtnt's RTF by its thread's CPU time instead of wall time: on a busy machine "
        "the wall figures include time the thread was preempted, the CPU-time ones do not.",
        "",
        "| model | runtime | path | RTF b64 | RTF b128 | CPU-time RTF b64 | CPU-time RTF b128 |",
        "|---|---|---|---:|---:|---:|---:|",
    ]
    for r in rows:
        case: Case = r["case"]
        lines.append(
            f"| {case.label} | **rtnt** | fused WaveNet layer | **{r['rtf'][64]:.1f}** | **{r['rtf'][128]:.1f}** "
            f"| {r['cpu_rtf'][64]:.1f} | {r['cpu_rtf'][128]:.1f} |"
        )
        for tanh, peer in case.peers.items():
            runtime = f"NAM Core, {tanh}" if tanh else "NAM Core"
            lines.append(f"| {case.label} | {runtime} | {peer.path} | {peer.rtf_b64:.1f} | {peer.rtf_b128:.1f} | | |")
    lines += ["", "## Targets", "", "| model | target | b64 | b128 | met |", "|---|---|---:|---:|:---:|"]
    for r in rows:
        case = r["case"]
        peer = case.peers[case.target_peer]
        need = {64: case.target_factor * peer.rtf_b64, 128: case.target_factor * peer.rtf_b128}
        met = all(r["rtf"][b] >= need[b] for b in BLOCKS)
        what = f">= {case.target_factor:g} x NAM Core" + (
            f" ({case.target_peer})" if case.target_peer else f" ({peer.path})"
        )
        lines.append(
            f"| {case.label} | {what}: >= {need[64]:.1f} / {need[128]:.1f} | {r['rtf'][64]:.1f} | {r['rtf'][128]:.1f} "
            f"| {'yes' if met else 'NO'} |"
        )
    lines += [
        "",
        "## Accuracy of the benchmarked code",
        "",
        f"The same runtime against NAM Core's canonical outputs (shared/conformance/nam, exact `std::tanh`; variants "
        f"b64, b1 and b64_noprewarm of the guitar, sweep and impulse inputs). Tolerance: {TOLERANCE}. rtnt's tanh is "
        "its own rational approximation (within 4e-7 of tanh, native/include/rtnt/core/math.hpp), so its speed is "
        "compared with NAM Core's fast tanh while its output stays at the exact-tanh reference.",
        "",
        "| model | vectors | max abs error | worst error / tolerance |",
        "|---|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(f"| {r['case'].label} | {r['vectors']} | {r['max_error']:.2g} | {r['error_ratio']:.2f} |")
    lines += ["", "## All runs", ""]
    lines += [f"- {r['case'].label}: {r['description']}" for r in rows]
    lines += [
        "",
        "| model | MACs/sample | block | wall-time RTF of each run | CPU-time RTF of each run | GMAC/s (best wall) |",
        "|---|---:|---:|---|---|---:|",
    ]
    for r in rows:
        for b in BLOCKS:
            wall = ", ".join(f"{v:.1f}" for v in r["runs"][b].wall)
            cpu = ", ".join(f"{v:.1f}" for v in r["runs"][b].cpu)
            lines.append(
                f"| {r['case'].label} | {r['macs']:.0f} | {b} | {wall} | {cpu} "
                f"| {r['macs'] * r['rtf'][b] * SAMPLE_RATE / 1e9:.1f} |"
            )
    lines += [
        "",
        "## How the WaveNet runs",
        "",
        "Each layer is one pass of register tiles over a piece of up to 64 frames (native/include/rtnt/wavenet/"
        "fused.hpp, `detail::fused_tile`): the dilated conv over the layer's history and the input mix-in "
        "accumulate into one tile of rows x channels; its epilogue applies the activation to the tile (in an L1 "
        "scratch of one tile, so every NAM activation shares the code), adds it to the skip accumulator, runs the "
        "layer1x1 product on it with the residual added, and stores the result straight into the next layer's "
        "history ring and its mirror. The residual stream's row stride is a compile-time constant (8 or 16 floats), "
        "so a tile keeps its row addresses in registers. The current tap and layer1x1, the only parts that wait "
        "for the sample the layer below has just produced, run in FMA chains of 4 input channels; block size 1 "
        "has its own path (`LayerArray::fused_one`, bit-identical): every layer's past taps first, then the short "
        "chains layer by layer. Arrays of at most 4 channels (A2-Lite) keep one history per channel and "
        "run vectorised over time, 8 samples of one channel per register, each weight a pre-broadcast vector "
        "(native/include/rtnt/wavenet/narrow.hpp, AVX2 + FMA). "
        "Gated, blended and head1x1 layers, and arrays "
        "wider than 16 channels, take the staged path (the same products and arithmetic, one stage at a time over "
        "the piece). Every element is computed in one fixed order, so any block partition gives bit-identical "
        "output, and `reset()` prewarms by filling every history with the response to silence (exactly the state "
        "after processing the receptive field of zeros, at the cost of one sample).",
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO_DIR / "docs" / "benchmarks" / "nam_native.md")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()
    if not (NAM_DIR / "vectors" / "index.json").exists():
        raise SystemExit(f"NAM conformance files not found at {NAM_DIR}")
    x = guitar(args.seconds)
    info = machine()
    load_before = [round(v, 2) for v in os.getloadavg()]
    busy0, idle0, _ = cpu_ticks()
    rows = []
    for case in CASES:
        model = NativeModel.from_file(NAM_DIR / "models" / case.file, slim=case.slim)
        runs = {b: time_runs(model, x, b, args.repeats) for b in BLOCKS}
        rtf = {b: max(runs[b].wall) for b in BLOCKS}
        cpu_rtf = {b: max(runs[b].cpu) for b in BLOCKS}
        print(
            f"{case.label}: RTF b64 {rtf[64]:.1f}, b128 {rtf[128]:.1f} "
            f"(CPU time: {cpu_rtf[64]:.1f}, {cpu_rtf[128]:.1f})",
            flush=True,
        )
        row = {
            "case": case,
            "rtf": rtf,
            "cpu_rtf": cpu_rtf,
            "runs": runs,
            "macs": model.macs_per_sample,
            "description": model.description,
        }
        rows.append(row)
    busy1, idle1, _ = cpu_ticks()
    load_after = [round(v, 2) for v in os.getloadavg()]
    busy = (busy1 - busy0) / max(busy1 - busy0 + idle1 - idle0, 1)
    for r in rows:
        r["max_error"], r["error_ratio"], r["vectors"] = conformance_error(r["case"])
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(report(rows, info, load_before, load_after, busy, args))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
