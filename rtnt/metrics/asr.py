"""Aliasing-to-signal ratio (ASR) of a nonlinear audio model, measured with sine probes.

Definition: "Aliasing Reduction in Neural Amp Modeling by Smoothing Activations"
(arXiv 2505.04082). For a sine probe at f0, E_H is the output energy at the harmonics k·f0
below Nyquist (DC excluded) and E_A all other output energy except DC (folded harmonics and
any other non-harmonic content). ASR = E_A / E_H; it is an energy ratio, so dB = 10 log10.

Probe design (exact-period, prime length): the analysis DFT length N is the largest prime
not above analysis_seconds · fs, and each probe's frequency is rounded to the DFT bin
k0 = round(f_nominal · N / fs), f0 = k0 · fs / N (so the rounding is at most fs / 2N, 1 Hz at
48 kHz and 0.5 s). The probe then has exactly k0 periods in N samples: a model in steady state
produces an N-periodic output whose energy lies exactly on DFT bins, so a rectangular window
has no leakage. Because N is prime, gcd(k0, N) = 1 and a harmonic m·k0 folds to a bin
±(m·k0 - j·N) that is never a harmonic bin for j < k0: aliases cannot hide under harmonics
(as they would for, say, 1 kHz at 48 kHz). The probe is rendered for settle_seconds +
N / fs from a fresh state and the first settle samples are discarded. Probe levels are the
sine's peak amplitude in dBFS (0 dBFS = peak 1.0). Energies are summed in float64; float32
renders of a linear filter or of x^3 below Nyquist measure 1e-15 to 1e-14 (the tests assert < 1e-9).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

import numpy as np

from rtnt.constants import SAMPLE_RATE
from rtnt.errors import ConfigError

if TYPE_CHECKING:
    import pandas as pd

DEFAULT_MIDI_NOTES = (40, 52, 64, 76, 88, 100)
DEFAULT_LEVELS_DBFS = (-24.0, -12.0, -3.0)


def largest_prime_at_most(n: int) -> int:
    """Largest prime p <= n (n >= 2), by trial division."""
    for p in range(n, 1, -1):
        if p < 4 or (p % 2 and all(p % d for d in range(3, math.isqrt(p) + 1, 2))):
            return p
    raise ValueError(f"no prime <= {n}")


def midi_to_hz(midi: float) -> float:
    """Equal-tempered frequency, A4 (MIDI 69) = 440 Hz."""
    return 440.0 * 2.0 ** ((midi - 69.0) / 12.0)


def probe_bin(f_nominal: float, sample_rate: int, dft_length: int) -> int:
    """DFT bin k0 nearest `f_nominal`; the probe frequency is then k0 · sample_rate / dft_length."""
    return max(1, int(round(f_nominal * dft_length / sample_rate)))


def sine_probe(f0_bin: int, dft_length: int, total_length: int, level_dbfs: float) -> np.ndarray:
    """float32 sine with exactly f0_bin periods per dft_length samples, peak level in dBFS, phase 0.

    The phase index is reduced modulo dft_length in integers, so the samples are exactly periodic.
    """
    n = np.arange(total_length, dtype=np.int64)
    phase = 2.0 * np.pi * ((f0_bin * n) % dft_length) / dft_length
    return (10.0 ** (level_dbfs / 20.0) * np.sin(phase)).astype(np.float32)


def harmonic_bins(f0_bin: int, dft_length: int) -> np.ndarray:
    """Bins k·f0_bin, k >= 1, strictly below Nyquist."""
    return np.arange(f0_bin, (dft_length + 1) // 2, f0_bin)


def aliasing_to_signal_ratio(frame: np.ndarray, f0_bin: int) -> tuple[float, float, float]:
    """(ASR, E_A, E_H) of one steady-state output frame whose probe has f0_bin periods in the frame.

    E_H sums the one-sided power at bins k·f0_bin below Nyquist, E_A all other bins but DC
    (arXiv 2505.04082). ASR is nan when both energies are zero or the frame is not finite,
    inf when only E_H is zero.
    """
    frame = np.asarray(frame, dtype=np.float64)
    if not np.all(np.isfinite(frame)):
        return float("nan"), float("nan"), float("nan")
    power = np.abs(np.fft.rfft(frame)) ** 2
    harmonic = np.zeros(power.size, dtype=bool)
    harmonic[harmonic_bins(f0_bin, frame.size)] = True
    other = ~harmonic
    other[0] = False  # DC is neither signal nor aliasing
    e_h, e_a = float(power[harmonic].sum()), float(power[other].sum())
    if e_h == 0.0:
        return (float("nan") if e_a == 0.0 else float("inf")), e_a, e_h
    return e_a / e_h, e_a, e_h


def _db(ratio: float) -> float:
    with np.errstate(divide="ignore", invalid="ignore"):
        return float(10.0 * np.log10(ratio))


@dataclass(frozen=True)
class AsrProbe:
    """One probe's result: MIDI note, exact probe frequency, level and its ASR."""

    midi: int
    f0: float
    level_dbfs: float
    asr: float
    asr_db: float
    energy_alias: float
    energy_harmonic: float


