"""Compose a gray-box preset's blocks in order into a Keras graph (`arch: graybox`).

With knobs (`conditioning=concat`: an input of 1 + K channels) the input is split into the audio (channel 0),
which runs through the chain, and the knobs (channels 1..K), which feed the controllers of the blocks that
`preset.controlled` names (`rtnt.config_graybox.resolve_controlled`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import keras
from omegaconf import DictConfig, OmegaConf

from rtnt.config_graybox import STATIC_NONLINEARITIES, branch_blocks, resolve_controlled
from rtnt.model.graybox.blocks import FIR, Channels, DCBlocker, Downsample, Gain, ParametricEQ, Upsample, Waveshaper

Tensor = keras.KerasTensor


def build_graybox(preset: DictConfig, inputs: Tensor) -> Tensor:
    """The chain of `preset.blocks` applied to `inputs`; layers are named `b<index>_<type>`, and the blocks of a
    parallel block's branch k `<its name>_br<k>_b<index>_<type>` (e.g. `b1_parallel_br0_b0_peq`). With
    `preset.oversampling` F > 1 each static nonlinearity, in a branch too, runs at F times the rate between
    `<prefix>b<index>_up` and `<prefix>b<index>_down`. A controlled (top-level) block (module doc) is called on
    [signal, knobs]."""
    n_knobs = int(inputs.shape[-1]) - 1
    controlled: dict[int, list[str]] = {}
    for c in resolve_controlled(preset):
        name = c.parameter if c.section is None else f"s{c.section}.{c.parameter}"
        controlled.setdefault(c.block, []).append(name)
    if controlled and not n_knobs:
        raise ValueError(f"preset {preset.name} has controlled parameters but its model input has no knob channels")
    x, knobs = inputs, None
    if n_knobs:
        x, knobs = Channels(0, 1, name="audio")(inputs), Channels(1, 1 + n_knobs, name="knobs")(inputs)
    controls = {i: Control(names, n_knobs, knobs) for i, names in controlled.items()}
    return _chain(list(preset.blocks), x, "", int(preset.get("oversampling", 1)), controls)


@dataclass(frozen=True)
class Control:
    """A block's controlled raw parameters, the knob count and the knob tensor its controllers read."""

    names: list[str]
    n_knobs: int
    knobs: Tensor | None


def _chain(blocks: list[Any], x: Tensor, prefix: str, factor: int, controls: dict[int, Control]) -> Tensor:
    """`blocks` applied to `x`; `controls` the controlled blocks by index (top level only)."""
    for i, block in enumerate(blocks):
        name = f"{prefix}b{i}_{block.type}"
        if block.type == "parallel":
            x = _parallel(block, x, name, factor)
            continue
        oversampled = factor > 1 and block.type in STATIC_NONLINEARITIES
        if oversampled:
            x = Upsample(factor, name=f"{prefix}b{i}_up")(x)
        x = _BUILDERS[block.type](block, x, name, controls.get(i))
        if oversampled:
            x = Downsample(factor, name=f"{prefix}b{i}_down")(x)
    return x


def _parallel(b: DictConfig, x: Tensor, name: str, factor: int) -> Tensor:
    """Each branch on `x` (an empty branch is `x` itself), summed in branch order by an Add layer named `name`."""
    outputs = [_chain(branch, x, f"{name}_br{k}_", factor, {}) for k, branch in enumerate(branch_blocks(b, name))]
    return keras.layers.Add(name=name)(outputs)


def _controls(control: Control | None) -> dict[str, Any]:
    return {"controlled": control.names, "n_knobs": control.n_knobs} if control else {}


def _call(layer: Any, x: Tensor, control: Control | None) -> Tensor:
    return layer([x, control.knobs] if control else x)


def _gain(b: DictConfig, x: Tensor, name: str, control: Control | None = None) -> Tensor:
    return _call(Gain(b.gain_db, b.max_gain_db, trainable=b.trainable, name=name, **_controls(control)), x, control)


def _dc_blocker(b: DictConfig, x: Tensor, name: str, control: Control | None = None) -> Tensor:
    return DCBlocker(b.pole, b.min_pole, b.max_pole, warmup=b.warmup, trainable=b.trainable, name=name)(x)


def _peq(b: DictConfig, x: Tensor, name: str, control: Control | None = None) -> Tensor:
    sections: list[dict[str, Any]] = OmegaConf.to_container(b.sections, resolve=True)  # type: ignore[assignment]
    layer = ParametricEQ(
        sections,
        b.min_freq_hz,
        b.max_freq_hz,
        b.min_q,
        b.max_q,
        b.max_gain_db,
        warmup=b.warmup,
        trainable=b.trainable,
        name=name,
        **_controls(control),
    )
    return _call(layer, x, control)


def _fir(b: DictConfig, x: Tensor, name: str, control: Control | None = None) -> Tensor:
    return FIR(b.taps, b.conv1d_max_taps, trainable=b.trainable, name=name)(x)


def _waveshaper(b: DictConfig, x: Tensor, name: str, control: Control | None = None) -> Tensor:
    layer = Waveshaper(
        b.drive_db,
        b.bias,
        b.gain_db,
        b.min_drive_db,
        b.max_drive_db,
        b.max_bias,
        b.max_gain_db,
        trainable=b.trainable,
        name=name,
        **_controls(control),
    )
    return _call(layer, x, control)


def _mlp(b: DictConfig, x: Tensor, name: str, control: Control | None = None) -> Tensor:
    """Memoryless MLP: Dense layers applied per sample (Glorot init), then Dense(1)."""
    for j, size in enumerate(b.hidden):
        x = keras.layers.Dense(size, activation=b.activation, trainable=b.trainable, name=f"{name}{j}")(x)
    return keras.layers.Dense(1, trainable=b.trainable, name=f"{name}_out")(x)


def _conv_stack(b: DictConfig, x: Tensor, name: str, control: Control | None = None) -> Tensor:
    """rtnt's causal conv stack (`arch: tcn`, `rtnt.model.build`), then a 1x1 conv to one channel."""
    from rtnt.model.build import conv_stack

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
