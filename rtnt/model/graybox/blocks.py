"""Keras 3 layers of the gray-box DSP blocks (TensorFlow backend): mono (batch, time, 1) in and out, causal.

Every block keeps its parameters inside their ranges by construction: it trains unbounded raw weights and maps
them through a sigmoid (or tanh) onto the range, on a log scale for frequencies and Q. `values()` gives the
mapped parameters as numpy (what a player reads, and what the exporter writes). Each block also states its
`receptive_span` (history it needs) and `macs_per_sample` for `rtnt.model.summary`.

The memoryless MLP is plain Keras `Dense` layers and the conv stack is rtnt's `tcn` stack (`rtnt.model.build`);
`rtnt.model.graybox.build` composes all of them from a preset. With `preset.oversampling` > 1 it brackets each
static nonlinearity (waveshaper, MLP) between `Upsample` and `Downsample`, the fixed polyphase filter pair of
`rtnt.model.graybox.oversampling`.
"""

from __future__ import annotations

import math
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from rtnt.constants import SAMPLE_RATE
from rtnt.model.graybox.dsp import fft_convolve, filter_biquads
from rtnt.model.graybox.oversampling import down_kernel, oversampling_filters, up_kernel
from rtnt.model.graybox.rbj import rbj_coefficients


def _logit(p: float) -> float:
    return math.log(p / (1.0 - p))


def _to_raw(value: float, lo: float, hi: float, log: bool = False) -> float:
    """The raw weight that `_bounded` maps to `value` (strictly inside (lo, hi))."""
    if log:
        value, lo, hi = math.log(value), math.log(lo), math.log(hi)
    return _logit((value - lo) / (hi - lo))


def _bounded(raw: Any, lo: float, hi: float, log: bool = False) -> Any:
    """lo + (hi - lo) * sigmoid(raw), or its log-scale form lo * (hi / lo) ** sigmoid(raw); clipped to [lo, hi]
    against float32 rounding at a saturated sigmoid."""
    if log:
        value = lo * tf.exp(math.log(hi / lo) * tf.sigmoid(raw))
    else:
        value = lo + (hi - lo) * tf.sigmoid(raw)
    return tf.clip_by_value(value, lo, hi)


class GrayBoxBlock(keras.layers.Layer):
    """Base of the DSP blocks: a mono signal processor with interpretable parameters.

    Knob controllers (NablAFx's "controllers", `preset.controlled`): a block with `controlled` raw parameters is
    called on [x, knobs] (knobs (batch, time, K)) and adds the affine controller offset knobs @ W (W (K, C), one
    column per controlled parameter, starting at zero) to those raw weights before their range mapping, so the
    controlled value stays in its range at every knob setting.
    """

    receptive_span = 0  # history (samples) the block needs in training
    macs_per_sample = 0
    recursive = False  # an IIR filter: unbounded memory, so inference must not be split into chunks
    raw_names: tuple[str, ...] = ()  # the raw weights, flattened, that a controller may offset

    def values(self) -> dict[str, Any]:
        """The block's parameters after their range mapping, as numpy."""
        raise NotImplementedError

    def mapping(self, name: str) -> tuple[str, float, float]:
        """(`sigmoid` | `log_sigmoid` | `tanh`, minimum, maximum) of the range mapping of raw weight `name`."""
        raise NotImplementedError

    def _init_controllers(self, controlled: Any, n_knobs: int) -> None:
        self.controlled = [str(c) for c in controlled or ()]
        self.n_knobs = int(n_knobs)
        if not self.controlled:
            return
        unknown = [c for c in self.controlled if c not in self.raw_names]
        if unknown or self.n_knobs < 1:
            raise ValueError(f"{self.name}: cannot control {unknown or self.controlled} with {self.n_knobs} knobs")
        select = np.zeros((len(self.controlled), len(self.raw_names)), dtype=np.float32)
        for i, c in enumerate(self.controlled):
            select[i, self.raw_names.index(c)] = 1.0
        self.select = select
        self.controller = self.add_weight(
            name="controller", shape=(self.n_knobs, len(self.controlled)), initializer="zeros"
        )

    def raw_offset(self, knobs: tf.Tensor, dtype: Any = tf.float32) -> tf.Tensor:
        """knobs (..., K) @ W, scattered onto every raw weight (..., len(raw_names)), in `dtype`."""
        w = tf.matmul(tf.cast(self.controller, dtype), tf.constant(self.select, dtype=dtype))
        return tf.tensordot(tf.cast(knobs, dtype), w, axes=1)

    def split(self, inputs: Any) -> tuple[tf.Tensor, tf.Tensor | None]:
        """(x, knobs) of a controlled block's [x, knobs], (x, None) of a static block's x."""
        if self.controlled:
            return inputs[0], inputs[1]
        return inputs, None

    def controllers(self) -> list[dict[str, Any]]:
        """Each controlled parameter's controller as written in the gray-box JSON (docs/graybox_format.md): its
        mapping, range, static raw weight and the K controller weights."""
        raw = np.asarray(self.raw.numpy(), dtype=np.float64).reshape(-1)
        w = np.asarray(self.controller.numpy(), dtype=np.float64) if self.controlled else np.zeros((0, 0))
        out = []
        for i, name in enumerate(self.controlled):
            mapping, lo, hi = self.mapping(name)
            out.append({"parameter": name, "mapping": mapping, "minimum": lo, "maximum": hi,
                        "raw": float(raw[self.raw_names.index(name)]), "weights": w[:, i].tolist()})  # fmt: skip
        return out

    def compute_output_shape(self, input_shape: Any) -> Any:
        return tuple(input_shape[0]) if self.controlled else input_shape


