"""Shared pieces of the knob-conditioned `.nam` tests (test_nam_conditioned, test_nam_film): the two knobs, a
test signal, knobs that change within a block, and a model's exported document."""

from __future__ import annotations

import json

import keras
import numpy as np

from rtnt.export.nam import export_nam
from rtnt.runtime.controls import ControlSpec

GAIN = ControlSpec("gain", 0.1, 0.9, 0.5)
TONE = ControlSpec("tone", 0.0, 1.0, 0.25)


def exported_document(model: keras.Model, controls: list[ControlSpec]) -> dict:
    """The `.nam` document of `model` as a file would hold it (through JSON text), without the loudness render."""
    return json.loads(json.dumps(export_nam(model, controls=controls, loudness=False)))


def knob_test_signal(n: int, seed: int = 1) -> np.ndarray:
    """A sine plus noise, peak about 1."""
    rng = np.random.default_rng(seed)
    return (0.6 * np.sin(np.arange(n) * 0.03) + 0.2 * rng.standard_normal(n)).astype(np.float32)


def changing_controls(controls: list[ControlSpec], n: int) -> np.ndarray:
    """(n, K) knob values sweeping each knob's range three times, every knob at its own phase."""
    t = np.arange(n)[:, None] / n
    lo = np.array([c.minimum for c in controls])
    hi = np.array([c.maximum for c in controls])
    return (lo + (hi - lo) * (0.5 + 0.5 * np.sin(2 * np.pi * 3 * t + np.arange(len(controls))))).astype(np.float32)
