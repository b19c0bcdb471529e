"""Capture sets: one dry input rendered through a device at several knob settings, prepared for a conditioned model.

A set is aligned with **one** latency for all settings. A knob that moves the device's phase also moves each
file's cross-correlation peak, so per-file alignment would shift the settings against each other: on the shared
amp set (`conf/capture/parametric_amp.yaml`) the 10 s cross-correlation peak drifts from 20 to 24 samples
across gain 0.1..0.9, while the impulse-response onset (`rtnt.capture.latency`) of the same files is
11, 12, 12, 12, 13 samples (arrivals 10.81 .. 12.17). The set's latency is the **earliest per-file onset**
(11 there): aligning to a later one would make the earliest-arriving setting non-causal by a sample (the
estimate on the five files concatenated gives 12, one past gain 0.1's arrival), while a sample early costs
the others one sample of receptive field. Per-file onsets further apart than `MAX_ONSET_SPREAD_MS` mean the
files are not renders of one input and the set is refused. On the TS9 set every onset is 0.

Validation and test regions are taken per setting (the same time regions of the common input, each with its
own target); settings listed in `capture.holdout` are kept out of training and measured as interpolation.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
from scipy import fft as sfft

from rtnt.capture.io import load_capture_pair
from rtnt.capture.prepare import align, inspect_configured, silence_bounds
from rtnt.capture.report import CaptureReport, level_stats
from rtnt.errors import CaptureError, ConfigError

log = logging.getLogger(__name__)

MAX_ONSET_SPREAD_MS = 1.0  # per-file onsets further apart than this are not one device's latency
XCORR_MAX_LAG = 200  # samples searched for the (reported, unused) cross-correlation peak
XCORR_SECONDS = 10.0  # of each file used for that peak


@dataclass(frozen=True)
class KnobSettings:
    """The settings a capture-set config declares: knob names and declared ranges, one row of knob values per
    target (in knob order), and which rows are held out of training."""

    names: tuple[str, ...]
    ranges: tuple[tuple[float, float], ...]
    targets: tuple[str, ...]
    values: np.ndarray  # (settings, knobs)
    held_out: tuple[bool, ...]


def knob_settings(capture: Any) -> KnobSettings:
    """Check a capture set's `knobs`, `targets` and `holdout` (no file is read); ConfigError names the problem."""
    name = capture.name
    knobs = list(capture.knobs)
    targets = list(capture.targets)
    if len(targets) < 2:
        raise ConfigError(
            f"capture set {name} has {len(targets)} target(s); a capture set needs two or more knob settings"
        )
    if capture.target:
        raise ConfigError(f"capture set {name} gives both capture.target and capture.targets; remove capture.target")
    if not knobs:
        raise ConfigError(f"capture set {name} lists targets but no knobs; add capture.knobs=[{{name:KNOB}}]")
    names = tuple(str(k.name) for k in knobs)
    if len(set(names)) != len(names):
        raise ConfigError(f"capture set {name}: knob names {list(names)} repeat; give every knob its own name")
    for k in knobs:
        if not k.minimum < k.maximum:
            raise ConfigError(
                f"capture set {name}: knob {k.name} has minimum {k.minimum:g} >= maximum {k.maximum:g}; fix its range"
            )
    rows = [_setting_row(name, t, knobs) for t in targets]
    for i, row in enumerate(rows):
        for j in range(i):
            if rows[j] == row:
                raise ConfigError(
                    f"capture set {name}: targets {targets[j].target} and {targets[i].target} have the same knob "
                    f"values {dict(zip(names, row))}; give each target its own setting"
                )
    values = np.array(rows, dtype=np.float64)
    held_out = _held_out(name, list(capture.holdout), values, names)
    training = values[~np.asarray(held_out)]
    for k, knob in enumerate(names):
        if len(np.unique(training[:, k])) < 2:
            raise ConfigError(
                f"capture set {name}: knob {knob} takes only the value {training[0, k]:g} in the training settings; "
                "a conditioned model needs at least two values of every knob (hold out fewer settings)"
            )
    return KnobSettings(
        names,
        tuple((float(k.minimum), float(k.maximum)) for k in knobs),
        tuple(str(t.target) for t in targets),
        values,
        held_out,
    )


