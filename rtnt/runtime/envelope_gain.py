"""Envelope gain: an output dynamics stage after a `.nam` network, and the numpy reference of rtnt's
"nam-envelope-gain-1" files (docs/envelope_gain_format.md; native: native/include/rtnt/envelope_gain/).

The stage is a compressor's kind of gain computer (Giannoulis, Massberg and Reiss, "Digital Dynamic Range
Compressor Design: A Tutorial and Analysis", JAES 2012: a level detector with attack and release, then a gain
that is a function of the detected level in dB), here with a peak detector and a power level and a gain
linear in both, in dB. It gives a model the seconds-long memory of an amp's compression release, which a
WaveNet's receptive field (85 ms for A1 standard) cannot hold.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import scipy.signal

from rtnt.errors import ModelJsonError
from rtnt.runtime.model_file import read_model_document

FORMAT = "nam-envelope-gain-1"
"""The top-level `rtnt_format` of a `.nam` network followed by an envelope gain."""

BOUNDS: Mapping[str, tuple[float, float]] = {
    "attack_ms": (0.01, 1000.0),
    "release_ms": (0.1, 60000.0),
    "level_ms": (0.1, 60000.0),
    "floor_db": (-160.0, -20.0),
    "max_gain_db": (0.0, 40.0),
}
"""The range of each time constant and bound, the native loader's."""

MAX_WEIGHT = 1000.0
SETTLING_TIME_CONSTANTS = 10.0
"""The stage's memory has no end; its settling span, this many of its longest time constant, is where its state's
dependence on where it started falls below e^-10: the history a region needs to be scored as in one pass."""


@dataclass(frozen=True)
class EnvelopeGainSpec:
    """gain dB = clamp(w0 + w_peak * peak dB + w_level * level dB, +/- max_gain_db), both envelopes read no lower
    than floor_db. The peak follower rises with `attack_ms` and falls with `release_ms`; the level is a one-pole
    smoother of x^2 with `level_ms`. Weights all zero: unity gain."""

    attack_ms: float = 1.0
    release_ms: float = 300.0
    level_ms: float = 100.0
    floor_db: float = -80.0
    max_gain_db: float = 12.0
    weights: tuple[float, float, float] = field(default=(0.0, 0.0, 0.0))

    def settling_samples(self, sample_rate: float) -> int:
        """SETTLING_TIME_CONSTANTS of the longest time constant, in samples (the native layer's lookback)."""
        longest_ms = max(self.attack_ms, self.release_ms, self.level_ms)
        return math.ceil(SETTLING_TIME_CONSTANTS * longest_ms * sample_rate / 1000.0)

    def to_json(self) -> dict[str, Any]:
        return {**{k: float(getattr(self, k)) for k in BOUNDS}, "weights": [float(w) for w in self.weights]}

    @classmethod
    def from_json(cls, obj: Any, source: str) -> EnvelopeGainSpec:
        """The spec of a file's `envelope_gain` object, with the native loader's checks as one-line errors."""
        fix = "re-export the model (docs/envelope_gain_format.md)"
        if not isinstance(obj, dict):
            raise ModelJsonError(f"{source}: 'envelope_gain' is missing or not an object; {fix}")
        unknown = sorted(set(obj) - {*BOUNDS, "weights"})
        if unknown:
            raise ModelJsonError(
                f"{source}: 'envelope_gain' has an unknown member '{unknown[0]}' (known: {', '.join(BOUNDS)}, weights)"
            )
        values = {}
        for key, (lo, hi) in BOUNDS.items():
            v = obj.get(key)
            if not _finite_number(v) or not lo <= v <= hi:
                raise ModelJsonError(f"{source}: 'envelope_gain.{key}' must be a number in [{lo:g}, {hi:g}]; {fix}")
            values[key] = float(v)
        w = obj.get("weights")
        if not isinstance(w, list) or len(w) != 3:
            raise ModelJsonError(
                f"{source}: 'envelope_gain.weights' must be an array of 3 numbers "
                "(dB offset, per peak dB, per level dB)"
            )
        for i, v in enumerate(w):
            if not _finite_number(v) or abs(v) > MAX_WEIGHT:
                raise ModelJsonError(f"{source}: 'envelope_gain.weights[{i}]' must be a finite number in [-1000, 1000]")
        return cls(**values, weights=(float(w[0]), float(w[1]), float(w[2])))


def _finite_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


@dataclass
class EnvelopeState:
    """The stage's state: the peak follower's and the power level's last values (zero after reset)."""

    peak: float = 0.0
    level: float = 0.0


def _coefficient(ms: float, sample_rate: float) -> float:
    return math.exp(-1000.0 / (ms * sample_rate))


