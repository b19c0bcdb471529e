"""Export an rtnt `wavenet` Keras model to NAM's `.nam` format, as NAM Core (daae2d0) reads it.

The file holds `version`, `metadata`, `architecture: "WaveNet"`, `config` (NAM's layer-array form),
`weights` and `sample_rate` (48000). Weights follow NAM Core's read order (per layer array: rechannel; per
layer conv weights then bias, input mix-in, layer1x1 weights then bias, each active FiLM's 1x1 weights then bias;
head weights then bias; finally
head_scale) in its conv memory layout (output, input, tap; tap k multiplies x[t - (K-1-k) d], as in
Keras' causal Conv1D). `head_scale` is written both in the config and as the last weight.

A model whose arrays all have NAM's A1 shape (one kernel size and one plain activation per array, bottleneck
= channels, layer1x1 active, head kernel 1) is written in the A1 form at version 0.5.4, as NAM's trainer
writes A1 files; any other in the spelled-out A2 form of NAM's A2 export at version 0.7.0, the first
version whose readers know per-layer `kernel_sizes` and the layer-array `head` object.

A knob-conditioned WaveNet (`conditioning=concat`) uses NAM's multi-channel condition: config `in_channels`
1 + K, array 0's `input_size` and every array's `condition_size` 1 + K (channel 0 the audio, 1..K the knobs),
and rtnt's top-level `controls` list names the knobs and their ranges (`rtnt.runtime.controls`; NAM Core ignores
unknown top-level keys). With `conditioning=film` each layer array also switches on the spec's FiLMs
(`{"active": true, "shift": true, "groups": 1}`, in the A2 form). docs/architecture.md, "Knob-conditioned .nam".

Metadata (`rtnt.export.metadata.ModelMetadata`, shared with the RTNeural JSON exporter) carries NAM's
fields; `loudness` is computed as NAM's trainer computes it, the RMS level in dB of the model's output, but on
a fixed rtnt signal instead of NAM's own reamp input, through the exported file itself (numpy reference
runtime, prewarmed as NAM Core plays it).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rtnt.constants import SAMPLE_RATE
from rtnt.errors import ExportError
from rtnt.export.metadata import Levels, ModelMetadata, loudness_input, metadata_object, output_levels, write_model_file
from rtnt.runtime.controls import CONTROLS_KEY, ControlSpec, default_controls
from rtnt.runtime.nam_reference import FILM_KEYS  # the .nam FiLM switches, one definition for reader and writer

A1_VERSION = "0.5.4"
A2_VERSION = "0.7.0"
A1_ACTIVATIONS = ("Tanh", "ReLU", "Sigmoid", "SiLU", "Softsign", "Hardtanh", "LeakyReLU")


def _parts(model: Any) -> tuple[list[Any], Any]:
    from rtnt.model.wavenet import wavenet_parts

    parts = wavenet_parts(model)
    if parts is None:
        raise ExportError(
            f"cannot export model '{model.name}' to .nam: it is not an rtnt WaveNet (arch wavenet); "
            "export other presets to RTNeural JSON"
        )
    return parts


def is_nam_wavenet(model: Any) -> bool:
    """True when `model` was built by `arch: wavenet` and so exports to `.nam`."""
    from rtnt.model.wavenet import wavenet_parts

    return wavenet_parts(model) is not None


def _is_a1(spec: Any) -> bool:
    """Whether NAM's A1 layer-array fields describe `spec` exactly."""
    plain = spec.activations[0] != "LeakyReLU" or np.float32(spec.negative_slope) == np.float32(0.01)
    return (
        len(set(spec.kernel_sizes)) == 1
        and len(set(spec.activations)) == 1
        and spec.activations[0] in A1_ACTIVATIONS
        and plain
        and spec.bottleneck == spec.channels
        and spec.layer1x1
        and spec.head_kernel_size == 1
        and not spec.films
    )


def _a1_array(spec: Any) -> dict[str, Any]:
    return {
        "input_size": spec.input_size,
        "condition_size": spec.condition_size,
        "head_size": spec.head_size,
        "channels": spec.channels,
        "kernel_size": spec.kernel_sizes[0],
        "dilations": list(spec.dilations),
        "activation": spec.activations[0],
        "gated": spec.gated,
        "head_bias": spec.head_bias,
    }


def _a2_activation(name: str, negative_slope: float) -> Any:
    return {"type": "LeakyReLU", "negative_slope": _shortest(negative_slope)} if name == "LeakyReLU" else name


def _a2_array(spec: Any) -> dict[str, Any]:
    """Every A2 field spelled out, as NAM's A2 export writes them (the shape NAM Core's A2 fast path checks)."""
    n = spec.num_layers
    film = {"shift": True, "groups": 1}
    return {
        "input_size": spec.input_size,
        "condition_size": spec.condition_size,
        "head": {"out_channels": spec.head_size, "kernel_size": spec.head_kernel_size, "bias": spec.head_bias},
        "channels": spec.channels,
        "kernel_sizes": list(spec.kernel_sizes),
        "dilations": list(spec.dilations),
        "activation": [_a2_activation(a, spec.negative_slope) for a in spec.activations],
        "bottleneck": spec.bottleneck,
        "head1x1": {"active": False, "out_channels": spec.head_size, "groups": 1},
        "layer1x1": {"active": spec.layer1x1, "groups": 1},
        "groups_input": 1,
        "groups_input_mixin": 1,
        **{key: {"active": key in spec.films, **film} for key in FILM_KEYS},
        "gating_mode": ["gated" if spec.gated else "none"] * n,
        "secondary_activation": ["Sigmoid" if spec.gated else None] * n,
        "slimmable": None,
    }


