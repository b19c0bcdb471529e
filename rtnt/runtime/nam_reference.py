"""Numpy reference runtime for NAM `.nam` WaveNet models: streams a mono signal causally, like NAM Core.

Written from the format summary in `../shared/conformance/nam/FORMAT.md` (NeuralAmpModelerCore at
commit daae2d0): the WaveNet generic path with A1 and A2 layer-array fields (per-layer kernel sizes and
activations, gating modes none / gated / blended, bottleneck, layer1x1, head1x1, grouped convs, FiLMs,
a head conv with kernel > 1), the post-stack head, a `condition_dsp`, and the default submodel of a
`SlimmableContainer` (or the one `slimmable_size` selects). LSTM, ConvNet and SlimmableWavenet are refused.

Weights are read as NAM Core reads them: one flat list, each module's matrix (output-major, input, then tap
fastest) then its bias; tap k of a dilated conv multiplies x[t - (K-1-k) * dilation]; the list must be
used up exactly and the last value is the head scale (the config's `head_scale` is not used, as in Core).
Values are rounded to float32 as Core stores them; arithmetic is float64, output float32.

A knob-conditioned file (config `in_channels` 1 + K with rtnt's top-level `controls` list, as
`rtnt.export.nam` writes it) takes the K knob values per sample as the condition's channels 1..K.

`reset()` zeroes every history and, with `prewarm=True` (NAM Core's default), then runs silence (every knob
at its default) through the model for its receptive field, so it starts as if it had heard silence forever.
`prewarm=False` starts from zero histories, which is what a causal Keras model with zero padding computes.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from rtnt.errors import ModelJsonError, NamFileError
from rtnt.runtime.controls import CONTROLS_KEY, ControlSpec, control_block, parse_controls
from rtnt.runtime.model_file import read_model_document
from rtnt.runtime.reference import _matmul

LATEST_VERSION = (0, 7, 0)  # newest .nam version NAM Core (daae2d0) fully supports
OLDEST_VERSION = (0, 5, 0)
BLOCK = 8192  # samples per pass through the layers
FILM_KEYS = (
    "conv_pre_film",
    "conv_post_film",
    "input_mixin_pre_film",
    "input_mixin_post_film",
    "activation_pre_film",
    "activation_post_film",
    "layer1x1_post_film",
    "head1x1_post_film",
)

Activation = Callable[[np.ndarray], np.ndarray]


def parse_version(text: Any, source: str) -> tuple[int, int, int]:
    """(major, minor, patch) of a `.nam` version string, refused as NAM Core refuses it (below 0.5.0, or a
    newer major or minor than 0.7)."""
    if not isinstance(text, str) or not re.fullmatch(r"\d+\.\d+\.\d+", text):
        raise NamFileError(f"{source}: 'version' must be a string MAJOR.MINOR.PATCH, got {text!r}; re-export the model")
    v = tuple(int(p) for p in text.split("."))
    if v < OLDEST_VERSION or v[:2] > LATEST_VERSION[:2]:
        raise NamFileError(
            f"{source}: .nam version {text} is not one NAM Core loads (0.5.0 to 0.7.x); re-export the model"
        )
    return v  # type: ignore[return-value]


def activation_from_config(spec: Any, where: str) -> Activation:
    """NAM's activation named by `spec` (a name, or an object with `type` and parameters), for (T, C) arrays."""
    name = spec.get("type") if isinstance(spec, Mapping) else spec
    params = spec if isinstance(spec, Mapping) else {}
    if name == "Tanh":
        return np.tanh
    if name == "Hardtanh":
        return lambda x: np.clip(x, -1.0, 1.0)
    if name == "ReLU":
        return lambda x: np.maximum(x, 0.0)
    if name == "Sigmoid":
        return lambda x: 0.5 + 0.5 * np.tanh(0.5 * x)
    if name == "SiLU":
        return lambda x: x * (0.5 + 0.5 * np.tanh(0.5 * x))
    if name == "Hardswish":
        return lambda x: x * np.clip(x + 3.0, 0.0, 6.0) / 6.0
    if name == "Softsign":
        return lambda x: x / (1.0 + np.abs(x))
    if name == "LeakyReLU":
        slope = _f32(params.get("negative_slope", 0.01))
        return lambda x: np.where(x > 0, x, slope * x)
    if name == "PReLU":
        slopes = np.atleast_1d(_f32(params.get("negative_slopes", params.get("negative_slope", 0.01))))
        return lambda x: np.where(x > 0, x, x * slopes[np.arange(x.shape[1]) % slopes.size])
    if name in ("LeakyHardtanh", "LeakyHardTanh"):
        lo, hi = _f32(params.get("min_val", -1.0)), _f32(params.get("max_val", 1.0))
        lo_slope, hi_slope = _f32(params.get("min_slope", 0.01)), _f32(params.get("max_slope", 0.01))
        return lambda x: np.where(x < lo, (x - lo) * lo_slope + lo, np.where(x > hi, (x - hi) * hi_slope + hi, x))
    raise NamFileError(f"{where}: activation {spec!r} is not one NAM Core knows; fix the file")


