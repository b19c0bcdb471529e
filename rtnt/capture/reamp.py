"""Reamp signal with calibration blips, its recognition, and exact latency from the blips.

Layout (times in seconds): 0.5 silence, four single-sample blips 0.5 apart, 0.5 silence after the
last blip, a 2 s logarithmic sweep, 0.5 silence, then the user's DI. The device's response to each
blip is a direct impulse response, so its first sample above the noise is the round-trip latency.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.signal import chirp
from scipy.signal.windows import tukey

LEAD_S = 0.5
BLIP_COUNT = 4
BLIP_SPACING_S = 0.5
BLIP_AMPLITUDE = 0.5
SWEEP_S = 2.0
SWEEP_F0_HZ = 40.0
SWEEP_F1_RATIO = 0.4  # sweep end frequency as a fraction of the sample rate
SWEEP_AMPLITUDE = 0.25
SWEEP_FADE_S = 0.01
GAP_S = 0.5
MATCH_CORRELATION = 0.999  # normalised correlation with the preamble that identifies a reamp file
ONSET_FRACTION = 0.05  # a blip response starts at the first sample above this fraction of its peak
NOISE_SIGMAS = 8.0  # ... and above this many noise standard deviations


@dataclass(frozen=True)
class ReampLayout:
    """Sample positions of the preamble parts at one sample rate."""

    sample_rate: int
    blip_positions: tuple[int, ...]
    sweep_start: int
    di_start: int


def reamp_layout(sample_rate: int) -> ReampLayout:
    """Where the blips, the sweep and the DI sit in a reamp signal."""
    lead, spacing = round(LEAD_S * sample_rate), round(BLIP_SPACING_S * sample_rate)
    blips = tuple(lead + i * spacing for i in range(BLIP_COUNT))
    sweep_start = blips[-1] + round(GAP_S * sample_rate)
    di_start = sweep_start + round(SWEEP_S * sample_rate) + round(GAP_S * sample_rate)
    return ReampLayout(sample_rate, blips, sweep_start, di_start)


def reamp_preamble(sample_rate: int) -> np.ndarray:
    """Silence, blips, sweep and gap: everything a reamp signal holds before the DI."""
    lay = reamp_layout(sample_rate)
    out = np.zeros(lay.di_start, dtype=np.float32)
    out[list(lay.blip_positions)] = BLIP_AMPLITUDE
    n = round(SWEEP_S * sample_rate)
    t = np.arange(n) / sample_rate
    sweep = chirp(t, SWEEP_F0_HZ, SWEEP_S, SWEEP_F1_RATIO * sample_rate, method="logarithmic", phi=-90)
    sweep *= tukey(n, 2 * SWEEP_FADE_S / SWEEP_S)
    out[lay.sweep_start : lay.sweep_start + n] = SWEEP_AMPLITUDE * sweep
    return out


def make_reamp_signal(di: np.ndarray, sample_rate: int) -> np.ndarray:
    """The DI preceded by the calibration preamble, float32 mono."""
    return np.concatenate([reamp_preamble(sample_rate), np.asarray(di, dtype=np.float32)])


def is_reamp_signal(x: np.ndarray, sample_rate: int) -> bool:
    """True when `x` starts with this module's preamble (within audio-file quantisation)."""
    ref = reamp_preamble(sample_rate)
    if len(x) < len(ref):
        return False
    head = np.asarray(x[: len(ref)], dtype=np.float64)
    denom = np.linalg.norm(head) * np.linalg.norm(ref)
    return bool(denom > 0 and float(head @ ref) / denom >= MATCH_CORRELATION)


def blip_onsets(y: np.ndarray, sample_rate: int, max_latency: int) -> list[int | None]:
    """Per blip, the offset (samples, may be negative) of the first response sample; None if none stands out."""
    lay = reamp_layout(sample_rate)
    first = lay.blip_positions[0]
    quiet = np.asarray(y[: max(first - max_latency, 1)], dtype=np.float64)
    noise = float(np.std(quiet)) if quiet.size > 1 else 0.0
    onsets: list[int | None] = []
    for b in lay.blip_positions:
        lo = max(b - max_latency, 0)
        seg = np.abs(np.asarray(y[lo : b + max_latency + 1], dtype=np.float64))
        peak = float(seg.max()) if seg.size else 0.0
        thr = max(ONSET_FRACTION * peak, NOISE_SIGMAS * noise)
        if peak == 0.0 or peak <= NOISE_SIGMAS * noise:
            onsets.append(None)
            continue
        onsets.append(int(np.argmax(seg > thr)) + lo - b)
    return onsets
