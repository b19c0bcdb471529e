"""Latency estimation: synthetic devices with known delay, shifted real captures, blips, non-causal targets."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import scipy.signal as ss
import soundfile as sf

from rtnt.capture.latency import estimate_latency
from rtnt.capture.reamp import blip_onsets, is_reamp_signal, make_reamp_signal, reamp_layout
from rtnt.config import PACKAGE_DIR
from rtnt.errors import CaptureError

SR = 48000


@pytest.fixture(scope="module")
def di() -> np.ndarray:
    """8 s of the embedded demo DI: preamble attacks and strums."""
    x, sr = sf.read(str(PACKAGE_DIR / "demo" / "input.flac"), dtype="float32")
    assert sr == SR
    return x[: 8 * SR]


def delay(a: np.ndarray, d: int) -> np.ndarray:
    """Shift later by d samples (earlier when negative), same length, zero-filled."""
    out = np.zeros_like(a)
    if d >= 0:
        out[d:] = a[: len(a) - d]
    else:
        out[:d] = a[-d:]
    return out


def _bandpass(x: np.ndarray) -> np.ndarray:
    b, a = ss.butter(2, [80, 5000], "bandpass", fs=SR)
    return ss.lfilter(b, a, x)


def _clipper(x: np.ndarray) -> np.ndarray:
    return np.tanh(6 * x / np.max(np.abs(x)))


def _fuzz_inverting(x: np.ndarray) -> np.ndarray:
    hard = np.clip(200 * x / np.max(np.abs(x)), -1, 1)
    return -ss.sosfilt(ss.butter(1, 6000, fs=SR, output="sos"), hard)


DEVICES = {"linear": (_bandpass, 1), "clipper": (_clipper, 1), "fuzz": (_fuzz_inverting, -1)}


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("d", [0, 5, 37, 250])
def test_synthetic_devices_never_late(di: np.ndarray, device: str, d: int) -> None:
    """Never after the true delay, early by at most the estimate's stated resolution (+1 for rounding)."""
    fn, polarity = DEVICES[device]
    y = delay(fn(di).astype(np.float32), d)
    e = estimate_latency(di, y, SR)
    assert d - math.ceil(e.resolution) - 1 <= e.latency_samples <= d, e.to_dict()
    assert e.polarity == polarity
    assert e.method == "impulse-response onset"
    assert e.latency_ms == pytest.approx(e.latency_samples / SR * 1e3, abs=1e-3)
    assert 0 <= e.confidence <= 1 and 0 <= e.window_agreement <= 1
    assert e.candidates[0][0] == e.latency_samples and len(e.candidates) <= 5


def test_linear_filter_is_exact(di: np.ndarray) -> None:
    e = estimate_latency(di, delay(_bandpass(di).astype(np.float32), 37), SR)
    assert e.latency_samples == 37 and e.confidence > 0.4


@pytest.mark.parametrize("shift", [-5, 0, 1, 13, 100, 300])
def test_estimate_moves_with_the_shift_on_the_demo(di: np.ndarray, shift: int) -> None:
    y, _ = sf.read(str(PACKAGE_DIR / "demo" / "target.flac"), dtype="float32")
    y = y[: len(di)]
    base = estimate_latency(di, y, SR).latency_samples
    e = estimate_latency(di, delay(y, shift), SR)
    assert e.latency_samples == base + shift


def test_polarity_flip_keeps_the_latency(di: np.ndarray) -> None:
    y, _ = sf.read(str(PACKAGE_DIR / "demo" / "target.flac"), dtype="float32")
    y = y[: len(di)]
    a, b = estimate_latency(di, y, SR), estimate_latency(di, -y, SR)
    assert (a.latency_samples, a.polarity) == (b.latency_samples, -b.polarity)


def test_target_ahead_of_input_is_an_error(di: np.ndarray) -> None:
    y = delay(_bandpass(di).astype(np.float32), -6)
    with pytest.raises(CaptureError, match=r"target leads the input by \d+ samples .* capture.latency=N"):
        estimate_latency(di, y, SR)


def test_unrelated_target_is_an_error(di: np.ndarray) -> None:
    noise = np.random.default_rng(0).standard_normal(len(di)).astype(np.float32) * 0.1
    with pytest.raises(CaptureError, match="no response of the target"):
        estimate_latency(di, noise, SR)


def test_dc_only_target_is_an_error(di: np.ndarray) -> None:
    with pytest.raises(CaptureError, match="no response of the target") as info:
        estimate_latency(di, np.full_like(di, 0.3), SR)
    assert "leads the input" not in str(info.value)


@pytest.mark.parametrize("d", [0, 1, 37, 480])
def test_blip_round_trip_is_exact(di: np.ndarray, d: int) -> None:
    x = make_reamp_signal(di[: 2 * SR], SR)
    assert is_reamp_signal(x, SR) and not is_reamp_signal(di, SR)
    sos = ss.butter(2, 3000, fs=SR, output="sos")  # a slow-rising response
    for device, polarity in ((lambda v: ss.sosfilt(sos, v), 1), (lambda v: -np.tanh(20 * v), -1)):
        y = delay(device(x).astype(np.float32), d)
        y += 1e-5 * np.random.default_rng(1).standard_normal(len(y)).astype(np.float32)
        e = estimate_latency(x, y, SR)
        assert (e.method, e.latency_samples, e.polarity, e.confidence) == ("blips", d, polarity, 1.0)
        assert e.window_estimates == [d] * len(reamp_layout(SR).blip_positions)


def test_reamp_file_survives_24_bit_wav(tmp_path: Path, di: np.ndarray) -> None:
    path = tmp_path / "reamp.wav"
    sf.write(str(path), make_reamp_signal(di[:SR], SR), SR, subtype="PCM_24")
    x, _ = sf.read(str(path), dtype="float32")
    assert is_reamp_signal(x, SR)
    assert blip_onsets(delay(x, 9), SR, 4800) == [9, 9, 9, 9]


def test_reamp_target_ahead_is_an_error(di: np.ndarray) -> None:
    x = make_reamp_signal(di[:SR], SR)
    with pytest.raises(CaptureError, match="target leads the input by 3 samples"):
        estimate_latency(x, delay(x, -3), SR)


EXCERPT = slice(2 * SR, 12 * SR)  # 10 s past the first windows, to keep the tests fast


@pytest.mark.parametrize("name", ["crunch_amp", "ts9_pedal", "highgain_amp"])
def test_shifted_shared_captures(shared: Path, name: str) -> None:
    x, _ = sf.read(str(shared / "captures" / "input.flac"), dtype="float32")
    y, _ = sf.read(str(shared / "captures" / f"{name}.flac"), dtype="float32")
    x, y = x[EXCERPT], y[EXCERPT]
    base = estimate_latency(x, y, SR)
    assert base.confidence >= 0.8, base.to_dict()
    for shift, sign in ((-5, 1), (7, -1), (150, 1), (300, -1)):
        e = estimate_latency(x, sign * delay(y, shift), SR)
        assert e.latency_samples == base.latency_samples + shift
        assert e.polarity == sign * base.polarity


def test_ts9_pedal_is_37(shared: Path) -> None:
    x, _ = sf.read(str(shared / "captures" / "input.flac"), dtype="float32")
    y, _ = sf.read(str(shared / "captures" / "ts9_pedal.flac"), dtype="float32")
    e = estimate_latency(x[EXCERPT], y[EXCERPT], SR)
    assert abs(e.latency_samples - 37) <= 2
