"""Benchmark of the native runtime: real-time factor, MAC rate and efficiency against sgemm.

All timing happens in C++ (`rtnt._native.bench` times every `process` call of a block loop); this
module picks signal lengths, measures the single-thread sgemm reference and summarises.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from rtnt.constants import BENCH_BLOCK_SIZES, SAMPLE_RATE
from rtnt.native import BlockTiming, NativeModel
from rtnt.runtime.controls import sweep_controls
from rtnt.validate.jitter import relative_block_cost, stability
from rtnt.validate.native_check import ModelSource, loaded_model

MIN_BLOCKS = 200  # per block size, so that the 99th percentile is a measured block time
MAX_SAMPLES = 1 << 24


@dataclass(frozen=True)
class BenchmarkResult:
    """The native benchmark of one model; per-block-size mappings are keyed by block size.

    rtf: audio seconds / wall seconds (mean); rtf_p99: block duration / 99th-percentile block time;
    stability: rtf_p99 / rtf; cost_stability: the same for the per-block cost over the repeats
    (`rtnt.validate.jitter.relative_block_cost`): the runtime's own variation without the machine's
    interruptions; gmacs: achieved MAC rate; efficiency: gmacs / sgemm_gmacs; preemptions: involuntary
    context switches during the reported run (-1 if unknown); rtf_repeats: every repeat's rtf.
    rtf_worst is the lowest rtf_p99 (at rtf_worst_block), cost_stability_worst the lowest cost_stability.
    """

    model: str
    description: str
    slim: float | None
    sample_rate: int
    macs_per_sample: float
    receptive_field: int
    block_sizes: list[int]
    rtf: Mapping[int, float]
    rtf_p99: Mapping[int, float]
    rtf_worst: float
    rtf_worst_block: int
    stability: Mapping[int, float]
    cost_stability: Mapping[int, float]
    cost_stability_worst: float
    gmacs: Mapping[int, float]
    efficiency: Mapping[int, float]
    sgemm_gmacs: float
    block_ms_mean: Mapping[int, float]
    block_ms_p99: Mapping[int, float]
    blocks_timed: Mapping[int, int]
    repeats: int
    rtf_repeats: Mapping[int, list[float]]
    preemptions: Mapping[int, int]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready record (block-size keys become strings when dumped)."""
        return asdict(self)


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
    model: ModelSource,
    block_sizes: Iterable[int] = BENCH_BLOCK_SIZES,
    seconds: float = 2.0,
    repeats: int = 5,
    slim: float | None = None,
) -> BenchmarkResult:
    """Benchmark `model` (a loaded `NativeModel`, or an RTNeural JSON or `.nam` file, `slim` picking a
    SlimmableContainer's submodel) single-threaded at 48 kHz for each block size. A `.nam` model runs as
    NAM Core would: every replay starts from `reset()`, which prewarms it; MACs are the model's nominal ones.
    A conditioned model runs with its controls changing at every sample (`sweep_controls`), as a plugin
    feeds a smoothed knob.

    `seconds` is the wall-clock budget of the timed loops, shared evenly by the block sizes and
    `repeats` (each timed run still covers at least MIN_BLOCKS blocks). Every repeat replays the
    same signal from `reset()`. The repeats run round-robin over the block sizes, and per block
    size the repeat with the best mean is reported, so that a burst of other work on a shared
    machine does not decide a figure; `rtf_repeats` lists them all.
    """
    block_sizes = [int(b) for b in block_sizes]
    repeats = max(1, int(repeats))
    with loaded_model(model, slim, prewarm=True) as model:
        model.prepare(max(block_sizes))
        runs = _timed_runs(model, block_sizes, seconds, repeats)
        return _summarise(model, runs, slim)


def _timed_runs(
    model: NativeModel, block_sizes: list[int], seconds: float, repeats: int
) -> dict[int, list[BlockTiming]]:
    """`repeats` timed replays per block size, round-robin over the block sizes, sharing `seconds`."""
    per_run = max(seconds, 1e-3) / (len(block_sizes) * repeats)
    probe = _signal(8192)
    model.reset()
    probe_wall = model.time_blocks(
        probe, min(64, max(block_sizes)), warmup=16, controls=sweep_controls(model.controls, len(probe))
    ).total
    cost = max(probe_wall / len(probe), 1e-10)  # seconds per sample, rough
    signals, knobs = {}, {}
    for b in block_sizes:
        n = int(min(max(per_run / cost, MIN_BLOCKS * b), MAX_SAMPLES)) // b * b
        signals[b] = _signal(max(n, b))
        knobs[b] = sweep_controls(model.controls, len(signals[b]))

    runs: dict[int, list[BlockTiming]] = {b: [] for b in block_sizes}
    for _ in range(repeats):
        for b in block_sizes:
            model.reset()
            runs[b].append(model.time_blocks(signals[b], b, warmup=max(16, 8192 // b), controls=knobs[b]))
    return runs


def _summarise(model: NativeModel, runs: dict[int, list[BlockTiming]], slim: float | None) -> BenchmarkResult:
    """Per block size, the figures of its best repeat (by mean), and the cost stability over all repeats."""
    macs = model.macs_per_sample
    sgemm = sgemm_gmacs()
    block_sizes = list(runs)
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
    return BenchmarkResult(
        model=model.source,
        description=model.description,
        slim=slim,
        sample_rate=SAMPLE_RATE,
        macs_per_sample=macs,
        receptive_field=model.receptive_field,
        block_sizes=block_sizes,
        rtf=rtf,
        rtf_p99=rtf_p99,
        rtf_worst=rtf_p99[worst_block],
        rtf_worst_block=worst_block,
        stability=wall_stability,
        cost_stability=cost_stability,
        cost_stability_worst=min(cost_stability.values()),
        gmacs=gmacs,
        efficiency=eff,
        sgemm_gmacs=sgemm,
        block_ms_mean=mean_ms,
        block_ms_p99=p99_ms,
        blocks_timed=blocks_timed,
        repeats=len(next(iter(runs.values()))),
        rtf_repeats=rtf_repeats,
        preemptions=preempted,
    )


def benchmark_table_markdown(r: BenchmarkResult) -> str:
    """The benchmark result as a Markdown table with a one-line summary above it."""
    lines = [
        f"MACs/sample {r.macs_per_sample:.0f}, single-thread sgemm {r.sgemm_gmacs:.1f} GMAC/s, "
        f"worst-case RTF {r.rtf_worst:.1f} (block {r.rtf_worst_block}, 99th-percentile block time)",
        "",
        "| block | RTF mean | RTF p99 | p99 / mean | cost p99 / mean | GMAC/s | efficiency | mean block ms "
        "| p99 block ms | blocks | preempted |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for b in r.block_sizes:
        lines.append(
            f"| {b} | {r.rtf[b]:.1f} | {r.rtf_p99[b]:.1f} | {r.stability[b]:.2f} | {r.cost_stability[b]:.2f} "
            f"| {r.gmacs[b]:.2f} | {r.efficiency[b]:.3f} | {r.block_ms_mean[b]:.4f} | {r.block_ms_p99[b]:.4f} "
            f"| {r.blocks_timed[b]} | {r.preemptions[b]} |"
        )
    return "\n".join(lines) + "\n"
