"""Capture inspection: levels, noise, silence, preamble, latency evidence, replicate ESR and warnings."""

from __future__ import annotations

import logging
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from scipy.signal import fftconvolve, resample_poly

from rtnt.capture import reamp
from rtnt.capture.io import CLIP_LEVEL, CapturePair, clipped_runs
from rtnt.capture.latency import LatencyEstimate, estimate_latency
from rtnt.errors import CaptureError

log = logging.getLogger(__name__)

FRAME_S = 0.01  # level analysis frame
FLOOR_DB = -150.0  # level given to digital silence
NOISE_PERCENTILE = 2.0  # noise floor = this percentile of frame levels
LOW_INFO_DB = 12.0  # frames within this of the noise floor carry little information
LOW_CONFIDENCE = 0.5  # below this an automatic latency gets recommendations
MIN_AUTO_CONFIDENCE = 0.1  # below this an automatic latency is refused
PREAMBLE_S = 10.0  # where a transient preamble is looked for
ATTACK_RISE_DB, ATTACK_FROM_DB, ATTACK_FRAMES = 20.0, -40.0, 2  # an isolated attack
PREAMBLE_ATTACKS = 3
REPEAT_PROBE_S = 3.0  # length of the passage probed for a repeat
REPEAT_STEP = 8  # decimation of the repeat search


@dataclass
class LevelStats:
    peak_dbfs: float
    rms_dbfs: float
    dc: float
    clipped_fraction: float


