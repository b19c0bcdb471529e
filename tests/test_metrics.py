"""ESR, pre-emphasised ESR, MR-STFT, BS.1770 loudness, DC offset and the preview window and files."""

import numpy as np
import pytest
import soundfile as sf

from rtnt.metrics.esr import esr, esr_preemph, pre_emphasis
from rtnt.metrics.levels import dc_offset, integrated_loudness, k_weighting, loudness_difference_db
from rtnt.metrics.preview import pick_preview_window, preview_metrics, write_preview_wavs
from rtnt.metrics.stft import mrstft_distance
from rtnt.plots import residual_spectrum

SR = 48000
RNG = np.random.default_rng(0)


def tone(freq: float, seconds: float, amp: float = 0.5) -> np.ndarray:
    t = np.arange(int(seconds * SR)) / SR
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def test_esr_definition():
    y = RNG.standard_normal(1000)
    assert esr(y, y) == 0.0
    assert esr(y, np.zeros_like(y)) == pytest.approx(1.0)
    assert esr(y, 0.9 * y) == pytest.approx(0.01)
    assert esr(np.zeros(10), np.zeros(10)) == 0.0 and esr(np.zeros(10), np.ones(10)) == np.inf
    with pytest.raises(ValueError):
        esr(y, y[:-1])


def test_pre_emphasis_weights_high_frequencies():
    x = np.array([1.0, 2.0, 3.0])
    assert np.allclose(pre_emphasis(x, 0.85), [1.0, 2.0 - 0.85, 3.0 - 1.7])
    y = tone(100, 1.0) + tone(8000, 1.0)
    low_error, high_error = y - tone(100, 1.0, 0.05), y - tone(8000, 1.0, 0.05)
    # the same error energy counts more at 8 kHz than at 100 Hz once pre-emphasised
    assert esr(y, low_error) == pytest.approx(esr(y, high_error), rel=1e-3)
    assert esr_preemph(y, high_error) > 10 * esr_preemph(y, low_error)


def test_mrstft_zero_for_identity_and_grows_with_error():
    y = RNG.standard_normal(SR // 2).astype(np.float32)
    assert mrstft_distance(y, y, SR) == pytest.approx(0.0, abs=1e-12)
    small = mrstft_distance(y, y + 0.01 * RNG.standard_normal(y.size), SR)
    large = mrstft_distance(y, y + 0.3 * RNG.standard_normal(y.size), SR)
    assert 0 < small < large
    # insensitive to a sign flip, unlike ESR
    assert mrstft_distance(y, -y, SR) == pytest.approx(0.0, abs=1e-9)
    assert mrstft_distance(y[:100], y[:100] * 0.5, SR) > 0  # shorter than the largest FFT


def test_k_weighting_matches_bs1770_coefficients_and_loudness():
    (sb, sa), (hb, ha) = k_weighting(48000)
    assert np.allclose(sb, [1.53512485958697, -2.69169618940638, 1.19839281085285], atol=1e-12)
    assert np.allclose(sa, [1.0, -1.69065929318241, 0.73248077421585], atol=1e-12)
    assert np.allclose(hb, [1.0, -2.0, 1.0]) and np.allclose(ha, [1.0, -1.99004745483398, 0.99007225036621], atol=1e-12)
    # BS.1770: a full-scale 997 Hz sine in one channel reads -3.01 LUFS
    assert integrated_loudness(tone(997, 5.0, 1.0), SR) == pytest.approx(-3.01, abs=0.01)
    assert loudness_difference_db(tone(997, 5.0), tone(997, 5.0, 0.25), SR) == pytest.approx(-6.02, abs=0.01)
    assert integrated_loudness(np.zeros(SR), SR) == -np.inf


def test_dc_offset_and_preview_metrics_keys():
    y = tone(220, 2.0)
    assert dc_offset(y + 0.1) == pytest.approx(0.1, abs=1e-6)
    m = preview_metrics(y, 0.9 * y + 0.01, SR)
    assert set(m) == {"esr", "esr_preemph", "mrstft", "dc_offset", "loudness_diff_db"}
    assert m["dc_offset"] == pytest.approx(0.01, abs=1e-6)
    assert m["loudness_diff_db"] == pytest.approx(20 * np.log10(0.9), abs=0.05)
    assert m["esr"] > 0.01 and m["mrstft"] > 0


def plucks(seconds: float, period: float) -> np.ndarray:
    """Plucked notes every `period` s, decaying with a 0.2 s time constant."""
    out = np.zeros(int(seconds * SR), dtype=np.float32)
    t = np.arange(int(period * SR)) / SR
    note = (0.5 * np.exp(-t / 0.2) * np.sin(2 * np.pi * 196 * t)).astype(np.float32)
    for start in range(0, out.size - note.size + 1, note.size):
        out[start : start + note.size] = note
    return out


def test_preview_window_finds_attacks_and_decays():
    # 12 s of a steady drone, 12 s of plucks, 16 s of drone: the window must sit on the plucks.
    x = np.concatenate([tone(110, 12.0, 0.3), plucks(12.0, 1.5), tone(110, 16.0, 0.3)])
    w = pick_preview_window(x, SR, seconds=10.0)
    assert w.stop - w.start == 10 * SR
    assert 11.0 * SR <= w.start <= 14.0 * SR
    short = tone(110, 3.0)
    assert pick_preview_window(short, SR) == slice(0, short.size)


def test_preview_files(tmp_path):
    x = plucks(3.0, 1.0)
    y = np.tanh(3 * x)
    p = 0.95 * y
    paths = write_preview_wavs(tmp_path, x, y, p, SR, slice(SR, 2 * SR))
    assert [q.name for q in paths] == ["input.wav", "target.wav", "prediction.wav", "residual.wav"]
    residual, sr = sf.read(paths[-1], dtype="float32")
    assert sr == SR and residual.size == SR
    assert np.allclose(residual, (y - p)[SR : 2 * SR], atol=1e-7)
    plot = residual_spectrum(y, p, SR, tmp_path / "plots" / "residual.png")
    assert plot.exists() and plot.stat().st_size > 1000
