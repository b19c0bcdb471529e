"""Keras 3 builders of every preset architecture: mono (batch, time, 1) in, (batch, time, 1) out, causal.

Importing this module registers `SmoothTanh`, the FiLM layers (`rtnt.model.film`), the WaveNet layers
(`rtnt.model.wavenet`) and the gray-box blocks (`rtnt.model.graybox.blocks`), so
`keras.models.load_model` can read rtnt checkpoints.
"""

from __future__ import annotations

from collections.abc import Callable

import keras
from omegaconf import DictConfig

from rtnt.config import ConditioningConfig, PresetConfig, kernel_size_per_layer, preset_schema
from rtnt.errors import ConfigError
from rtnt.model.film import build_tcn_film
from rtnt.model.graybox.build import build_graybox
from rtnt.model.layers import SmoothTanh
from rtnt.model.wavenet import TRAINED_FILMS, build_wavenet

Tensor = keras.KerasTensor


def build_model(
    preset: PresetConfig | DictConfig, n_knobs: int = 0, conditioning: ConditioningConfig | DictConfig | None = None
) -> keras.Model:
    """Build the uncompiled model of `preset.arch` with the preset's sizes. With `n_knobs` > 0 (tcn presets) the
    input has 1 + n_knobs channels: the audio, then the knob values; `conditioning.method` `concat` (the default)
    lets the first conv mix them in, `film` feeds them to a FiLM conditioning network (`rtnt.model.film`; for
    `arch: wavenet` NAM's own FiLM fields, `rtnt.model.wavenet.TRAINED_FILMS`)."""
    builders: dict[str, Callable[[PresetConfig | DictConfig, Tensor], Tensor]] = {
        "tcn": _tcn,
        "wavenet": build_wavenet,
        "graybox": build_graybox,
        "conv": _conv,
        "conv_bn_prelu": _conv_bn,
        "conv_gru": _conv_gru,
        "dense": _dense,
        "gru": _gru,
        "lstm": _lstm,
    }
    if preset.arch not in builders:
        raise ConfigError(f"config preset.arch={preset.arch!r} is invalid: must be one of {', '.join(builders)}")
    method = str(conditioning.method) if conditioning is not None and n_knobs else ("concat" if n_knobs else "none")
    if method not in preset_schema(str(preset.arch)).CONDITIONING:
        raise ConfigError(f"preset {preset.name} (arch {preset.arch}) does not support conditioning={method}")
    inputs = keras.Input(shape=(None, 1 + n_knobs), name="input")
    if method == "film" and preset.arch == "wavenet":
        return keras.Model(inputs, build_wavenet(preset, inputs, films=TRAINED_FILMS), name=str(preset.name))
    if method == "film":
        return keras.Model(inputs, build_tcn_film(preset, inputs, conditioning), name=str(preset.name))
    return keras.Model(inputs, builders[preset.arch](preset, inputs), name=str(preset.name))


def _activate(x: Tensor, preset: PresetConfig | DictConfig, name: str) -> Tensor:
    """The preset's hidden activation: tanh (smoothed when alpha != 1 or scaled), prelu, relu or linear."""
    act = preset.activation
    if act == "tanh":
        if preset.smoothing_alpha == 1.0 and not preset.scaled_smoothing:
            return keras.layers.Activation("tanh", name=name)(x)
        return SmoothTanh(preset.smoothing_alpha, preset.scaled_smoothing, name=name)(x)
    if act == "prelu":
        # alpha starts at 0.25 as in He et al. (2015), not Keras' 0: a ReLU start let deep stacks die (ESR 1).
        return keras.layers.PReLU(alpha_initializer=keras.initializers.Constant(0.25), shared_axes=[1], name=name)(x)
    if act == "relu":
        return keras.layers.Activation("relu", name=name)(x)
    if act == "linear":
        return x
    raise ConfigError(f"config preset.activation={act!r} is invalid: must be one of tanh, prelu, relu, linear")


