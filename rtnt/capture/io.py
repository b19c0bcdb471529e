"""Load a paired capture (dry DI + device output) as float32 mono arrays at one sample rate."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from math import gcd
from pathlib import Path

import numpy as np
import soundfile as sf
from scipy.signal import resample_poly

from rtnt.constants import SAMPLE_RATE
from rtnt.errors import CaptureError

log = logging.getLogger(__name__)

CLIP_LEVEL = 0.999  # |sample| at or above this counts as full scale
CLIP_RUN = 3  # consecutive full-scale samples that indicate clipping rather than a normalised peak
SILENT_PEAK = 1e-5  # -100 dBFS: a file whose peak is below this carries no signal


@dataclass
class CapturePair:
    """Dry input `x` and target `y`, equal length, float32 mono."""

    x: np.ndarray
    y: np.ndarray
    sample_rate: int
    input_path: str
    target_path: str
    warnings: list[str] = field(default_factory=list)


def read_mono(
    path: str | Path, role: str = "input", channel: int | None = None, *, option: str | None = None
) -> tuple[np.ndarray, int]:
    """Read one channel of an audio file as float32; reject missing, unreadable, non-finite or silent files.

    `option`: how the user names this file, for the fix in the errors (default `capture.<role>`)."""
    path = Path(path)
    if not path.is_file():
        raise CaptureError(f"{role} file not found: {path}; check the path ({option or f'capture.{role}'}=PATH)")
    try:
        data, rate = sf.read(str(path), dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, TypeError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise CaptureError(
            f"cannot read {role} file {path} as audio ({reason}); export it as WAV, FLAC or AIFF"
        ) from None
    n_ch = data.shape[1]
    if channel is None and n_ch != 1:
        raise CaptureError(f"{role} file {path} has {n_ch} channels; choose one with capture.channel=N (0..{n_ch - 1})")
    if channel is not None and not 0 <= channel < n_ch:
        raise CaptureError(
            f"capture.channel={channel} is out of range for {role} file {path} with {n_ch} channel(s); "
            f"use 0..{n_ch - 1}"
        )
    mono = np.ascontiguousarray(data[:, 0 if channel is None else channel])
    _check_finite_and_signal(mono, path, role, rate)
    return mono, rate


def _check_finite_and_signal(a: np.ndarray, path: Path, role: str, rate: int) -> None:
    bad = ~np.isfinite(a)
    if bad.any():
        first = int(np.argmax(bad))
        raise CaptureError(
            f"{role} file {path} contains NaN or Inf samples (first at {first / rate:.3f} s); re-export it from the DAW"
        )
    if a.size == 0 or float(np.max(np.abs(a))) < SILENT_PEAK:
        raise CaptureError(
            f"{role} file {path} is silent (peak below -100 dBFS); check that the right track was exported"
        )


def clipped_runs(a: np.ndarray) -> int:
    """Number of runs of at least CLIP_RUN consecutive full-scale samples."""
    hot = np.abs(a) >= CLIP_LEVEL
    if not hot.any():
        return 0
    edges = np.diff(np.concatenate(([0], hot.astype(np.int8), [0])))
    starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    return int(np.count_nonzero(ends - starts >= CLIP_RUN))


def _resample(a: np.ndarray, rate: int, target_rate: int) -> np.ndarray:
    g = gcd(rate, target_rate)
    return resample_poly(a, target_rate // g, rate // g).astype(np.float32)


def load_capture_pair(
    input_path: str | Path,
    target_path: str | Path,
    *,
    channel: int | None = None,
    resample: bool = False,
    length_tolerance_s: float = 0.5,
    sample_rate: int = SAMPLE_RATE,
) -> CapturePair:
    """Read, check and equalise a capture pair; raise CaptureError with a one-line fix on bad input."""
    ip, tp = Path(input_path), Path(target_path)
    x, rx = read_mono(ip, "input", channel)
    y, ry = read_mono(tp, "target", channel)
    warnings: list[str] = []

    if not resample:
        if rx != ry:
            raise CaptureError(
                f"input {ip} is {rx} Hz but target {tp} is {ry} Hz; export both at {sample_rate} Hz "
                "or pass capture.resample=true"
            )
        if rx != sample_rate:
            raise CaptureError(
                f"capture files are {rx} Hz but rtnt needs {sample_rate} Hz ({ip}); export at "
                f"{sample_rate} Hz or pass capture.resample=true"
            )
    for name, path, rate in (("input", ip, rx), ("target", tp, ry)):
        if rate != sample_rate:
            msg = f"resampled {name} {path} from {rate} Hz to {sample_rate} Hz"
            warnings.append(msg)
            log.warning(msg)
    if rx != sample_rate:
        x = _resample(x, rx, sample_rate)
    if ry != sample_rate:
        y = _resample(y, ry, sample_rate)

    diff_s = (len(y) - len(x)) / sample_rate
    if abs(diff_s) > length_tolerance_s:
        relation = "longer" if diff_s > 0 else "shorter"
        raise CaptureError(
            f"target {tp} is {abs(diff_s):.3f} s {relation} than input {ip} (tolerance "
            f"{length_tolerance_s} s); export both from the same start and end, or raise capture.length_tolerance_s"
        )
    if len(y) != len(x):
        n = min(len(x), len(y))
        which = "target" if len(y) > n else "input"
        msg = f"trimmed the {which} by {abs(len(y) - len(x))} samples to the other file's length"
        warnings.append(msg)
        log.info(msg)
        x, y = x[:n], y[:n]

    for name, path, a in (("input", ip, x), ("target", tp, y)):
        runs = clipped_runs(a)
        if runs:
            msg = (
                f"{name} {path} clips ({runs} run(s) of >= {CLIP_RUN} full-scale samples); "
                "re-record with less gain for an accurate model"
            )
            warnings.append(msg)
            log.warning(msg)

    return CapturePair(
        x=np.ascontiguousarray(x, dtype=np.float32),
        y=np.ascontiguousarray(y, dtype=np.float32),
        sample_rate=sample_rate,
        input_path=str(ip),
        target_path=str(tp),
        warnings=warnings,
    )
