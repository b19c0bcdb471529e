"""Multi-resolution STFT distance (Yamamoto et al., "Parallel WaveGAN", ICASSP 2020; auraloss).

For each FFT size n: Hann window of length n, hop n/4, frames zero-padded by n/2 at both ends,
magnitude |S| = sqrt(max(re^2 + im^2, eps)). Per resolution the loss is
    spectral convergence  ||  |S_y| - |S_ŷ|  ||_F / || |S_y| ||_F
  + log-magnitude L1      mean | log|S_y| - log|S_ŷ| |
and the distance is the mean over resolutions. Computed in float64 with numpy.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.signal import get_window

_EPS = 1e-8  # floor of the squared magnitude, as in auraloss


def stft_magnitude(x: np.ndarray, fft_size: int) -> np.ndarray:
    """Magnitude STFT, frames x bins: periodic Hann window, hop fft_size // 4, zero-padded ends."""
    x = np.pad(np.asarray(x, dtype=np.float64).ravel(), fft_size // 2)
    if x.size < fft_size:
        x = np.pad(x, (0, fft_size - x.size))
    frames = np.lib.stride_tricks.sliding_window_view(x, fft_size)[:: max(fft_size // 4, 1)]
    spec = np.fft.rfft(frames * get_window("hann", fft_size), axis=-1)
    return np.sqrt(np.maximum(spec.real**2 + spec.imag**2, _EPS))


def stft_distance(y_true: np.ndarray, y_pred: np.ndarray, fft_size: int) -> float:
    """Spectral convergence plus log-magnitude L1 at one resolution."""
    a, b = stft_magnitude(y_true, fft_size), stft_magnitude(y_pred, fft_size)
    sc = np.linalg.norm(a - b) / np.linalg.norm(a)
    log_l1 = np.mean(np.abs(np.log(a) - np.log(b)))
    return float(sc + log_l1)


def mrstft_distance(
    y_true: np.ndarray,
    y_pred: np.ndarray,
    sample_rate: int,
    fft_sizes: Sequence[int] = (512, 1024, 2048),
) -> float:
    """Mean over `fft_sizes` of spectral convergence + log-magnitude L1 (Yamamoto et al. 2020).

    `sample_rate` is accepted for a uniform metric signature; the distance does not depend on it.
    """
    if np.asarray(y_true).size != np.asarray(y_pred).size:
        raise ValueError(
            f"target and prediction differ in length: {np.asarray(y_true).size} vs {np.asarray(y_pred).size}"
        )
    return float(np.mean([stft_distance(y_true, y_pred, n) for n in fft_sizes]))