def _setting_row(name: str, target: Any, knobs: list[Any]) -> tuple[float, ...]:
    given = dict(target.knobs)
    known = [str(k.name) for k in knobs]
    for key in given:
        if key not in known:
            raise ConfigError(
                f"capture set {name}: target {target.target} names unknown knob '{key}'; the set's knobs are "
                f"{', '.join(known)}"
            )
    row = []
    for k in knobs:
        if k.name not in given:
            raise ConfigError(
                f"capture set {name}: target {target.target} has no value for knob '{k.name}'; add "
                f"knobs: {{{k.name}: VALUE}} to it"
            )
        v = float(given[k.name])
        if not (math.isfinite(v) and k.minimum <= v <= k.maximum):
            raise ConfigError(
                f"capture set {name}: target {target.target} sets {k.name}={v:g}, outside the knob's declared "
                f"range [{k.minimum:g}, {k.maximum:g}]; fix the value or the range in capture.knobs"
            )
        row.append(v)
    return tuple(row)


def _held_out(name: str, holdout: list[float], values: np.ndarray, names: tuple[str, ...]) -> tuple[bool, ...]:
    mask = np.zeros(len(values), dtype=bool)
    if not holdout:
        return tuple(mask.tolist())
    if len(names) != 1:
        raise ConfigError(
            f"capture.holdout={holdout} needs a one-knob capture set, but {name} has knobs {', '.join(names)}; "
            "remove capture.holdout"
        )
    for h in holdout:
        hit = np.isclose(values[:, 0], float(h), rtol=0, atol=1e-9)
        if not hit.any():
            listed = ", ".join(f"{v:g}" for v in values[:, 0])
            raise ConfigError(
                f"capture.holdout value {h:g} is not a setting of capture set {name} ({names[0]} = {listed}); "
                "hold out one of those values"
            )
        mask |= hit
    if mask.all():
        raise ConfigError(
            f"capture.holdout={holdout} holds out every setting of capture set {name}; leave at least one "
            "setting to train on"
        )
    return tuple(mask.tolist())


@dataclass(frozen=True)
class CaptureSetting:
    """One setting of a prepared set: its knob values, the aligned target and its capture report."""

    target_path: str
    knobs: tuple[float, ...]
    y: np.ndarray
    report: CaptureReport
    held_out: bool

    def label(self, names: tuple[str, ...]) -> str:
        """`gain=0.5` (knobs joined by commas)."""
        return ",".join(f"{n}={v:g}" for n, v in zip(names, self.knobs))


@dataclass(frozen=True)
class SetLatency:
    """The set's one latency and the per-file evidence behind it (samples the targets lag the input)."""

    latency: int
    source: str  # "earliest onset" or "known"
    onsets: tuple[int, ...]  # each file's impulse-response onset (rtnt.capture.latency)
    arrivals: tuple[float, ...]  # each file's sub-sample arrival
    xcorr_peaks: tuple[int, ...]  # each file's cross-correlation peak, for comparison only

    def to_dict(self) -> dict[str, Any]:
        return {
            "latency_samples": self.latency,
            "source": self.source,
            "per_file_onsets": list(self.onsets),
            "per_file_arrivals": list(self.arrivals),
            "per_file_xcorr_peaks": list(self.xcorr_peaks),
        }


@dataclass(frozen=True)
class LevelTrend:
    """The aligned targets' RMS level against the (first) knob, in setting order."""

    knob: str
    values: tuple[float, ...]
    rms_dbfs: tuple[float, ...]

    @property
    def direction(self) -> str:
        """`rising`, `falling` or `not monotonic` as the knob goes up."""
        order = np.argsort(self.values)
        steps = np.diff(np.asarray(self.rms_dbfs)[order])
        if (steps > 0).all():
            return "rising"
        if (steps < 0).all():
            return "falling"
        return "not monotonic"

    def describe(self) -> str:
        pairs = ", ".join(f"{v:g}: {r:.1f}" for v, r in sorted(zip(self.values, self.rms_dbfs)))
        return f"target RMS dBFS by {self.knob} ({pairs}), {self.direction}"


