"""Capture preparation for training: load, inspect, align, fix polarity and trim silence."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from rtnt.capture.io import CapturePair, load_capture_pair
from rtnt.capture.report import FRAME_S, CaptureReport, frame_levels_db, inspect_capture
from rtnt.errors import CaptureError

log = logging.getLogger(__name__)

TRIM_MARGIN_S = 0.01  # kept before the first and after the last sound when trimming silence


@dataclass
class PreparedCapture:
    """An aligned, causal pair: y[n] is the device's response with input history x[..n]."""

    x: np.ndarray
    y: np.ndarray
    sample_rate: int
    latency: int
    polarity: int
    report: CaptureReport
    warnings: list[str] = field(default_factory=list)
    trim_start: int = 0  # input samples cut from the front as silence: x[0] is the input's sample trim_start


def align(x: np.ndarray, y: np.ndarray, latency: int) -> tuple[np.ndarray, np.ndarray]:
    """Shift the target `latency` samples earlier and crop both to equal length."""
    n = min(len(x), len(y) - latency)
    return x[:n], y[latency : latency + n]


def silence_bounds(x: np.ndarray, y: np.ndarray, sample_rate: int, threshold_db: float) -> tuple[int, int]:
    """Sample range from the first to the last frame where either signal exceeds `threshold_db`."""
    loud = (frame_levels_db(x, sample_rate) > threshold_db) | (frame_levels_db(y, sample_rate) > threshold_db)
    if not loud.any():
        return 0, len(x)
    frame = int(FRAME_S * sample_rate)
    margin = int(TRIM_MARGIN_S * sample_rate)
    start = max(int(np.argmax(loud)) * frame - margin, 0)
    end = min((len(loud) - int(np.argmax(loud[::-1]))) * frame + margin, len(x))
    return start, end


def _check_length(n: int, sample_rate: int, c: Any, when: str) -> None:
    if n < float(c.min_seconds) * sample_rate:
        raise CaptureError(
            f"capture {getattr(c, 'name', '')} ({c.target}) is {n / sample_rate:.2f} s long{when}, shorter than "
            f"capture.min_seconds={c.min_seconds:g}; record a longer performance (a minute or more trains well)"
        )


def inspect_configured(pair: CapturePair, c: Any) -> CaptureReport:
    """`inspect_capture` of `pair` with the capture config's latency setting and check thresholds."""
    return inspect_capture(
        pair,
        latency="auto" if c.latency == "auto" else int(c.latency),
        latency_nudge=int(c.latency_nudge),
        max_latency_ms=float(c.max_latency_ms),
        silence_threshold_db=float(c.silence_threshold_db),
        cold_peak_dbfs=float(c.cold_peak_dbfs),
        long_silence_s=float(c.long_silence_s),
        low_information_warn=float(c.low_information_warn),
    )


def prepare_capture(capture_cfg: Any) -> PreparedCapture:
    """Load and align the capture named by a `CaptureConfig` (or the composed `cfg.capture`)."""
    c = capture_cfg
    pair = load_capture_pair(
        c.input,
        c.target,
        channel=c.channel,
        resample=bool(c.resample),
        length_tolerance_s=float(c.length_tolerance_s),
    )
    _check_length(len(pair.x), pair.sample_rate, c, "")
    report = inspect_configured(pair, c)
    warnings = list(report.warnings)
    x, y = align(pair.x, pair.y, report.latency_samples)
    polarity = report.polarity
    if polarity < 0:
        y = -y
        warnings.append("inverted the target's polarity so that it follows the input's")
    start = 0
    if c.trim_silence:
        start, end = silence_bounds(x, y, pair.sample_rate, float(c.silence_threshold_db))
        if (start, end) != (0, len(x)):
            sr = pair.sample_rate
            warnings.append(f"trimmed silence: {start / sr:.2f} s at the start, {(len(x) - end) / sr:.2f} s at the end")
            x, y = x[start:end], y[start:end]
    _check_length(len(x), pair.sample_rate, c, " after alignment and silence trimming")
    log.info(
        "capture %s: latency %d samples (%s), polarity %+d, %.2f s",
        getattr(c, "name", ""),
        report.latency_samples,
        report.latency_source,
        polarity,
        len(x) / pair.sample_rate,
    )
    return PreparedCapture(
        x=np.ascontiguousarray(x, dtype=np.float32),
        y=np.ascontiguousarray(y, dtype=np.float32),
        sample_rate=pair.sample_rate,
        latency=report.latency_samples,
        polarity=polarity,
        report=report,
        warnings=warnings,
        trim_start=start,
    )
