"""Native validation: the C++ runtime against reference outputs at many block partitions."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rtnt.constants import SAMPLE_RATE
from rtnt.native import NativeModel


@dataclass(frozen=True)
class NativeCheck:
    """Outcome of a native check (`validate_native` against a reference output, `self_check` against the
    model's own one-pass output).

    max_error: worst max-abs deviation over all cases (inf when an output is not finite);
    passed: finite and within `tolerance`; case_errors: max-abs deviation per case;
    finite: the outputs had no NaN or inf.
    """

    max_error: float
    passed: bool
    tolerance: float
    finite: bool
    case_errors: Mapping[str, float]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready record."""
        return {**asdict(self), "case_errors": dict(self.case_errors)}


ModelSource = NativeModel | str | Path


@contextmanager
def loaded_model(model: ModelSource, slim: float | None, prewarm: bool) -> Iterator[NativeModel]:
    """`model` itself when already loaded (its prewarm setting switched to `prewarm` for the block and
    restored after it), else the file loaded."""
    if not isinstance(model, NativeModel):
        yield NativeModel.from_file(model, slim=slim, prewarm=prewarm)
        return
    before = model.prewarm_on_reset
    model.prewarm_on_reset = prewarm
    try:
        yield model
    finally:
        model.prewarm_on_reset = before


def _verdict(cases: dict[str, float], tolerance: float, finite: bool = True) -> NativeCheck:
    values = list(cases.values())
    finite = finite and all(np.isfinite(values))
    worst = max(values) if finite else float("inf")
    return NativeCheck(float(worst), bool(finite and worst <= tolerance), float(tolerance), finite, cases)


def run_blocks(
    model: NativeModel, x: np.ndarray, sizes: Iterable[int], controls: np.ndarray | None = None
) -> np.ndarray:
    """Reset `model` and process `x` in consecutive blocks of the given sizes (cycled until x ends); a
    knob-conditioned model gets the matching rows of `controls` (n, K) with every block."""
    model.reset()
    sizes = list(sizes)
    out, pos, k = [], 0, 0
    while pos < len(x):
        b = sizes[k % len(sizes)]
        out.append(_process(model, x[pos : pos + b], None if controls is None else controls[pos : pos + b]))
        pos += b
        k += 1
    return np.concatenate(out) if out else np.zeros(0, np.float32)


def _process(model: NativeModel, x: np.ndarray, controls: np.ndarray | None) -> np.ndarray:
    return model.process(x) if controls is None else model.process(x, np.ascontiguousarray(controls))


def _max_abs(y: np.ndarray, ref: np.ndarray) -> float:
    d = np.abs(np.asarray(y, np.float64).reshape(-1) - ref)
    return float(np.max(d)) if len(d) else 0.0


def random_partition(n: int, rng: np.random.Generator, max_block: int) -> list[int]:
    """Block sizes in [1, max_block] (log-uniform, so tiny and large blocks both occur) summing to n."""
    sizes, total = [], 0
    while total < n:
        b = int(np.exp(rng.uniform(0.0, np.log(max_block + 1))))
        b = max(1, min(b, max_block, n - total))
        sizes.append(b)
        total += b
    return sizes


def validate_native(
    model: ModelSource,
    x: np.ndarray,
    y_ref: np.ndarray,
    block_sizes: Iterable[int] = (1, 32, 64, 128, 256, 1024, 77),
    tolerance: float = 1e-4,
    random_partitions: int = 2,
    seed: int = 0,
    *,
    slim: float | None = None,
    prewarm: bool = False,
    controls: np.ndarray | None = None,
) -> NativeCheck:
    """Run the exported model natively on `x` and compare with `y_ref` (e.g. the Keras output).
    A knob-conditioned model gets `controls` (n, K), one row per sample, cut with the blocks.

    `model` is a loaded `NativeModel` or a file (RTNeural JSON or `.nam`; `slim` and `prewarm` as in
    `NativeModel.from_file`); the two-instance case loads two more instances of the same file.
    By default the native model starts from zero histories (a `.nam` file's prewarm on silence is
    off), as Keras' causal padding does; `prewarm=True` compares with NAM Core's behaviour instead.

    Cases: one block per size in `block_sizes`, `random_partitions` random partitions, and two
    instances interleaved call by call as two channels (channel A plays `x`, channel B the reversed
    signal, which must match B's solo one-pass run bit for bit).
    """
    x = np.ascontiguousarray(x, dtype=np.float32).reshape(-1)
    y_ref = np.asarray(y_ref, dtype=np.float64).reshape(-1)
    if len(x) != len(y_ref):
        raise ValueError(f"x has {len(x)} samples but y_ref has {len(y_ref)}")
    block_sizes = [int(b) for b in block_sizes]
    max_block = max(block_sizes + [1024])
    with loaded_model(model, slim, prewarm) as model:
        model.prepare(max_block)

        cases: dict[str, float] = {}
        for b in block_sizes:
            cases[f"block_{b}"] = _max_abs(run_blocks(model, x, [b], controls), y_ref)
        rng = np.random.default_rng(seed)
        for k in range(random_partitions):
            blocks = random_partition(len(x), rng, max_block)
            cases[f"random_{k}"] = _max_abs(run_blocks(model, x, blocks, controls), y_ref)

        x_b = np.ascontiguousarray(x[::-1])
        c_b = None if controls is None else np.ascontiguousarray(controls[::-1])
        solo_b = run_blocks(model, x_b, [max_block], c_b)
        a, b_inst = model.twin(), model.twin()
        a.prepare(max_block)
        b_inst.prepare(max_block)
        out_a, out_b, pos = [], [], 0
        for n in random_partition(len(x), rng, 256):
            out_a.append(_process(a, x[pos : pos + n], None if controls is None else controls[pos : pos + n]))
            out_b.append(_process(b_inst, x_b[pos : pos + n], None if c_b is None else c_b[pos : pos + n]))
            pos += n
        cases["two_channel"] = _max_abs(np.concatenate(out_a), y_ref)
        cases["two_channel_isolation"] = _max_abs(np.concatenate(out_b), np.asarray(solo_b, np.float64))

        return _verdict(cases, tolerance)


def self_check(
    model: ModelSource,
    n: int = 16384,
    block_sizes: Iterable[int] = (1, 7, 32, 64, 128, 511, 1024, 4096),
    tolerance: float = 1e-6,
    seed: int = 0,
    slim: float | None = None,
) -> NativeCheck:
    """Conformance-style check of any model (a loaded `NativeModel`, or an RTNeural JSON or `.nam` file,
    `slim` as in `NativeModel.from_file`) without a reference: block-size invariance.

    Runs a test signal in one pass, then at each block size, a random partition and as two interleaved
    instances; every run must match the one-pass output within `tolerance`. `finite` requires the
    one-pass output, and the output for a full-scale 1 kHz sine (where an unstable model overflows), to
    have no NaN or inf.
    """
    rng = np.random.default_rng(seed)
    t = np.arange(n) / SAMPLE_RATE
    x = (0.4 * np.sin(2 * np.pi * 110.0 * t) * np.exp(-2.0 * t) + 0.05 * rng.standard_normal(n)).astype(np.float32)
    block_sizes = [int(b) for b in block_sizes]
    with loaded_model(model, slim, prewarm=True) as model:
        model.prepare(max(block_sizes))
        ref = np.asarray(run_blocks(model, x, [n]), np.float64)
        full_scale = np.sin(2 * np.pi * 1000.0 * t).astype(np.float32)
        finite = bool(np.all(np.isfinite(ref)) and np.all(np.isfinite(run_blocks(model, full_scale, [n]))))
        cases: dict[str, float] = {}
        for b in block_sizes:
            cases[f"block_{b}"] = _max_abs(run_blocks(model, x, [b]), ref)
        cases["random"] = _max_abs(run_blocks(model, x, random_partition(n, rng, max(block_sizes))), ref)
        other = model.twin()
        other.prepare(max(block_sizes))
        model.reset()
        out, pos = [], 0
        for b in random_partition(n, rng, 256):
            out.append(model.process(x[pos : pos + b]))
            other.process(-x[pos : pos + b])
            pos += b
        cases["two_instances"] = _max_abs(np.concatenate(out), ref)
        return _verdict(cases, tolerance, finite)