@dataclass(frozen=True)
class PreparedCaptureSet:
    """A capture set aligned with one latency: the common dry input `x` and every setting's target, equal length."""

    name: str
    x: np.ndarray
    settings: tuple[CaptureSetting, ...]
    knob_names: tuple[str, ...]
    knob_ranges: tuple[tuple[float, float], ...]
    sample_rate: int
    latency: SetLatency
    polarity: int
    level_trend: LevelTrend
    warnings: list[str] = field(default_factory=list)

    @property
    def training(self) -> tuple[CaptureSetting, ...]:
        return tuple(s for s in self.settings if not s.held_out)

    @property
    def held_out(self) -> tuple[CaptureSetting, ...]:
        return tuple(s for s in self.settings if s.held_out)

    def cropped(self, n: int) -> PreparedCaptureSet:
        """The first `n` samples of the input and of every target."""
        settings = tuple(replace(s, y=s.y[:n]) for s in self.settings)
        return replace(self, x=self.x[:n], settings=settings)

    def to_dict(self) -> dict[str, Any]:
        """The set's report: latency evidence, level trend and every file's capture report."""
        return {
            "name": self.name,
            "knobs": [
                {"name": n, "minimum": lo, "maximum": hi} for n, (lo, hi) in zip(self.knob_names, self.knob_ranges)
            ],
            "sample_rate": self.sample_rate,
            "seconds": len(self.x) / self.sample_rate,
            "latency": self.latency.to_dict(),
            "polarity": self.polarity,
            "level_trend": {
                "knob": self.level_trend.knob,
                "values": list(self.level_trend.values),
                "rms_dbfs": list(self.level_trend.rms_dbfs),
                "direction": self.level_trend.direction,
            },
            "settings": [
                {"knobs": dict(zip(self.knob_names, s.knobs)), "held_out": s.held_out, "report": s.report.to_dict()}
                for s in self.settings
            ],
            "warnings": list(self.warnings),
        }


def xcorr_peak(x: np.ndarray, y: np.ndarray, sample_rate: int) -> int:
    """Lag in 0..XCORR_MAX_LAG of the largest |cross-correlation| over the first XCORR_SECONDS (reported only)."""
    n = min(len(x), len(y), int(XCORR_SECONDS * sample_rate))
    size = sfft.next_fast_len(n + XCORR_MAX_LAG + 1, real=True)
    c = sfft.irfft(sfft.rfft(y[:n], size) * np.conj(sfft.rfft(x[:n], size)), size)
    return int(np.argmax(np.abs(c[: XCORR_MAX_LAG + 1])))


def set_latency(
    name: str, reports: list[CaptureReport], xcorr: list[int], latency: Any, sample_rate: int
) -> SetLatency:
    """One latency for the set from each file's onset: the earliest (see the module docstring), or the known one."""
    onsets = tuple(r.estimate.latency_samples if r.estimate else r.latency_samples for r in reports)
    arrivals = tuple(float(r.estimate.arrival) if r.estimate else math.nan for r in reports)
    if latency != "auto":
        return SetLatency(int(latency), "known", onsets, arrivals, tuple(xcorr))
    chosen = tuple(r.latency_samples for r in reports)  # the onset plus capture.latency_nudge
    spread = max(chosen) - min(chosen)
    if spread > MAX_ONSET_SPREAD_MS * sample_rate / 1000:
        files = ", ".join(f"{r.target_path}: {lat}" for r, lat in zip(reports, chosen))
        raise CaptureError(
            f"capture set {name}: the per-file latencies disagree by {spread} samples ({files}); every target "
            "must be a render of the same input with the same delay, or pass the known one with capture.latency=N"
        )
    return SetLatency(min(chosen), "earliest onset", onsets, arrivals, tuple(xcorr))