def _f32(value: Any) -> Any:
    """A parameter rounded to float32 (as Core stores it), as float64 for the arithmetic."""
    return np.asarray(value, dtype=np.float32).astype(np.float64)


class _Weights:
    """NAM's flat weight list, consumed front to back."""

    def __init__(self, values: Any, source: str) -> None:
        try:
            self.values = np.asarray(values, dtype=np.float32).astype(np.float64).reshape(-1)
        except (TypeError, ValueError):
            raise NamFileError(f"{source}: 'weights' must be a flat list of numbers; re-export the model") from None
        self.pos, self.source = 0, source

    def take(self, n: int, what: str) -> np.ndarray:
        if self.pos + n > self.values.size:
            raise NamFileError(
                f"{self.source}: the weight list ends while reading {what} "
                f"({self.values.size} values, config needs more); "
                "the config and weights do not match"
            )
        out = self.values[self.pos : self.pos + n]
        self.pos += n
        return out

    def finish(self) -> None:
        if self.pos != self.values.size:
            raise NamFileError(
                f"{self.source}: {self.values.size - self.pos} weights left over after the model "
                f"({self.values.size} given, "
                f"{self.pos} used); the config and weights do not match"
            )


class _Conv:
    """Causal dilated, grouped conv (in -> out, kernel K) with an input history of (K - 1) * dilation frames.
    Reads weights (out, in/groups, K) tap fastest, then `out` biases when `bias`."""

    def __init__(
        self, w: _Weights, cin: int, cout: int, kernel: int, bias: bool, dilation: int, groups: int, what: str
    ) -> None:
        if groups < 1 or cin % groups or cout % groups:
            raise NamFileError(
                f"{w.source}: {what}: groups {groups} must divide {cin} inputs and {cout} outputs; fix the file"
            )
        gi, go = cin // groups, cout // groups
        raw = w.take(cout * gi * kernel, f"{what} weights").reshape(cout, gi, kernel)
        self.taps = np.zeros((kernel, cin, cout))  # per tap a dense (in, out) matrix, zero off the group blocks
        for g in range(groups):
            self.taps[:, g * gi : (g + 1) * gi, g * go : (g + 1) * go] = raw[g * go : (g + 1) * go].transpose(2, 1, 0)
        self.bias = w.take(cout, f"{what} bias") if bias else None
        self.dilation, self.span, self.cin = dilation, (kernel - 1) * dilation, cin
        self.reset()

    def reset(self) -> None:
        self.history = np.zeros((self.span, self.cin))

    def forward(self, x: np.ndarray) -> np.ndarray:
        n = len(x)
        padded = np.concatenate([self.history, x]) if self.span else x
        y = sum(_matmul(padded[k * self.dilation : k * self.dilation + n], tap) for k, tap in enumerate(self.taps))
        if self.span:
            self.history = padded[len(padded) - self.span :].copy()
        return y + self.bias if self.bias is not None else y


def _conv1x1(w: _Weights, cin: int, cout: int, bias: bool, groups: int, what: str) -> _Conv:
    return _Conv(w, cin, cout, 1, bias, 1, groups, what)


