"""Export a gray-box chain (`arch: graybox`) to rtnt's gray-box JSON, an extension of RTNeural's format.

The document is RTNeural's (`in_shape`, `layers[]`) plus `"rtnt_format": "graybox-1"`. Blocks RTNeural can
express keep its layer types: the MLP's Dense layers become `dense`, the conv stack `conv1d` (through the
RTNeural exporter, with its activation folding), an FIR of at most `conv1d_max_taps` taps a `conv1d` of one
channel. The rest use the layer types of docs/graybox_format.md: `biquad` (a parametric EQ or DC blocker: the
exact recursion of its sections' coefficients b0 b1 b2 a1 a2, a0 normalised to 1, written as doubles), `fir`
(long taps), `waveshaper` (drive, bias, gain) and `gain`; a parallel block (`rtnt.model.graybox.chain`) becomes a
`parallel` layer whose `branches` hold each branch's layers, written the same way. An oversampled static
nonlinearity (`Upsample`, its layers, `Downsample`), at the top level or inside a branch, keeps its layers and gives
the first of them the `oversampling` object (factor, number of layers in the run, the up and down taps). Keras is
imported lazily.

A knob-conditioned chain (`conditioning=concat`, `preset.controlled`) also gets `in_shape [.., 1 + K]`, the
top-level `controls` list (`rtnt.runtime.controls.ControlSpec`) and, on each controlled layer, `controllers`:
per controlled parameter its range mapping, static raw weight and K controller weights (docs/graybox_format.md).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rtnt.errors import ExportError
from rtnt.export.metadata import Levels, ModelMetadata, loudness_input, metadata_object, output_levels, write_model_file
from rtnt.export.rtneural import _Graph, _JsonLayer, _refuse, _sequential_chain, _to_json
from rtnt.runtime.controls import CONTROLS_KEY, ControlSpec, default_controls

FORMAT = "graybox-1"
GRAYBOX_LAYER_TYPES = ("biquad", "fir", "waveshaper", "gain", "parallel")


def is_graybox(model: Any) -> bool:
    """True when `model` holds a gray-box DSP block or a parallel block's Add layer."""
    import keras

    from rtnt.model.graybox.blocks import GrayBoxBlock

    return any(isinstance(layer, (GrayBoxBlock, keras.layers.Add)) for layer in model.layers)


def export_graybox(
    model: Any, metadata: ModelMetadata | None = None, controls: Sequence[ControlSpec] = (), *, loudness: bool = True
) -> dict[str, Any]:
    """The gray-box JSON dict of a Keras chain of gray-box blocks, RTNeural layers and parallel blocks (a
    conditioned chain: its `controls`, one per knob channel); with `metadata`, plus the top-level `metadata` object
    (its loudness measured in the numpy reference runtime at the controls' defaults, which runs every gray-box
    layer; `loudness=False` skips it)."""
    import keras

    from rtnt.model.graybox.chain import graybox_steps

    in_shape = tuple(model.inputs[0].shape)
    n_knobs = int(in_shape[-1]) - 1
    if n_knobs != len(controls):
        raise ExportError(
            f"cannot export model '{model.name}': its input has {in_shape[-1]} channel(s) but {len(controls)} "
            "control(s) were given; a conditioned gray-box chain's input is 1 audio channel + 1 per control"
        )
    if any(isinstance(layer, keras.layers.Add) for layer in model.layers):
        chain = graybox_steps(model, _audio_split(model).output if n_knobs else None)
    else:
        chain = _conditioned_chain(model) if n_knobs else _sequential_chain(model)
    lead = [None] * (len(in_shape) - 1)
    graph = _GrayBoxGraph(1)
    for step in chain:
        graph.add(step)
    graph.finish()
    layers = [_layer_json(j, lead) for j in graph.layers]
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
    defaults = default_controls(model.controls)
    return output_levels(model.process(loudness_input(), defaults))


def save_graybox(
    model: Any, path: str | Path, metadata: ModelMetadata | None = None, controls: Sequence[ControlSpec] = ()
) -> Path:
    """Write `export_graybox(model, metadata, controls)` to `path` (parent folders created); returns the path."""
    return write_model_file(path, export_graybox(model, metadata, controls))


