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

Knob controllers (a layer's `controllers`, docs/graybox_format.md): `forward(x, controls)` takes the block's
(n, K) control values; a controlled parameter is map(raw + controls @ weights) per sample. A biquad recomputes a
controlled section's RBJ coefficients (`rtnt.model.graybox.rbj`, float64) only where the control values change
from the previous sample (the last row is carried across calls), and runs each stretch of constant controls as
one recursion with the state carried through the change. Controllers are read on top-level layers only: not
inside a `parallel` branch or an oversampled run (refused in one line).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import scipy.signal

from rtnt.constants import SAMPLE_RATE

GRAYBOX_LAYER_TYPES = ("biquad", "fir", "waveshaper", "gain", "parallel")
MAX_PARALLEL_DEPTH = 8  # nested parallel layers, as in the native loader
OVERSAMPLING_FACTORS = (2, 4)
OVERSAMPLED_LAYER_TYPES = ("dense", "time-distributed-dense", "activation", "waveshaper", "gain")  # memoryless
MAX_OVERSAMPLING_TAPS = 1024
MAPPINGS = ("sigmoid", "log_sigmoid", "tanh")
_CONTROLLABLE = {"biquad": ("freq_hz", "q", "gain_db"), "waveshaper": ("drive_db", "bias", "gain_db"),
                 "gain": ("gain_db",)}  # fmt: skip


def map_raw(mapping: str, minimum: float, maximum: float, raw: np.ndarray) -> np.ndarray:
    """A controlled parameter's range mapping of its raw value (as `rtnt.model.graybox.blocks._bounded` and the
    blocks' tanh bounds): `sigmoid` min + (max - min) s, `log_sigmoid` min (max / min)^s (s = sigmoid(raw), both
    clipped to [min, max]), `tanh` max tanh(raw); float64."""
    raw = np.asarray(raw, dtype=np.float64)
    if mapping == "tanh":
        return maximum * np.tanh(raw)
    s = 0.5 + 0.5 * np.tanh(0.5 * raw)
    if mapping == "sigmoid":
        value = minimum + (maximum - minimum) * s
    else:
        value = minimum * np.exp(math.log(maximum / minimum) * s)
    return np.clip(value, minimum, maximum)


@dataclass(frozen=True)
class Controller:
    """One knob-controlled parameter of a layer: value = map(raw + controls @ weights) (`map_raw`)."""

    parameter: str
    section: int | None
    mapping: str
    minimum: float
    maximum: float
    raw: float
    weights: np.ndarray

    def values(self, controls: np.ndarray) -> np.ndarray:
        """The parameter at each row of `controls` (n, K), float64 (n,)."""
        return map_raw(self.mapping, self.minimum, self.maximum, self.raw + controls.astype(np.float64) @ self.weights)


def _db_to_linear(db: np.ndarray) -> np.ndarray:
    return np.power(10.0, np.asarray(db, dtype=np.float64) / 20.0)


class Biquads:
    """A cascade of biquad sections, coefficients (sections, 5) as b0, b1, b2, a1, a2 (a0 = 1); with
    `controllers`, the RBJ `parameters` of its sections (kind, freq_hz, q, gain_db) give the controlled ones."""

    def __init__(
        self,
        coefficients: np.ndarray,
        controllers: Sequence[Controller] = (),
        parameters: Sequence[Mapping[str, Any]] = (),
    ) -> None:
        c = np.asarray(coefficients, dtype=np.float64)
        self.sos = np.concatenate([c[:, :3], np.ones((len(c), 1)), c[:, 3:]], axis=1)
        self.controllers, self.parameters = tuple(controllers), [dict(p) for p in parameters]
        self.takes_controls = bool(self.controllers)
        self.current = self.parameters  # the sections' RBJ parameters at the last recompute
        self.reset()

    def reset(self) -> None:
        self.state = np.zeros((len(self.sos), 2))
        self.last: np.ndarray | None = None  # the previous sample's controls

    def forward(self, x: np.ndarray, controls: np.ndarray | None = None) -> np.ndarray:
        signal = x[:, 0].astype(np.float64)
        if not self.controllers:
            y, self.state = scipy.signal.sosfilt(self.sos, signal, zi=self.state)
            return y.astype(np.float32)[:, None]
        assert controls is not None
        y = np.empty(len(signal))
        previous = self.last if self.last is not None else np.full(controls.shape[1], np.nan, dtype=np.float32)
        rows = np.concatenate([previous[None], controls])
        changes = np.flatnonzero(np.any(rows[1:] != rows[:-1], axis=1))
        bounds = [*changes, len(signal)]
        if not len(changes) or changes[0] != 0:
            bounds = [0, *bounds]
        for start, stop in zip(bounds[:-1], bounds[1:]):
            if start in changes:
                self.recompute(controls[start])
            y[start:stop], self.state = scipy.signal.sosfilt(self.sos, signal[start:stop], zi=self.state)
        if len(controls):
            self.last = controls[-1].copy()
        return y.astype(np.float32)[:, None]

    def recompute(self, control_row: np.ndarray) -> None:
        """The controlled sections' coefficients at one row of control values (RBJ cookbook, float64)."""
        from rtnt.model.graybox.rbj import rbj_coefficients

        params = self.current = [dict(p) for p in self.parameters]
        for c in self.controllers:
            params[c.section][c.parameter] = float(c.values(control_row[None])[0])  # type: ignore[index]
        for j in sorted({c.section for c in self.controllers}):  # type: ignore[type-var]
            p = params[j]  # type: ignore[index]
            b0, b1, b2, a1, a2 = rbj_coefficients(p["kind"], p["freq_hz"], p["q"], p["gain_db"], SAMPLE_RATE, np)
            self.sos[j] = (b0, b1, b2, 1.0, a1, a2)  # type: ignore[index]


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
    """gain * (tanh(drive * x + bias) - tanh(bias)), memoryless; a controlled drive_db, bias or gain_db is
    computed per sample (drive and gain linear: 10^(dB / 20)), then float32 as the static values."""

    def __init__(self, drive: float, bias: float, gain: float, controllers: Sequence[Controller] = ()) -> None:
        self.drive, self.bias, self.gain = np.float32(drive), np.float32(bias), np.float32(gain)
        self.controllers = tuple(controllers)
        self.takes_controls = bool(self.controllers)

    def reset(self) -> None:
        pass

    def forward(self, x: np.ndarray, controls: np.ndarray | None = None) -> np.ndarray:
        p: dict[str, Any] = {"drive_db": self.drive, "bias": self.bias, "gain_db": self.gain}
        for c in self.controllers:
            v = c.values(controls)  # type: ignore[arg-type]
            p[c.parameter] = (v if c.parameter == "bias" else _db_to_linear(v)).astype(np.float32)[:, None]
        drive, bias, gain = p["drive_db"], p["bias"], p["gain_db"]
        return gain * (np.tanh(drive * x + bias) - np.tanh(bias))


class Gain:
    """gain * x; a controlled gain_db is computed per sample (linear 10^(dB / 20), then float32)."""

    def __init__(self, gain: float, controllers: Sequence[Controller] = ()) -> None:
        self.gain = np.float32(gain)
        self.controllers = tuple(controllers)
        self.takes_controls = bool(self.controllers)

    def reset(self) -> None:
        pass

    def forward(self, x: np.ndarray, controls: np.ndarray | None = None) -> np.ndarray:
        if not self.controllers:
            return self.gain * x
        return _db_to_linear(self.controllers[0].values(controls)).astype(np.float32)[:, None] * x  # type: ignore[arg-type]


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
        for j, spec in enumerate(branch):
            if isinstance(spec, Mapping) and spec.get("controllers"):
                r.fail(f"branches[{k}][{j}] has 'controllers'; knob controllers reach top-level layers only")
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
GRAYBOX_LAYERS = (Biquads, Fir, Waveshaper, Gain, Oversampled, Parallel)


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


def parse_graybox_layer(r: Any, size: int, layers: list[Any], n_controls: int = 0) -> int:
    """Append the runtime layer of one gray-box JSON layer read by `reference._Reader` `r`; returns 1 (mono)."""
    if size != 1 or r.dims() != 1:
        r.fail(f"a gray-box layer is mono in and out, but its input has {size} channels and 'shape' ends in {r.dims()}")
    (w,) = r.weights((1,))
    controllers = read_controllers(r, n_controls)
    if r.type == "biquad":  # the coefficients are read again as doubles, as written
        n = r.int_field("sections")
        r.expect(0, w, (n, 5))
        parameters = _rbj_parameters(r, n, controllers)
        layers.append(Biquads(np.asarray(r.spec["weights"][0], dtype=np.float64), controllers, parameters))
    elif r.type == "fir":
        layers.append(Fir(r.expect(0, w, (r.int_field("taps"),))))
    elif r.type == "waveshaper":
        layers.append(Waveshaper(*r.expect(0, w, (3,)), controllers=controllers))
    else:
        layers.append(Gain(*r.expect(0, w, (1,)), controllers=controllers))
    return 1


def read_controllers(r: Any, n_controls: int) -> list[Controller]:
    """The `controllers` of one gray-box JSON layer, checked (parameter, section, mapping, range, K weights)."""
    raw = r.spec.get("controllers", [])
    if raw and not n_controls:
        r.fail("has 'controllers' but the model lists no 'controls'; a controlled layer needs the knob inputs")
    if not isinstance(raw, list):
        r.fail("'controllers' must be a list")
    allowed = _CONTROLLABLE.get(r.type, ())
    out = []
    for i, c in enumerate(raw):
        where = f"controllers[{i}]"
        if not isinstance(c, Mapping) or c.get("parameter") not in allowed:
            r.fail(f"{where} must be an object whose 'parameter' is one of {', '.join(allowed) or 'none'}")
        if c.get("mapping") not in MAPPINGS:
            r.fail(f"{where}: 'mapping' must be one of {', '.join(MAPPINGS)}")
        try:
            lo, hi, raw0 = float(c["minimum"]), float(c["maximum"]), float(c["raw"])
            weights = np.asarray(c["weights"], dtype=np.float64)
        except (KeyError, TypeError, ValueError):
            r.fail(f"{where} needs numeric 'minimum', 'maximum', 'raw' and a list of 'weights'")
        if weights.shape != (n_controls,) or not np.all(np.isfinite([lo, hi, raw0, *weights])) or not lo < hi:
            r.fail(f"{where} needs finite minimum < maximum, a raw value and {n_controls} weights (one per control)")
        if c["mapping"] == "log_sigmoid" and lo <= 0:
            r.fail(f"{where}: a log_sigmoid range must be positive")
        section = c.get("section") if r.type == "biquad" else None
        if r.type == "biquad" and (not isinstance(section, int) or isinstance(section, bool) or section < 0):
            r.fail(f"{where} of a biquad needs the integer 'section' it controls")
        out.append(Controller(c["parameter"], section, c["mapping"], lo, hi, raw0, weights))
    return out


def _rbj_parameters(r: Any, n: int, controllers: Sequence[Controller]) -> list[dict[str, Any]]:
    """The `parameters` of a biquad layer when a controller recomputes some of its sections (else [])."""
    from rtnt.config_graybox import BIQUAD_KINDS

    if not controllers:
        return []
    params = r.spec.get("parameters")
    if not isinstance(params, list) or len(params) != n:
        r.fail(f"a controlled biquad needs 'parameters' for its {n} sections (kind, freq_hz, q, gain_db)")
    for c in controllers:
        p = params[c.section] if c.section is not None and c.section < n else None
        if not isinstance(p, Mapping) or p.get("kind") not in BIQUAD_KINDS:
            r.fail(f"controlled section {c.section} needs RBJ parameters with a kind in {', '.join(BIQUAD_KINDS)}")
        if not all(isinstance(p.get(k), (int, float)) and math.isfinite(p[k]) for k in ("freq_hz", "q", "gain_db")):
            r.fail(f"controlled section {c.section} needs finite freq_hz, q and gain_db")
    return [dict(p) if isinstance(p, Mapping) else {} for p in params]


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
