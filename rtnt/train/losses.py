"""Keras training loss: error-to-signal ratio on fully-conditioned samples, with optional spectral and DC terms.

ESR = sum (y - ŷ)² / sum y², as used for guitar amplifier modelling by Wright, Damskägg and
Välimäki, "Real-time guitar amplifier emulation with deep learning" (2020). With `pre_emphasis`
a > 0, both signals first pass the first-order high-pass H(z) = 1 - a z⁻¹.

Optional terms (weights 0 by default):
- multi-resolution STFT distance (Yamamoto et al., "Parallel WaveGAN", 2020; the "fit cab" term of
  NAM's trainer): spectral convergence plus log-magnitude L1 per resolution, averaged, the same
  definition as `rtnt.metrics.stft.mrstft_distance`;
- DC term (Wright et al. 2020): (mean y - mean ŷ)² / mean y² per segment.

`level_balance` b in [0, 1] sets how quiet segments count: each segment's error is divided by
E_batch^(1 - b) * max(E_segment, E_batch / 100)^b (E the sum of squares of the target, E_batch its mean over
the batch). b = 0 is the batch ESR above, where loud segments dominate; b = 1 is the mean of per-segment ESRs
(auraloss' `ESRLoss` with mean reduction), where a segment 20 dB down counts as much as a loud one. The floor
(20 dB below the batch mean) keeps near-silent segments from scaling their gradients without bound.
"""

from __future__ import annotations

import keras
from keras import ops

STFT_SIZES = (256, 1024, 4096)
_EPS = 1e-8  # floor of the squared magnitude, as in rtnt.metrics.stft
LEVEL_FLOOR = 0.01  # level_balance: segment energies count from 20 dB below the batch mean


def _stft_magnitude(x, fft_size: int):
    """Magnitude STFT of (batch, time) signals: periodic Hann window, hop fft_size // 4,
    ends zero-padded by fft_size // 2."""
    x = ops.pad(x, ((0, 0), (fft_size // 2, fft_size // 2)))
    re, im = ops.stft(
        x, sequence_length=fft_size, sequence_stride=fft_size // 4, fft_length=fft_size, window="hann", center=False
    )
    return ops.sqrt(ops.maximum(re * re + im * im, _EPS))


def mrstft_loss(y_true, y_pred, fft_sizes: tuple[int, ...] = STFT_SIZES):
    """Per-segment multi-resolution STFT distance of (batch, time) signals: mean over resolutions of
    spectral convergence + mean |log|S_y| - log|S_ŷ||."""
    total = 0.0
    for n in fft_sizes:
        a, b = _stft_magnitude(y_true, n), _stft_magnitude(y_pred, n)
        sc = ops.sqrt(ops.sum(ops.square(a - b), axis=(1, 2))) / ops.sqrt(ops.sum(ops.square(a), axis=(1, 2)) + _EPS)
        total = total + sc + ops.mean(ops.abs(ops.log(a) - ops.log(b)), axis=(1, 2))
    return total / len(fft_sizes)


@keras.saving.register_keras_serializable(package="rtnt")
class FullyConditionedESR(keras.losses.Loss):
    """Batch ESR over each segment's last samples, skipping the `history` samples that lack full context,
    plus `stft_weight` x multi-resolution STFT distance and `dc_weight` x DC error on the same samples;
    `level_balance` > 0 moves the normalisation toward each segment's own energy (module docstring)."""

    def __init__(
        self,
        history: int,
        pre_emphasis: float = 0.0,
        eps: float = 1e-8,
        stft_weight: float = 0.0,
        dc_weight: float = 0.0,
        level_balance: float = 0.0,
        name: str = "esr",
        **kwargs,
    ):
        super().__init__(name=name, **kwargs)
        self.history = int(history)
        self.pre_emphasis = float(pre_emphasis)
        self.eps = float(eps)
        self.stft_weight = float(stft_weight)
        self.dc_weight = float(dc_weight)
        self.level_balance = float(level_balance)

    def call(self, y_true, y_pred):
        y_true = y_true[:, self.history :, 0]
        y_pred = y_pred[:, self.history :, 0]
        loss = 0.0
        if self.stft_weight > 0:
            loss = loss + self.stft_weight * mrstft_loss(y_true, y_pred)
        if self.dc_weight > 0:
            dc = ops.square(ops.mean(y_true, axis=1) - ops.mean(y_pred, axis=1))
            loss = loss + self.dc_weight * dc / (ops.mean(ops.square(y_true), axis=1) + self.eps)
        if self.pre_emphasis > 0:
            y_true = y_true[:, 1:] - self.pre_emphasis * y_true[:, :-1]
            y_pred = y_pred[:, 1:] - self.pre_emphasis * y_pred[:, :-1]
        err = ops.sum(ops.square(y_true - y_pred), axis=1)
        segment_energy = ops.sum(ops.square(y_true), axis=1) + self.eps
        # Dividing each segment's error by the batch's mean energy makes Keras' mean over the batch
        # the ESR of the whole batch, so quiet segments do not dominate; level_balance blends in their own.
        energy = ops.mean(segment_energy)
        if self.level_balance > 0:
            b = self.level_balance
            floored = ops.maximum(segment_energy, LEVEL_FLOOR * energy)
            return loss + err / (ops.power(energy, 1.0 - b) * ops.power(floored, b))
        return loss + err / energy

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "history": self.history,
            "pre_emphasis": self.pre_emphasis,
            "eps": self.eps,
            "stft_weight": self.stft_weight,
            "dc_weight": self.dc_weight,
            "level_balance": self.level_balance,
        }