def _layer_json(j: _JsonLayer, lead: list[None]) -> dict[str, Any]:
    """One JSON layer: biquad coefficients as doubles, a parallel layer's branches written recursively."""
    spec = _to_json(j, lead)
    if j.type == "biquad":  # doubles: see rtnt.model.graybox.blocks._Recursive
        spec["weights"] = [np.asarray(j.weights[0], dtype=np.float64).tolist()]
    if j.type == "parallel":
        spec["branches"] = [[_layer_json(b, lead) for b in branch] for branch in j.extra["branches"]]
    return spec


def _conditioned_chain(model: Any) -> list[Any]:
    """The signal chain of a conditioned gray-box model: after its `Channels` split, every layer takes the previous
    layer's output as its signal (a controlled block also takes the knobs)."""
    from rtnt.model.graybox.blocks import Channels

    layers = [layer for layer in model.layers if type(layer).__name__ != "InputLayer"]
    audio = _audio_split(model)
    chain, previous = [layer for layer in layers if not isinstance(layer, Channels)], audio.output
    for layer in chain:
        signal = layer.input[0] if isinstance(layer.input, (list, tuple)) else layer.input
        if signal is not previous:
            raise _refuse(layer, "its signal input is not the previous layer's output; a gray-box chain is sequential")
        previous = layer.output
    if previous is not model.outputs[0]:
        raise ExportError(f"cannot export model '{model.name}': its output is not the chain's last layer")
    return chain


def _audio_split(model: Any) -> Any:
    """The `Channels` layer that splits the audio (channel 0) off a conditioned gray-box model's input."""
    from rtnt.model.graybox.blocks import Channels

    split = [layer for layer in model.layers if isinstance(layer, Channels)]
    audio = next((layer for layer in split if layer.start == 0 and layer.stop == 1), None)
    if audio is None or len(split) != 2:
        raise ExportError(f"cannot export model '{model.name}': a conditioned gray-box chain splits its input first")
    return audio


class _GrayBoxGraph(_Graph):
    """RTNeural's layer accumulator, taught the gray-box blocks and parallel blocks. The JSON layers between an
    `Upsample` and its `Downsample` form one oversampled run: the first of them gets the `oversampling` object."""

    def __init__(self, in_dims: int) -> None:
        super().__init__(in_dims)
        self.run_start: int | None = None  # index of the first JSON layer after an Upsample

    def add(self, layer: Any) -> None:
        from rtnt.model.graybox.blocks import Downsample, GrayBoxBlock, Upsample
        from rtnt.model.graybox.chain import ParallelStep

        if isinstance(layer, ParallelStep):
            self.parallel(layer)
            return
        if not isinstance(layer, GrayBoxBlock):
            super().add(layer)
            return
        if self.dims != 1:
            raise _refuse(layer, f"a gray-box block processes a mono signal, but its input has {self.dims} channels")
        if isinstance(layer, Upsample):
            self.run_start = len(self.layers)
        elif isinstance(layer, Downsample):
            self.close_run(layer)
        else:
            self.emit(layer, block_json(layer))

    def close_run(self, layer: Any) -> None:
        """Attach the `oversampling` object to the first layer of the run that `layer` (a Downsample) ends."""
        start, self.run_start = self.run_start, None
        if start is None or start == len(self.layers):
            raise _refuse(layer, "a Downsample must follow an Upsample and at least one layer")
        run = self.layers[start:]
        self.layers[start].extra["oversampling"] = layer.filters.to_json(len(run))

    def parallel(self, step: Any) -> None:
        """A `parallel` layer: each branch accumulated on its own from a mono input, which it must end in too."""
        if self.dims != 1:
            raise _refuse(step.add, f"a parallel block processes a mono signal, but its input has {self.dims} channels")
        branches = []
        for k, steps in enumerate(step.branches):
            graph = _GrayBoxGraph(1)
            for s in steps:
                graph.add(s)
            graph.finish()
            if graph.dims != 1:
                raise _refuse(step.add, f"its branch {k} ends in {graph.dims} channels, not one")
            branches.append(graph.layers)
        self.emit(step.add, _JsonLayer("parallel", 1, [], extra={"branches": branches}))


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
