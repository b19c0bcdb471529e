"""Latency of a capture: the earliest plausible arrival of the device's response, with evidence.

The cross-correlation peak is the wrong target: an amp and cabinet put most of their energy a few
samples after the first arrival, and aligning to that peak leaves the target ahead of the input,
which a causal model cannot learn. The estimator therefore

1. estimates the impulse response from input to target by regularised deconvolution
   H = Y X* / (|X|^2 + lambda), so the input's own spectrum does not smear it as it smears the
   cross-correlation, and reads it to 1/8 sample by polyphase interpolation;
2. takes the strongest lobe of |h| and, within 1 ms before it, the *first* lobe reaching half of it
   and standing clear of the noise of h: the first arrival. Its sign is the polarity;
3. returns the first whole sample at which that lobe's rising edge reaches half of its height.
   On the shared captures this is 12 (crunch_amp), 37 (ts9_pedal, delayed by exactly 37) and 44
   (highgain_amp); the plain cross-correlation peaks at 40, 39 and 54.

Step 3 is early-biased by design: a latency a sample or two early costs the model one or two
samples of receptive field, one past the arrival makes the target non-causal. A perfectly sharp
arrival (a static nonlinearity) reads early by up to `resolution` samples, the half-width that the
input's limited bandwidth gives the estimate; it is reported with the estimate. The same estimate is
made in N windows across the file for agreement. Files made with `rtnt-capture reamp-signal` are
measured from their calibration blips instead.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from scipy import fft as sfft
from scipy.signal import resample_poly

from rtnt.capture import reamp
from rtnt.errors import CaptureError

DEFAULT_MAX_LATENCY_S = 0.1
REGULARISATION = 1e-3  # lambda as a fraction of the input's mean power spectrum
UPSAMPLE = 8
SIGNIFICANT_LOBE = 0.5  # a first arrival is at least this fraction of the strongest lobe
ARRIVAL_LEVEL = 0.5  # the arrival is where its lobe's rising edge reaches this fraction of its height
SEARCH_BEFORE_PEAK_S = 1e-3  # how far before the strongest lobe a first arrival may lie
NOISE_SIGMAS = 6.0  # a lobe must also exceed this many noise standard deviations of h
SNR_DB_NONE, SNR_DB_FULL = 12.0, 30.0  # arrival SNR mapped linearly to confidence 0..1
WINDOW_MIN_RMS_DB = -60.0  # windows of input quieter than this are not estimated


@dataclass
class LatencyEstimate:
    """A latency with the evidence behind it. Offsets are samples by which the target lags the input."""

    latency_samples: int
    latency_ms: float
    confidence: float
    polarity: int
    window_agreement: float
    window_estimates: list[int | None]
    candidates: list[tuple[int, float]]
    method: str
    arrival: float = math.nan  # sub-sample arrival of the first lobe's half-height
    snr_db: float = math.nan  # height of the arrival lobe over the noise of h
    resolution: float = math.nan  # samples a perfectly sharp arrival's half-height is pulled early
    response_lags: np.ndarray = field(default_factory=lambda: np.zeros(0), repr=False)
    response: np.ndarray = field(default_factory=lambda: np.zeros(0), repr=False)

    def to_dict(self) -> dict:
        """JSON-serialisable fields (the response arrays are left out)."""
        return {
            "latency_samples": self.latency_samples,
            "latency_ms": self.latency_ms,
            "confidence": self.confidence,
            "polarity": self.polarity,
            "window_agreement": self.window_agreement,
            "window_estimates": list(self.window_estimates),
            "candidates": [[int(o), float(s)] for o, s in self.candidates],
            "method": self.method,
            "arrival": None if math.isnan(self.arrival) else self.arrival,
            "snr_db": None if math.isnan(self.snr_db) else self.snr_db,
            "resolution": None if math.isnan(self.resolution) else self.resolution,
        }


@dataclass
class _Arrival:
    arrival: float  # sub-sample lag of the half-height crossing
    polarity: int
    snr_db: float
    candidates: list[tuple[int, float]]


def impulse_response(
    x: np.ndarray, y: np.ndarray, max_lag: int, *, with_resolution: bool = False
) -> tuple[np.ndarray, np.ndarray, float]:
    """Regularised deconvolution estimate of the input-to-target response at lags -max_lag..max_lag.

    With `with_resolution`, also the smear of the estimate: how many samples before a perfectly sharp
    arrival the half-height of its lobe falls, given the input's spectrum (else NaN).
    """
    x = np.asarray(x, dtype=np.float32) - np.float32(np.mean(x))
    y = np.asarray(y, dtype=np.float32) - np.float32(np.mean(y))
    n = sfft.next_fast_len(max(len(x), len(y)) + max_lag + 1, real=True)
    X = sfft.rfft(x, n, workers=-1)
    Y = sfft.rfft(y, n, workers=-1)
    power = X.real**2 + X.imag**2
    denom = power + np.float32(REGULARISATION * float(np.mean(power, dtype=np.float64)))
    h = sfft.irfft(Y * np.conj(X) / denom, n, workers=-1)
    lags = np.arange(-max_lag, max_lag + 1)
    smear = math.nan
    if with_resolution:
        kernel = sfft.irfft(power / denom, n, workers=-1)[np.arange(-16, 17) % n]
        ku = resample_poly(kernel.astype(np.float64), UPSAMPLE, 1)
        centre = 16 * UPSAMPLE
        smear = (centre - _half_height(ku, 0, centre)) / UPSAMPLE
    return lags, h[lags % n].astype(np.float64), smear


def _lobes(hu: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Start index and peak index of every run of constant sign in `hu`."""
    sign = np.sign(hu)
    starts = np.concatenate(([0], np.flatnonzero(sign[1:] != sign[:-1]) + 1))
    ends = np.concatenate((starts[1:], [len(hu)]))
    peaks = np.array([s + int(np.argmax(np.abs(hu[s:e]))) for s, e in zip(starts, ends)])
    return starts, peaks


