"""Latency accuracy benchmark: shifted shared captures, synthetic devices with known delay, blips.

Writes experiments/latency_accuracy/results.json; README.md there reports the figures.
Usage: .venv/bin/python scripts/latency_accuracy.py [--out DIR] [--quick]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import scipy.fft as sfft
import scipy.linalg as sla
import scipy.signal as ss
import soundfile as sf

from rtnt.capture.latency import estimate_latency, impulse_response
from rtnt.capture.reamp import make_reamp_signal
from rtnt.config import REPO_DIR, shared_dir
from rtnt.errors import CaptureError

SR = 48000
CAPTURES = ("crunch_amp", "ts9_pedal", "highgain_amp")
SHIFTS = list(range(-5, 11)) + list(range(13, 301, 7))  # relative to the unshifted capture
NEGATIVE = range(-5, 0)  # shifts of the aligned pair: the target leads the input
SYNTH_DELAYS = (0, 1, 5, 37, 100, 300)


def delay(a: np.ndarray, d: int) -> np.ndarray:
    out = np.zeros_like(a)
    if d >= 0:
        out[d:] = a[: len(a) - d]
    else:
        out[:d] = a[-d:]
    return out


def causal_esr(x: np.ndarray, y: np.ndarray, lo: int, hi: int) -> dict[int, float]:
    """ESR of the best causal predictor of y from x[n-d..n-hi] through x, tanh(4x/peak), tanh(16x/peak).

    The models for d = lo..hi are nested, so one Cholesky factorisation of the Toeplitz normal
    equations gives all of them. A latency d is free while this stays flat and costly once it rises.
    """
    x = x.astype(np.float64)
    y = y.astype(np.float64)
    g = 1 / np.max(np.abs(x))
    feats = [x, np.tanh(4 * g * x), np.tanh(16 * g * x)]
    nb, span = len(feats), hi - lo
    n = sfft.next_fast_len(len(x) + 2 * span + 2, real=True)
    F = [sfft.rfft(f, n) for f in feats]
    Yf = sfft.rfft(y, n)
    lags = np.arange(hi, lo - 1, -1)  # descending: dropping the earliest lags keeps a leading block
    m = np.arange(-span, span + 1)
    R = {(a, c): sfft.irfft(F[a] * np.conj(F[c]), n)[m % n] for a in range(nb) for c in range(nb)}
    cross = [sfft.irfft(Yf * np.conj(F[a]), n) for a in range(nb)]
    b = np.concatenate([[cross[a][lag % n] for a in range(nb)] for lag in lags])
    idx_lag, idx_f = np.repeat(lags, nb), np.tile(np.arange(nb), len(lags))
    G = np.empty((len(b), len(b)))
    diff = idx_lag[None, :] - idx_lag[:, None] + span
    for a in range(nb):
        for c in range(nb):
            mask = (idx_f[:, None] == a) & (idx_f[None, :] == c)
            G[mask] = R[a, c][diff[mask]]
    G += np.eye(len(G)) * 1e-9 * np.trace(G) / len(G)
    z = sla.solve_triangular(np.linalg.cholesky(G), b, lower=True)
    yy = float(y @ y)
    rss = yy - np.cumsum(z**2)
    return {d: float(rss[(hi - d + 1) * nb - 1] / yy) for d in range(lo, hi + 1)}


def lobe_peak(x: np.ndarray, y: np.ndarray, latency: int) -> float:
    """Sub-sample peak of the impulse-response lobe that the estimator called the first arrival."""
    lags, h, _ = impulse_response(x, y, 400)
    hu = ss.resample_poly(h, 8, 1)
    i = int(np.argmin(np.abs(lags[0] + np.arange(len(hu)) / 8 - latency)))
    s = np.sign(hu[i]) or 1.0
    while s * hu[i + 1] > s * hu[i]:
        i += 1
    while s * hu[i - 1] > s * hu[i]:
        i -= 1
    a, b, c = np.abs(hu[i - 1 : i + 2])
    return float(lags[0] + (i + 0.5 * (a - c) / (a - 2 * b + c)) / 8)


def xcorr_peak(x: np.ndarray, y: np.ndarray, max_lag: int = 400) -> int:
    c = ss.correlate(y, x, mode="full", method="fft")
    lags = ss.correlation_lags(len(y), len(x))
    keep = np.abs(lags) <= max_lag
    return int(lags[keep][np.argmax(np.abs(c[keep]))])


def shared_capture(x: np.ndarray, y: np.ndarray, name: str) -> dict:
    t0 = time.time()
    base = estimate_latency(x, y, SR)
    rows, exact = [], 0
    for k, s in enumerate(SHIFTS):
        sign = -1 if k % 3 == 2 else 1
        e = estimate_latency(x, sign * delay(y, s), SR)
        ok = e.latency_samples == base.latency_samples + s and e.polarity == sign * base.polarity
        exact += ok
        rows.append(
            {
                "shift": s,
                "inverted": sign < 0,
                "estimate": e.latency_samples,
                "polarity": e.polarity,
                "confidence": e.confidence,
                "window_agreement": e.window_agreement,
                "exact": ok,
            }
        )
    aligned = y[base.latency_samples :]
    aligned = np.concatenate([aligned, np.zeros(base.latency_samples, np.float32)])
    negative = {}
    for s in NEGATIVE:
        try:
            negative[s] = estimate_latency(x, delay(aligned, s), SR).latency_samples
        except CaptureError as exc:
            negative[s] = f"CaptureError: {exc}"[:90]
    xc = xcorr_peak(x, y)
    lat = base.latency_samples
    lo, hi = max(lat - 12, 0), max(lat, xc) + 160
    cost = causal_esr(x, y, lo, hi)
    margin = next(d for d in range(lat, hi + 1) if cost[d] > 1.05 * cost[lat]) - lat
    return {
        "capture": name,
        "estimate": base.to_dict(),
        "shifts_tested": len(SHIFTS),
        "exact_fraction": exact / len(SHIFTS),
        "min_confidence": min(r["confidence"] for r in rows),
        "min_window_agreement": min(r["window_agreement"] for r in rows),
        "rows": rows,
        "aligned_pair_shifted_earlier": negative,
        "first_lobe_peak": round(lobe_peak(x, y, base.latency_samples), 3),
        "xcorr_peak": xc,
        "causal_esr": {str(d): round(v, 5) for d, v in cost.items() if d <= lat + 16 or d == xc},
        "causal_margin_5pct": margin,
        "seconds": round(time.time() - t0, 1),
    }


def _bandpass(x):
    b, a = ss.butter(2, [80, 5000], "bandpass", fs=SR)
    return ss.lfilter(b, a, x)


def _lowpass(x):
    return ss.sosfilt(ss.butter(2, 3000, fs=SR, output="sos"), x)


def _clipper(x):
    return np.tanh(6 * x / np.max(np.abs(x)))


def _fuzz(x):
    hard = np.clip(200 * x / np.max(np.abs(x)), -1, 1)
    return -ss.sosfilt(ss.butter(1, 6000, fs=SR, output="sos"), hard)


SYNTH = {
    "linear (2nd-order 80 Hz-5 kHz bandpass)": (_bandpass, 1),
    "linear, slow rise (2nd-order 3 kHz lowpass)": (_lowpass, 1),
    "static clipper (tanh, 6x)": (_clipper, 1),
    "heavy fuzz + inversion (hard clip 200x, 6 kHz lowpass, negated)": (_fuzz, -1),
}


def synthetic(x: np.ndarray) -> list[dict]:
    rows = []
    reamp_x = make_reamp_signal(x[: 5 * SR], SR)
    noise = 1e-5 * np.random.default_rng(0).standard_normal(len(reamp_x)).astype(np.float32)
    for label, (fn, polarity) in SYNTH.items():
        y0 = fn(x).astype(np.float32)
        r0 = fn(reamp_x).astype(np.float32)
        for d in SYNTH_DELAYS:
            e = estimate_latency(x, delay(y0, d), SR)
            b = estimate_latency(reamp_x, delay(r0, d) + noise, SR)
            rows.append(
                {
                    "device": label,
                    "delay": d,
                    "estimate": e.latency_samples,
                    "error": e.latency_samples - d,
                    "polarity_ok": e.polarity == polarity,
                    "confidence": e.confidence,
                    "resolution": e.resolution,
                    "blips": b.latency_samples,
                    "blips_error": b.latency_samples - d,
                    "blips_polarity_ok": b.polarity == polarity,
                }
            )
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--out", default=str(REPO_DIR / "experiments" / "latency_accuracy"))
    ap.add_argument("--quick", action="store_true", help="first 20 s and every 4th shift (a smoke run)")
    args = ap.parse_args()
    global SHIFTS
    cap = shared_dir() / "captures"
    if not (cap / "manifest.json").exists():
        raise SystemExit(f"shared captures not found at {cap}")
    x, _ = sf.read(str(cap / "input.flac"), dtype="float32")
    if args.quick:
        x, SHIFTS = x[: 20 * SR], SHIFTS[::4]
    results = {"shared": [], "synthetic": []}
    for name in CAPTURES:
        y, _ = sf.read(str(cap / f"{name}.flac"), dtype="float32")
        r = shared_capture(x, y[: len(x)], name)
        print(
            f"{name}: latency {r['estimate']['latency_samples']} exact {r['exact_fraction']:.3f} "
            f"min conf {r['min_confidence']:.2f} 5% margin {r['causal_margin_5pct']} ({r['seconds']} s)",
            flush=True,
        )
        results["shared"].append(r)
    results["synthetic"] = synthetic(x)
    for row in results["synthetic"]:
        print(row, flush=True)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / ("results_quick.json" if args.quick else "results.json")).write_text(json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    main()
