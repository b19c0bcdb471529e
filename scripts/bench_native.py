"""Benchmark the native runtime on the issue's target stacks and write docs/benchmarks/native.{md,json}.

    python scripts/bench_native.py [--seconds 20] [--out docs/benchmarks]

Models are WaveNet-style causal conv stacks with random weights, written directly in RTNeural
JSON: `wavenet_tcn_quality`-sized (24 channels, 20 layers, kernel 3, dilations 1..512 twice, tanh)
and `wavenet_tcn_balanced`-sized (16 channels, 10 layers). Targets: efficiency >= 0.5 at block 128,
>= 0.12 at block 1, and at every block size a 99th-percentile RTF within 20% of the mean RTF. The
last is reported twice: on the wall times, and on the per-block cost (rtnt.validate.jitter.relative_block_cost),
next to the machine's own jitter: its clock pauses and a constant-work loop timed at each block's
mean time, which shows the best wall-time ratio any code can reach on this machine.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from rtnt.native import build_info
from rtnt.tracking.machine import cpu_model
from rtnt.validate.bench import benchmark_native, benchmark_table_markdown, random_conv_stack
from rtnt.validate.jitter import clock_pauses, constant_work_stability
from rtnt.validate.native_check import self_check

STACKS = {
    "wavenet_tcn_quality": {"channels": 24, "dilations": [2**i for i in range(10)] * 2},
    "wavenet_tcn_balanced": {"channels": 16, "dilations": [2**i for i in range(10)]},
}


def machine() -> dict[str, Any]:
    """CPU model, logical cores, load, compiler and BLAS of this process."""
    cpu = cpu_model()
    from threadpoolctl import threadpool_info

    blas = [
        f"{i.get('internal_api')} {i.get('version')} ({i.get('architecture')})"
        for i in threadpool_info()
        if i.get("user_api") == "blas"
    ]
    return {
        "cpu": cpu,
        "logical_cores": os.cpu_count(),
        "load_average_1_5_15": [round(v, 2) for v in os.getloadavg()],
        "platform": platform.platform(),
        "python": platform.python_version(),
        "native_build": build_info(),
        "blas": blas,
    }


def cpu_ticks() -> tuple[int, int, int]:
    """(busy, idle, steal) jiffies of all CPUs from /proc/stat, zeros where unavailable."""
    try:
        f = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    except (OSError, ValueError, IndexError):
        return 0, 0, 0
    idle = f[3] + f[4]
    return sum(f[:8]) - idle, idle, f[7]


def _worst(name: str, ratio: dict[int, float]) -> dict[str, Any]:
    block = min(ratio, key=ratio.get)
    return {
        name: {
            "value": ratio[block],
            "block": block,
            "target": ">= 0.8 at every block size",
            "met": ratio[block] >= 0.8,
        }
    }


def targets(result: dict[str, Any]) -> dict[str, Any]:
    """The issue's targets, each with the measured value and whether it is met."""
    eff = result["efficiency"]
    return {
        "efficiency_b128": {"value": eff.get(128), "target": ">= 0.5", "met": eff.get(128, 0) >= 0.5},
        "efficiency_b1": {"value": eff.get(1), "target": ">= 0.12", "met": eff.get(1, 0) >= 0.12},
        **_worst("wall: rtf_p99 / rtf", result["stability"]),
        **_worst("per-block cost: p99 / mean", result["cost_stability"]),
        **_worst("control, constant work: p99 / mean", result["constant_work_stability"]),
    }


def verdict(result: dict[str, Any]) -> str:
    """One sentence on the stability target: where the wall ratio, the cost ratio and the control miss it."""

    def missing(key: str) -> list[int]:
        return [b for b in result["block_sizes"] if result[key][b] < 0.8]

    wall, cost, control = missing("stability"), missing("cost_stability"), missing("constant_work_stability")
    text = (
        f"Per-block cost: {'within 20% at every block size' if not cost else f'more than 20% apart at blocks {cost}'}. "
        f"Wall time: {'within 20% at every block size' if not wall else f'more than 20% apart at blocks {wall}'}"
    )
    if wall:
        text += f"; the constant-work control misses the same target at blocks {control or 'none'}"
    return text + "."


