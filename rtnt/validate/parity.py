"""Parity between a Keras model and its exported file (RTNeural JSON or NAM `.nam`), run by the numpy
reference runtime of the file's format."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from rtnt.runtime import load_reference

CHUNK = 1 << 17  # output samples per Keras call for feed-forward models


def parity_error(model_path: str | Path, x: np.ndarray, y_keras: np.ndarray, knobs: tuple[float, ...] = ()) -> float:
    """Max abs difference between the reference runtime on `model_path` (from reset) and `y_keras` for input `x`
    (at the knob setting `knobs` for a knob-conditioned model).

    A `.nam` file runs in `rtnt.runtime.nam_reference` without prewarm (zero histories, as Keras' causal
    padding computes); any other file is RTNeural JSON.
    """
    reference = load_reference(model_path, prewarm=False)
    x = np.asarray(x, dtype=np.float32)
    y_ref = reference.process(x, np.asarray(knobs, dtype=np.float32)) if knobs else reference.process(x)
    y_keras = np.asarray(y_keras, dtype=np.float32).reshape(-1)
    if y_keras.shape != y_ref.shape:
        raise ValueError(f"y_keras has {y_keras.size} samples but x has {y_ref.size}")
    return float(np.max(np.abs(y_ref - y_keras))) if y_ref.size else 0.0


def keras_predict(model: Any, x: np.ndarray, knobs: tuple[float, ...] = ()) -> np.ndarray:
    """The Keras model's output for a 1-D signal (at the knob setting `knobs` for a knob-conditioned model), as
    one causal pass from zero state.

    Feed-forward models run in chunks of CHUNK samples, each after the first preceded by receptive
    field - 1 samples of real input history whose outputs are dropped, which gives exactly the
    one-pass result. Models with recurrent layers or recursive gray-box blocks (IIR filters) run in one pass,
    since their memory is unbounded.
    """
    import keras

    from rtnt.model.summary import model_summary

    x = np.asarray(x, dtype=np.float32).reshape(-1)
    unbounded = any(isinstance(layer, keras.layers.RNN) or getattr(layer, "recursive", False) for layer in model.layers)
    if unbounded or x.size <= CHUNK:
        return _run(model, x, knobs)
    hist = model_summary(model).receptive_field_samples - 1
    parts = []
    for start in range(0, x.size, CHUNK):
        lo = max(0, start - hist)
        parts.append(_run(model, x[lo : start + CHUNK], knobs)[start - lo :])
    return np.concatenate(parts)


def _run(model: Any, x: np.ndarray, knobs: tuple[float, ...]) -> np.ndarray:
    """One inference pass through Keras' compiled predict function (eager recurrent layers are slow)."""
    from rtnt.model.conditioning import model_input

    inputs = model_input(x, knobs)[None] if knobs else x[None, :, None]
    return np.asarray(model.predict_on_batch(inputs), dtype=np.float32).reshape(-1)