def hidden_initializer(preset: PresetConfig | DictConfig) -> keras.initializers.Initializer:
    """Kernel initialiser that keeps the signal's scale through deep stacks of the preset's activation.

    Glorot suits tanh. ReLU-like PReLU (alpha starts at 0) halves the variance at every layer, so it
    gets He scaling (variance 2/fan_in; He et al. 2015); otherwise a 14-layer stack starts with its
    output ~1e-4 of its input and barely trains. Smoothed tanh(x/α) gets Glorot scaled by α, so at
    initialisation it sees the pre-activations plain tanh would and the smoothing does not slow the
    start of training; the scaled form α·tanh(x/α) already has slope 1 and keeps plain Glorot.
    """
    if preset.activation in ("prelu", "relu"):
        return keras.initializers.HeUniform()
    if preset.activation == "tanh" and not preset.scaled_smoothing and preset.smoothing_alpha != 1.0:
        return keras.initializers.VarianceScaling(preset.smoothing_alpha**2, mode="fan_avg", distribution="uniform")
    return keras.initializers.GlorotUniform()


def conv_stack(
    x: Tensor,
    preset: PresetConfig | DictConfig,
    batchnorm: bool = False,
    prefix: str = "",
    modulate: Callable[[Tensor, int], Tensor] | None = None,
) -> Tensor:
    """[causal Conv1D(channels, k_i, dilation d_i) -> (modulate) -> (BatchNorm) -> activation] for every layer i;
    layer names start with `prefix` (a gray-box chain's conv_stack block); `modulate(x, i)` is FiLM's hook."""
    for i, (k, d) in enumerate(zip(kernel_size_per_layer(preset), preset.dilations)):
        x = keras.layers.Conv1D(
            preset.channels,
            k,
            dilation_rate=d,
            padding="causal",
            kernel_initializer=hidden_initializer(preset),
            name=f"{prefix}conv{i}",
        )(x)
        if modulate is not None:
            x = modulate(x, i)
        if batchnorm:
            x = keras.layers.BatchNormalization(name=f"{prefix}bn{i}")(x)
        x = _activate(x, preset, f"{prefix}act{i}")
    return x


def _tcn(preset: PresetConfig | DictConfig, x: Tensor) -> Tensor:
    """WaveNet-family stack: conv stack, then a 1x1 Conv1D to one channel."""
    return keras.layers.Conv1D(1, 1, name="out")(conv_stack(x, preset))


def _conv(preset: PresetConfig | DictConfig, x: Tensor) -> Tensor:
    """Legacy shallow conv stack with a Dense output."""
    return keras.layers.Dense(1, name="out")(conv_stack(x, preset))


def _conv_bn(preset: PresetConfig | DictConfig, x: Tensor) -> Tensor:
    """Legacy conv -> BatchNormalization -> activation stack with a Dense output."""
    return keras.layers.Dense(1, name="out")(conv_stack(x, preset, batchnorm=True))


def _conv_gru(preset: PresetConfig | DictConfig, x: Tensor) -> Tensor:
    """Legacy hybrid: conv front end, GRU, Dense output."""
    x = keras.layers.GRU(preset.hidden_size, return_sequences=True, name="gru")(conv_stack(x, preset))
    return keras.layers.Dense(1, name="out")(x)


def _dense(preset: PresetConfig | DictConfig, x: Tensor) -> Tensor:
    """Legacy memoryless MLP: `num_layers` hidden Dense(channels) -> activation, Dense output."""
    for i in range(preset.num_layers):
        dense = keras.layers.Dense(preset.channels, kernel_initializer=hidden_initializer(preset), name=f"dense{i}")
        x = _activate(dense(x), preset, f"act{i}")
    return keras.layers.Dense(1, name="out")(x)


def _gru(preset: PresetConfig | DictConfig, x: Tensor) -> Tensor:
    """Legacy GRU(hidden_size) with a Dense output."""
    x = keras.layers.GRU(preset.hidden_size, return_sequences=True, name="gru")(x)
    return keras.layers.Dense(1, name="out")(x)


def _lstm(preset: PresetConfig | DictConfig, x: Tensor) -> Tensor:
    """Legacy LSTM(hidden_size) with a Dense output."""
    x = keras.layers.LSTM(preset.hidden_size, return_sequences=True, name="lstm")(x)
    return keras.layers.Dense(1, name="out")(x)