def envelopes_db(
    y: np.ndarray, spec: EnvelopeGainSpec, sample_rate: float, state: EnvelopeState | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """(peak dB, level dB) of `y` per sample, floored at spec.floor_db, continuing from `state` (updated in place;
    zero when None). Float64."""
    state = state if state is not None else EnvelopeState()
    y = np.asarray(y, dtype=np.float64)
    rise, fall = _coefficient(spec.attack_ms, sample_rate), _coefficient(spec.release_ms, sample_rate)
    peak = np.empty(len(y))
    p = state.peak
    for i, v in enumerate(np.abs(y).tolist()):  # a branch per sample: attack or release
        k = rise if v > p else fall
        p = k * p + (1.0 - k) * v
        peak[i] = p
    keep = _coefficient(spec.level_ms, sample_rate)
    level, _ = scipy.signal.lfilter([1.0 - keep], [1.0, -keep], y * y, zi=[keep * state.level])
    if len(y):
        state.peak, state.level = p, float(level[-1])
    floor = spec.floor_db
    with np.errstate(divide="ignore"):
        return np.maximum(20 * np.log10(peak), floor), np.maximum(10 * np.log10(level), floor)


def gain_db(peak_db: np.ndarray, level_db: np.ndarray, spec: EnvelopeGainSpec) -> np.ndarray:
    """The stage's gain in dB from the two envelopes, clamped to +/- max_gain_db."""
    w0, w_peak, w_level = spec.weights
    return np.clip(w0 + w_peak * peak_db + w_level * level_db, -spec.max_gain_db, spec.max_gain_db)


class EnvelopeGain:
    """The stage as a streaming reference: `process(y)` continues from the state the last call left."""

    def __init__(self, spec: EnvelopeGainSpec, sample_rate: float):
        self.spec, self.sample_rate = spec, sample_rate
        self.state = EnvelopeState()

    def reset(self) -> None:
        self.state = EnvelopeState()

    def process(self, y: np.ndarray) -> np.ndarray:
        peak_db, level_db = envelopes_db(y, self.spec, self.sample_rate, self.state)
        out = np.asarray(y, dtype=np.float64) * 10 ** (gain_db(peak_db, level_db, self.spec) / 20)
        return out.astype(np.float32)


def is_envelope_gain_document(doc: Any) -> bool:
    """Whether a parsed model document is an rtnt "nam-envelope-gain-1" file."""
    return isinstance(doc, dict) and doc.get("rtnt_format") == FORMAT


def is_envelope_gain_file(path: str | Path) -> bool:
    """Whether the file at `path` is an rtnt "nam-envelope-gain-1" file (False for any unreadable file)."""
    try:
        return is_envelope_gain_document(read_model_document(Path(path)))
    except ModelJsonError:
        return False


class NamEnvelopeGainModel:
    """Reference runtime of a "nam-envelope-gain-1" file: the `.nam` under `nam` (rtnt.runtime.nam_reference),
    then the envelope gain. `reset()` zeroes both and, with `prewarm`, runs the network's receptive field of
    silence through the whole chain, as the native runtime does."""

    def __init__(self, net: Any, stage: EnvelopeGain, prewarm: bool):
        self.net, self.stage, self.prewarm = net, stage, prewarm
        self.controls: list[Any] = []
        self.reset()

    @classmethod
    def from_file(cls, path: str | Path, *, prewarm: bool = True) -> NamEnvelopeGainModel:
        return cls.from_dict(read_model_document(Path(path)), prewarm=prewarm, source=str(path))

    @classmethod
    def from_dict(cls, doc: Any, *, prewarm: bool = True, source: str = "model") -> NamEnvelopeGainModel:
        from rtnt.runtime.nam_reference import NamModel

        if not is_envelope_gain_document(doc):
            raise ModelJsonError(f"{source}: not a \"{FORMAT}\" file (its 'rtnt_format' differs); re-export the model")
        spec = EnvelopeGainSpec.from_json(doc.get("envelope_gain"), source)
        nam = doc.get("nam")
        if not isinstance(nam, dict):
            raise ModelJsonError(f"{source}: 'nam' is missing or not a .nam model object; re-export the model")
        net = NamModel.from_dict(nam, prewarm=False, source=f"{source} 'nam'")
        if net.controls:
            raise ModelJsonError(
                f"{source}: 'nam' must be a mono, unconditioned model: an envelope gain follows one output"
            )
        rate = nam.get("sample_rate")
        if not _finite_number(rate) or rate <= 0:
            raise ModelJsonError(f"{source}: 'nam' declares no sample_rate; the envelope gain's time constants need it")
        return cls(net, EnvelopeGain(spec, float(rate)), prewarm)

    @property
    def receptive_field(self) -> int:
        """The network's receptive field plus the stage's settling span, as the native runtime reports it."""
        return self.net.receptive_field + self.stage.spec.settling_samples(self.stage.sample_rate)

    def reset(self) -> None:
        self.net.reset()
        self.stage.reset()
        if self.prewarm:  # the network's prewarm length (NAM Core's), run through the whole chain
            self.process(np.zeros(self.net.receptive_field, dtype=np.float32))

    def process(self, x: np.ndarray) -> np.ndarray:
        return self.stage.process(self.net.process(np.asarray(x, dtype=np.float32)))
