"""Reference runtime of the gray-box layer types (docs/graybox_format.md), dispatched to by `reference.py`.

`biquad`: a cascade of sections run as the exact recursion (scipy.signal.sosfilt, transposed direct form II,
float64 coefficients and state carried across calls); `fir`: causal convolution with a carried input history of taps - 1
samples (FFT convolution, float64); `waveshaper`: gain * (tanh(drive * x + bias) - tanh(bias)); `gain`: gain * x;
`parallel`: each branch (a list of layers of any type, [] the identity) on the layer's input, the branch outputs
summed in float32 in branch order. Every layer is mono in and out and keeps its state across `process` calls, so
any chunking gives the same output. A layer with an `oversampling` object (at the top level or inside a branch)
starts a run of memoryless layers (`OVERSAMPLED_LAYER_TYPES`) that runs at factor times the rate between the file's
interpolation and decimation taps (`Oversampled`, the direct form: zero-stuffing and full convolutions in float64,
every factor-th output kept).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import scipy.signal

GRAYBOX_LAYER_TYPES = ("biquad", "fir", "waveshaper", "gain", "parallel")
MAX_PARALLEL_DEPTH = 8  # nested parallel layers, as in the native loader
OVERSAMPLING_FACTORS = (2, 4)
OVERSAMPLED_LAYER_TYPES = ("dense", "time-distributed-dense", "activation", "waveshaper", "gain")  # memoryless
MAX_OVERSAMPLING_TAPS = 1024


class Biquads:
    """A cascade of biquad sections, coefficients (sections, 5) as b0, b1, b2, a1, a2 (a0 = 1)."""

    def __init__(self, coefficients: np.ndarray) -> None:
        c = np.asarray(coefficients, dtype=np.float64)
        self.sos = np.concatenate([c[:, :3], np.ones((len(c), 1)), c[:, 3:]], axis=1)
        self.reset()

    def reset(self) -> None:
        self.state = np.zeros((len(self.sos), 2))

    def forward(self, x: np.ndarray) -> np.ndarray:
        y, self.state = scipy.signal.sosfilt(self.sos, x[:, 0].astype(np.float64), zi=self.state)
        return y.astype(np.float32)[:, None]


class Fir:
    """y[t] = sum_k taps[k] x[t - k], with the last taps - 1 inputs kept as history."""

    def __init__(self, taps: np.ndarray) -> None:
        self.taps = np.asarray(taps, dtype=np.float64)
        self.reset()

    def reset(self) -> None:
        self.history = np.zeros(len(self.taps) - 1)

    def forward(self, x: np.ndarray) -> np.ndarray:
        padded = np.concatenate([self.history, x[:, 0].astype(np.float64)])
        y = scipy.signal.fftconvolve(padded, self.taps, mode="valid")
        self.history = padded[len(padded) - len(self.history) :] if len(self.history) else self.history
        return y.astype(np.float32)[:, None]


class Waveshaper:
    """gain * (tanh(drive * x + bias) - tanh(bias)), memoryless."""

    def __init__(self, drive: float, bias: float, gain: float) -> None:
        self.drive, self.bias, self.gain = np.float32(drive), np.float32(bias), np.float32(gain)

    def reset(self) -> None:
        pass

    def forward(self, x: np.ndarray) -> np.ndarray:
        return self.gain * (np.tanh(self.drive * x + self.bias) - np.tanh(self.bias))


class Gain:
    """gain * x."""

    def __init__(self, gain: float) -> None:
        self.gain = np.float32(gain)

    def reset(self) -> None:
        pass

    def forward(self, x: np.ndarray) -> np.ndarray:
        return self.gain * x


class Parallel:
    """The sum of the branches' outputs, each branch a chain of runtime layers run on the input ([]: the input)."""

    def __init__(self, branches: list[list[Any]]) -> None:
        self.branches = branches

    def reset(self) -> None:
        for branch in self.branches:
            for layer in branch:
                layer.reset()

    def forward(self, x: np.ndarray) -> np.ndarray:
        total: np.ndarray | None = None
        for branch in self.branches:
            h = x
            for layer in branch:
                h = layer.forward(h)
            total = h.copy() if total is None else total + h
        assert total is not None
        return total


def parse_parallel(
    r: Any, size: int, layers: list[Any], parse_chain: Callable[[Sequence[Any], str, int, list[Any]], int]
) -> int:
    """Append the `Parallel` of one JSON `parallel` layer read by `reference._Reader` `r`, each branch's layers
    parsed by `parse_chain` (reference.py's, so a branch holds any layer type and oversampled runs); returns 1."""
    if size != 1 or r.dims() != 1:
        r.fail(f"a gray-box layer is mono in and out, but its input has {size} channels and 'shape' ends in {r.dims()}")
    r.weights((0,))
    depth = r.source.count("(parallel) branch") + 1
    if depth > MAX_PARALLEL_DEPTH:
        r.fail(f"parallel layers nest at most {MAX_PARALLEL_DEPTH} deep")
    specs = r.spec.get("branches")
    if not isinstance(specs, Sequence) or isinstance(specs, str) or not specs:
        r.fail("'branches' must be a non-empty list of branches, each a list of layers ([] for the identity)")
    branches = []
    for k, branch in enumerate(specs):
        if not isinstance(branch, Sequence) or isinstance(branch, str):
            r.fail(f"branches[{k}] must be a list of layers ([] for the identity), got {type(branch).__name__}")
        out: list[Any] = []
        width = parse_chain(branch, f"{r.source} layer {r.index} (parallel) branch {k}", 1, out)
        if width != 1:
            r.fail(f"branches[{k}] ends in {width} channels; every branch must end mono")
        branches.append(out)
    layers.append(Parallel(branches))
    return 1


