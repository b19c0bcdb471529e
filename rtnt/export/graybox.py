"""Export a gray-box chain (`arch: graybox`) to rtnt's gray-box JSON, an extension of RTNeural's format.

The document is RTNeural's (`in_shape`, `layers[]`) plus `"rtnt_format": "graybox-1"`. Blocks RTNeural can
express keep its layer types: the MLP's Dense layers become `dense`, the conv stack `conv1d` (through the
RTNeural exporter, with its activation folding), an FIR of at most `conv1d_max_taps` taps a `conv1d` of one
channel. The rest use the layer types of docs/graybox_format.md: `biquad` (a parametric EQ or DC blocker: the
exact recursion of its sections' coefficients b0 b1 b2 a1 a2, a0 normalised to 1, written as doubles), `fir`
(long taps), `waveshaper` (drive, bias, gain) and `gain`. Keras is imported lazily.

A knob-conditioned chain (`conditioning=concat`, `preset.controlled`) also gets `in_shape [.., 1 + K]`, the
top-level `controls` list (`rtnt.runtime.controls.ControlSpec`) and, on each controlled layer, `controllers`:
per controlled parameter its range mapping, static raw weight and K controller weights (docs/graybox_format.md).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rtnt.errors import ExportError
from rtnt.export.metadata import Levels, ModelMetadata, loudness_input, metadata_object, output_levels
from rtnt.export.rtneural import _Graph, _JsonLayer, _refuse, _sequential_chain, _to_json
from rtnt.runtime.controls import CONTROLS_KEY, ControlSpec

FORMAT = "graybox-1"
GRAYBOX_LAYER_TYPES = ("biquad", "fir", "waveshaper", "gain")


def is_graybox(model: Any) -> bool:
    """True when `model` holds a gray-box DSP block."""
    from rtnt.model.graybox.blocks import GrayBoxBlock

    return any(isinstance(layer, GrayBoxBlock) for layer in model.layers)


def export_graybox(
    model: Any, metadata: ModelMetadata | None = None, controls: Sequence[ControlSpec] = (), *, loudness: bool = True
) -> dict[str, Any]:
    """The gray-box JSON dict of a sequential Keras model of gray-box blocks and RTNeural layers (a conditioned
    chain: its `controls`, one per knob channel); with `metadata`, plus the top-level `metadata` object (its
    loudness measured in the numpy reference runtime at the controls' defaults, which runs every gray-box layer;
    `loudness=False` skips it)."""
    in_shape = tuple(model.inputs[0].shape)
    n_knobs = int(in_shape[-1]) - 1
    if n_knobs != len(controls):
        raise ExportError(
            f"cannot export model '{model.name}': its input has {in_shape[-1]} channel(s) but {len(controls)} "
            "control(s) were given; a conditioned gray-box chain's input is 1 audio channel + 1 per control"
        )
    chain = _conditioned_chain(model) if n_knobs else _sequential_chain(model)
    lead = [None] * (len(in_shape) - 1)
    graph = _GrayBoxGraph(1)
    for layer in chain:
        graph.add(layer)
    graph.finish()
    layers = [_to_json(j, lead) for j in graph.layers]
    for spec, j in zip(layers, graph.layers):
        if j.type == "biquad":  # doubles: see rtnt.model.graybox.blocks._Recursive
            spec["weights"] = [np.asarray(j.weights[0], dtype=np.float64).tolist()]
    data: dict[str, Any] = {"rtnt_format": FORMAT, "in_shape": [*lead, 1 + n_knobs], "layers": layers}
    if controls:
        data[CONTROLS_KEY] = [c.to_json() for c in controls]
    if metadata is not None:
        data["metadata"] = metadata_object(metadata, (lambda: graybox_loudness(data)) if loudness else None)
    return data


def graybox_loudness(data: dict[str, Any]) -> Levels:
    """(RMS dB, BS.1770-4 LUFS) of a gray-box JSON object's output on the loudness input, from a reset state."""
    from rtnt.runtime.reference import ReferenceModel

    model = ReferenceModel.from_json(data)
    defaults = np.array([c.default for c in model.controls], dtype=np.float32) if model.controls else None
    return output_levels(model.process(loudness_input(), defaults))


