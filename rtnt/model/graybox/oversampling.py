"""The polyphase filter pair that oversamples a gray-box chain's static nonlinearities (`preset.oversampling`).

A static nonlinearity (waveshaper, MLP) creates harmonics above the base rate's Nyquist that fold back as
aliases. With oversampling factor F the block runs at F x 48 kHz between an interpolator and a decimator:

- up: zero-stuff (x[n] at high-rate sample nF, zeros between), then the lowpass h with gain F;
- the nonlinearity, per high-rate sample;
- down: the same lowpass h (anti-alias), then keep high-rate sample nF (every F-th, phase 0).

h is one MINIMUM-PHASE FIR lowpass per factor, so the pair adds no latency to report (its group delay at
1 kHz is 1.4 base samples for 2x, 1.8 for 4x; no plugin-latency or alignment change). Design (scipy, once
when a model is built; the runtimes only read the taps from the file): a linear-phase equiripple prototype
(`scipy.signal.remez`, passband 0-20 kHz, stopband 28 kHz to F x 24 kHz, stopband weight 30) of
`OVERSAMPLING_TAPS[F]` taps (48 for 2x, 96 for 4x: one design per factor, not cascaded 2x stages), turned
minimum-phase by `scipy.signal.minimum_phase(..., half=False)`, which keeps the prototype's full magnitude
(the default `half=True` returns about its square root) and its length. Stated figures, for h at F x 48 kHz,
checked by tests/test_graybox_oversampling.py with scipy.signal.freqz:

- passband ripple <= 0.1 dB peak to peak from 0 to 20 kHz (designed: 0.033 dB);
- stopband attenuation >= 80 dB from 28 kHz to F x 24 kHz (designed: 83.6 dB for 2x, 83.9 dB for 4x).

Polyphase forms (the native runtime's, computing only non-zero products and only kept outputs): the
interpolator's phase p in [0, F) is u[nF + p] = F sum_j h[p + jF] x[n - j]; the decimator is
y[n] = sum_k h[k] v[nF - k]. Nothing here imports Keras.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import numpy as np

from rtnt.config_graybox import OVERSAMPLING_TAPS
from rtnt.constants import SAMPLE_RATE

PASSBAND_HZ = 20000.0
STOPBAND_HZ = 28000.0
PASSBAND_RIPPLE_DB = 0.1  # stated bound, peak to peak
STOPBAND_ATTENUATION_DB = 80.0  # stated bound
_STOPBAND_WEIGHT = 30.0


@dataclass(frozen=True)
class OversamplingFilters:
    """The filter pair of one factor: `up` (interpolation taps, gain `factor` included, applied to the
    zero-stuffed signal) and `down` (anti-alias taps, unit gain, applied before keeping every factor-th sample)."""

    factor: int
    up: np.ndarray
    down: np.ndarray

    def to_json(self, layers: int) -> dict[str, object]:
        """The `oversampling` object of docs/graybox_format.md for a run of `layers` JSON layers."""
        return {
            "factor": self.factor,
            "layers": layers,
            "taps": int(self.up.size),
            "up": self.up.tolist(),
            "down": self.down.tolist(),
        }


def lowpass(factor: int) -> np.ndarray:
    """The minimum-phase lowpass h (float64, unit DC gain) of `factor` (2 or 4), designed as the module says."""
    return _lowpass(factor).copy()


@cache
def _lowpass(factor: int) -> np.ndarray:
    import scipy.signal

    fs = SAMPLE_RATE * factor
    prototype = scipy.signal.remez(
        OVERSAMPLING_TAPS[factor], [0, PASSBAND_HZ, STOPBAND_HZ, fs / 2], [1, 0], weight=[1, _STOPBAND_WEIGHT], fs=fs
    )
    h = scipy.signal.minimum_phase(prototype, half=False, n_fft=1 << 16)
    return h / np.sum(h)


def oversampling_filters(factor: int) -> OversamplingFilters:
    """The float32 filter pair of `factor` as the file stores it."""
    h = lowpass(factor)
    return OversamplingFilters(factor, (factor * h).astype(np.float32), h.astype(np.float32))


def up_kernel(up: np.ndarray, factor: int) -> np.ndarray:
    """The interpolator as a causal conv kernel (J, 1, factor), J = ceil(L / factor): output channel p is phase p,
    and kernel row i holds the taps of lag J - 1 - i (a cross-correlation over J - 1 samples of left padding)."""
    taps = np.zeros(-(-up.size // factor) * factor, dtype=np.float32)
    taps[: up.size] = up
    phases = taps.reshape(-1, factor)  # row j, column p: up[p + j F], the tap of phase p at lag j
    return phases[::-1, None, :].copy()


def down_kernel(down: np.ndarray, factor: int) -> np.ndarray:
    """The decimator as a causal conv kernel (Q, factor, 1) over frames of `factor` high-rate samples, Q = 1 +
    ceil((L - 1) / factor): y[n] = sum_k down[k] v[nF - k], and v[nF - k] is phase (-k) mod F of frame n -
    ceil(k / F); kernel row i holds frame lag Q - 1 - i."""
    q = 1 + -(-(down.size - 1) // factor)
    kernel = np.zeros((q, factor, 1), dtype=np.float32)
    for k, tap in enumerate(down):
        lag, phase = -(-k // factor), (-k) % factor
        kernel[q - 1 - lag, phase, 0] = tap
    return kernel