class Oversampled:
    """`inner` (memoryless layers) at `factor` times the rate: zero-stuff and filter with `up`, run `inner`, filter
    with `down` and keep every factor-th sample (phase 0); the last taps - 1 input samples of each filter are
    kept as history."""

    def __init__(self, factor: int, up: np.ndarray, down: np.ndarray, inner: list[Any]) -> None:
        self.factor, self.inner = factor, inner
        self.up, self.down = np.asarray(up, dtype=np.float64), np.asarray(down, dtype=np.float64)
        self.reset()

    def reset(self) -> None:
        self.up_history = np.zeros(len(self.up) - 1)
        self.down_history = np.zeros(len(self.down) - 1)
        for layer in self.inner:
            layer.reset()

    def forward(self, x: np.ndarray) -> np.ndarray:
        stuffed = np.zeros(len(x) * self.factor)
        stuffed[:: self.factor] = x[:, 0]
        u, self.up_history = _stream_convolve(self.up_history, stuffed, self.up)
        h = u.astype(np.float32)[:, None]
        for layer in self.inner:
            h = layer.forward(h)
        w, self.down_history = _stream_convolve(self.down_history, h[:, 0].astype(np.float64), self.down)
        return w[:: self.factor].astype(np.float32)[:, None]


def _stream_convolve(history: np.ndarray, x: np.ndarray, taps: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Causal convolution of `x` with `taps` continuing from `history` (the previous len(taps) - 1 inputs);
    returns the output and the new history."""
    padded = np.concatenate([history, x])
    y = np.convolve(padded, taps, mode="valid")
    return y, padded[len(padded) - len(history) :] if len(history) else history


GrayBoxLayer = Biquads | Fir | Waveshaper | Gain | Oversampled | Parallel


def parse_oversampling(r: Any, size: int, remaining: int) -> tuple[int, np.ndarray, np.ndarray, int]:
    """Factor, up taps, down taps and run length of the `oversampling` object of the layer read by `r`
    (docs/graybox_format.md); one-line errors through `r.fail`."""
    o = r.spec["oversampling"]
    if not isinstance(o, Mapping):
        r.fail("'oversampling' must be an object with factor, layers, taps, up and down")
    factor = o.get("factor")
    if factor not in OVERSAMPLING_FACTORS or isinstance(factor, bool):
        r.fail(f"'oversampling.factor' must be one of {', '.join(map(str, OVERSAMPLING_FACTORS))}, got {factor!r}")
    count, taps = o.get("layers"), o.get("taps")
    if not (isinstance(count, int) and not isinstance(count, bool) and 1 <= count <= remaining):
        r.fail(f"'oversampling.layers' must be a count of layers from this one, 1 to {remaining}, got {count!r}")
    if not (isinstance(taps, int) and not isinstance(taps, bool) and 1 <= taps <= MAX_OVERSAMPLING_TAPS):
        r.fail(f"'oversampling.taps' must be an integer in [1, {MAX_OVERSAMPLING_TAPS}], got {taps!r}")
    if size != 1:
        r.fail(f"an oversampled run is mono in and out, but its input has {size} channels")
    filters = []
    for key in ("up", "down"):
        try:
            values = np.asarray(o.get(key), dtype=np.float64)
        except (TypeError, ValueError):
            r.fail(f"'oversampling.{key}' must be a list of {taps} numbers")
        if values.shape != (taps,) or not np.all(np.isfinite(values)):
            r.fail(f"'oversampling.{key}' must be a list of {taps} finite numbers ('taps'), got shape {values.shape}")
        filters.append(values)
    return factor, filters[0], filters[1], count


def parse_graybox_layer(r: Any, size: int, layers: list[Any]) -> int:
    """Append the runtime layer of one gray-box JSON layer read by `reference._Reader` `r`; returns 1 (mono)."""
    if size != 1 or r.dims() != 1:
        r.fail(f"a gray-box layer is mono in and out, but its input has {size} channels and 'shape' ends in {r.dims()}")
    (w,) = r.weights((1,))
    if r.type == "biquad":  # the coefficients are read again as doubles, as written
        n = r.int_field("sections")
        r.expect(0, w, (n, 5))
        layers.append(Biquads(np.asarray(r.spec["weights"][0], dtype=np.float64)))
    elif r.type == "fir":
        layers.append(Fir(r.expect(0, w, (r.int_field("taps"),))))
    elif r.type == "waveshaper":
        layers.append(Waveshaper(*r.expect(0, w, (3,))))
    else:
        layers.append(Gain(*r.expect(0, w, (1,))))
    return 1


def is_graybox_document(data: Any) -> bool:
    """True when a parsed model document holds a gray-box layer type or an `oversampling` object (so RTNeural cannot
    run it as written)."""
    layers = data.get("layers") if isinstance(data, Mapping) else None
    if not isinstance(layers, list):
        return False
    return any(
        isinstance(spec, Mapping) and (spec.get("type") in GRAYBOX_LAYER_TYPES or "oversampling" in spec)
        for spec in layers
    )


def is_graybox_file(path: str | Path) -> bool:
    """True when the model file at `path` is rtnt gray-box JSON (a `.json` holding a gray-box layer type)."""
    import json

    path = Path(path)
    if path.suffix != ".json":
        return False
    try:
        return is_graybox_document(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError):
        return False
