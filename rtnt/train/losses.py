"""Keras training loss: error-to-signal ratio on fully-conditioned samples.

ESR = sum (y - ŷ)² / sum y², as used for guitar amplifier modelling by Wright, Damskägg and
Välimäki, "Real-time guitar amplifier emulation with deep learning" (2020). With `pre_emphasis`
a > 0, both signals first pass the first-order high-pass H(z) = 1 - a z⁻¹.
"""

from __future__ import annotations

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="rtnt")
class FullyConditionedESR(keras.losses.Loss):
    """Batch ESR over each segment's last samples, skipping the `history` samples that lack full context."""

    def __init__(self, history: int, pre_emphasis: float = 0.0, eps: float = 1e-8, name: str = "esr", **kwargs):
        super().__init__(name=name, **kwargs)
        self.history = int(history)
        self.pre_emphasis = float(pre_emphasis)
        self.eps = float(eps)

    def call(self, y_true, y_pred):
        y_true = y_true[:, self.history :, :]
        y_pred = y_pred[:, self.history :, :]
        if self.pre_emphasis > 0:
            y_true = y_true[:, 1:, :] - self.pre_emphasis * y_true[:, :-1, :]
            y_pred = y_pred[:, 1:, :] - self.pre_emphasis * y_pred[:, :-1, :]
        err = ops.sum(ops.square(y_true - y_pred), axis=(1, 2))
        # Dividing each segment's error by the batch's mean energy makes Keras' mean over the batch
        # the ESR of the whole batch, so quiet segments do not dominate.
        energy = ops.mean(ops.sum(ops.square(y_true), axis=(1, 2)))
        return err / (energy + self.eps)

    def get_config(self) -> dict:
        return {**super().get_config(), "history": self.history, "pre_emphasis": self.pre_emphasis, "eps": self.eps}