@dataclass
class AsrReport:
    """ASR of every probe plus the worst probe's output spectrum, and the runtime that rendered it."""

    probes: list[AsrProbe]
    runtime: str
    sample_rate: int
    dft_length: int
    settle_seconds: float
    worst_spectrum_db: np.ndarray  # one-sided power of the worst probe, dB re its fundamental
    worst_f0_bin: int

    @property
    def asr_mean(self) -> float:
        """Mean of the linear ASR over probes (nan if any probe is nan)."""
        return float(np.mean([p.asr for p in self.probes]))

    @property
    def asr_max(self) -> float:
        return float(np.max([p.asr for p in self.probes]))

    @property
    def asr_mean_db(self) -> float:
        """10 log10 of the linear mean (not the mean of the dB values)."""
        return _db(self.asr_mean)

    @property
    def asr_max_db(self) -> float:
        return _db(self.asr_max)

    @property
    def worst(self) -> AsrProbe:
        """The probe with the largest ASR (the first non-finite one, if any)."""
        return self.probes[int(np.argmax([p.asr for p in self.probes]))]

    def metrics(self) -> dict[str, float]:
        """MLflow metrics asr_mean, asr_max, asr_mean_db, asr_max_db."""
        return {
            "asr_mean": self.asr_mean,
            "asr_max": self.asr_max,
            "asr_mean_db": self.asr_mean_db,
            "asr_max_db": self.asr_max_db,
        }

    def to_frame(self) -> pd.DataFrame:
        """One row per probe: midi, f0, level_dbfs, asr, asr_db, energy_alias, energy_harmonic."""
        import pandas as pd

        return pd.DataFrame([asdict(p) for p in self.probes])

    def to_dict(self) -> dict:
        """JSON-ready summary: probe set, runtime, aggregate metrics, worst probe and all rows."""
        return {
            "runtime": self.runtime,
            "sample_rate": self.sample_rate,
            "dft_length": self.dft_length,
            "settle_seconds": self.settle_seconds,
            **self.metrics(),
            "worst": asdict(self.worst),
            "probes": [asdict(p) for p in self.probes],
        }


def render_asr_probes(
    process: Callable[[np.ndarray], np.ndarray],
    sample_rate: int = SAMPLE_RATE,
    midi_notes: Sequence[int] = DEFAULT_MIDI_NOTES,
    levels_dbfs: Sequence[float] = DEFAULT_LEVELS_DBFS,
    settle_seconds: float = 0.25,
    analysis_seconds: float = 0.5,
    *,
    runtime: str,
) -> AsrReport:
    """Render a sine probe at every pitch × level through `process` and measure its ASR.

    `process` maps one 1-D float32 probe to the model's output of the same length, starting
    from a fresh state each call (the caller resets the model). `runtime` names what rendered
    the probes, e.g. "native" or "reference (native runtime unavailable)".
    """
    if analysis_seconds * sample_rate < 64:
        raise ConfigError(
            f"config validate.asr.analysis_seconds={analysis_seconds!r} is invalid: needs at least 64 samples; raise it"
        )
    if settle_seconds < 0:
        raise ConfigError(f"config validate.asr.settle_seconds={settle_seconds!r} is invalid: must be >= 0")
    if not midi_notes or not levels_dbfs:
        raise ConfigError(
            "config validate.asr needs at least one MIDI note and one level; set midi_notes and levels_dbfs"
        )
    n = largest_prime_at_most(int(round(analysis_seconds * sample_rate)))
    settle = int(round(settle_seconds * sample_rate))
    probes: list[AsrProbe] = []
    spectra: list[tuple[np.ndarray, int]] = []
    for midi in midi_notes:
        k0 = probe_bin(midi_to_hz(midi), sample_rate, n)
        if 2 * k0 >= n:
            raise ConfigError(
                f"config validate.asr.midi_notes contains {midi} ({midi_to_hz(midi):.0f} Hz), "
                f"at or above Nyquist of {sample_rate} Hz; remove it"
            )
        for level in levels_dbfs:
            x = sine_probe(k0, n, settle + n, float(level))
            y = np.asarray(process(x)).ravel()
            if y.size != x.size:
                raise ValueError(f"process returned {y.size} samples for a {x.size}-sample probe")
            frame = y[settle:].astype(np.float64)
            asr, e_a, e_h = aliasing_to_signal_ratio(frame, k0)
            probes.append(AsrProbe(int(midi), k0 * sample_rate / n, float(level), asr, _db(asr), e_a, e_h))
            spectra.append((frame, k0))
    worst_index = int(np.argmax([p.asr for p in probes]))
    frame, k0 = spectra[worst_index]
    power = np.abs(np.fft.rfft(frame)) ** 2
    with np.errstate(divide="ignore", invalid="ignore"):
        spectrum_db = 10.0 * np.log10(power / power[k0])
    return AsrReport(probes, runtime, sample_rate, n, settle_seconds, spectrum_db, k0)