def save_graybox(
    model: Any, path: str | Path, metadata: ModelMetadata | None = None, controls: Sequence[ControlSpec] = ()
) -> Path:
    """Write `export_graybox(model, metadata, controls)` to `path` (parent folders created); returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(export_graybox(model, metadata, controls)))
    return path


def _conditioned_chain(model: Any) -> list[Any]:
    """The signal chain of a conditioned gray-box model: after its `Channels` split, every layer takes the previous
    layer's output as its signal (a controlled block also takes the knobs)."""
    from rtnt.model.graybox.blocks import Channels

    layers = [layer for layer in model.layers if type(layer).__name__ != "InputLayer"]
    split = [layer for layer in layers if isinstance(layer, Channels)]
    audio = next((layer for layer in split if layer.start == 0 and layer.stop == 1), None)
    if audio is None or len(split) != 2:
        raise ExportError(f"cannot export model '{model.name}': a conditioned gray-box chain splits its input first")
    chain, previous = [layer for layer in layers if not isinstance(layer, Channels)], audio.output
    for layer in chain:
        signal = layer.input[0] if isinstance(layer.input, (list, tuple)) else layer.input
        if signal is not previous:
            raise _refuse(layer, "its signal input is not the previous layer's output; a gray-box chain is sequential")
        previous = layer.output
    if previous is not model.outputs[0]:
        raise ExportError(f"cannot export model '{model.name}': its output is not the chain's last layer")
    return chain


class _GrayBoxGraph(_Graph):
    """RTNeural's layer accumulator, taught the gray-box blocks."""

    def add(self, layer: Any) -> None:
        from rtnt.model.graybox.blocks import GrayBoxBlock

        if not isinstance(layer, GrayBoxBlock):
            super().add(layer)
            return
        if self.dims != 1:
            raise _refuse(layer, f"a gray-box block processes a mono signal, but its input has {self.dims} channels")
        self.emit(layer, block_json(layer))


def block_json(layer: Any) -> _JsonLayer:
    """The JSON layer of one gray-box block (module doc)."""
    from rtnt.model.graybox.blocks import FIR, DCBlocker, Gain, ParametricEQ, Waveshaper

    values = layer.values()
    if isinstance(layer, (ParametricEQ, DCBlocker)):
        coefficients = np.asarray(layer.coefficients(), dtype=np.float64)
        extra: dict[str, Any] = {"sections": int(coefficients.shape[0])}
        if isinstance(layer, ParametricEQ):
            extra["parameters"] = values["sections"]
        else:
            extra["parameters"] = [{"kind": "dc_blocker", "pole": values["pole"]}]
        return _JsonLayer("biquad", 1, [coefficients], extra=extra | _controllers(layer))
    if isinstance(layer, FIR):
        taps = values["taps"].astype(np.float64)
        if taps.size <= layer.conv1d_max_taps:  # RTNeural conv1d: tap i reads x[t - (k - 1 - i)]
            extra = {"kernel_size": [int(taps.size)], "dilation": [1], "groups": 1}
            return _JsonLayer("conv1d", 1, [taps[::-1].reshape(-1, 1, 1), np.zeros(1)], extra=extra)
        return _JsonLayer("fir", 1, [taps], extra={"taps": int(taps.size)})
    if isinstance(layer, Waveshaper):
        weights = [np.array([values["drive"], values["bias"], values["gain"]])]
        return _JsonLayer("waveshaper", 1, weights, extra=_controllers(layer))
    if isinstance(layer, Gain):
        return _JsonLayer("gain", 1, [np.array([10.0 ** (values["gain_db"] / 20.0)])], extra=_controllers(layer))
    raise ExportError(f"cannot export gray-box block '{layer.name}' ({type(layer).__name__}): no JSON layer for it")


def _controllers(layer: Any) -> dict[str, Any]:
    """{"controllers": [...]} of a block with knob-controlled parameters (a peq's name `s<j>.<parameter>` is
    written as `section` j and `parameter`), else {}."""
    if not layer.controlled:
        return {}
    out = []
    for c in layer.controllers():
        section, _, parameter = c["parameter"].rpartition(".")
        out.append({**c, "parameter": parameter} | ({"section": int(section[1:])} if section else {}))
    return {"controllers": out}
