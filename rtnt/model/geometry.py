"""Receptive field of a preset, computed from its config alone (no Keras)."""

from __future__ import annotations

from omegaconf import DictConfig

from rtnt.config import PresetConfig, kernel_size_per_layer
from rtnt.config_graybox import graybox_receptive_field
from rtnt.constants import SAMPLE_RATE
from rtnt.model.wavenet_spec import layer_array_specs

CONV_ARCHS = ("tcn", "conv", "conv_bn_prelu", "conv_gru")


def receptive_field(preset: PresetConfig | DictConfig) -> int:
    """Samples of input that one output sample depends on through the convolutions.

    For the conv stacks (`tcn`, `conv`, `conv_bn_prelu`, `conv_gru`) this is 1 + sum_i (k_i - 1) * d_i
    over the causal conv layers (the 1x1 / dense output adds nothing). `dense` is memoryless (1).
    Recurrent state (`gru`, `lstm`, the GRU of `conv_gru`) has unbounded memory and is not counted.
    For `graybox` it is `graybox_receptive_field` (IIR blocks count their warm-up). For `wavenet` it is
    1 + sum over layer arrays of (sum_l (k_l - 1) * d_l + head kernel - 1), as NAM counts it.
    """
    if preset.arch == "graybox":
        return graybox_receptive_field(preset)
    if preset.arch == "wavenet":
        return 1 + sum(spec.receptive_span for spec in layer_array_specs(preset))
    if preset.arch not in CONV_ARCHS:
        return 1
    return 1 + sum((k - 1) * d for k, d in zip(kernel_size_per_layer(preset), preset.dilations))


def samples_to_ms(samples: int, sample_rate: int = SAMPLE_RATE) -> float:
    """Duration of `samples` at `sample_rate`, in milliseconds."""
    return 1000.0 * samples / sample_rate