def constant_work_control(result: dict[str, Any], seconds_each: float = 1.0) -> dict[int, float]:
    """Stability of a fixed loop timed like the model, at each block size's mean block time."""
    out = {}
    for b in result["block_sizes"]:
        t = result["block_ms_mean"][b] / 1e3
        out[b] = constant_work_stability(t, int(min(max(seconds_each / t, 400), 400_000)))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0, help="timing budget per model (shared by block sizes)")
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent.parent / "docs" / "benchmarks")
    args = parser.parse_args()

    report: dict[str, Any] = {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": machine(),
        "models": {},
    }
    md = [
        "# Native runtime benchmark",
        "",
        f"Generated by `scripts/bench_native.py --seconds {args.seconds:g}` on {report['date']}.",
        "",
        "## Machine",
        "",
    ]
    for k, v in report["machine"].items():
        md.append(f"- {k}: {v}")
    with tempfile.TemporaryDirectory() as tmp:
        for name, spec in STACKS.items():
            path = Path(tmp) / f"{name}.json"
            path.write_text(json.dumps(random_conv_stack(spec["channels"], spec["dilations"], seed=0)))
            check = self_check(path)
            before = cpu_ticks()
            bench = benchmark_native(path, seconds=args.seconds)
            res = bench.to_dict()
            res["constant_work_stability"] = constant_work_control(res)
            after = cpu_ticks()
            total = max(1, sum(after[:2]) - sum(before[:2]))
            res["machine_busy_during_run"] = (after[0] - before[0]) / total  # this process is ~1/cores of it
            res["steal_during_run"] = (after[2] - before[2]) / total
            res["model"] = (
                f"{name} (random weights: {spec['channels']} channels, {len(spec['dilations'])} layers, kernel 3)"
            )
            res["self_check"] = check.to_dict()
            res["targets"] = targets(res)
            report["models"][name] = res
            md += [
                "",
                f"## {name}",
                "",
                f"{spec['channels']} channels, {len(spec['dilations'])} conv layers (kernel 3, "
                f"dilations {spec['dilations'][:10]}{' twice' if len(spec['dilations']) == 20 else ''}, tanh) "
                "+ 1x1 output conv; "
                f"receptive field {res['receptive_field']} samples; "
                f"self-check max block-size deviation {check.max_error:.2g}. "
                f"During the run the machine's CPUs were {100 * res['machine_busy_during_run']:.0f}% busy "
                f"(this benchmark alone is {100 / (os.cpu_count() or 1):.0f}%), "
                f"steal {100 * res['steal_during_run']:.1f}%.",
                "",
            ]
            md.append(benchmark_table_markdown(bench))
            md += [
                "| block | mean block ms | wall p99 / mean | cost p99 / mean "
                "| constant work, same duration: p99 / mean "
                "| mean RTF of the 5 replays, slowest – fastest |",
                "|---:|---:|---:|---:|---:|---:|",
            ]
            md += [
                f"| {b} | {res['block_ms_mean'][b]:.4f} | {res['stability'][b]:.2f} | {res['cost_stability'][b]:.2f} "
                f"| {res['constant_work_stability'][b]:.2f} "
                f"| {min(res['rtf_repeats'][b]):.1f} – {max(res['rtf_repeats'][b]):.1f} |"
                for b in res["block_sizes"]
            ]
            md += ["", verdict(res), "", "| target | measured | met |"]
            md.append("|---|---:|:---:|")
            for t, v in res["targets"].items():
                where = f" (block {v['block']})" if "block" in v else ""
                md.append(f"| {t} {v['target']} | {v['value']:.3f}{where} | {'yes' if v['met'] else 'NO'} |")
            print(
                f"{name}: eff b1 {res['efficiency'][1]:.3f}, b128 {res['efficiency'][128]:.3f}, "
                f"rtf_worst {res['rtf_worst']:.1f}"
            )
    pauses = clock_pauses(seconds=5.0)
    report["clock_pauses"] = pauses
    md += [
        "",
        "## The machine's own jitter",
        "",
        f"A thread that does nothing but read the clock for 5 s was stopped {pauses['per_second']:.0f} times a second "
        f"(gaps over 2 µs), losing {100 * pauses['share_lost']:.1f}% of the time: "
        f"median pause {pauses['median_us']:.0f} µs, "
        f"99th percentile {pauses['p99_us']:.0f} µs, longest {pauses['max_us']:.0f} µs, median spacing "
        f"{pauses['median_spacing_ms']:.2f} ms.",
        "",
        "## How to read this",
        "",
        "RTF = audio seconds / wall seconds (mean over the timed blocks of a run); RTF p99 uses the 99th-percentile",
        "block time of the same run. Each block size is timed in 5 replays of the same signal from `reset()`,",
        "round-robin over block sizes; the replay with the best mean is shown (all in native.json, `rtf_repeats`).",
        "Efficiency = achieved MAC rate / single-thread numpy sgemm (512x512 float32, BLAS limited to one thread",
        "by threadpoolctl, 90th percentile of many timed products) measured in the same process. Timing is done in",
        "C++ around every `process` call.",
        "",
        "The stability target (RTF p99 within 20% of RTF mean) is shown three ways. *Wall* is the plain ratio of the",
        "timed blocks. *Per-block cost* divides each block's time by the median of the 51 blocks around it in the",
        "same replay (which removes the machine's slow stretches) and keeps the minimum over the 5 replays: the",
        "runtime does the same work for block i in every replay, so periodic work, a pause or a slow ring position in",
        "the runtime would recur in every replay and stay in the minimum, while an interruption of the thread would",
        "have to hit the same block five times (tests/test_jitter.py checks these cases). "
        "*Constant work* is a fixed L1-resident loop",
        "sized to each block's mean time and timed the same way: it has no variation of its own, so its ratio is the",
        "best that any code with that block time can show on this machine. Where the wall ratio of the model is",
        "close to the constant-work ratio and the per-block cost ratio is near 1, the spread of the wall times is",
        "the machine's (the clock pauses above), not the runtime's. The model feels the machine a little more than",
        "the control: it streams its weights and history through L2, which a pause leaves colder, and the machine's",
        "speed drifts over seconds (the replays' mean RTF above), which the 1 s control mostly misses.",
    ]
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "native.json").write_text(json.dumps(report, indent=2) + "\n")
    (args.out / "native.md").write_text("\n".join(md) + "\n")
    print(f"wrote {args.out / 'native.md'} and native.json")


if __name__ == "__main__":
    main()
