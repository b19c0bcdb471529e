"""Initialisation keeps the signal alive through deep stacks, and smoothing does not change the start."""

from __future__ import annotations

import keras
import numpy as np

from rtnt.config import CONF_DIR, PresetConfig, load_preset
from rtnt.model.build import build_model


def _preset(name: str, **extra: object) -> PresetConfig:
    return load_preset(CONF_DIR / "preset" / f"{name}.yaml", **extra)


def _last_hidden_std(preset: PresetConfig, seed: int = 0) -> float:
    keras.utils.set_random_seed(seed)
    model = build_model(preset)
    hidden = keras.Model(model.input, model.get_layer(f"act{len(preset.dilations) - 1}").output)
    x = np.random.default_rng(0).normal(0, 0.1, (1, 16000, 1)).astype(np.float32)
    return float(np.std(np.asarray(hidden(x))[0, 7000:]))


def test_prelu_stack_does_not_start_silent() -> None:
    # With Glorot init the 14-layer PReLU stack starts at ~1e-4 of its input and did not train.
    assert _last_hidden_std(_preset("wavenet_tcn_a2_prelu")) > 0.1 * 0.05


def test_smoothed_tanh_starts_like_plain_tanh() -> None:
    plain = _last_hidden_std(_preset("wavenet_tcn_balanced"))
    smoothed = _last_hidden_std(_preset("wavenet_tcn_balanced", smoothing_alpha=3.0))
    assert abs(smoothed - plain) < 1e-3 * plain
