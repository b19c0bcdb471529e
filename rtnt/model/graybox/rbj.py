"""Biquad coefficients of the RBJ Audio EQ Cookbook (R. Bristow-Johnson), for numpy and TensorFlow alike.

`rbj_coefficients(kind, freq_hz, q, gain_db, ops)` returns (b0, b1, b2, a1, a2) normalised by a0, for
`kind` one of `BIQUAD_KINDS`. `ops` is `numpy` or `tensorflow.math` (anything with sin, cos, sqrt, exp), so the
training layer and the tests compute the very same formulas. With 0 < freq < fs / 2, q > 0 and any finite gain
every filter here has both poles inside the unit circle.
"""

from __future__ import annotations

import math
from typing import Any

from rtnt.config_graybox import BIQUAD_KINDS


def rbj_coefficients(kind: str, freq_hz: Any, q: Any, gain_db: Any, sample_rate: float, ops: Any) -> tuple[Any, ...]:
    """(b0, b1, b2, a1, a2) / a0 of one RBJ cookbook biquad; `gain_db` is ignored by lowpass and highpass."""
    w0 = 2.0 * math.pi * freq_hz / sample_rate
    cos_w, alpha = ops.cos(w0), ops.sin(w0) / (2.0 * q)
    a = ops.exp(gain_db * (math.log(10.0) / 40.0))  # A = 10^(gain / 40)
    if kind == "peaking":
        b = (1.0 + alpha * a, -2.0 * cos_w, 1.0 - alpha * a)
        den = (1.0 + alpha / a, -2.0 * cos_w, 1.0 - alpha / a)
    elif kind in ("low_shelf", "high_shelf"):
        s = 1.0 if kind == "low_shelf" else -1.0  # s = -1 gives the cookbook's high-shelf signs
        k = 2.0 * ops.sqrt(a) * alpha
        b = (
            a * ((a + 1.0) - s * (a - 1.0) * cos_w + k),
            s * 2.0 * a * ((a - 1.0) - s * (a + 1.0) * cos_w),
            a * ((a + 1.0) - s * (a - 1.0) * cos_w - k),
        )
        den = (
            (a + 1.0) + s * (a - 1.0) * cos_w + k,
            -s * 2.0 * ((a - 1.0) + s * (a + 1.0) * cos_w),
            (a + 1.0) + s * (a - 1.0) * cos_w - k,
        )
    elif kind == "lowpass":
        b = ((1.0 - cos_w) / 2.0, 1.0 - cos_w, (1.0 - cos_w) / 2.0)
        den = (1.0 + alpha, -2.0 * cos_w, 1.0 - alpha)
    elif kind == "highpass":
        b = ((1.0 + cos_w) / 2.0, -(1.0 + cos_w), (1.0 + cos_w) / 2.0)
        den = (1.0 + alpha, -2.0 * cos_w, 1.0 - alpha)
    else:
        raise ValueError(f"unknown biquad kind {kind!r}; one of {', '.join(BIQUAD_KINDS)}")
    a0 = den[0]
    return b[0] / a0, b[1] / a0, b[2] / a0, den[1] / a0, den[2] / a0