def _half_height(hu: np.ndarray, start: int, peak: int) -> float:
    """Sub-sample index where |hu| first reaches ARRIVAL_LEVEL of its lobe peak, walking back from the peak."""
    a = np.abs(hu)
    level = ARRIVAL_LEVEL * a[peak]
    i = peak
    while i > start and a[i - 1] >= level:
        i -= 1
    if i == start or a[i] == a[i - 1]:
        return float(i)
    return (i - 1) + (level - a[i - 1]) / (a[i] - a[i - 1])


def _find_arrival(lags: np.ndarray, h: np.ndarray, sample_rate: int, top_k: int) -> _Arrival | None:
    """First significant arrival in an impulse response sampled at integer `lags`; None if h is noise."""
    hu = resample_poly(h, UPSAMPLE, 1)
    a = np.abs(hu)
    strongest = int(np.argmax(a))
    noise = float(np.median(np.abs(h))) / 0.6745  # robust sigma; the response occupies few lags
    if noise > 0 and a[strongest] < NOISE_SIGMAS * noise:
        return None
    starts, peaks = _lobes(hu)
    heights = a[peaks]
    threshold = max(SIGNIFICANT_LOBE * a[strongest], NOISE_SIGMAS * noise)
    earliest = strongest - SEARCH_BEFORE_PEAK_S * sample_rate * UPSAMPLE
    first = next(i for i in range(len(peaks)) if heights[i] >= threshold and peaks[i] >= earliest)

    def lag_of(i: int) -> float:
        return float(lags[0]) + _half_height(hu, starts[i], peaks[i]) / UPSAMPLE

    arrival = lag_of(first)
    order = [first] + [i for i in np.argsort(-heights) if i != first and heights[i] >= NOISE_SIGMAS * noise]
    candidates: list[tuple[int, float]] = []
    for i in order:
        offset = math.ceil(lag_of(i) - 1e-6)
        if all(offset != o for o, _ in candidates):
            candidates.append((offset, round(float(heights[i] / a[strongest]), 4)))
        if len(candidates) == top_k:
            break
    snr = 20 * math.log10(heights[first] / noise) if noise > 0 else math.inf
    return _Arrival(arrival, int(np.sign(hu[peaks[first]])), snr, candidates)


def _confidence(agreement: float, snr_db: float) -> float:
    snr_term = min(max((snr_db - SNR_DB_NONE) / (SNR_DB_FULL - SNR_DB_NONE), 0.0), 1.0)
    return round(agreement * snr_term, 4)


def _agreement(estimate: int, windows: list[int | None]) -> float:
    valid = [w for w in windows if w is not None]
    return round(sum(abs(w - estimate) <= 1 for w in valid) / len(valid), 4) if valid else 0.0


def _whole_latency(arrival: float, smear: float) -> int:
    """First whole sample at or after the arrival; a sharp arrival at 0 that the smear pulls early is 0."""
    latency = math.ceil(arrival - 1e-6)
    if latency < 0 and arrival + smear >= -0.5:
        return 0
    return latency if latency >= 0 else min(round(arrival + smear), -1)


