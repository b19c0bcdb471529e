"""Export a sequential Keras 3 model to RTNeural's JSON format.

The JSON holds `in_shape` and `layers[]`; each layer has `type`, `activation`, `shape` (its output,
of which RTNeural reads the last entry) and `weights` in Keras' layout, plus `kernel_size`,
`dilation`, `groups` for conv1d and `epsilon` for batchnorm. Keras activations (a layer's own
activation, or a following `Activation` layer) are folded into the preceding dense / conv1d layer's
`activation` field when that field is free, else written as an `activation` layer.

`SmoothTanh(alpha)` is folded away: 1/alpha scales the preceding dense / conv1d weights and bias (or a
BatchNorm's gamma and beta) so the JSON holds plain tanh; the scaled form alpha * tanh(x / alpha) also
multiplies the next layer's input weights by alpha (not its bias, nor a recurrent kernel).

Given a `ModelMetadata`, the JSON also gets a top-level `metadata` object (`rtnt.export.metadata`). RTNeural's
loaders read only `in_shape` and `layers` of the top-level object (RTNeural 1fb1f07: `json_parser::parseJson`
in RTNeural/model_loader.h takes `parent.at("in_shape")` and `parent.at("layers")`; `modelt_detail::parseJson`
in RTNeural/ModelT.h the same two keys), so they load the file unchanged; so do rtnt's runtimes.

Anything RTNeural cannot load raises ExportError naming the layer. Keras is imported lazily.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from rtnt.errors import ExportError
from rtnt.export.metadata import Levels, ModelMetadata, loudness_input, metadata_object, output_levels, write_model_file
from rtnt.runtime.controls import CONTROLS_KEY, ControlSpec, default_controls

ACTIVATION_NAMES = ("tanh", "relu", "sigmoid", "softmax", "elu")
FOLDS_ACTIVATION = ("dense", "time-distributed-dense", "conv1d")
TAKES_INPUT_SCALE = ("dense", "time-distributed-dense", "conv1d", "gru", "lstm")


@dataclass
class _JsonLayer:
    """One RTNeural JSON layer under construction; weights are float64 until written."""

    type: str
    dims: int
    weights: list[np.ndarray]
    activation: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


def export_rtneural(
    model: Any, metadata: ModelMetadata | None = None, controls: Sequence[ControlSpec] = (), *, loudness: bool = True
) -> dict[str, Any]:
    """The RTNeural JSON dict of a single-input, single-output, sequential Keras model. A knob-conditioned model
    (input 1 + K channels) also gets the top-level `controls` list of its K controls (rtnt's extension, which
    RTNeural's loader ignores); K must match the input width. With `metadata`, plus the top-level `metadata`
    object (`loudness=False` skips the loudness pass)."""
    chain = _sequential_chain(model)
    in_shape = tuple(model.inputs[0].shape)
    if controls and int(in_shape[-1]) != 1 + len(controls):
        raise ExportError(
            f"cannot export model '{model.name}': its input has {in_shape[-1]} channel(s) but {len(controls)} "
            "control(s) were given; a conditioned model's input is 1 audio channel + 1 per control"
        )
    lead = [None] * (len(in_shape) - 1)
    graph = _Graph(int(in_shape[-1]))
    for layer in chain:
        graph.add(layer)
    graph.finish()
    data: dict[str, Any] = {"in_shape": [*lead, graph.in_dims], "layers": [_to_json(jl, lead) for jl in graph.layers]}
    if controls:
        data[CONTROLS_KEY] = [c.to_json() for c in controls]
    if metadata is not None:
        data["metadata"] = metadata_object(metadata, (lambda: rtneural_loudness(data)) if loudness else None)
    return data


def rtneural_loudness(data: dict[str, Any]) -> Levels:
    """(RMS dB, BS.1770-4 LUFS) of an RTNeural JSON object's output on the loudness input, from a reset state, with
    any controls at their defaults: the native runtime when it is built (a recurrent fixture takes seconds in
    numpy), else the numpy reference runtime (the two agree within the parity tolerance, 1e-4 max abs)."""
    from rtnt.native import NativeModel, native_available
    from rtnt.runtime.reference import ReferenceModel

    x = loudness_input()
    model = NativeModel.from_json_text(json.dumps(data)) if native_available() else ReferenceModel.from_json(data)
    defaults = default_controls(model.controls)
    return output_levels(model.process(x, defaults))


def save_rtneural(
    model: Any,
    path: str | Path,
    metadata: ModelMetadata | None = None,
    controls: Sequence[ControlSpec] = (),
    *,
    loudness: bool = True,
) -> Path:
    """Write `export_rtneural(model, metadata, controls)` to `path` (parent folders created); returns the path."""
    return write_model_file(path, export_rtneural(model, metadata, controls, loudness=loudness))


def _refuse(layer: Any, problem: str) -> ExportError:
    return ExportError(f"cannot export layer '{layer.name}' ({type(layer).__name__}) to RTNeural: {problem}")


def _sequential_chain(model: Any) -> list[Any]:
    """The model's layers (without the InputLayer), checked to form one chain from input to output."""
    import keras

    try:
        inputs, outputs = model.inputs, model.outputs
    except (AttributeError, ValueError) as exc:
        raise ExportError(
            f"cannot export model '{model.name}': it has no defined input; build it with keras.Input"
        ) from exc
    if len(inputs) != 1 or len(outputs) != 1:
        raise ExportError(
            f"cannot export model '{model.name}': it has {len(inputs)} inputs and {len(outputs)} outputs; "
            "RTNeural loads a single chain of layers"
        )
    if len(inputs[0].shape) not in (2, 3):
        raise ExportError(
            f"cannot export model '{model.name}': input shape {inputs[0].shape} is not (batch, [time,] channels)"
        )
    chain = [layer for layer in model.layers if not isinstance(layer, keras.layers.InputLayer)]
    previous = inputs[0]
    for layer in chain:
        if isinstance(layer, keras.Model):
            raise _refuse(layer, "nested models are not supported; build one flat model")
        if isinstance(layer.input, (list, tuple, dict)):
            raise _refuse(layer, "it takes several inputs; RTNeural loads a single chain of layers")
        if layer.input is not previous:
            raise _refuse(
                layer, "its input is not the previous layer's output; RTNeural loads a single chain of layers"
            )
        previous = layer.output
    if previous is not outputs[0]:
        raise ExportError(
            f"cannot export model '{model.name}': its output is not the last layer's (a shared or branching layer); "
            "RTNeural loads a single chain of layers"
        )
    return chain


def _numpy(variable: Any) -> np.ndarray:
    return np.asarray(variable.numpy(), dtype=np.float64)


def _activation_name(layer: Any, fn: Any) -> str:
    """RTNeural name of a Keras activation function ('' for linear); refuse the others."""
    import keras

    if fn is keras.activations.linear:
        return ""
    for name in ACTIVATION_NAMES:
        if fn is keras.activations.get(name):
            return name
    fn_name = getattr(fn, "__name__", repr(fn))
    raise _refuse(layer, f"activation '{fn_name}' is not one RTNeural loads ({', '.join(ACTIVATION_NAMES)})")


class _Graph:
    """Accumulates JSON layers, folding activations and smoothed tanh as described in the module doc."""

    def __init__(self, in_dims: int) -> None:
        self.in_dims = self.dims = in_dims
        self.layers: list[_JsonLayer] = []
        self.pending_scale: tuple[float, Any] | None = None  # (alpha, SmoothTanh layer) to fold forward

    def add(self, layer: Any) -> None:
        import keras

        from rtnt.model.layers import SmoothTanh

        if isinstance(layer, SmoothTanh):
            self.smooth_tanh(layer)
        elif isinstance(layer, keras.layers.Activation):
            self.activation(layer, _activation_name(layer, layer.activation))
        elif isinstance(layer, keras.layers.TimeDistributed):
            if not isinstance(layer.layer, keras.layers.Dense):
                raise _refuse(layer, f"RTNeural loads TimeDistributed(Dense) only, not {type(layer.layer).__name__}")
            self.emit(layer, _dense(layer.layer, "time-distributed-dense"))
        elif isinstance(layer, keras.layers.Dense):
            self.emit(layer, _dense(layer, "dense"))
        elif isinstance(layer, keras.layers.Conv1D):
            self.emit(layer, _conv1d(layer))
        elif isinstance(layer, (keras.layers.GRU, keras.layers.LSTM)):
            self.emit(layer, _recurrent(layer))
        elif isinstance(layer, keras.layers.PReLU):
            self.emit(layer, _prelu(layer, self.dims))
        elif isinstance(layer, keras.layers.BatchNormalization):
            self.emit(layer, _batchnorm(layer))
        else:
            raise _refuse(
                layer,
                "unsupported layer type; RTNeural loads Dense, TimeDistributed(Dense), Conv1D, GRU, LSTM, PReLU, "
                "BatchNormalization and Activation (tanh, relu, sigmoid, softmax, elu)",
            )

    def emit(self, layer: Any, jl: _JsonLayer) -> None:
        if self.pending_scale is not None:
            alpha, smooth = self.pending_scale
            if jl.type not in TAKES_INPUT_SCALE:
                raise _refuse(
                    smooth,
                    f"scaled smoothing must be followed by a Dense, Conv1D, GRU or LSTM layer, not '{layer.name}'",
                )
            jl.weights[0] = jl.weights[0] * alpha
            self.pending_scale = None
        self.layers.append(jl)
        self.dims = jl.dims

    def activation(self, layer: Any, name: str) -> None:
        """Fold `name` into the previous layer's free activation field, else add an activation layer."""
        if not name:
            return
        last = self.layers[-1] if self.layers else None
        if self.pending_scale is None and last is not None and last.type in FOLDS_ACTIVATION and not last.activation:
            last.activation = name
        else:
            self.emit(layer, _JsonLayer("activation", self.dims, [], activation=name))

    def smooth_tanh(self, layer: Any) -> None:
        """tanh(x / alpha): fold 1/alpha backwards; for alpha * tanh(x / alpha) also alpha forwards."""
        alpha = float(layer.alpha)
        if alpha != 1.0:
            last = self.layers[-1] if self.layers else None
            if last is not None and last.type in FOLDS_ACTIVATION and not last.activation:
                last.weights[0], last.weights[1] = last.weights[0] / alpha, last.weights[1] / alpha
            elif last is not None and last.type == "batchnorm":
                last.weights[0], last.weights[1] = last.weights[0] / alpha, last.weights[1] / alpha
            else:
                raise _refuse(
                    layer, "alpha != 1 needs a preceding Dense or Conv1D without activation, or a BatchNormalization"
                )
        self.activation(layer, "tanh")
        if layer.scaled and alpha != 1.0:
            self.pending_scale = (alpha, layer)

    def finish(self) -> None:
        if self.pending_scale is not None:
            raise _refuse(
                self.pending_scale[1], "scaled smoothing at the model output cannot be folded; end with a linear layer"
            )


def _dense(layer: Any, kind: str) -> _JsonLayer:
    kernel = _numpy(layer.kernel)
    bias = _numpy(layer.bias) if layer.use_bias else np.zeros(kernel.shape[1])
    return _JsonLayer(kind, kernel.shape[1], [kernel, bias], activation=_activation_name(layer, layer.activation))


def _conv1d(layer: Any) -> _JsonLayer:
    k, d = int(layer.kernel_size[0]), int(layer.dilation_rate[0])
    if tuple(layer.strides) != (1,):
        raise _refuse(layer, f"strides {tuple(layer.strides)}; RTNeural's conv1d streams with stride 1")
    if layer.data_format != "channels_last":
        raise _refuse(layer, f"data_format {layer.data_format}; use channels_last")
    if layer.padding != "causal" and (k - 1) * d > 0:
        raise _refuse(
            layer, f"padding '{layer.padding}' is not causal; RTNeural's conv1d is causal (use padding='causal')"
        )
    kernel = _numpy(layer.kernel)
    bias = _numpy(layer.bias) if layer.use_bias else np.zeros(kernel.shape[2])
    return _JsonLayer(
        "conv1d",
        kernel.shape[2],
        [kernel, bias],
        activation=_activation_name(layer, layer.activation),
        extra={"kernel_size": [k], "dilation": [d], "groups": int(layer.groups)},
    )


def _recurrent(layer: Any) -> _JsonLayer:
    import keras

    is_gru = isinstance(layer, keras.layers.GRU)
    if is_gru and not layer.reset_after:
        raise _refuse(layer, "reset_after=False; RTNeural's GRU is Keras' reset_after=True form")
    if (
        _activation_name(layer, layer.activation) != "tanh"
        or _activation_name(layer, layer.recurrent_activation) != "sigmoid"
    ):
        raise _refuse(layer, "RTNeural's recurrent layers use activation tanh and recurrent_activation sigmoid")
    if layer.go_backwards or not layer.return_sequences or layer.return_state:
        raise _refuse(layer, "it must run forwards with return_sequences=True and return_state=False to stream")
    cell = layer.cell
    kernel, recurrent = _numpy(cell.kernel), _numpy(cell.recurrent_kernel)
    units = recurrent.shape[0]
    bias_shape = (2, 3 * units) if is_gru else (4 * units,)
    bias = _numpy(cell.bias) if layer.use_bias else np.zeros(bias_shape)
    return _JsonLayer("gru" if is_gru else "lstm", units, [kernel, recurrent, bias.reshape(bias_shape)])


def _prelu(layer: Any, dims: int) -> _JsonLayer:
    alpha = _numpy(layer.alpha)
    if alpha.size not in (1, dims) or alpha.shape[-1] != alpha.size:
        raise _refuse(
            layer, f"alpha shape {alpha.shape}; RTNeural needs one alpha per channel (shared_axes=[1]) or one for all"
        )
    return _JsonLayer("prelu", dims, [alpha.reshape(1, -1)])


def _batchnorm(layer: Any) -> _JsonLayer:
    if layer.axis not in (-1, len(layer.input.shape) - 1):
        raise _refuse(layer, f"axis {layer.axis}; RTNeural normalises the channel (last) axis")
    mean, var = _numpy(layer.moving_mean), _numpy(layer.moving_variance)
    gamma = _numpy(layer.gamma) if layer.scale else np.ones_like(mean)
    beta = _numpy(layer.beta) if layer.center else np.zeros_like(mean)
    return _JsonLayer("batchnorm", mean.shape[0], [gamma, beta, mean, var], extra={"epsilon": float(layer.epsilon)})


def _to_json(jl: _JsonLayer, lead: list[None]) -> dict[str, Any]:
    return {
        "type": jl.type,
        "activation": jl.activation,
        "shape": [*lead, jl.dims],
        **jl.extra,
        "weights": [np.asarray(w, dtype=np.float32).tolist() for w in jl.weights],
    }
