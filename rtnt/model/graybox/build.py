"""Compose a gray-box preset's blocks in order into a Keras graph (`arch: graybox`)."""

from __future__ import annotations

from typing import Any

import keras
from omegaconf import DictConfig, OmegaConf

from rtnt.config_graybox import STATIC_NONLINEARITIES, branch_blocks
from rtnt.model.graybox.blocks import FIR, DCBlocker, Downsample, Gain, ParametricEQ, Upsample, Waveshaper

Tensor = keras.KerasTensor


def build_graybox(preset: DictConfig, x: Tensor) -> Tensor:
    """The chain of `preset.blocks` applied to `x`; layers are named `b<index>_<type>`, and the blocks of a
    parallel block's branch k `<its name>_br<k>_b<index>_<type>` (e.g. `b1_parallel_br0_b0_peq`). With
    `preset.oversampling` F > 1 each static nonlinearity, in a branch too, runs at F times the rate between
    `<prefix>b<index>_up` and `<prefix>b<index>_down`."""
    return _chain(list(preset.blocks), x, "", int(preset.get("oversampling", 1)))


def _chain(blocks: list[Any], x: Tensor, prefix: str, factor: int) -> Tensor:
    for i, block in enumerate(blocks):
        name = f"{prefix}b{i}_{block.type}"
        if block.type == "parallel":
            x = _parallel(block, x, name, factor)
            continue
        oversampled = factor > 1 and block.type in STATIC_NONLINEARITIES
        if oversampled:
            x = Upsample(factor, name=f"{prefix}b{i}_up")(x)
        x = _BUILDERS[block.type](block, x, name)
        if oversampled:
            x = Downsample(factor, name=f"{prefix}b{i}_down")(x)
    return x


def _parallel(b: DictConfig, x: Tensor, name: str, factor: int) -> Tensor:
    """Each branch on `x` (an empty branch is `x` itself), summed in branch order by an Add layer named `name`."""
    outputs = [_chain(branch, x, f"{name}_br{k}_", factor) for k, branch in enumerate(branch_blocks(b, name))]
    return keras.layers.Add(name=name)(outputs)


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
