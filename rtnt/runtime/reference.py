"""Numpy reference runtime for RTNeural JSON models: streams a mono signal causally, like RTNeural.

Layers hold their state (conv input history, recurrent state) across `process` calls, so any chunking
of a signal gives the same output. Convolutions and dense layers are vectorised over a block of
samples; recurrent layers precompute their input projection per block and loop over samples.

Semantics follow RTNeural's JSON loader: `dense` / `time-distributed-dense` apply W (in, out) and the
optional bias; `conv1d` weights are Keras' (kernel, in / groups, out), tap i reads x[t - (k - 1 - i) * d];
`gru` is Keras' reset_after GRU (gates z, r, h; bias (2, 3 * units)); `lstm` is Keras' LSTM (gates
i, f, c, o); `prelu` alphas broadcast when one is given; `batchnorm` is affine (gamma, beta, mean,
variance) or not (mean, variance); the `activation` field applies after dense, conv1d and activation
layers only (RTNeural ignores it on the others). rtnt's gray-box layer types (`biquad`, `fir`, `waveshaper`,
`gain`, `parallel`; docs/graybox_format.md) run in `rtnt.runtime.graybox`, rtnt's FiLM extension (`film-1`,
docs/film_format.md) in `rtnt.runtime.film`.

A conditioned model (`controls`, see rtnt.runtime.controls) has `in_shape [.., 1 + K]`; `process(x, controls)`
feeds the first layer the frame [x[t], c1[t], .., cK[t]] at every sample t. In a conditioned gray-box file
(`"rtnt_format": "graybox-1"`) the layers chain over the audio alone and the controls feed the `controllers` of
the layers that have them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, NoReturn

import numpy as np

from rtnt.errors import ModelJsonError
from rtnt.runtime.controls import ControlSpec, control_block, parse_controls
from rtnt.runtime.film import SPLIT_LAYER, Modulation, Split, parse_conditioner
from rtnt.runtime.graybox import (
    GRAYBOX_LAYER_TYPES,
    GRAYBOX_LAYERS,
    OVERSAMPLED_LAYER_TYPES,
    GrayBoxLayer,
    Oversampled,
    parse_graybox_layer,
    parse_oversampling,
    parse_parallel,
)
from rtnt.runtime.model_file import read_model_document

BLOCK = 16384  # samples processed per pass through the layers
# Matrix products are split into row blocks of at most this many multiply-adds: OpenBLAS then runs
# them single-threaded, which on a busy 2-core machine is several times faster than its threads.
MATMUL_MACS = 1 << 18


def _matmul(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """x @ w for x (T, in) and w (in, out), computed in row blocks of at most MATMUL_MACS multiply-adds."""
    step = max(64, MATMUL_MACS // max(1, w.shape[0] * w.shape[1]))
    if len(x) <= step:
        return x @ w
    out = np.empty((len(x), w.shape[1]), dtype=np.result_type(x, w))
    for s in range(0, len(x), step):
        np.matmul(x[s : s + step], w, out=out[s : s + step])
    return out


def _sigmoid(x: np.ndarray) -> np.ndarray:
    """1 / (1 + exp(-x)), written with tanh so large |x| cannot overflow."""
    return 0.5 + 0.5 * np.tanh(0.5 * x)


def _softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


ACTIVATIONS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "tanh": np.tanh,
    "relu": lambda x: np.maximum(x, 0.0),
    "sigmoid": _sigmoid,
    "softmax": _softmax,
    "elu": lambda x: np.where(x > 0, x, np.expm1(np.minimum(x, 0.0))),
}


class _Dense:
    """y = x W + b per time step (memoryless)."""

    def __init__(self, kernel: np.ndarray, bias: np.ndarray) -> None:
        self.kernel, self.bias = kernel, bias

    def reset(self) -> None:
        pass

    def forward(self, x: np.ndarray) -> np.ndarray:
        return _matmul(x, self.kernel) + self.bias


class _Conv1D:
    """Causal dilated, grouped 1-D convolution with an input history of (k - 1) * d frames."""

    def __init__(self, kernel: np.ndarray, bias: np.ndarray, dilation: int, groups: int) -> None:
        self.kernel, self.bias, self.dilation, self.groups = kernel, bias, dilation, groups
        self.span = (kernel.shape[0] - 1) * dilation
        self.in_size = kernel.shape[1] * groups
        self.reset()

    def reset(self) -> None:
        self.history = np.zeros((self.span, self.in_size), dtype=np.float32)

    def forward(self, x: np.ndarray) -> np.ndarray:
        n = len(x)
        padded = np.concatenate([self.history, x]) if self.span else x
        y = np.broadcast_to(self.bias, (n, self.bias.shape[0])).copy()
        cin, cout = self.kernel.shape[1], self.kernel.shape[2] // self.groups
        for g in range(self.groups):
            ins, outs = slice(g * cin, (g + 1) * cin), slice(g * cout, (g + 1) * cout)
            for i in range(self.kernel.shape[0]):
                y[:, outs] += _matmul(padded[i * self.dilation : i * self.dilation + n, ins], self.kernel[i][:, outs])
        if self.span:
            self.history = padded[len(padded) - self.span :].copy()
        return y


class _GRU:
    """Keras GRU with reset_after=True: h = z * h + (1 - z) * tanh(x Wh + bh + r * (h Uh + bh'))."""

    def __init__(self, kernel: np.ndarray, recurrent: np.ndarray, bias: np.ndarray) -> None:
        self.kernel, self.recurrent, self.bias = kernel, recurrent, bias
        self.units = recurrent.shape[0]
        self.reset()

    def reset(self) -> None:
        self.h = np.zeros(self.units, dtype=np.float32)

    def forward(self, x: np.ndarray) -> np.ndarray:
        u = self.units
        xp = _matmul(x, self.kernel) + self.bias[0]
        out = np.empty((len(x), u), dtype=np.float32)
        h, rec, rb = self.h, self.recurrent, self.bias[1]
        for t in range(len(x)):
            hp = h @ rec + rb
            zr = _sigmoid(xp[t, : 2 * u] + hp[: 2 * u])
            c = np.tanh(xp[t, 2 * u :] + zr[u:] * hp[2 * u :])
            h = c + zr[:u] * (h - c)
            out[t] = h
        self.h = h
        return out


class _LSTM:
    """Keras LSTM: gates i, f, c, o; c = f * c + i * tanh(.), h = o * tanh(c)."""

    def __init__(self, kernel: np.ndarray, recurrent: np.ndarray, bias: np.ndarray) -> None:
        self.kernel, self.recurrent, self.bias = kernel, recurrent, bias
        self.units = recurrent.shape[0]
        self.reset()

    def reset(self) -> None:
        self.h = np.zeros(self.units, dtype=np.float32)
        self.c = np.zeros(self.units, dtype=np.float32)

    def forward(self, x: np.ndarray) -> np.ndarray:
        u = self.units
        xp = _matmul(x, self.kernel) + self.bias
        out = np.empty((len(x), u), dtype=np.float32)
        h, c, rec = self.h, self.c, self.recurrent
        for t in range(len(x)):
            g = xp[t] + h @ rec
            s = _sigmoid(g)
            c = s[u : 2 * u] * c + s[:u] * np.tanh(g[2 * u : 3 * u])
            h = s[3 * u :] * np.tanh(c)
            out[t] = h
        self.h, self.c = h, c
        return out


class _Elementwise:
    """A memoryless per-sample function: activation, PReLU or batch normalisation."""

    def __init__(self, fn: Callable[[np.ndarray], np.ndarray]) -> None:
        self.fn = fn

    def reset(self) -> None:
        pass

    def forward(self, x: np.ndarray) -> np.ndarray:
        return self.fn(x)


Layer = _Dense | _Conv1D | _GRU | _LSTM | _Elementwise | GrayBoxLayer | Split | Modulation


class ReferenceModel:
    """A loaded RTNeural JSON model; `process` streams a 1-D signal (and, for a conditioned model, its
    per-sample control values) through it, keeping state."""

    def __init__(self, layers: list[Layer], controls: Sequence[ControlSpec] = (), source: str = "model") -> None:
        self.layers = layers
        self._controls = tuple(controls)
        self.source = source
        # a conditioned gray-box chain takes the audio alone; its controlled layers get the controls separately
        self.split_controls = bool(self._controls) and any(isinstance(layer, GRAYBOX_LAYERS) for layer in layers)

    @property
    def controls(self) -> list[ControlSpec]:
        """The model's controls, in input-channel order (empty for an unconditioned model)."""
        return list(self._controls)

    @classmethod
    def from_json(cls, source: str | Path | Mapping[str, Any]) -> ReferenceModel:
        """Load a model from a JSON file path or an already parsed dict; malformed models raise ModelJsonError."""
        if isinstance(source, Mapping):
            return cls(*_parse(source, "model JSON"), source="model JSON")
        return cls.from_document(read_model_document(Path(source), ModelJsonError), str(source))

    @classmethod
    def from_document(cls, data: Any, source: str) -> ReferenceModel:
        """Load a model from the parsed document of the file named `source` (which error messages name)."""
        if not isinstance(data, Mapping):
            raise ModelJsonError(f"{source} holds no JSON object; an RTNeural model has in_shape and layers")
        return cls(*_parse(data, source), source=source)

    def reset(self) -> None:
        """Clear all state (conv histories, recurrent states), as at the start of a stream."""
        for layer in self.layers:
            layer.reset()

    def process(self, x: np.ndarray, controls: np.ndarray | Sequence[float] | None = None) -> np.ndarray:
        """Run the next samples of the stream; returns as many float32 output samples. A conditioned model
        needs `controls`: (n, K) values, one row per sample, or (K,) held for all n samples (RtntError if
        missing or of another shape)."""
        x = np.asarray(x, dtype=np.float32)
        if x.ndim != 1:
            raise ValueError(f"process expects a 1-D signal, got shape {x.shape}")
        c = control_block(controls, len(x), len(self._controls), self.source)
        frames = np.concatenate([x[:, None], c], axis=1) if c.shape[1] and not self.split_controls else x[:, None]
        out = np.empty(len(x), dtype=np.float32)
        for start in range(0, len(x), BLOCK):
            h = frames[start : start + BLOCK]
            for layer in self.layers:
                if getattr(layer, "takes_controls", False):
                    h = layer.forward(h, c[start : start + BLOCK])  # type: ignore[call-arg]
                else:
                    h = layer.forward(h)
            out[start : start + BLOCK] = h[:, 0]
        return out


class _Reader:
    """Validates one JSON layer and turns its fields into arrays; errors name the layer index and type."""

    def __init__(self, source: str, index: int, spec: Any) -> None:
        self.source, self.index = source, index
        self.n_controls = 0  # the model's K, for gray-box controllers
        if not isinstance(spec, Mapping):
            self.fail("is not a JSON object")
        self.spec = spec
        self.type = spec.get("type")
        if not isinstance(self.type, str):
            self.fail("has no string 'type'")

    def fail(self, problem: str) -> NoReturn:
        kind = f" ({self.type})" if isinstance(getattr(self, "type", None), str) else ""
        raise ModelJsonError(f"{self.source} layer {self.index}{kind}: {problem}; re-export the model or fix the file")

    def dims(self) -> int:
        shape = self.spec.get("shape")
        if not isinstance(shape, Sequence) or not shape or not _is_count(shape[-1]):
            self.fail(f"'shape' must be a list ending in a positive size, got {shape!r}")
        return int(shape[-1])

    def int_field(self, key: str, default: int | None = None) -> int:
        value = self.spec.get(key, default)
        if isinstance(value, Sequence) and not isinstance(value, str) and value:
            value = value[-1]
        if not _is_count(value):
            self.fail(f"'{key}' must be a positive integer (or a list ending in one), got {value!r}")
        return int(value)

    def activation(self) -> str:
        name = self.spec.get("activation", "")
        if name != "" and name not in ACTIVATIONS:
            self.fail(f"unsupported activation {name!r} (RTNeural loads {', '.join(ACTIVATIONS)})")
        return name

    def weights(self, counts: Sequence[int]) -> list[np.ndarray]:
        raw = self.spec.get("weights")
        if not isinstance(raw, Sequence) or isinstance(raw, str) or len(raw) not in counts:
            n = len(raw) if isinstance(raw, Sequence) else raw
            self.fail(f"'weights' must be a list of {' or '.join(map(str, counts))} arrays, got {n!r}")
        arrays = []
        for j, w in enumerate(raw):
            try:
                a = np.asarray(w, dtype=np.float32)
            except (TypeError, ValueError):
                self.fail(f"weights[{j}] is not a rectangular numeric array")
            if not np.all(np.isfinite(a)):
                self.fail(f"weights[{j}] holds NaN or Inf")
            arrays.append(a)
        return arrays

    def expect(self, j: int, array: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
        if array.shape != shape:
            self.fail(f"weights[{j}] has shape {array.shape}, expected {shape}")
        return array


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


def _parse(data: Mapping[str, Any], source: str) -> tuple[list[Layer], list[ControlSpec]]:
    """Build the runtime layers and controls of an RTNeural JSON model, checking every size against its input."""
    in_shape, specs = data.get("in_shape"), data.get("layers")
    if not isinstance(in_shape, Sequence) or isinstance(in_shape, str) or not in_shape or not _is_count(in_shape[-1]):
        raise ModelJsonError(
            f"{source}: 'in_shape' must be a list ending in 1 (mono input) or 1 + K (K controls), got {in_shape!r}"
        )
    controls = parse_controls(data, in_shape[-1], source)
    if not isinstance(specs, Sequence) or isinstance(specs, str) or not specs:
        raise ModelJsonError(f"{source}: 'layers' must be a non-empty list")
    conditioner = parse_conditioner(data, len(controls), source)
    layers: list[Layer] = []
    graybox = data.get("rtnt_format") == "graybox-1"
    # a gray-box chain runs on the audio; the controls feed its (top-level) controllers
    if conditioner is not None:
        size = _parse_film_chain(specs, source, in_shape[-1], layers, conditioner)
    else:
        size = _parse_chain(specs, source, 1 if graybox else in_shape[-1], layers, len(controls))
    if size != 1:
        _Reader(source, len(specs) - 1, specs[-1]).fail(
            f"is the last layer but has {size} outputs; a mono model must end with 1"
        )
    return layers, controls


def _parse_chain(specs: Sequence[Any], source: str, size: int, layers: list[Layer], n_controls: int = 0) -> int:
    """Append the runtime layers of a list of JSON layers (the file's, or a parallel branch's; an `oversampling`
    object starts an `Oversampled` run) on an input of `size` channels; `n_controls` the K its layers' controllers
    read (0 in a branch); returns the output size."""
    index = 0
    while index < len(specs):
        r = _Reader(source, index, specs[index])
        r.n_controls = n_controls
        if r.type == SPLIT_LAYER:
            r.fail(f"'{SPLIT_LAYER}' is the first layer of a FiLM model (rtnt_format film-1) only")
        if "oversampling" in r.spec:
            size, count = _parse_oversampled(r, specs, size, layers), r.spec["oversampling"]["layers"]
            index += count
        else:
            size = _parse_layer(r, size, layers)
            index += 1
    return size


def _parse_film_chain(specs: Sequence[Any], source: str, size: int, layers: list[Layer], conditioner: Any) -> int:
    """Append the runtime layers of a FiLM model (docs/film_format.md): its `film-split` first layer, then the
    layers, each conv1d with an adaptor followed by its `Modulation`; returns the output size."""
    for index, spec in enumerate(specs):
        r = _Reader(source, index, spec)
        if (r.type == SPLIT_LAYER) != (index == 0):
            r.fail(f"a FiLM model (rtnt_format film-1) starts with one '{SPLIT_LAYER}' layer, and only it")
        if r.type == SPLIT_LAYER:
            if r.dims() != 1:
                r.fail(f"'{SPLIT_LAYER}' passes the audio channel on: its 'shape' must end in 1")
            layers.append(Split(conditioner))
            size = 1
            continue
        adaptor = conditioner.adaptors.get(index)
        if adaptor is not None and (r.type != "conv1d" or adaptor[0].shape[1] != 2 * r.dims()):
            r.fail(f"has a FiLM adaptor of {adaptor[0].shape[1]} outputs; adaptors modulate conv1d layers (2 x C)")
        film = Modulation(conditioner, index, r.dims()) if adaptor is not None else None
        size = _parse_layer(r, size, layers, film)
    if max(conditioner.adaptors) >= len(specs):
        raise ModelJsonError(f"{source}: a FiLM adaptor names layer {max(conditioner.adaptors)}, beyond the last layer")
    return size


def _parse_oversampled(r: _Reader, specs: Sequence[Any], size: int, layers: list[Layer]) -> int:
    """Append the `Oversampled` run that layer `r` starts (docs/graybox_format.md); returns its output size, 1."""
    factor, up, down, count = parse_oversampling(r, size, len(specs) - r.index)
    inner: list[Layer] = []
    for k in range(count):
        ri = r if k == 0 else _Reader(r.source, r.index + k, specs[r.index + k])
        if k and "oversampling" in ri.spec:
            ri.fail(f"starts an oversampled run inside the run of layer {r.index}; runs cannot nest")
        if ri.type not in OVERSAMPLED_LAYER_TYPES:
            ri.fail(f"cannot run oversampled: only memoryless layers ({', '.join(OVERSAMPLED_LAYER_TYPES)}) can")
        if ri.spec.get("controllers"):
            ri.fail("has 'controllers'; a knob-controlled layer cannot run oversampled")
        size = _parse_layer(ri, size, inner)
    if size != 1:
        r.fail(f"its oversampled run of {count} layers ends with {size} channels; it must end mono")
    layers.append(Oversampled(factor, up, down, inner))
    return 1


def _parse_layer(r: _Reader, size: int, layers: list[Layer], film: Modulation | None = None) -> int:
    """Append the runtime layers of one JSON layer (plus `film`, a conv's FiLM, and its activation); return its
    output size."""
    t, dims = r.type, r.dims()
    if t in ("dense", "time-distributed-dense"):
        w = r.weights((1, 2))
        kernel = r.expect(0, w[0], (size, dims))
        bias = r.expect(1, w[1], (dims,)) if len(w) == 2 else np.zeros(dims, dtype=np.float32)
        layers.append(_Dense(kernel, bias))
    elif t == "conv1d":
        k, d, groups = r.int_field("kernel_size"), r.int_field("dilation"), r.int_field("groups", 1)
        if size % groups or dims % groups:
            r.fail(f"groups={groups} must divide the input size {size} and the output size {dims}")
        w = r.weights((2,))
        kernel = r.expect(0, w[0], (k, size // groups, dims))
        layers.append(_Conv1D(kernel, r.expect(1, w[1], (dims,)), d, groups))
        if film is not None:
            layers.append(film)
    elif t == "gru":
        w = r.weights((3,))
        if w[2].ndim != 2:
            r.fail("bias must have shape (2, 3 * units): export the GRU with reset_after=True")
        args = (
            r.expect(0, w[0], (size, 3 * dims)),
            r.expect(1, w[1], (dims, 3 * dims)),
            r.expect(2, w[2], (2, 3 * dims)),
        )
        layers.append(_GRU(*args))
        return dims
    elif t == "lstm":
        w = r.weights((3,))
        args = r.expect(0, w[0], (size, 4 * dims)), r.expect(1, w[1], (dims, 4 * dims)), r.expect(2, w[2], (4 * dims,))
        layers.append(_LSTM(*args))
        return dims
    elif t == "prelu":
        _same_size(r, size, dims)
        (alpha,) = r.weights((1,))
        if alpha.ndim != 2 or alpha.shape[1] not in (1, size):
            r.fail(f"weights[0] has shape {alpha.shape}, expected (1, {size}) or (1, 1)")
        a = alpha[0]
        layers.append(_Elementwise(lambda x: np.where(x >= 0, x, x * a)))
        return dims
    elif t == "batchnorm":
        _same_size(r, size, dims)
        eps = r.spec.get("epsilon")
        if not isinstance(eps, (int, float)) or isinstance(eps, bool) or not eps >= 0:
            r.fail(f"'epsilon' must be a number >= 0, got {eps!r}")
        w = [r.expect(j, a, (size,)) for j, a in enumerate(r.weights((2, 4)))]
        gamma, beta, mean, var = w if len(w) == 4 else (1.0, 0.0, *w)
        if np.any(var + eps <= 0):
            r.fail("variance + epsilon must be > 0")
        scale = (gamma / np.sqrt(var + np.float32(eps))).astype(np.float32)
        shift = np.asarray(beta, dtype=np.float32)
        layers.append(_Elementwise(lambda x: (x - mean) * scale + shift))
        return dims
    elif t == "activation":
        _same_size(r, size, dims)
        r.weights((0,))
    elif t == "parallel":
        return parse_parallel(r, size, layers, _parse_chain)
    elif t in GRAYBOX_LAYER_TYPES:
        return parse_graybox_layer(r, size, layers, r.n_controls)
    else:
        r.fail(
            "unsupported layer type (rtnt loads dense, time-distributed-dense, conv1d, gru, lstm, prelu, "
            "batchnorm, activation, and the gray-box biquad, fir, waveshaper, gain, parallel)"
        )
    name = r.activation()
    if name:
        layers.append(_Elementwise(ACTIVATIONS[name]))
    return dims


def _same_size(r: _Reader, size: int, dims: int) -> None:
    if dims != size:
        r.fail(f"'shape' ends in {dims} but its input has {size} channels")