class _FiLM:
    """v * S(c) + T(c), with [S; T] a 1x1 conv (with bias) of the condition; without shift v * S(c)."""

    def __init__(self, w: _Weights, cond: int, dim: int, spec: Mapping[str, Any], what: str) -> None:
        self.shift = bool(spec.get("shift", True))
        self.dim = dim
        self.conv = _conv1x1(w, cond, (2 if self.shift else 1) * dim, True, int(spec.get("groups", 1)), what)

    def __call__(self, v: np.ndarray, c: np.ndarray) -> np.ndarray:
        ss = self.conv.forward(c)
        return v * ss[:, : self.dim] + ss[:, self.dim :] if self.shift else v * ss


def _film_spec(cfg: Mapping[str, Any], key: str) -> Mapping[str, Any] | None:
    """The FiLM switch `key` as NAM reads it: absent or false is off, an object is on unless active is false."""
    spec = cfg.get(key)
    if spec is None or spec is False:
        return None
    if not isinstance(spec, Mapping):
        raise NamFileError(f"layer array FiLM '{key}' must be false or an object, got {spec!r}; fix the file")
    return spec if spec.get("active", True) else None


class _Layer:
    """One residual layer: conv + input mix-in, activation (gated / blended), layer1x1, head1x1, FiLMs."""

    def __init__(self, w: _Weights, a: _ArraySpec, i: int) -> None:
        where = f"layer array {a.index} layer {i}"
        b, c, z, cond = a.bottleneck, a.channels, a.z(i), a.condition_size
        self.mode, self.bottleneck = a.gating[i], b
        self.act = activation_from_config(a.activations[i], where)
        self.secondary = activation_from_config(a.secondary[i], where) if self.mode != "none" else None
        self.conv = _Conv(w, c, z, a.kernels[i], True, a.dilations[i], a.groups_input, f"{where} conv")
        self.mixin = _conv1x1(w, cond, z, False, a.groups_mixin, f"{where} input_mixin")
        self.layer1x1 = _conv1x1(w, b, c, True, a.layer1x1_groups, f"{where} layer1x1") if a.layer1x1 else None
        h1 = a.head1x1
        self.head1x1 = _conv1x1(w, b, h1["out_channels"], True, h1["groups"], f"{where} head1x1") if h1 else None
        dims = {
            "conv_pre_film": c,
            "conv_post_film": z,
            "input_mixin_pre_film": cond,
            "input_mixin_post_film": z,
            "activation_pre_film": z,
            "activation_post_film": b,
            "layer1x1_post_film": c,
            "head1x1_post_film": h1["out_channels"] if h1 else b,
        }
        self.films = {
            k: _FiLM(w, cond, dims[k], a.films[k], f"{where} {k}") for k in FILM_KEYS if a.films[k] is not None
        }

    def _film(self, key: str, v: np.ndarray, c: np.ndarray) -> np.ndarray:
        film = self.films.get(key)
        return film(v, c) if film is not None else v

    def reset(self) -> None:
        self.conv.reset()

    def forward(self, h: np.ndarray, c: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        b = self.bottleneck
        z = self._film("conv_post_film", self.conv.forward(self._film("conv_pre_film", h, c)), c)
        m = self._film("input_mixin_post_film", self.mixin.forward(self._film("input_mixin_pre_film", c, c)), c)
        z = self._film("activation_pre_film", z + m, c)
        if self.mode == "none":
            a = self.act(z)
        elif self.mode == "gated":
            a = self.act(z[:, :b]) * self.secondary(z[:, b:])
        else:  # blended
            alpha = self.secondary(z[:, b:])
            a = alpha * self.act(z[:, :b]) + (1.0 - alpha) * z[:, :b]
        a = self._film("activation_post_film", a, c)
        h_next = h
        if self.layer1x1 is not None:
            r = self.layer1x1.forward(a)
            if (
                self.mode == "blended"
            ):  # NAM Core applies this FiLM only for blended layers (its weights are always read)
                r = self._film("layer1x1_post_film", r, c)
            h_next = h + r
        skip = a if self.head1x1 is None else self._film("head1x1_post_film", self.head1x1.forward(a), c)
        return h_next, skip


class _ArraySpec:
    """A layer-array config resolved per layer, in A1 or A2 form (FORMAT.md §2.1, §2.2)."""

    def __init__(self, cfg: Mapping[str, Any], index: int, source: str) -> None:
        self.index = index
        where = f"{source}: layer array {index}"
        try:
            self.input_size, self.condition_size = int(cfg["input_size"]), int(cfg["condition_size"])
            self.channels = int(cfg["channels"])
            self.bottleneck = int(cfg.get("bottleneck", self.channels))
            self.dilations = [int(d) for d in cfg["dilations"]]
            n = len(self.dilations)
            if "kernel_size" in cfg and "kernel_sizes" in cfg:
                raise NamFileError(f"{where}: give kernel_size or kernel_sizes, not both; fix the file")
            self.kernels = (
                [int(k) for k in cfg["kernel_sizes"]] if "kernel_sizes" in cfg else [int(cfg["kernel_size"])] * n
            )
            head = cfg.get("head")
            if head is not None:
                self.head_size, self.head_kernel = int(head["out_channels"]), int(head["kernel_size"])
                self.head_bias, self.head_dilation = bool(head["bias"]), int(head.get("head_dilation", 1))
            else:
                self.head_size, self.head_kernel, self.head_bias, self.head_dilation = (
                    int(cfg["head_size"]),
                    1,
                    bool(cfg["head_bias"]),
                    1,
                )
            acts = cfg["activation"]
            self.activations = list(acts) if isinstance(acts, list) else [acts] * n
            self.gating, self.secondary = self._gating(cfg, n)
            layer1x1 = cfg.get("layer1x1", {"active": True, "groups": 1})
            self.layer1x1, self.layer1x1_groups = bool(layer1x1["active"]), int(layer1x1["groups"])
            h1 = cfg.get("head1x1")
            self.head1x1 = (
                {"out_channels": int(h1["out_channels"]), "groups": int(h1["groups"])} if h1 and h1["active"] else None
            )
            self.groups_input, self.groups_mixin = (
                int(cfg.get("groups_input", 1)),
                int(cfg.get("groups_input_mixin", 1)),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise NamFileError(
                f"{where}: missing or malformed field ({type(exc).__name__}: {exc}); fix the file"
            ) from None
        if cfg.get("slimmable") is not None:
            raise NamFileError(f"{where}: slimmable WaveNets are not supported by rtnt's .nam reference runtime")
        self.films = {k: _film_spec(cfg, k) for k in FILM_KEYS}
        if len(self.kernels) != n or len(self.activations) != n:
            raise NamFileError(
                f"{where}: kernel_sizes and activation must have one entry per dilation ({n}); fix the file"
            )
        if not self.layer1x1 and self.bottleneck != self.channels:
            raise NamFileError(f"{where}: layer1x1 is inactive but bottleneck != channels; fix the file")

    @staticmethod
    def _gating(cfg: Mapping[str, Any], n: int) -> tuple[list[str], list[Any]]:
        """Per-layer gating mode and secondary activation (Sigmoid unless given), from gating_mode or gated."""
        if "gating_mode" in cfg:
            modes = cfg["gating_mode"]
            modes = list(modes) if isinstance(modes, list) else [modes] * n
        else:
            modes = ["gated" if cfg.get("gated", False) else "none"] * n
        sec = cfg.get("secondary_activation", "Sigmoid")
        secondary = list(sec) if isinstance(sec, list) else [sec] * n
        for m in modes:
            if m not in ("none", "gated", "blended"):
                raise NamFileError(f"gating_mode {m!r} must be none, gated or blended; fix the file")
        if len(modes) != n or len(secondary) != n:
            raise NamFileError(
                f"gating_mode and secondary_activation must have one entry per dilation ({n}); fix the file"
            )
        return modes, [s if s is not None else "Sigmoid" for s in secondary]

    def z(self, i: int) -> int:
        return 2 * self.bottleneck if self.gating[i] != "none" else self.bottleneck

    @property
    def receptive_span(self) -> int:
        return sum((k - 1) * d for k, d in zip(self.kernels, self.dilations)) + self.head_dilation * (
            self.head_kernel - 1
        )


class _LayerArray:
    def __init__(self, w: _Weights, a: _ArraySpec) -> None:
        self.rechannel = _conv1x1(w, a.input_size, a.channels, False, 1, f"layer array {a.index} rechannel")
        self.layers = [_Layer(w, a, i) for i in range(len(a.dilations))]
        head_in = a.head1x1["out_channels"] if a.head1x1 else a.bottleneck
        self.head = _Conv(
            w, head_in, a.head_size, a.head_kernel, a.head_bias, a.head_dilation, 1, f"layer array {a.index} head"
        )
        self.head_in = head_in

    def reset(self) -> None:
        for layer in self.layers:
            layer.reset()
        self.head.reset()

    def forward(self, x: np.ndarray, c: np.ndarray, head_sum: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        h = self.rechannel.forward(x)
        acc = np.zeros((len(x), self.head_in)) if head_sum is None else head_sum.copy()
        for layer in self.layers:
            h, skip = layer.forward(h, c)
            acc += skip
        return h, self.head.forward(acc)


class _WaveNet:
    """NAM's WaveNet (FORMAT.md §5): condition, layer arrays, head scale, optional post-stack head."""

    def __init__(self, data: Mapping[str, Any], source: str) -> None:
        cfg = data["config"]
        cond = cfg.get("condition_dsp")
        self.condition = _load_dsp(cond, f"{source} condition_dsp") if cond is not None else None
        self.specs = [_ArraySpec(a, i, source) for i, a in enumerate(cfg["layers"])]
        if not self.specs:
            raise NamFileError(f"{source}: a WaveNet needs at least one layer array; fix the file")
        self.in_channels = int(cfg.get("in_channels", 1))
        cond_width = self.in_channels if self.condition is None else None
        for a in self.specs:
            if cond_width is not None and a.condition_size != cond_width:
                raise NamFileError(
                    f"{source}: layer array {a.index} condition_size is {a.condition_size}, but without a "
                    f"condition_dsp the condition is the input ({cond_width} channel(s), config 'in_channels')"
                )
        if self.specs[0].input_size != self.in_channels:
            raise NamFileError(
                f"{source}: layer array 0 input_size is {self.specs[0].input_size}, but the input has "
                f"{self.in_channels} channel(s) (config 'in_channels'); fix the file"
            )
        if "head_scale" not in cfg:
            raise NamFileError(f"{source}: config has no head_scale; NAM Core requires it")
        w = _Weights(data["weights"], source)
        self.arrays = [_LayerArray(w, a) for a in self.specs]
        self.post_head: list[tuple[Activation, _Conv]] = []
        head = cfg.get("head")
        if head is not None:
            act = activation_from_config(head["activation"], f"{source} head")
            cin, ks = self.specs[-1].head_size, list(head["kernel_sizes"])
            for j, k in enumerate(ks):
                cout = int(head["out_channels"]) if j + 1 == len(ks) else int(head["channels"])
                self.post_head.append((act, _Conv(w, cin, cout, int(k), True, 1, 1, f"{source} head conv {j}")))
                cin = cout
        self.head_scale = float(w.take(1, "head_scale")[0])
        w.finish()
        cond_samples = self.condition.prewarm_samples if self.condition is not None else 1
        self.prewarm_samples = (
            cond_samples + sum(a.receptive_span for a in self.specs) + sum(c.span for _, c in self.post_head)
        )

    def reset(self) -> None:
        if self.condition is not None:
            self.condition.reset()
        for array in self.arrays:
            array.reset()
        for _, conv in self.post_head:
            conv.reset()

    def forward(self, x: np.ndarray) -> np.ndarray:
        """(T, in_channels) input frames -> (T, 1) output."""
        c = self.condition.forward(x) if self.condition is not None else x
        h, head = x, None
        for array in self.arrays:
            h, head = array.forward(h, c, head)
        out = self.head_scale * head
        for act, conv in self.post_head:
            out = conv.forward(act(out))
        return out


def _load_dsp(data: Any, source: str, slimmable_size: float | None = None) -> _WaveNet:
    """The WaveNet a `.nam` object describes (a SlimmableContainer's selected submodel)."""
    if not isinstance(data, Mapping):
        raise NamFileError(f"{source}: a .nam model must be a JSON object; re-export the model")
    for key in ("version", "architecture", "config", "weights"):
        if key not in data:
            raise NamFileError(f"{source}: missing top-level key '{key}'; re-export the model")
    parse_version(data["version"], source)
    arch = data["architecture"]
    if arch == "SlimmableContainer":
        subs = data["config"]["submodels"]
        size = 1.0 if slimmable_size is None else slimmable_size
        chosen = next((s for s in subs if size < s["max_value"]), subs[-1])
        return _load_dsp(chosen["model"], f"{source} submodel")
    if arch != "WaveNet":
        raise NamFileError(
            f"{source}: architecture {arch!r} is not supported by rtnt's .nam reference runtime (WaveNet only)"
        )
    try:
        return _WaveNet(data, source)
    except (KeyError, TypeError, ValueError) as exc:
        raise NamFileError(
            f"{source}: malformed WaveNet config ({type(exc).__name__}: {exc}); re-export the model"
        ) from None


class NamModel:
    """A `.nam` WaveNet streaming mono float32 audio (with per-sample knob values for a conditioned file); state
    carries across `process` calls."""

    def __init__(
        self, net: _WaveNet, prewarm: bool, sample_rate: float | None, controls: list[ControlSpec], source: str
    ) -> None:
        self._net, self.prewarm, self.sample_rate = net, prewarm, sample_rate
        self.controls, self._source = controls, source
        self.reset()

    @classmethod
    def from_file(cls, path: str | Path, *, prewarm: bool = True, slimmable_size: float | None = None) -> NamModel:
        """Load a `.nam` file; malformed or unsupported files raise NamFileError naming the file."""
        path = Path(path)
        data = read_model_document(path, NamFileError)
        return cls.from_dict(data, prewarm=prewarm, slimmable_size=slimmable_size, source=str(path))

    @classmethod
    def from_dict(
        cls,
        data: Mapping[str, Any],
        *,
        prewarm: bool = True,
        slimmable_size: float | None = None,
        source: str = "<.nam dict>",
    ) -> NamModel:
        """Load an already parsed `.nam` object."""
        net = _load_dsp(data, source, slimmable_size)
        if net.in_channels > 1 and not data.get(CONTROLS_KEY):
            raise NamFileError(
                f"{source}: config 'in_channels' is {net.in_channels} but the file lists no 'controls'; rtnt runs a "
                "multi-channel .nam as a knob-conditioned model (channel 0 the audio, 1..K the listed knobs)"
            )
        try:
            controls = parse_controls(data, net.in_channels, source, "config 'in_channels' is")
        except ModelJsonError as exc:
            raise NamFileError(str(exc)) from None
        return cls(net, prewarm, data.get("sample_rate"), controls, source)

    @property
    def receptive_field(self) -> int:
        """NAM Core's prewarm length: the receptive field in samples."""
        return self._net.prewarm_samples

    @property
    def head_scale(self) -> float:
        return self._net.head_scale

    def reset(self) -> None:
        """Zero every history; with `prewarm`, then run one receptive field of silence (NAM Core's Reset), every
        knob at its default."""
        self._net.reset()
        if self.prewarm:
            n = self.receptive_field
            defaults = np.array([c.default for c in self.controls], dtype=np.float32)
            self._run(np.zeros(n), np.broadcast_to(defaults, (n, len(self.controls))))

    def process(self, x: np.ndarray, controls: np.ndarray | None = None) -> np.ndarray:
        """Run a 1-D signal through the model, continuing from the current state; returns float32. A conditioned
        file takes `controls`, the knob values per sample (n, K) or held for the whole signal (K,)."""
        x = np.asarray(x)
        if x.ndim != 1:
            raise ValueError(f"process expects a 1-D signal, got shape {x.shape}")
        knobs = control_block(controls, len(x), len(self.controls), self._source)
        return self._run(x.astype(np.float32).astype(np.float64), knobs.astype(np.float64)).astype(np.float32)

    def _run(self, x: np.ndarray, knobs: np.ndarray) -> np.ndarray:
        frames = np.concatenate([x[:, None], knobs], axis=1)
        parts = [self._net.forward(frames[s : s + BLOCK])[:, 0] for s in range(0, len(x), BLOCK)]
        return np.concatenate(parts) if parts else np.zeros(0)