@dataclass
class CaptureReport:
    """Everything `rtnt-capture inspect` reports; `to_dict` is what MLflow and --json get."""

    input_path: str
    target_path: str
    sample_rate: int
    duration_s: float
    input_levels: LevelStats
    target_levels: LevelStats
    noise_floor_dbfs: float
    target_noise_floor_dbfs: float
    silence_fraction: float
    low_information_fraction: float
    longest_silence_s: float
    preamble_present: bool
    reamp_signal: bool
    latency_samples: int
    latency_ms: float
    latency_source: str  # auto | known | auto+nudge | blips | blips+nudge
    latency_nudge: int
    estimate: LatencyEstimate | None
    replicate_esr: float | None
    replicate_passage: dict[str, float] | None
    warnings: list[str] = field(default_factory=list)
    recommendations: list[str] = field(default_factory=list)
    input_frames_db: np.ndarray = field(default_factory=lambda: np.zeros(0), repr=False)
    target_frames_db: np.ndarray = field(default_factory=lambda: np.zeros(0), repr=False)

    @property
    def polarity(self) -> int:
        return self.estimate.polarity if self.estimate else 1

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable report with the latency evidence at the top level."""
        est = self.estimate.to_dict() if self.estimate else {}
        return {
            "latency_samples": self.latency_samples,
            "latency_ms": self.latency_ms,
            "latency_source": self.latency_source,
            "latency_nudge": self.latency_nudge,
            "confidence": est.get("confidence", 0.0),  # 0 when no estimate backs a known latency
            "polarity": self.polarity,
            "window_agreement": est.get("window_agreement", 0.0),
            "window_estimates": est.get("window_estimates", []),
            "candidates": est.get("candidates", []),
            "estimate": est or None,
            "input_path": self.input_path,
            "target_path": self.target_path,
            "sample_rate": self.sample_rate,
            "duration_s": self.duration_s,
            "input_levels": asdict(self.input_levels),
            "target_levels": asdict(self.target_levels),
            "noise_floor_dbfs": self.noise_floor_dbfs,
            "target_noise_floor_dbfs": self.target_noise_floor_dbfs,
            "silence_fraction": self.silence_fraction,
            "low_information_fraction": self.low_information_fraction,
            "longest_silence_s": self.longest_silence_s,
            "preamble_present": self.preamble_present,
            "reamp_signal": self.reamp_signal,
            "replicate_esr": self.replicate_esr,
            "replicate_passage": self.replicate_passage,
            "warnings": list(self.warnings),
            "recommendations": list(self.recommendations),
        }

    def to_table(self):
        """A rich Table of the report."""
        from rich.table import Table

        t = Table(title=f"capture {Path(self.target_path).name}", show_header=True)
        t.add_column("check")
        t.add_column("value")
        e = self.estimate
        rows = [
            ("length", f"{self.duration_s:.2f} s at {self.sample_rate} Hz"),
            *[
                (
                    name,
                    f"peak {lv.peak_dbfs:.1f} dBFS, RMS {lv.rms_dbfs:.1f} dBFS, DC {lv.dc:+.2e}, "
                    f"clipped {lv.clipped_fraction:.2e}",
                )
                for name, lv in (("input", self.input_levels), ("target", self.target_levels))
            ],
            ("noise floor", f"input {self.noise_floor_dbfs:.1f} dBFS, target {self.target_noise_floor_dbfs:.1f} dBFS"),
            (
                "silence / low information",
                f"{self.silence_fraction:.1%} / {self.low_information_fraction:.1%} "
                f"(longest silence {self.longest_silence_s:.2f} s)",
            ),
            ("preamble", ("reamp blips" if self.reamp_signal else "present") if self.preamble_present else "absent"),
            ("latency", f"{self.latency_samples} samples ({self.latency_ms:.3f} ms), {self.latency_source}"),
        ]
        if e is not None:
            rows += [
                (
                    "confidence",
                    f"{e.confidence:.2f} (window agreement {e.window_agreement:.2f}, SNR {e.snr_db:.1f} dB)"
                    if not math.isnan(e.snr_db)
                    else f"{e.confidence:.2f}",
                ),
                ("window estimates", ", ".join("-" if w is None else str(w) for w in e.window_estimates)),
                ("candidates", ", ".join(f"{o} ({s:.2f})" for o, s in e.candidates)),
                ("polarity", "inverted" if e.polarity < 0 else "normal"),
            ]
        if self.replicate_esr is not None:
            rows.append(("replicate ESR", f"{self.replicate_esr:.4g}"))
        rows += [("warning", w) for w in self.warnings]
        rows += [("recommendation", r) for r in self.recommendations]
        for k, v in rows:
            t.add_row(k, v)
        return t


def _db(v: float) -> float:
    return 20 * math.log10(v) if v > 0 else FLOOR_DB


def level_stats(a: np.ndarray) -> LevelStats:
    a64 = np.asarray(a, dtype=np.float64)
    return LevelStats(
        peak_dbfs=round(_db(float(np.max(np.abs(a64)))), 2),
        rms_dbfs=round(_db(float(np.sqrt(np.mean(a64**2)))), 2),
        dc=float(np.mean(a64)),
        clipped_fraction=float(np.count_nonzero(np.abs(a64) >= CLIP_LEVEL) / max(len(a64), 1)),
    )


def frame_levels_db(a: np.ndarray, sample_rate: int) -> np.ndarray:
    """RMS level of consecutive FRAME_S frames, dBFS."""
    n = max(int(FRAME_S * sample_rate), 1)
    m = len(a) // n
    if m == 0:
        return np.zeros(0)
    ms = np.mean(np.square(np.asarray(a[: m * n], dtype=np.float64)).reshape(m, n), axis=1)
    return np.where(ms > 0, 10 * np.log10(np.maximum(ms, 1e-300)), FLOOR_DB)


def _longest_run(mask: np.ndarray) -> int:
    if not mask.any():
        return 0
    edges = np.diff(np.concatenate(([0], mask.astype(np.int8), [0])))
    return int(np.max(np.flatnonzero(edges == -1) - np.flatnonzero(edges == 1)))


def _has_preamble(frames_db: np.ndarray) -> bool:
    head = frames_db[: int(PREAMBLE_S / FRAME_S)]
    if head.size <= ATTACK_FRAMES:
        return False
    before, after = head[:-ATTACK_FRAMES], head[ATTACK_FRAMES:]
    attacks = (before <= ATTACK_FROM_DB) & (after - before >= ATTACK_RISE_DB)
    onsets = np.flatnonzero(attacks[1:] & ~attacks[:-1])
    return len(onsets) >= PREAMBLE_ATTACKS


def repeated_passage(x: np.ndarray, sample_rate: int) -> tuple[int, int, int] | None:
    """(first start, second start, length) of a passage the input plays twice, probed at its start and end.

    The best match of 8x-decimated copies is confirmed sample-exactly at full rate, then grown while
    the two copies agree.
    """
    n, p = len(x), int(REPEAT_PROBE_S * sample_rate)
    if n < 4 * p:
        return None
    x64 = np.asarray(x, dtype=np.float64)
    xd = resample_poly(x64, 1, REPEAT_STEP)
    tol = 1e-3 * float(np.max(np.abs(x64)))
    for probe_start, lo, hi in ((n - p, 0, n - 2 * p), (0, p, n)):
        coarse = _coarse_match(xd, probe_start // REPEAT_STEP, p // REPEAT_STEP, lo // REPEAT_STEP, hi // REPEAT_STEP)
        if coarse is None:
            continue
        probe = x64[probe_start : probe_start + p]
        exact = [
            s
            for s in range(max(coarse * REPEAT_STEP - 2 * REPEAT_STEP, 0), coarse * REPEAT_STEP + 2 * REPEAT_STEP)
            if s + p <= n and abs(s - probe_start) >= p and np.max(np.abs(x64[s : s + p] - probe)) <= tol
        ]
        if not exact:
            continue
        a, b = sorted((exact[0], probe_start))
        fwd = min(n - b, b - a) - p  # samples the passage may grow forwards without overlapping
        differ = np.abs(x64[a + p : a + p + fwd] - x64[b + p : b + p + fwd]) > tol
        length = p + (int(np.argmax(differ)) if differ.any() else fwd)
        back = np.abs(x64[:a][::-1] - x64[b - a : b][::-1]) > tol
        grow = int(np.argmax(back)) if back.any() else a
        return a - grow, b - grow, length + grow
    return None


def _coarse_match(xd: np.ndarray, probe_start: int, p: int, lo: int, hi: int) -> int | None:
    """Decimated start of the best normalised-correlation match of xd[probe_start:+p] within xd[lo:hi]."""
    probe, region = xd[probe_start : probe_start + p], xd[lo:hi]
    pe = float(probe @ probe)
    if pe == 0 or len(region) < p:
        return None
    corr = fftconvolve(region, probe[::-1], mode="valid")
    energy = np.concatenate(([0.0], np.cumsum(region**2)))
    ncc = corr / np.sqrt(np.maximum((energy[p:] - energy[:-p]) * pe, 1e-300))
    best = int(np.argmax(ncc))
    return lo + best


def _replicate(pair: CapturePair, latency: int) -> tuple[float, dict[str, float]] | None:
    found = repeated_passage(pair.x, pair.sample_rate)
    if found is None:
        return None
    a, b, length = found
    length = min(length, len(pair.y) - b - max(latency, 0))
    if length <= 0:
        return None
    ya = np.asarray(pair.y[a + latency : a + latency + length], dtype=np.float64)
    yb = np.asarray(pair.y[b + latency : b + latency + length], dtype=np.float64)
    esr = float(np.sum((ya - yb) ** 2) / max(float(np.sum(ya**2)), 1e-300))
    sr = pair.sample_rate
    return esr, {"first_s": a / sr, "second_s": b / sr, "length_s": length / sr}


def resolve_latency(
    estimate: LatencyEstimate | None, latency: str | int, nudge: int, max_latency_ms: float = 100.0
) -> tuple[int, str, list[str]]:
    """Chosen latency, its source, and warnings, from `auto` or a known value plus the nudge. An automatic
    estimate below MIN_AUTO_CONFIDENCE is refused: training on a misaligned pair wastes the whole run."""
    warnings: list[str] = []
    if latency == "auto":
        if estimate is None:
            raise CaptureError("capture.latency=auto but no latency could be estimated; pass capture.latency=N")
        judged = any(w is not None for w in estimate.window_estimates)  # too short a capture has no vote
        if judged and estimate.confidence < MIN_AUTO_CONFIDENCE:
            best = ", ".join(str(lag) for lag, _ in estimate.candidates)
            raise CaptureError(
                f"the automatic latency estimate is unreliable (confidence {estimate.confidence:.2f} < "
                f"{MIN_AUTO_CONFIDENCE}; best candidates {best} samples within the +-{max_latency_ms:g} ms window): "
                "pass the known latency with capture.latency=N, or widen the search with capture.max_latency_ms=MS"
            )
        chosen = estimate.latency_samples + nudge
        source = ("blips" if estimate.method == "blips" else "auto") + ("+nudge" if nudge else "")
    else:
        chosen, source = int(latency), "known"
        if nudge:
            warnings.append(f"capture.latency_nudge={nudge} is ignored because capture.latency={latency} is given")
        if estimate is not None and chosen > estimate.latency_samples + 1:
            warnings.append(
                f"capture.latency={chosen} is {chosen - estimate.latency_samples} samples after the estimated "
                f"arrival ({estimate.latency_samples}); if the estimate is right the aligned target is non-causal"
            )
    if chosen < 0:
        raise CaptureError(
            f"latency {chosen} is negative: the target would lead the input; use a latency >= 0 "
            "(capture.latency=N or a smaller capture.latency_nudge)"
        )
    return chosen, source, warnings


def inspect_capture(
    pair: CapturePair,
    *,
    latency: str | int = "auto",
    latency_nudge: int = 0,
    max_latency_ms: float = 100.0,
    silence_threshold_db: float = -60.0,
    cold_peak_dbfs: float = -30.0,
    long_silence_s: float = 2.0,
    low_information_warn: float = 0.25,
    windows: int = 8,
    top_k: int = 5,
) -> CaptureReport:
    """Inspect a loaded capture pair. Raises CaptureError only when no usable latency results."""
    sr = pair.sample_rate
    x, y = pair.x, pair.y
    warnings = list(pair.warnings)
    recommendations: list[str] = []

    try:
        estimate: LatencyEstimate | None = estimate_latency(
            x, y, sr, max_latency=round(max_latency_ms * sr / 1000), windows=windows, top_k=top_k
        )
    except CaptureError as exc:
        if latency == "auto":
            raise
        estimate = None
        warnings.append(f"no automatic estimate to compare with the given latency: {exc}")
    chosen, source, lat_warnings = resolve_latency(estimate, latency, latency_nudge, max_latency_ms)
    warnings += lat_warnings

    xf, yf = frame_levels_db(x, sr), frame_levels_db(y, sr)
    noise_x = float(np.percentile(xf, NOISE_PERCENTILE)) if xf.size else FLOOR_DB
    noise_y = float(np.percentile(yf, NOISE_PERCENTILE)) if yf.size else FLOOR_DB
    silent = xf < silence_threshold_db
    low_info = silent | (xf < noise_x + LOW_INFO_DB)
    longest = _longest_run(silent) * FRAME_S
    is_reamp = reamp.is_reamp_signal(x, sr)
    preamble = is_reamp or _has_preamble(xf)

    xl, yl = level_stats(x), level_stats(y)
    for name, lv, a in (("input", xl, x), ("target", yl, y)):
        if lv.peak_dbfs < cold_peak_dbfs:
            warnings.append(
                f"{name} is too cold (peak {lv.peak_dbfs:.1f} dBFS < {cold_peak_dbfs:.0f}); record it hotter"
            )
        if clipped_runs(a) and not any(w.startswith(f"{name} ") and "clips" in w for w in warnings):
            warnings.append(f"{name} is too hot: it clips ({lv.clipped_fraction:.2e} of samples at full scale)")
    if longest > long_silence_s:
        warnings.append(f"the input has a {longest:.1f} s silence; trim it or play through it")
    low_share = float(np.mean(low_info)) if low_info.size else 0.0
    if low_share > low_information_warn:
        warnings.append(
            f"{low_share:.0%} of the input is silence or decay near the noise floor; "
            "such stretches teach the model little"
        )

    replicate = _replicate(pair, chosen)
    if estimate is not None and estimate.polarity < 0:
        warnings.append("the target's polarity is inverted relative to the input (typical of some fuzz circuits)")
    if estimate is not None and estimate.confidence < LOW_CONFIDENCE and source != "known":
        if not preamble:
            recommendations.append(
                "record a transient preamble (rtnt-capture reamp-signal writes one with calibration blips)"
            )
        recommendations.append(
            "pass the known DAW latency with capture.latency=N; candidates: "
            + ", ".join(str(o) for o, _ in estimate.candidates)
        )
    for w in warnings:
        log.warning(w)

    return CaptureReport(
        input_path=pair.input_path,
        target_path=pair.target_path,
        sample_rate=sr,
        duration_s=round(len(x) / sr, 4),
        input_levels=xl,
        target_levels=yl,
        noise_floor_dbfs=round(noise_x, 2),
        target_noise_floor_dbfs=round(noise_y, 2),
        silence_fraction=round(float(np.mean(silent)) if silent.size else 0.0, 4),
        low_information_fraction=round(low_share, 4),
        longest_silence_s=round(longest, 3),
        preamble_present=bool(preamble),
        reamp_signal=bool(is_reamp),
        latency_samples=chosen,
        latency_ms=round(chosen / sr * 1e3, 4),
        latency_source=source,
        latency_nudge=int(latency_nudge),
        estimate=estimate,
        replicate_esr=None if replicate is None else round(replicate[0], 6),
        replicate_passage=None if replicate is None else replicate[1],
        warnings=warnings,
        recommendations=recommendations,
        input_frames_db=xf,
        target_frames_db=yf,
    )
