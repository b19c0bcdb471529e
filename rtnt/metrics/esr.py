"""Error-to-signal ratio, plain and pre-emphasised.

Definitions follow Wright & Välimäki, "Perceptual loss function for neural modelling of audio
systems" (ICASSP 2020, arXiv:1911.08922): ESR = sum (y - ŷ)^2 / sum y^2, optionally after a
first-order pre-emphasis filter H(z) = 1 - c z^-1 applied to both target and prediction.
Sums are taken in float64, so the result is exact to float64 rounding for float32 audio.
"""

from __future__ import annotations

import numpy as np


def _pair(y_true: np.ndarray, y_pred: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(y_true, dtype=np.float64).ravel()
    p = np.asarray(y_pred, dtype=np.float64).ravel()
    if y.shape != p.shape:
        raise ValueError(f"target and prediction differ in length: {y.size} vs {p.size}")
    return y, p


def _ratio(error_energy: float, signal_energy: float) -> float:
    if signal_energy > 0:
        return error_energy / signal_energy
    return 0.0 if error_energy == 0 else float("inf")


def esr(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Error-to-signal ratio sum (y - ŷ)^2 / sum y^2 (Wright & Välimäki 2020).

    A silent target gives 0 for a silent prediction and inf otherwise.
    """
    y, p = _pair(y_true, y_pred)
    return _ratio(float(np.sum((y - p) ** 2)), float(np.sum(y**2)))


def pre_emphasis(x: np.ndarray, coeff: float) -> np.ndarray:
    """First-order pre-emphasis filter 1 - coeff z^-1 from zero initial state, in float64."""
    x = np.asarray(x, dtype=np.float64).ravel()
    out = x.copy()
    out[1:] -= coeff * x[:-1]
    return out


def esr_preemph(y_true: np.ndarray, y_pred: np.ndarray, coeff: float = 0.85) -> float:
    """ESR of the pre-emphasised signals, filter 1 - coeff z^-1 on both (Wright & Välimäki 2020)."""
    y, p = _pair(y_true, y_pred)
    return esr(pre_emphasis(y, coeff), pre_emphasis(p, coeff))
