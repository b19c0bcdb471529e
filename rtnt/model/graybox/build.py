"""Compose a gray-box preset's blocks in order into a Keras graph (`arch: graybox`)."""

from __future__ import annotations

from typing import Any

import keras
from omegaconf import DictConfig, OmegaConf

from rtnt.config_graybox import STATIC_NONLINEARITIES
from rtnt.model.graybox.blocks import FIR, DCBlocker, Downsample, Gain, ParametricEQ, Upsample, Waveshaper

Tensor = keras.KerasTensor


def build_graybox(preset: DictConfig, x: Tensor) -> Tensor:
    """The chain of `preset.blocks` applied to `x`; layers are named `b<index>_<type>`. With `preset.oversampling`
    F > 1 each static nonlinearity runs at F times the rate between `b<index>_up` and `b<index>_down`."""
    factor = int(preset.get("oversampling", 1))
    for i, block in enumerate(preset.blocks):
        oversampled = factor > 1 and block.type in STATIC_NONLINEARITIES
        if oversampled:
            x = Upsample(factor, name=f"b{i}_up")(x)
        x = _BUILDERS[block.type](block, x, f"b{i}_{block.type}")
        if oversampled:
            x = Downsample(factor, name=f"b{i}_down")(x)
    return x


def _gain(b: DictConfig, x: Tensor, name: str) -> Tensor:
    return Gain(b.gain_db, b.max_gain_db, trainable=b.trainable, name=name)(x)


def _dc_blocker(b: DictConfig, x: Tensor, name: str) -> Tensor:
    return DCBlocker(b.pole, b.min_pole, b.max_pole, warmup=b.warmup, trainable=b.trainable, name=name)(x)


def _peq(b: DictConfig, x: Tensor, name: str) -> Tensor:
    sections: list[dict[str, Any]] = OmegaConf.to_container(b.sections, resolve=True)  # type: ignore[assignment]
    return ParametricEQ(
        sections,
        b.min_freq_hz,
        b.max_freq_hz,
        b.min_q,
        b.max_q,
        b.max_gain_db,
        warmup=b.warmup,
        trainable=b.trainable,
        name=name,
    )(x)


def _fir(b: DictConfig, x: Tensor, name: str) -> Tensor:
    return FIR(b.taps, b.conv1d_max_taps, trainable=b.trainable, name=name)(x)


def _waveshaper(b: DictConfig, x: Tensor, name: str) -> Tensor:
    return Waveshaper(
        b.drive_db,
        b.bias,
        b.gain_db,
        b.min_drive_db,
        b.max_drive_db,
        b.max_bias,
        b.max_gain_db,
        trainable=b.trainable,
        name=name,
    )(x)


def _mlp(b: DictConfig, x: Tensor, name: str) -> Tensor:
    """Memoryless MLP: Dense layers applied per sample (Glorot init), then Dense(1)."""
    for j, size in enumerate(b.hidden):
        x = keras.layers.Dense(size, activation=b.activation, trainable=b.trainable, name=f"{name}{j}")(x)
    return keras.layers.Dense(1, trainable=b.trainable, name=f"{name}_out")(x)


def _conv_stack(b: DictConfig, x: Tensor, name: str) -> Tensor:
    """rtnt's causal conv stack (`arch: tcn`, `rtnt.model.build`), then a 1x1 conv to one channel."""
    from rtnt.model.build import _conv_stack as conv_stack

    x = conv_stack(x, b, prefix=f"{name}_")
    return keras.layers.Conv1D(1, 1, trainable=b.trainable, name=f"{name}_out")(x)


_BUILDERS = {
    "gain": _gain,
    "dc_blocker": _dc_blocker,
    "peq": _peq,
    "fir": _fir,
    "waveshaper": _waveshaper,
    "mlp": _mlp,
    "conv_stack": _conv_stack,
}