@keras.saving.register_keras_serializable(package="rtnt")
class Channels(keras.layers.Layer):
    """Channels [start, stop) of a (batch, time, channels) input: a conditioned gray-box chain splits its input
    into the audio (channel 0) and the knobs (1..K) with two of these."""

    def __init__(self, start: int, stop: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.start, self.stop = int(start), int(stop)

    def call(self, x: tf.Tensor) -> tf.Tensor:
        return x[..., self.start : self.stop]

    def compute_output_shape(self, input_shape: tuple[Any, ...]) -> tuple[Any, ...]:
        return (*input_shape[:-1], self.stop - self.start)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "start": self.start, "stop": self.stop}


@keras.saving.register_keras_serializable(package="rtnt")
class Gain(GrayBoxBlock):
    """y = 10^(g / 20) x with g (dB) = max_db * tanh(raw) (NablAFx's gain block)."""

    macs_per_sample = 1
    raw_names = ("gain_db",)

    def __init__(
        self, gain_db: float = 0.0, max_gain_db: float = 24.0, controlled: Any = (), n_knobs: int = 0, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.gain_db, self.max_gain_db = float(gain_db), float(max_gain_db)
        init = math.atanh(self.gain_db / self.max_gain_db)
        self.raw = self.add_weight(name="raw_gain", shape=(), initializer=keras.initializers.Constant(init))
        self._init_controllers(controlled, n_knobs)

    def gain(self, offset: Any = 0.0) -> tf.Tensor:
        """The linear gain (per sample with a controller's raw `offset`)."""
        return tf.pow(10.0, self.max_gain_db * tf.tanh(self.raw + offset) / 20.0)

    def call(self, inputs: Any) -> tf.Tensor:
        x, knobs = self.split(inputs)
        return x * (self.gain() if knobs is None else self.gain(self.raw_offset(knobs)))

    def mapping(self, name: str) -> tuple[str, float, float]:
        return "tanh", -self.max_gain_db, self.max_gain_db

    def values(self) -> dict[str, Any]:
        return {"gain_db": float(self.max_gain_db * np.tanh(float(self.raw.numpy())))}

    def get_config(self) -> dict[str, Any]:
        cfg = {"gain_db": self.gain_db, "max_gain_db": self.max_gain_db, "controlled": self.controlled}
        return {**super().get_config(), **cfg, "n_knobs": self.n_knobs}


class _Recursive(GrayBoxBlock):
    """A cascade of biquads trained by frequency sampling (`rtnt.model.graybox.dsp`); exported as the exact
    recursion. `coefficients()` gives its (sections, 5) b0, b1, b2, a1, a2 in float64: they are computed from the
    raw weights in float64 throughout, so eager, graph and XLA execution (which may reorder float32 arithmetic)
    give the same filter to ~1e-16, and the exported coefficients are that filter. In float32 one ulp of a1 moves
    a pole near z = 1 enough to change the output by ~1e-4."""

    recursive = True

    def __init__(self, warmup: int = 2048, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.warmup = int(warmup)
        self.receptive_span = self.warmup

    def coefficients(self, offset: tf.Tensor | None = None) -> tf.Tensor:
        """(sections, 5), or (batch, sections, 5) with a controller's raw `offset` (batch, raw weights)."""
        raise NotImplementedError

    def call(self, inputs: Any) -> tf.Tensor:
        """The cascade by frequency sampling. A controlled block takes each segment's knob values at its first
        sample (training segments are one knob setting each; the exported recursion follows every sample)."""
        x, knobs = self.split(inputs)
        if knobs is None:
            return filter_biquads(x, self.coefficients())
        return filter_biquads(x, self.coefficients(self.raw_offset(knobs[:, 0, :], tf.float64)))


@keras.saving.register_keras_serializable(package="rtnt")
class DCBlocker(_Recursive):
    """First-order DC blocker H(z) = (1 - z^-1) / (1 - R z^-1), R in [min_pole, max_pole] (J. O. Smith,
    Introduction to Digital Filters, "DC blocker"); one biquad section (1, -1, 0, -R, 0)."""

    macs_per_sample = 2

    def __init__(self, pole: float = 0.995, min_pole: float = 0.9, max_pole: float = 0.9999, **kwargs: Any):
        super().__init__(**kwargs)
        self.pole, self.min_pole, self.max_pole = float(pole), float(min_pole), float(max_pole)
        init = _to_raw(self.pole, self.min_pole, self.max_pole)
        self.raw = self.add_weight(name="raw_pole", shape=(), initializer=keras.initializers.Constant(init))
        self._init_controllers((), 0)

    def pole_value(self) -> tf.Tensor:
        """The pole R (float64)."""
        return _bounded(tf.cast(self.raw, tf.float64), self.min_pole, self.max_pole)

    def coefficients(self, offset: tf.Tensor | None = None) -> tf.Tensor:
        r = self.pole_value()
        one, zero = tf.ones_like(r), tf.zeros_like(r)
        return tf.stack([one, -one, zero, -r, zero])[None, :]

    def values(self) -> dict[str, Any]:
        return {"pole": float(self.pole_value().numpy())}

    def get_config(self) -> dict[str, Any]:
        cfg = {"pole": self.pole, "min_pole": self.min_pole, "max_pole": self.max_pole, "warmup": self.warmup}
        return {**super().get_config(), **cfg}


@keras.saving.register_keras_serializable(package="rtnt")
class ParametricEQ(_Recursive):
    """A cascade of RBJ Audio EQ Cookbook biquads (`rtnt.model.graybox.rbj`: peaking, low/high shelf, low/high-pass).

    Per section the frequency (log scale in [min_freq_hz, max_freq_hz]), Q (log scale in [min_q, max_q]) and gain
    (max_gain_db * tanh) are trained as raw weights, so every section stays a stable filter. `sections` is a list
    of dicts with `kind`, `freq_hz`, `q`, `gain_db` (initial values).
    """

    def __init__(
        self,
        sections: list[dict[str, Any]],
        min_freq_hz: float = 20.0,
        max_freq_hz: float = 20000.0,
        min_q: float = 0.1,
        max_q: float = 10.0,
        max_gain_db: float = 24.0,
        controlled: Any = (),
        n_knobs: int = 0,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.sections = [
            {"kind": str(s["kind"]), "freq_hz": float(s["freq_hz"]), "q": float(s["q"]), "gain_db": float(s["gain_db"])}
            for s in sections
        ]
        self.freq_range, self.q_range = (float(min_freq_hz), float(max_freq_hz)), (float(min_q), float(max_q))
        self.max_gain_db = float(max_gain_db)
        self.macs_per_sample = 5 * len(self.sections)
        init = np.array(
            [
                [
                    _to_raw(s["freq_hz"], *self.freq_range, log=True),
                    _to_raw(s["q"], *self.q_range, log=True),
                    math.atanh(s["gain_db"] / self.max_gain_db),
                ]
                for s in self.sections
            ],
            dtype=np.float32,
        )
        self.raw = self.add_weight(name="raw_sections", shape=init.shape, initializer=keras.initializers.Constant(init))
        self.raw_names = tuple(f"s{j}.{p}" for j in range(len(self.sections)) for p in ("freq_hz", "q", "gain_db"))
        self._init_controllers(controlled, n_knobs)

    def parameters(self, offset: tf.Tensor | None = None) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
        """Frequencies (Hz), Qs and gains (dB) of the sections, each (sections,) or, with a controller's raw
        `offset` (batch, 3 * sections), (batch, sections); in float64."""
        raw = tf.cast(self.raw, tf.float64)
        if offset is not None:
            raw = raw[None] + tf.reshape(offset, (-1, len(self.sections), 3))
        freq = _bounded(raw[..., 0], *self.freq_range, log=True)
        q = _bounded(raw[..., 1], *self.q_range, log=True)
        return freq, q, self.max_gain_db * tf.tanh(raw[..., 2])

    def coefficients(self, offset: tf.Tensor | None = None) -> tf.Tensor:
        freq, q, gain = self.parameters(offset)
        sr = float(SAMPLE_RATE)
        rows = [
            tf.stack(rbj_coefficients(s["kind"], freq[..., i], q[..., i], gain[..., i], sr, tf.math), -1)
            for i, s in enumerate(self.sections)
        ]
        return tf.stack(rows, axis=-2)

    def mapping(self, name: str) -> tuple[str, float, float]:
        parameter = name.split(".")[1]
        if parameter == "freq_hz":
            return ("log_sigmoid", *self.freq_range)
        if parameter == "q":
            return ("log_sigmoid", *self.q_range)
        return "tanh", -self.max_gain_db, self.max_gain_db

    def values(self) -> dict[str, Any]:
        freq, q, gain = (np.asarray(v) for v in self.parameters())
        return {
            "sections": [
                {"kind": s["kind"], "freq_hz": float(freq[i]), "q": float(q[i]), "gain_db": float(gain[i])}
                for i, s in enumerate(self.sections)
            ]
        }

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "sections": self.sections,
            "min_freq_hz": self.freq_range[0],
            "max_freq_hz": self.freq_range[1],
            "min_q": self.q_range[0],
            "max_q": self.q_range[1],
            "max_gain_db": self.max_gain_db,
            "warmup": self.warmup,
            "controlled": self.controlled,
            "n_knobs": self.n_knobs,
        }


@keras.saving.register_keras_serializable(package="rtnt")
class FIR(GrayBoxBlock):
    """Causal FIR y[t] = sum_k h[k] x[t - k] of `taps` taps, starting as a unit impulse; trained by FFT
    convolution (exact linear convolution, `rtnt.model.graybox.dsp.fft_convolve`). A cabinet is ~2048 taps."""

    def __init__(self, taps: int = 2048, conv1d_max_taps: int = 64, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.taps, self.conv1d_max_taps = int(taps), int(conv1d_max_taps)
        self.receptive_span, self.macs_per_sample = self.taps - 1, self.taps
        impulse = np.zeros(self.taps, dtype=np.float32)
        impulse[0] = 1.0
        self.kernel = self.add_weight(name="taps", shape=(self.taps,), initializer=keras.initializers.Constant(impulse))
        self._init_controllers((), 0)

    def call(self, x: tf.Tensor) -> tf.Tensor:
        return fft_convolve(x, self.kernel)

    def values(self) -> dict[str, Any]:
        return {"taps": np.asarray(self.kernel.numpy(), dtype=np.float32)}

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "taps": self.taps, "conv1d_max_taps": self.conv1d_max_taps}


@keras.saving.register_keras_serializable(package="rtnt")
class Waveshaper(GrayBoxBlock):
    """Parametric tanh waveshaper y = g (tanh(d x + b) - tanh(b)): drive d = 10^(drive_db / 20) with drive_db in
    [min_drive_db, max_drive_db], bias b in +-max_bias (asymmetric clipping; tanh(b) is subtracted so silence
    stays silent), output gain g = 10^(gain_db / 20) with gain_db in +-max_gain_db (NablAFx's parametric
    static nonlinearity)."""

    macs_per_sample = 2
    raw_names = ("drive_db", "bias", "gain_db")

    def __init__(
        self,
        drive_db: float = 12.0,
        bias: float = 0.0,
        gain_db: float = 0.0,
        min_drive_db: float = -24.0,
        max_drive_db: float = 48.0,
        max_bias: float = 1.0,
        max_gain_db: float = 24.0,
        controlled: Any = (),
        n_knobs: int = 0,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.init = {"drive_db": float(drive_db), "bias": float(bias), "gain_db": float(gain_db)}
        self.drive_range = (float(min_drive_db), float(max_drive_db))
        self.max_bias, self.max_gain_db = float(max_bias), float(max_gain_db)
        raw = [
            _to_raw(float(drive_db), *self.drive_range),
            math.atanh(float(bias) / self.max_bias),
            math.atanh(float(gain_db) / self.max_gain_db),
        ]
        self.raw = self.add_weight(name="raw_shape", shape=(3,), initializer=keras.initializers.Constant(raw))
        self._init_controllers(controlled, n_knobs)

    def parameters(self, offset: Any = 0.0) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
        """Linear drive, bias and linear output gain, each (1,) or, with a controller's raw `offset`
        (batch, time, 3), (batch, time, 1)."""
        raw = self.raw + offset
        drive_db = _bounded(raw[..., 0:1], *self.drive_range)
        bias = self.max_bias * tf.tanh(raw[..., 1:2])
        gain_db = self.max_gain_db * tf.tanh(raw[..., 2:3])
        return tf.pow(10.0, drive_db / 20.0), bias, tf.pow(10.0, gain_db / 20.0)

    def call(self, inputs: Any) -> tf.Tensor:
        x, knobs = self.split(inputs)
        drive, bias, gain = self.parameters() if knobs is None else self.parameters(self.raw_offset(knobs))
        return gain * (tf.tanh(drive * x + bias) - tf.tanh(bias))

    def mapping(self, name: str) -> tuple[str, float, float]:
        if name == "drive_db":
            return ("sigmoid", *self.drive_range)
        limit = self.max_bias if name == "bias" else self.max_gain_db
        return "tanh", -limit, limit

    def values(self) -> dict[str, Any]:
        drive, bias, gain = (float(np.asarray(v).reshape(-1)[0]) for v in self.parameters())
        return {"drive": drive, "bias": bias, "gain": gain}

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            **self.init,
            "min_drive_db": self.drive_range[0],
            "max_drive_db": self.drive_range[1],
            "max_bias": self.max_bias,
            "max_gain_db": self.max_gain_db,
            "controlled": self.controlled,
            "n_knobs": self.n_knobs,
        }


class _Resample(GrayBoxBlock):
    """Base of the oversampling pair around a static nonlinearity (`rtnt.model.graybox.oversampling`): fixed,
    non-trainable minimum-phase taps applied as a polyphase causal convolution (left zero padding, the runtimes'
    zero initial state), so eager, graph and XLA execution agree."""

    def __init__(self, factor: int = 2, **kwargs: Any) -> None:
        kwargs["trainable"] = False
        super().__init__(**kwargs)
        self.factor = int(factor)
        self.filters = oversampling_filters(self.factor)
        self.macs_per_sample = int(self.filters.up.size)

    def values(self) -> dict[str, Any]:
        return {"factor": self.factor, "up": self.filters.up, "down": self.filters.down}

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.pop("trainable", None)
        return {**config, "factor": self.factor}


@keras.saving.register_keras_serializable(package="rtnt")
class Upsample(_Resample):
    """Zero-stuff by `factor` and interpolate: (batch, T, 1) -> (batch, T * factor, 1), phase p of frame n being
    factor * sum_j h[p + j factor] x[n - j]."""

    def __init__(self, factor: int = 2, **kwargs: Any) -> None:
        super().__init__(factor, **kwargs)
        self.kernel_taps = up_kernel(self.filters.up, self.factor)
        self.receptive_span = self.kernel_taps.shape[0] - 1

    def call(self, x: tf.Tensor) -> tf.Tensor:
        padded = tf.pad(x, [[0, 0], [self.receptive_span, 0], [0, 0]])
        phases = tf.nn.conv1d(padded, tf.constant(self.kernel_taps, dtype=x.dtype), stride=1, padding="VALID")
        return tf.reshape(phases, [tf.shape(x)[0], -1, 1])

    def compute_output_shape(self, input_shape: tuple[Any, ...]) -> tuple[Any, ...]:
        time = input_shape[1]
        return (input_shape[0], None if time is None else time * self.factor, input_shape[2])


@keras.saving.register_keras_serializable(package="rtnt")
class Downsample(_Resample):
    """Anti-alias filter and keep every `factor`-th sample: (batch, T * factor, 1) -> (batch, T, 1), y[n] =
    sum_k h[k] v[n factor - k] (only the kept outputs are computed)."""

    def __init__(self, factor: int = 2, **kwargs: Any) -> None:
        super().__init__(factor, **kwargs)
        self.kernel_taps = down_kernel(self.filters.down, self.factor)
        self.receptive_span = self.kernel_taps.shape[0] - 1

    def call(self, v: tf.Tensor) -> tf.Tensor:
        frames = tf.reshape(v, [tf.shape(v)[0], -1, self.factor])
        padded = tf.pad(frames, [[0, 0], [self.receptive_span, 0], [0, 0]])
        return tf.nn.conv1d(padded, tf.constant(self.kernel_taps, dtype=v.dtype), stride=1, padding="VALID")

    def compute_output_shape(self, input_shape: tuple[Any, ...]) -> tuple[Any, ...]:
        time = input_shape[1]
        return (input_shape[0], None if time is None else time // self.factor, input_shape[2])
