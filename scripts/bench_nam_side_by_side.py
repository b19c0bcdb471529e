"""rtnt and NAM Core measured side by side, in one run, on the same `.nam` files and the same input.

    python scripts/bench_nam_side_by_side.py --nam-core PATH [--eigen PATH] [--out docs/benchmarks/nam_side_by_side.md]

docs/benchmarks/nam_native.md quotes NAM Core's figures from the machine issue 14 was measured on. This script
builds NAM Core itself (a checkout of github.com/sdatkinson/NeuralAmpModelerCore given by --nam-core; NAM Core
is not part of rtnt) as its own CMake Release build compiles its tools (-Ofast, LTO, the A2 fast path), with
-march=native, plus a small timing program
(scripts/nam_core_rtf.cpp), and times both runtimes on this machine: for every model and block size, NAM
Core's runs and then rtnt's, best of --repeats each, on --seconds of the demo guitar input, every run from a
prewarmed reset. Eigen's headers come from --eigen, by default those TensorFlow installs (rtnt depends on it).
Run it on an idle machine: the load before and after is written with the figures.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from rtnt.config import REPO_DIR
from rtnt.constants import SAMPLE_RATE
from rtnt.native import NativeModel
from rtnt.validate.bench import sgemm_gmacs

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_nam import NAM_DIR, guitar  # noqa: E402
from bench_native import machine  # noqa: E402

BLOCKS = (1, 64, 128)
# NAM Core's own Release build of its tools (CMakeLists.txt, tools/CMakeLists.txt: -Ofast, link-time
# optimisation, the A2 fast path on), for this machine.
FLAGS = ["-Ofast", "-march=native", "-flto", "-std=c++20", "-DNDEBUG", "-DNAM_ENABLE_A2_FAST"]


def nam_core_flags() -> list[str]:
    """FLAGS, plus -mno-avx512fp16 where -march=native turns AVX512-FP16 on: TensorFlow's Eigen copy fails to
    compile its half-float packets with GCC 12 (NAM Core computes in float32 only, so this changes nothing it runs)."""
    probe = ["g++", "-march=native", "-dM", "-E", "-x", "c++", "/dev/null"]
    native = subprocess.run(probe, capture_output=True, text=True).stdout
    return FLAGS + (["-mno-avx512fp16"] if "__AVX512FP16__" in native else [])


@dataclass(frozen=True)
class Case:
    """One model as both runtimes run it; `target` is rtnt's RTF over NAM Core's that issue 14 asks (0: none)."""

    label: str
    file: str
    slim: float | None
    exact_tanh: bool
    target: float


CASES = (
    Case(
        "wavenet_a1_standard.nam, NAM Core fast tanh (NAM plugin default)", "wavenet_a1_standard.nam", None, False, 1.5
    ),
    Case(
        "wavenet_a1_standard.nam, NAM Core std::tanh (library default; -Ofast vectorises it)",
        "wavenet_a1_standard.nam",
        None,
        True,
        0.0,
    ),
    Case("A2.nam -> A2-Full, 8 ch (NAM Core's A2 fast path)", "A2.nam", None, False, 1.0),
    Case("A2.nam slim 0 -> A2-Lite, 3 ch (NAM Core's A2 fast path)", "A2.nam", 0.0, False, 1.0),
)


@dataclass(frozen=True)
class Row:
    case: Case
    block: int
    nam_core: list[float]
    rtnt: list[float]

    @property
    def ratio(self) -> float:
        return max(self.rtnt) / max(self.nam_core)


def default_eigen() -> Path:
    """TensorFlow's copy of Eigen's headers."""
    spec = importlib.util.find_spec("tensorflow")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("no Eigen headers: pass --eigen PATH (TensorFlow, which ships a copy, is not installed)")
    return Path(spec.submodule_search_locations[0]) / "include"


def build_nam_core(src: Path, eigen: Path, out: Path, flags: list[str]) -> Path:
    """Compiles NAM Core's sources (objects cached in `out`) and links them with scripts/nam_core_rtf.cpp."""
    if not (src / "NAM" / "dsp.h").exists():
        raise SystemExit(f"--nam-core {src}: no NAM/dsp.h there; pass a NeuralAmpModelerCore checkout")
    includes = [f"-I{src}", f"-I{eigen}", f"-I{src / 'Dependencies' / 'nlohmann'}"]
    out.mkdir(parents=True, exist_ok=True)
    sources = sorted(src.glob("NAM/*.cpp")) + sorted(src.glob("NAM/*/*.cpp"))

    def compile_one(cpp: Path) -> Path:
        obj = out / (str(cpp.relative_to(src)).replace("/", "_") + ".o")
        if not obj.exists() or obj.stat().st_mtime < cpp.stat().st_mtime:
            subprocess.run(["g++", *flags, *includes, "-c", str(cpp), "-o", str(obj)], check=True)
        return obj

    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        objects = list(pool.map(compile_one, sources))
    exe = out / "nam_core_rtf"
    harness = REPO_DIR / "scripts" / "nam_core_rtf.cpp"
    subprocess.run(["g++", *flags, *includes, str(harness), *map(str, objects), "-o", str(exe)], check=True)
    return exe


