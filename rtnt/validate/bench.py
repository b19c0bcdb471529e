"""Benchmark of the native runtime: real-time factor, MAC rate and efficiency against sgemm.

All timing happens in C++ (`rtnt._native.bench` times every `process` call of a block loop); this
module picks signal lengths, measures the single-thread sgemm reference and summarises.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from rtnt.constants import BENCH_BLOCK_SIZES, SAMPLE_RATE
from rtnt.native import BlockTiming, NativeModel
from rtnt.validate.jitter import relative_block_cost, stability

MIN_BLOCKS = 200  # per block size, so that the 99th percentile is a measured block time
MAX_SAMPLES = 1 << 24


def random_conv_stack(
    channels: int,
    dilations: Iterable[int],
    kernel_size: int = 3,
    activation: str = "tanh",
    seed: int = 0,
) -> dict[str, Any]:
    """An RTNeural JSON model dict: a causal conv1d stack (1 -> channels -> ... -> 1) with random weights.

    Hidden layers use `activation`; a final kernel-1 conv maps to one output channel. Weights are
    scaled by 1/sqrt(fan_in) so activations stay in a realistic, unsaturated range.
    """
    rng = np.random.default_rng(seed)
    layers, cin = [], 1
    for d in dilations:
        w = rng.normal(0.0, 1.0 / np.sqrt(kernel_size * cin), (kernel_size, cin, channels))
        b = rng.normal(0.0, 0.05, channels)
        layers.append(_conv_layer(w, b, int(d), activation))
        cin = channels
    w = rng.normal(0.0, 1.0 / np.sqrt(cin), (1, cin, 1))
    layers.append(_conv_layer(w, np.zeros(1), 1, ""))
    return {"in_shape": [None, None, 1], "layers": layers}


def _conv_layer(w: np.ndarray, b: np.ndarray, dilation: int, activation: str) -> dict[str, Any]:
    return {
        "type": "conv1d",
        "activation": activation,
        "shape": [None, None, int(w.shape[2])],
        "kernel_size": [int(w.shape[0])],
        "dilation": [dilation],
        "groups": 1,
        "weights": [w.astype(np.float32).tolist(), b.astype(np.float32).tolist()],
    }


def sgemm_gmacs(seconds: float = 0.5, n: int = 512) -> float:
    """Single-thread float32 matrix-multiply rate in GMAC/s (numpy BLAS limited to one thread).

    Many n x n products are timed one by one for `seconds`; the 90th percentile of their rates is
    returned: the machine's sustained sgemm rate, little lowered by other work on a shared machine.
    """
    from threadpoolctl import threadpool_limits

    rng = np.random.default_rng(0)
    a = rng.standard_normal((n, n), dtype=np.float32)
    b = rng.standard_normal((n, n), dtype=np.float32)
    c = np.empty((n, n), np.float32)
    rates = []
    with threadpool_limits(limits=1, user_api="blas"):
        np.matmul(a, b, out=c)
        end = time.perf_counter() + seconds
        while time.perf_counter() < end or len(rates) < 5:
            t0 = time.perf_counter()
            np.matmul(a, b, out=c)
            rates.append(n**3 / (time.perf_counter() - t0) / 1e9)
    return float(np.percentile(rates, 90))


def _signal(n: int, seed: int = 1) -> np.ndarray:
    """Guitar-level test signal: a decaying chord plus noise, peak about 0.5."""
    rng = np.random.default_rng(seed)
    t = np.arange(n) / SAMPLE_RATE
    chord = sum(np.sin(2 * np.pi * f * t) for f in (82.4, 123.5, 164.8, 207.7))
    env = 0.5 + 0.5 * np.cos(2 * np.pi * 0.5 * t)
    return (0.1 * chord * env + 0.02 * rng.standard_normal(n)).astype(np.float32)


def benchmark_native(
    json_path: str | Path,
    block_sizes: Iterable[int] = BENCH_BLOCK_SIZES,
    seconds: float = 2.0,
    repeats: int = 5,
    slim: float | None = None,
) -> dict[str, Any]:
    """Benchmark `json_path` (RTNeural JSON or `.nam`; `slim` picks a SlimmableContainer's submodel)
    single-threaded at 48 kHz for each block size. A `.nam` model runs as NAM Core would: every
    replay starts from `reset()`, which prewarms it; MACs are the model's nominal ones.

    `seconds` is the wall-clock budget of the timed loops, shared evenly by the block sizes and
    `repeats` (each timed run still covers at least MIN_BLOCKS blocks). Every repeat replays the
    same signal from `reset()`. The repeats run round-robin over the block sizes, and per block
    size the repeat with the best mean is reported, so that a burst of other work on a shared
    machine does not decide a figure; `rtf_repeats` lists them all.
    Per block size: `rtf` (audio seconds / wall seconds, mean), `rtf_p99` (block duration / 99th
    percentile block time), `stability` (`rtf_p99 / rtf`), `gmacs` and `efficiency` (achieved MAC
    rate / `sgemm_gmacs`). `rtf_worst` is the lowest `rtf_p99` over block sizes; `preemptions`
    counts the involuntary context switches during the reported run. `cost_stability` is the same
    ratio for the per-block cost over the repeats (`rtnt.validate.jitter.relative_block_cost`): the
    runtime's own variation without the machine's interruptions and slow stretches, and
    `cost_stability_worst` its lowest value over block sizes. Dicts are keyed by block size (int).
    """
    block_sizes = [int(b) for b in block_sizes]
    repeats = max(1, int(repeats))
    model = NativeModel.from_file(json_path, slim=slim)
    model.prepare(max(block_sizes))
    macs = model.macs_per_sample
    sgemm = sgemm_gmacs()

    per_run = max(seconds, 1e-3) / (len(block_sizes) * repeats)
    probe = _signal(8192)
    model.reset()
    probe_wall = model.time_blocks(probe, min(64, max(block_sizes)), warmup=16).total
    cost = max(probe_wall / len(probe), 1e-10)  # seconds per sample, rough
    signals = {}
    for b in block_sizes:
        n = int(min(max(per_run / cost, MIN_BLOCKS * b), MAX_SAMPLES)) // b * b
        signals[b] = _signal(max(n, b))

    runs: dict[int, list[BlockTiming]] = {b: [] for b in block_sizes}
    for _ in range(repeats):
        for b in block_sizes:
            model.reset()
            runs[b].append(model.time_blocks(signals[b], b, warmup=max(16, 8192 // b)))

    rtf, rtf_p99, gmacs, eff, p99_ms, mean_ms, blocks_timed, rtf_repeats, preempted = ({} for _ in range(9))
    wall_stability, cost_stability = {}, {}
    for b in block_sizes:
        cost_stability[b] = stability(relative_block_cost([r.times for r in runs[b]]))
        rtf_repeats[b] = [len(r.times) * b / SAMPLE_RATE / r.total for r in runs[b]]
        best = runs[b][int(np.argmax(rtf_repeats[b]))]
        times, total = best.times, best.total
        preempted[b] = best.preemptions
        p99 = float(np.percentile(times, 99))
        rtf[b] = len(times) * b / SAMPLE_RATE / total
        rtf_p99[b] = (b / SAMPLE_RATE) / p99
        gmacs[b] = macs * len(times) * b / total / 1e9
        eff[b] = gmacs[b] / sgemm
        p99_ms[b] = p99 * 1e3
        mean_ms[b] = total / len(times) * 1e3
        blocks_timed[b] = len(times)
        wall_stability[b] = stability(times)
    worst_block = min(rtf_p99, key=rtf_p99.get)
    return {
        "model": str(json_path),
        "description": model.description,
        "slim": slim,
        "sample_rate": SAMPLE_RATE,
        "macs_per_sample": macs,
        "receptive_field": model.receptive_field,
        "block_sizes": block_sizes,
        "rtf": rtf,
        "rtf_p99": rtf_p99,
        "rtf_worst": rtf_p99[worst_block],
        "rtf_worst_block": worst_block,
        "stability": wall_stability,
        "cost_stability": cost_stability,
        "cost_stability_worst": min(cost_stability.values()),
        "gmacs": gmacs,
        "efficiency": eff,
        "sgemm_gmacs": sgemm,
        "block_ms_mean": mean_ms,
        "block_ms_p99": p99_ms,
        "blocks_timed": blocks_timed,
        "repeats": repeats,
        "rtf_repeats": rtf_repeats,
        "preemptions": preempted,
    }


def benchmark_table_markdown(result: dict[str, Any]) -> str:
    """The benchmark result as a Markdown table with a one-line summary above it."""
    lines = [
        f"MACs/sample {result['macs_per_sample']:.0f}, single-thread sgemm {result['sgemm_gmacs']:.1f} GMAC/s, "
        f"worst-case RTF {result['rtf_worst']:.1f} (block {result['rtf_worst_block']}, 99th-percentile block time)",
        "",
        "| block | RTF mean | RTF p99 | p99 / mean | cost p99 / mean | GMAC/s | efficiency | mean block ms "
        "| p99 block ms | blocks | preempted |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for b in result["block_sizes"]:
        lines.append(
            f"| {b} | {result['rtf'][b]:.1f} | {result['rtf_p99'][b]:.1f} | {result['stability'][b]:.2f} "
            f"| {result['cost_stability'][b]:.2f} | {result['gmacs'][b]:.2f} | {result['efficiency'][b]:.3f} "
            f"| {result['block_ms_mean'][b]:.4f} | {result['block_ms_p99'][b]:.4f} | {result['blocks_timed'][b]} "
            f"| {result['preemptions'][b]} |"
        )
    return "\n".join(lines) + "\n"
