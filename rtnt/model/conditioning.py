"""Knob conditioning by concatenation (`conditioning=concat`): the model's input is the audio sample in channel 0
and the K knob values of that sample in channels 1..K, in the capture set's own units and knob order, as the
exported file's `controls` list states (see KNOBS.md and `rtnt.runtime.controls`).

Plain numpy (no Keras): the shapes the trainer, the Keras predictions and the runtimes' `controls` blocks share.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from rtnt.runtime.controls import ControlSpec


def setting_controls(n: int, knobs: Sequence[float]) -> np.ndarray:
    """The runtimes' `controls` argument for `n` samples at one setting: float32 (n, K), C-contiguous."""
    return np.ascontiguousarray(np.broadcast_to(np.asarray(knobs, dtype=np.float32), (n, len(knobs))))


def model_input(x: np.ndarray, knobs: Sequence[float]) -> np.ndarray:
    """The model's input (n, 1 + K) for a 1-D signal `x` at one setting: audio, then the knob values."""
    return settings_input(x, np.asarray([knobs], dtype=np.float32))[0]


def settings_input(x: np.ndarray, knobs: np.ndarray) -> np.ndarray:
    """Model inputs (settings, n, 1 + K) of one 1-D signal at every row of `knobs` (settings, K)."""
    knobs = np.asarray(knobs, dtype=np.float32)
    out = np.empty((len(knobs), len(x), 1 + knobs.shape[1]), dtype=np.float32)
    out[..., 0] = np.asarray(x, dtype=np.float32)
    out[..., 1:] = knobs[:, None, :]
    return out


def control_specs(names: Sequence[str], training_values: np.ndarray) -> list[ControlSpec]:
    """The `controls` of a model trained at `training_values` (settings, K): per knob the lowest and highest
    training value and, as default, the middle one (the lower of the two middle ones for an even count)."""
    specs = []
    for k, name in enumerate(names):
        values = np.unique(np.asarray(training_values, dtype=np.float64)[:, k])
        specs.append(ControlSpec(str(name), float(values[0]), float(values[-1]), float(values[(len(values) - 1) // 2])))
    return specs


def unseen_setting(training_values: np.ndarray) -> tuple[float, ...]:
    """A knob setting the model was not trained at: the midpoint of the two middle training settings (in
    lexicographic order), e.g. 0.6 for 0.1, 0.3, 0.5, 0.7, 0.9 and 0.5 for 0.1, 0.3, 0.7, 0.9."""
    rows = sorted(tuple(float(v) for v in row) for row in np.asarray(training_values, dtype=np.float64))
    lo = (len(rows) - 1) // 2
    return tuple((a + b) / 2 for a, b in zip(rows[lo], rows[lo + 1]))