def prepare_capture_set(capture: Any) -> PreparedCaptureSet:
    """Load, check and align a capture set (`cfg.capture` with `targets`); CaptureError/ConfigError on bad input."""
    c = capture
    layout = knob_settings(c)
    pairs = [
        load_capture_pair(
            c.input, t, channel=c.channel, resample=bool(c.resample), length_tolerance_s=float(c.length_tolerance_s)
        )
        for t in layout.targets
    ]
    _check_equal_lengths(c.name, pairs)
    sr = pairs[0].sample_rate
    reports = [inspect_configured(p, c) for p in pairs]
    lat = set_latency(c.name, reports, [xcorr_peak(p.x, p.y, sr) for p in pairs], c.latency, sr)
    reports = [
        replace(r, latency_samples=lat.latency, latency_ms=round(lat.latency / sr * 1e3, 4), latency_source=lat.source)
        for r in reports
    ]
    warnings = [f"{r.target_path}: {w}" for r in reports for w in r.warnings]
    polarities = [r.polarity for r in reports]
    polarity = 1 if sum(polarities) >= 0 else -1
    if len(set(polarities)) > 1:
        warnings.append(f"the settings' polarities disagree ({polarities}); using {polarity:+d} for all")
    aligned = [align(p.x, p.y, lat.latency) for p in pairs]
    x = aligned[0][0]
    ys = [polarity * y for _, y in aligned]
    if polarity < 0:
        warnings.append("inverted the targets' polarity so that they follow the input's")
    if c.trim_silence:
        bounds = [silence_bounds(x, y, sr, float(c.silence_threshold_db)) for y in ys]
        start, end = min(b[0] for b in bounds), max(b[1] for b in bounds)
        if (start, end) != (0, len(x)):
            warnings.append(f"trimmed silence: {start / sr:.2f} s at the start, {(len(x) - end) / sr:.2f} s at the end")
            x, ys = x[start:end], [y[start:end] for y in ys]
    if len(x) < float(c.min_seconds) * sr:
        raise CaptureError(
            f"capture set {c.name} is {len(x) / sr:.2f} s long after alignment and trimming, shorter than "
            f"capture.min_seconds={c.min_seconds:g}; record a longer performance"
        )
    settings = tuple(
        CaptureSetting(t, tuple(float(v) for v in row), np.ascontiguousarray(y, dtype=np.float32), r, bool(h))
        for t, row, y, r, h in zip(layout.targets, layout.values, ys, reports, layout.held_out)
    )
    trend = LevelTrend(
        layout.names[0], tuple(float(v) for v in layout.values[:, 0]), tuple(level_stats(y).rms_dbfs for y in ys)
    )
    log.info(
        "capture set %s: %d settings, latency %d samples (%s; per-file onsets %s, cross-correlation peaks %s), %s",
        c.name,
        len(settings),
        lat.latency,
        lat.source,
        list(lat.onsets),
        list(lat.xcorr_peaks),
        trend.describe(),
    )
    return PreparedCaptureSet(
        name=str(c.name),
        x=np.ascontiguousarray(x, dtype=np.float32),
        settings=settings,
        knob_names=layout.names,
        knob_ranges=layout.ranges,
        sample_rate=sr,
        latency=lat,
        polarity=polarity,
        level_trend=trend,
        warnings=warnings,
    )


def _check_equal_lengths(name: str, pairs: list[Any]) -> None:
    """Every target of a set is a render of one input: their files' lengths must be equal to the sample."""
    import soundfile as sf

    infos = [sf.info(p.target_path) for p in pairs]
    lengths = [round(i.frames * pairs[0].sample_rate / i.samplerate) for i in infos]  # in output samples
    for p, n in zip(pairs[1:], lengths[1:]):
        if n != lengths[0]:
            raise CaptureError(
                f"capture set {name}: target {p.target_path} has {n} samples but {pairs[0].target_path} has "
                f"{lengths[0]}; render every setting from the same dry input with the same start and end"
            )
