"""Signal levels: DC offset and loudness per ITU-R BS.1770-4.

Loudness is the gated integrated loudness of BS.1770-4: K-weighting (a high-shelf and a
high-pass biquad), mean square over 400 ms blocks with 75 % overlap, an absolute gate at
-70 LUFS and a relative gate 10 LU below the ungated mean; L = -0.691 + 10 log10(mean square).
The biquads are derived for any sample rate from the analogue prototype parameters that
reproduce the standard's 48 kHz coefficients (as in libebur128); at 48 kHz they match the
coefficients printed in BS.1770-4 to 1e-12 (checked in tests/test_metrics.py).
"""

from __future__ import annotations

import math

import numpy as np
from scipy.signal import lfilter

from rtnt.constants import SAMPLE_RATE

_BLOCK_S = 0.4
_ABS_GATE_LUFS = -70.0
_REL_GATE_LU = -10.0


def dc_offset(y: np.ndarray) -> float:
    """Mean of the signal (its DC component), in full-scale units."""
    return float(np.mean(np.asarray(y, dtype=np.float64)))


def k_weighting(sample_rate: int) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """(b, a) of the BS.1770-4 pre-filter (high shelf) and RLB high-pass at `sample_rate`."""
    k = math.tan(math.pi * 1681.974450955533 / sample_rate)
    q = 0.7071752369554196
    vh = 10.0 ** (3.999843853973347 / 20.0)
    vb = vh**0.4996667741545416
    a0 = 1.0 + k / q + k * k
    shelf_b = np.array([vh + vb * k / q + k * k, 2.0 * (k * k - vh), vh - vb * k / q + k * k]) / a0
    shelf_a = np.array([a0, 2.0 * (k * k - 1.0), 1.0 - k / q + k * k]) / a0
    k = math.tan(math.pi * 38.13547087602444 / sample_rate)
    q = 0.5003270373238773
    a0 = 1.0 + k / q + k * k
    hp_b = np.array([1.0, -2.0, 1.0])
    hp_a = np.array([a0, 2.0 * (k * k - 1.0), 1.0 - k / q + k * k]) / a0
    return (shelf_b, shelf_a), (hp_b, hp_a)


def integrated_loudness(y: np.ndarray, sample_rate: int) -> float:
    """Gated integrated loudness in LUFS (ITU-R BS.1770-4), mono.

    A signal shorter than one 400 ms block is measured as one block. Silence gives -inf.
    """
    (sb, sa), (hb, ha) = k_weighting(sample_rate)
    z = lfilter(hb, ha, lfilter(sb, sa, np.asarray(y, dtype=np.float64).ravel()))
    block = int(round(_BLOCK_S * sample_rate))
    if z.size <= block:
        power = np.array([np.mean(z**2)]) if z.size else np.zeros(1)
    else:
        hop = block // 4
        starts = np.arange(0, z.size - block + 1, hop)
        csum = np.concatenate(([0.0], np.cumsum(z**2)))
        power = (csum[starts + block] - csum[starts]) / block
    with np.errstate(divide="ignore"):
        block_lufs = -0.691 + 10.0 * np.log10(power)
    kept = power[block_lufs > _ABS_GATE_LUFS]
    if kept.size == 0:
        return float("-inf")
    relative_gate = -0.691 + 10.0 * np.log10(np.mean(kept)) + _REL_GATE_LU
    with np.errstate(divide="ignore"):
        kept = kept[-0.691 + 10.0 * np.log10(kept) > relative_gate]
    return float(-0.691 + 10.0 * np.log10(np.mean(kept)))


def loudness_difference_db(y_true: np.ndarray, y_pred: np.ndarray, sample_rate: int = SAMPLE_RATE) -> float:
    """Integrated loudness of the prediction minus that of the target, in LU (= dB), BS.1770-4.

    Positive means the prediction is louder. Non-finite when either signal is silent.
    """
    return integrated_loudness(y_pred, sample_rate) - integrated_loudness(y_true, sample_rate)