def git_commit(src: Path) -> str:
    done = subprocess.run(["git", "-C", str(src), "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    return done.stdout.strip() if done.returncode == 0 else "unknown (not a git checkout)"


def nam_core_runs(exe: Path, case: Case, raw: Path, block: int, repeats: int) -> list[float]:
    cmd = [str(exe), str(NAM_DIR / "models" / case.file), str(raw), str(block), str(repeats)]
    cmd += ["--exact-tanh"] if case.exact_tanh else []
    cmd += ["--slim", str(case.slim)] if case.slim is not None else []
    return [float(v) for v in subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.split()]


def rtnt_runs(model: NativeModel, x: np.ndarray, block: int, repeats: int) -> list[float]:
    """RTF of `repeats` runs over x in blocks of `block`, each from a prewarmed reset(), timed around the whole
    block loop (`process_blocks`, one C++ loop) exactly as scripts/nam_core_rtf.cpp times NAM Core's: no clock
    read per block (one costs about 20 ns, 3 % of a block-1 sample of A2-Lite)."""
    model.prepare(block)
    n = len(x) // block * block
    runs = []
    for _ in range(repeats):
        model.reset()
        start = time.perf_counter()
        model.process_blocks(x[:n], block)
        runs.append(n / SAMPLE_RATE / (time.perf_counter() - start))
    return runs


def report(rows: list[Row], info: dict, loads: tuple[list[float], list[float]], gemm: float, commit: str, args) -> str:
    build = ", ".join(f"{k} {v}" for k, v in info["native_build"].items())
    lines = [
        "# rtnt and NAM Core side by side",
        "",
        f"Generated by `python scripts/bench_nam_side_by_side.py` on "
        f"{datetime.now(timezone.utc).isoformat(timespec='seconds')}: both runtimes built and timed in this one run.",
        "",
        "## Machine and builds",
        "",
        f"- cpu: {info['cpu']}, {info['logical_cores']} logical cores; {info['platform']}; numpy single-thread "
        f"sgemm {gemm:.1f} GMAC/s (docs/benchmarks/native.md's host: 32-39)",
        f"- load average (1, 5, 15 min) before: {loads[0]}, after: {loads[1]}",
        f"- NAM Core commit {commit}, g++ {' '.join(args.flags)}, Eigen from `{args.eigen}`; timed by "
        "scripts/nam_core_rtf.cpp around its block loop (`Reset()` prewarms, then `process()` per block)",
        f"- rtnt: the installed native module ({build}), timed around its block loop "
        "(`NativeModel.process_blocks`, one C++ loop with no clock read per block, as NAM Core's; each run from a "
        "prewarmed `reset()`)",
        f"- input: {args.seconds:g} s of rtnt/demo/input.flac; RTF = audio seconds / wall seconds, single thread, "
        f"best of {args.repeats} runs; for each model and block, NAM Core's runs first, then rtnt's",
        "",
        "## Real-time factor",
        "",
        "| model | block | NAM Core RTF | rtnt RTF | rtnt / NAM Core | issue 14 asks | met |",
        "|---|---:|---:|---:|---:|---:|:---:|",
    ]
    for r in rows:
        asked = r.block in (64, 128) and r.case.target > 0
        target = f">= {r.case.target:g}x" if asked else ""
        met = ("yes" if r.ratio >= r.case.target else "NO") if asked else ""
        lines.append(
            f"| {r.case.label} | {r.block} | {max(r.nam_core):.1f} | **{max(r.rtnt):.1f}** | {r.ratio:.2f}x "
            f"| {target} | {met} |"
        )
    lines += ["", "## Every run", "", "| model | block | NAM Core runs | rtnt runs |", "|---|---:|---|---|"]
    for r in rows:
        lines.append(
            f"| {r.case.label} | {r.block} | {', '.join(f'{v:.1f}' for v in r.nam_core)} "
            f"| {', '.join(f'{v:.1f}' for v in r.rtnt)} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nam-core", type=Path, required=True, help="a NeuralAmpModelerCore checkout")
    parser.add_argument("--eigen", type=Path, default=None, help="Eigen's headers (default: TensorFlow's copy)")
    parser.add_argument("--build", type=Path, default=REPO_DIR / "build" / "nam_core")
    parser.add_argument("--out", type=Path, default=REPO_DIR / "docs" / "benchmarks" / "nam_side_by_side.md")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()
    args.eigen = args.eigen or default_eigen()
    args.flags = nam_core_flags()
    exe = build_nam_core(args.nam_core.resolve(), args.eigen, args.build, args.flags)
    x = guitar(args.seconds)
    gemm = sgemm_gmacs()
    load_before = [round(v, 2) for v in os.getloadavg()]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "input.f32"
        x.astype("<f4").tofile(raw)
        for case in CASES:
            model = NativeModel.from_file(NAM_DIR / "models" / case.file, slim=case.slim)
            for block in BLOCKS:
                theirs = nam_core_runs(exe, case, raw, block, args.repeats)
                ours = rtnt_runs(model, x, block, args.repeats)
                rows.append(Row(case, block, theirs, ours))
                print(f"{case.label}, block {block}: NAM Core {max(theirs):.1f}, rtnt {max(ours):.1f}", flush=True)
    load_after = [round(v, 2) for v in os.getloadavg()]
    args.out.write_text(report(rows, machine(), (load_before, load_after), gemm, git_commit(args.nam_core), args))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
