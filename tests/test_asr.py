"""The aliasing-to-signal ratio on cases whose answer is known (arXiv 2505.04082)."""

import numpy as np
import pytest
from scipy import signal

from rtnt.errors import ConfigError
from rtnt.metrics.asr import (
    aliasing_to_signal_ratio,
    harmonic_bins,
    largest_prime_at_most,
    midi_to_hz,
    render_asr_probes,
    sine_probe,
)
from rtnt.plots import asr_plots

SR = 48000
CLIP = 0.1  # hard-clipper threshold; a -3 dBFS probe is clipped hard


def hard_clip(x: np.ndarray) -> np.ndarray:
    return np.clip(x, -CLIP, CLIP)


def oversampled_clip(x: np.ndarray, factor: int = 8) -> np.ndarray:
    """The clipper at factor × the rate: zero-stuff, causal Kaiser FIR, clip, same FIR, keep every factor-th.

    Both filters pass 21 kHz and stop above 24 kHz at about 100 dB (Kaiser beta 10, 511 taps).
    """
    fir = signal.firwin(511, 22000, fs=factor * SR, window=("kaiser", 10.0))
    up = np.zeros(factor * x.size)
    up[::factor] = factor * x
    up = signal.oaconvolve(up, fir)[: up.size]
    return signal.oaconvolve(hard_clip(up), fir)[: up.size][::factor].astype(np.float32)


def test_probe_is_exactly_periodic_and_prime_length():
    n = largest_prime_at_most(24000)
    assert n == 23993
    x = sine_probe(17, n, 3 * n, -6.0)
    assert np.array_equal(x[:n], x[n : 2 * n]) and np.array_equal(x[:n], x[2 * n :])
    assert np.isclose(np.max(np.abs(x)), 10 ** (-6 / 20), rtol=1e-3)


def test_pure_tone_has_no_aliasing_and_broadband_noise_does():
    n = 23993
    assert aliasing_to_signal_ratio(sine_probe(101, n, n, -12.0), 101)[0] < 1e-12
    noise = np.random.default_rng(0).standard_normal(n)
    assert aliasing_to_signal_ratio(noise, 101)[0] > 10.0  # nearly all bins are non-harmonic


def test_linear_filter_is_at_the_numerical_floor():
    b, a = signal.butter(4, 5000, fs=SR)
    report = render_asr_probes(lambda x: signal.lfilter(b, a, x).astype(np.float32), SR, runtime="test")
    assert len(report.probes) == 6 * 3
    assert report.asr_max < 1e-9


def test_memoryless_cube_at_low_f0_is_at_the_floor():
    # MIDI 40 (82 Hz): x^3 has only the 1st and 3rd harmonics, far below Nyquist.
    report = render_asr_probes(lambda x: x**3, SR, midi_notes=[40, 45], runtime="test")
    assert report.asr_max < 1e-9


def test_hard_clipper_at_high_f0_aliases_and_8x_oversampling_removes_it():
    kwargs = dict(sample_rate=SR, midi_notes=[100], levels_dbfs=[-3.0], runtime="test")
    direct = render_asr_probes(hard_clip, **kwargs)
    oversampled = render_asr_probes(oversampled_clip, **kwargs)
    assert direct.asr_max > 1e-3  # measured about -22.6 dB
    assert oversampled.asr_max_db <= direct.asr_max_db - 20.0  # measured about 40 dB lower


def test_report_aggregates_rows_and_plots(tmp_path):
    report = render_asr_probes(hard_clip, SR, midi_notes=[64, 100], levels_dbfs=[-24.0, -3.0], runtime="native")
    frame = report.to_frame()
    assert list(frame.columns[:5]) == ["midi", "f0", "level_dbfs", "asr", "asr_db"]
    assert len(frame) == 4
    assert np.isclose(report.asr_mean, frame["asr"].mean())
    assert np.isclose(report.asr_mean_db, 10 * np.log10(frame["asr"].mean()))
    assert report.asr_max == frame["asr"].max() == report.worst.asr
    assert abs(report.worst.f0 - midi_to_hz(report.worst.midi)) <= SR / (2 * report.dft_length)
    d = report.to_dict()
    assert d["runtime"] == "native" and d["worst"]["midi"] == report.worst.midi and len(d["probes"]) == 4
    assert set(report.metrics()) == {"asr_mean", "asr_max", "asr_mean_db", "asr_max_db"}
    for path in asr_plots(report, tmp_path):
        assert path.exists() and path.stat().st_size > 1000


def test_harmonic_bins_stop_below_nyquist():
    assert list(harmonic_bins(3000, 23993)) == [3000, 6000, 9000]


def test_non_finite_output_gives_nan_and_bad_probe_set_is_a_config_error():
    report = render_asr_probes(lambda x: np.full_like(x, np.nan), SR, midi_notes=[60], levels_dbfs=[-12.0], runtime="t")
    assert np.isnan(report.asr_mean)
    with pytest.raises(ConfigError, match="midi_notes"):
        render_asr_probes(hard_clip, SR, midi_notes=[140], runtime="t")
