"""FiLM conditioning of the tcn stack (`conditioning=film`): feature-wise linear modulation (Perez et al. 2018,
"FiLM: Visual Reasoning with a General Conditioning Layer"), as NablAFx's TCN conditions its blocks on a device's
controls.

The model input keeps the concat layout (batch, time, 1 + K): `KnobSplit` passes the audio channel to the conv
stack and the K knob values to a conditioning MLP (`film_layers` Dense(`film_hidden`, tanh) layers shared by all
layers). Per hidden conv i a linear adaptor `film{i}` maps the MLP's output to 2 C values (g, b) and `Film` makes
the conv's output gamma * conv(x) + beta before its activation, with gamma = 1 + g and beta = b. The adaptor starts
with zero weights and bias, so at initialisation gamma = 1 and beta = 0 (the unconditioned stack); the exporter
writes gamma itself (docs/film_format.md).
"""

from __future__ import annotations

from typing import Any

import keras
from omegaconf import DictConfig

from rtnt.config import ConditioningConfig, PresetConfig

Tensor = keras.KerasTensor

MLP_PREFIX = "film_mlp"
ADAPTOR_PREFIX = "film"
MODULATION_PREFIX = "film_apply"


@keras.saving.register_keras_serializable(package="rtnt")
class KnobSplit(keras.layers.Layer):
    """(batch, time, 1 + K) -> [(batch, time, 1) audio, (batch, time, K) knob values]."""

    def call(self, inputs: Any) -> list[Any]:
        return [inputs[..., :1], inputs[..., 1:]]

    def compute_output_shape(self, input_shape: Any) -> list[Any]:
        lead = tuple(input_shape[:-1])
        return [(*lead, 1), (*lead, input_shape[-1] - 1)]


@keras.saving.register_keras_serializable(package="rtnt")
class Film(keras.layers.Layer):
    """y = (1 + g) * x + b for x (batch, time, C) and gb = [g, b] (batch, time, 2 C)."""

    def call(self, x: Any, gb: Any) -> Any:
        c = keras.ops.shape(x)[-1]
        return (1.0 + gb[..., :c]) * x + gb[..., c:]

    def compute_output_shape(self, x_shape: Any, gb_shape: Any) -> Any:
        return x_shape


def build_tcn_film(
    preset: PresetConfig | DictConfig, inputs: Tensor, conditioning: ConditioningConfig | DictConfig
) -> Tensor:
    """The tcn stack `[conv{i} -> film_apply{i} -> act{i}] x N -> out` on the audio channel of `inputs`, every conv
    modulated from the knobs through the conditioning MLP `film_mlp{j}` and the adaptor `film{i}`."""
    from rtnt.model.build import conv_stack

    audio, knobs = KnobSplit(name="knob_split")(inputs)
    h = knobs
    for j in range(int(conditioning.film_layers)):
        h = keras.layers.Dense(int(conditioning.film_hidden), activation="tanh", name=f"{MLP_PREFIX}{j}")(h)

    def modulate(x: Tensor, i: int) -> Tensor:
        gb = keras.layers.Dense(2 * preset.channels, kernel_initializer="zeros", name=f"{ADAPTOR_PREFIX}{i}")(h)
        return Film(name=f"{MODULATION_PREFIX}{i}")(x, gb)

    x = conv_stack(audio, preset, modulate=modulate)
    return keras.layers.Conv1D(1, 1, name="out")(x)


def is_film(model: Any) -> bool:
    """Whether `model` is a FiLM-conditioned tcn (it has a `KnobSplit` layer)."""
    return any(isinstance(layer, KnobSplit) for layer in model.layers)