def _check_causal(latency: int, sample_rate: int) -> None:
    if latency < 0:
        raise CaptureError(
            f"the target leads the input by {-latency} samples ({-latency / sample_rate * 1e3:.2f} ms), "
            "so a causal model cannot learn it; check that input and target are not swapped and that the "
            "target was not trimmed at the start, or pass the known latency with capture.latency=N"
        )


def _from_blips(y: np.ndarray, sample_rate: int, max_latency: int, top_k: int) -> LatencyEstimate:
    onsets = reamp.blip_onsets(y, sample_rate, max_latency)
    valid = [o for o in onsets if o is not None]
    if not valid:
        raise CaptureError(
            "the input is an rtnt reamp signal but no calibration blip stands out in the target; check that "
            "the device was connected when the preamble played, or pass capture.latency=N"
        )
    latency = int(np.median(valid))
    _check_causal(latency, sample_rate)
    agreement = _agreement(latency, onsets)
    values, counts = np.unique(valid, return_counts=True)
    ranked = sorted(zip(values.tolist(), (counts / len(onsets)).tolist()), key=lambda c: -c[1])
    b = reamp.reamp_layout(sample_rate).blip_positions[0]
    lo = max(b - max_latency, 0)
    seg = np.asarray(y[lo : b + max_latency + 1], dtype=np.float64)
    lags = np.arange(lo - b, lo - b + len(seg))
    at = min(max(latency - (lo - b), 0), len(seg) - 1)
    return LatencyEstimate(
        latency_samples=latency,
        latency_ms=round(latency / sample_rate * 1e3, 4),
        confidence=agreement,
        polarity=1 if seg[at] >= 0 else -1,
        window_agreement=agreement,
        window_estimates=onsets,
        candidates=[(int(o), round(float(s), 4)) for o, s in ranked[:top_k]],
        method="blips",
        arrival=float(latency),
        response_lags=lags,
        response=seg,
    )


def estimate_latency(
    x: np.ndarray,
    y: np.ndarray,
    sample_rate: int,
    *,
    max_latency: int | None = None,
    windows: int = 8,
    top_k: int = 5,
) -> LatencyEstimate:
    """Estimate how many samples the target lags the input (see the module docstring for the method).

    `max_latency` bounds the search both ways (default 100 ms). Raises CaptureError when no response
    is found or when the target leads the input.
    """
    max_lag = max_latency if max_latency is not None else round(DEFAULT_MAX_LATENCY_S * sample_rate)
    n = min(len(x), len(y))
    x, y = x[:n], y[:n]
    if reamp.is_reamp_signal(x, sample_rate):
        return _from_blips(y, sample_rate, max_lag, top_k)

    lags, h, smear = impulse_response(x, y, max_lag, with_resolution=True)
    found = _find_arrival(lags, h, sample_rate, top_k)
    if found is None:
        raise CaptureError(
            "no response of the target to the input was found within "
            f"±{max_lag} samples; check that the target was recorded from this input, or pass "
            "capture.latency=N"
        )
    latency = _whole_latency(found.arrival, smear)
    _check_causal(latency, sample_rate)

    per_window: list[int | None] = []
    edges = np.linspace(0, n, windows + 1).astype(int)
    for lo, hi in zip(edges[:-1], edges[1:]):
        xw, yw = x[lo:hi], y[lo:hi]
        rms = float(np.sqrt(np.mean(np.square(xw, dtype=np.float64)))) if hi > lo else 0.0
        if hi - lo <= 2 * max_lag or rms <= 10 ** (WINDOW_MIN_RMS_DB / 20):
            per_window.append(None)
            continue
        wl, wh, _ = impulse_response(xw, yw, max_lag)
        wa = _find_arrival(wl, wh, sample_rate, 1)
        per_window.append(None if wa is None else _whole_latency(wa.arrival, smear))
    agreement = _agreement(latency, per_window)
    first_score = found.candidates[0][1]
    candidates = [(latency, first_score)] + [c for c in found.candidates[1:] if c[0] != latency]

    keep = (lags >= latency - 64) & (lags <= latency + 192)
    return LatencyEstimate(
        latency_samples=latency,
        latency_ms=round(latency / sample_rate * 1e3, 4),
        confidence=_confidence(agreement, found.snr_db),
        polarity=found.polarity,
        window_agreement=agreement,
        window_estimates=per_window,
        candidates=candidates[:top_k],
        method="impulse-response onset",
        arrival=round(float(found.arrival), 3),
        snr_db=round(float(found.snr_db), 2),
        resolution=round(float(smear), 3),
        response_lags=lags[keep],
        response=h[keep],
    )