def _head_scale(model: Any) -> float:
    return float(np.float32(_parts(model)[1].scale.numpy()))


def nam_config(model: Any) -> tuple[str, dict[str, Any]]:
    """The `.nam` version and WaveNet `config` of an rtnt WaveNet model."""
    arrays, _ = _parts(model)
    specs = [a.spec for a in arrays]
    a1 = all(_is_a1(s) for s in specs)
    layers = [_a1_array(s) if a1 else _a2_array(s) for s in specs]
    # The weight list holds the head scale's exact float32 value (0.019999999552965164), the config its
    # shortest decimal (0.02) as NAM's files do: the same number once NAM Core reads it as float32.
    config: dict[str, Any] = {"layers": layers, "head": None, "head_scale": _shortest(_head_scale(model))}
    if specs[0].input_size > 1:
        config["in_channels"] = specs[0].input_size
    return (A1_VERSION if a1 else A2_VERSION), config


def _shortest(value: float) -> float:
    """The shortest decimal that reads back as the same float32 (0.01, not 0.009999999776482582)."""
    return float(str(np.float32(value)))


def nam_weights(model: Any) -> np.ndarray:
    """The flat float32 weight list in NAM Core's read order and conv memory layout (module doc)."""
    arrays, _ = _parts(model)
    out: list[np.ndarray] = []

    def conv(kernel: Any) -> None:  # Keras (K, in, out) -> NAM out, in, tap (tap fastest)
        out.append(np.asarray(kernel.numpy()).transpose(2, 1, 0).ravel())

    def dense(kernel: Any) -> None:  # Keras (in, out) -> NAM out, in
        out.append(np.asarray(kernel.numpy()).T.ravel())

    for array in arrays:
        dense(array.rechannel)
        for i in range(array.spec.num_layers):
            conv(array.conv_kernels[i])
            out.append(np.asarray(array.conv_biases[i].numpy()).ravel())
            dense(array.mixins[i])
            if array.spec.layer1x1:
                dense(array.layer1x1_kernels[i])
                out.append(np.asarray(array.layer1x1_biases[i].numpy()).ravel())
            for key in array.spec.films:  # FILM_KEYS order; scale rows, then shift rows, then the bias
                kernel, bias = array.films[i][key]
                dense(kernel)
                out.append(np.asarray(bias.numpy()).ravel())
        conv(array.head_kernel)
        if array.head_bias is not None:
            out.append(np.asarray(array.head_bias.numpy()).ravel())
    out.append(np.array([_head_scale(model)]))
    return np.concatenate(out).astype(np.float32)


def nam_loudness(data: dict[str, Any]) -> Levels:
    """(RMS dB, BS.1770-4 LUFS) of a `.nam` object's output on the loudness input, run by the numpy
    reference runtime from its prewarmed state (as NAM Core plays it), every knob at its default."""
    from rtnt.runtime.nam_reference import NamModel

    model = NamModel.from_dict(data, prewarm=True)
    defaults = default_controls(model.controls)
    return output_levels(model.process(loudness_input(), defaults))


def export_nam(
    model: Any, metadata: ModelMetadata | None = None, controls: Sequence[ControlSpec] = (), *, loudness: bool = True
) -> dict[str, Any]:
    """The `.nam` object of an rtnt WaveNet model, with the `controls` of a knob-conditioned one (one per knob
    input channel). `loudness=False` skips the loudness pass (3 s of audio through the numpy reference runtime)."""
    version, config = nam_config(model)
    n_knobs = config.get("in_channels", 1) - 1
    if n_knobs != len(controls):
        raise ExportError(
            f"cannot export model '{model.name}' to .nam: its input has {1 + n_knobs} channel(s) but {len(controls)} "
            f"control(s) were given; a conditioned model's input is the audio and one channel per control"
        )
    data: dict[str, Any] = {
        "version": version,
        "metadata": {},
        "architecture": "WaveNet",
        "config": config,
        "weights": [float(w) for w in nam_weights(model)],
        "sample_rate": SAMPLE_RATE,
    }
    if controls:
        data[CONTROLS_KEY] = [c.to_json() for c in controls]
    data["metadata"] = metadata_object(metadata or ModelMetadata(), (lambda: nam_loudness(data)) if loudness else None)
    return data


def save_nam(
    model: Any,
    path: str | Path,
    metadata: ModelMetadata | None = None,
    controls: Sequence[ControlSpec] = (),
    *,
    loudness: bool = True,
) -> Path:
    """Write `export_nam(model, metadata, controls)` to `path` (parent folders created); returns the path."""
    return write_model_file(path, export_nam(model, metadata, controls, loudness=loudness))
