"""Gray-box blocks (rtnt.model.graybox): constraints under aggressive training, finite gradients, and frequency
responses against scipy.signal (freqz, sosfilt, lfilter), the training approximation against the exact recursion.

Tolerances (float32): block outputs vs scipy's float64 filters 1e-4 max abs on unit-RMS-scale noise; frequency
responses 1e-4 of the peak magnitude; RBJ formula checks (gain at f0, shelf plateaus, -3 dB points) 0.01 dB.
"""

from __future__ import annotations

import keras
import numpy as np
import pytest
import scipy.signal
import tensorflow as tf

from rtnt.model.graybox.blocks import FIR, DCBlocker, Gain, ParametricEQ, Waveshaper
from rtnt.model.graybox.rbj import rbj_coefficients

SR = 48000
N = 8192
TOL = 1e-4
SECTIONS = [
    {"kind": "highpass", "freq_hz": 90.0, "q": 0.707, "gain_db": 0.0},
    {"kind": "low_shelf", "freq_hz": 200.0, "q": 0.8, "gain_db": -4.0},
    {"kind": "peaking", "freq_hz": 720.0, "q": 1.5, "gain_db": 6.0},
    {"kind": "high_shelf", "freq_hz": 4000.0, "q": 0.707, "gain_db": 3.0},
    {"kind": "lowpass", "freq_hz": 9000.0, "q": 0.9, "gain_db": 0.0},
]


def _noise(n: int = N, seed: int = 0, batch: int = 1) -> np.ndarray:
    return (np.random.default_rng(seed).standard_normal((batch, n, 1)) * 0.3).astype(np.float32)


def _run(layer: keras.layers.Layer, x: np.ndarray) -> np.ndarray:
    return np.asarray(layer(tf.constant(x)))


def _blocks() -> dict[str, keras.layers.Layer]:
    return {
        "gain": Gain(3.0, 24.0),
        "dc_blocker": DCBlocker(0.995, 0.9, 0.9999),
        "peq": ParametricEQ(SECTIONS, max_gain_db=12.0),
        "fir": FIR(256),
        "waveshaper": Waveshaper(12.0, 0.2, -3.0),
    }


def _in_range(name: str, layer: keras.layers.Layer) -> None:
    """Every mapped parameter inside the block's declared range, every biquad stable."""
    v = layer.values()
    if name == "gain":
        assert abs(v["gain_db"]) <= 24.0
    elif name == "dc_blocker":
        assert 0.9 <= v["pole"] <= 0.9999
    elif name == "peq":
        for s in v["sections"]:
            assert 20.0 <= s["freq_hz"] <= 20000.0 and 0.1 <= s["q"] <= 10.0 and abs(s["gain_db"]) <= 12.0
    elif name == "waveshaper":
        eps = 1e-4  # dB: the ranges bound the dB values; 10^(dB / 20) rounds in float32
        assert -24 - eps <= 20 * np.log10(v["drive"]) <= 48 + eps and abs(v["bias"]) <= 1.0
        assert -24 - eps <= 20 * np.log10(v["gain"]) <= 24 + eps
    if name in ("dc_blocker", "peq"):
        c = np.asarray(layer.coefficients(), dtype=np.float64)
        assert np.all(np.isfinite(c))
        assert max(np.max(np.abs(np.roots([1.0, a1, a2]))) for a1, a2 in c[:, 3:]) < 1.0


@pytest.mark.parametrize("name", ["gain", "dc_blocker", "peq", "fir", "waveshaper"])
def test_gradients_are_finite_and_parameters_stay_in_range_at_a_large_learning_rate(name: str) -> None:
    """Adam at learning rate 5 for 30 steps towards a target no block can reach (8x the input, reversed in time)
    drives the raw weights far; the mapped parameters must stay in range and every gradient finite."""
    layer = _blocks()[name]
    x = _noise(2048, batch=2)
    target = tf.constant(8.0 * x[:, ::-1])
    opt = keras.optimizers.Adam(learning_rate=5.0)
    for _ in range(30):
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(tf.square(layer(tf.constant(x)) - target))
        grads = tape.gradient(loss, layer.trainable_variables)
        assert all(g is not None and np.all(np.isfinite(np.asarray(g))) for g in grads)
        opt.apply_gradients(zip(grads, layer.trainable_variables))
        _in_range(name, layer)
    assert np.all(np.isfinite(_run(layer, x)))


def test_rbj_formulas_meet_the_cookbook_definitions() -> None:
    """Independent of scipy's agreement: peaking gain at f0, shelf plateaus and half-gain point, -3 dB at f0."""

    def db_at(kind: str, f0: float, q: float, g: float, f: list[float]) -> np.ndarray:
        b0, b1, b2, a1, a2 = rbj_coefficients(kind, f0, q, g, SR, np)
        return 20 * np.log10(np.abs(scipy.signal.freqz([b0, b1, b2], [1, a1, a2], worN=f, fs=SR)[1]))

    assert db_at("peaking", 1000, 2.0, 6.0, [1000, 1e-3, SR / 2 - 1e-3]) == pytest.approx([6, 0, 0], abs=0.01)
    assert db_at("low_shelf", 200, 0.707, -6.0, [1e-3, 200, SR / 2 - 1e-3]) == pytest.approx([-6, -3, 0], abs=0.01)
    assert db_at("high_shelf", 4000, 0.707, 9.0, [1e-3, 4000, SR / 2 - 1e-3]) == pytest.approx([0, 4.5, 9], abs=0.01)
    assert db_at("lowpass", 5000, 2**-0.5, 0.0, [1e-3, 5000])[:2] == pytest.approx([0, -3.0103], abs=0.01)
    assert db_at("highpass", 100, 2**-0.5, 0.0, [100, SR / 2 - 1e-3]) == pytest.approx([-3.0103, 0], abs=0.01)


def test_peq_frequency_response_matches_scipy_freqz() -> None:
    """The layer's impulse response (frequency sampling) has scipy's freqz of the cookbook coefficients."""
    layer = ParametricEQ(SECTIONS, max_gain_db=12.0)
    impulse = np.zeros((1, N, 1), dtype=np.float32)
    impulse[0, 0, 0] = 1.0
    h = _run(layer, impulse)[0, :, 0]
    b = [rbj_coefficients(s["kind"], s["freq_hz"], s["q"], s["gain_db"], SR, np) for s in layer.values()["sections"]]
    sos = np.array([[b0, b1, b2, 1.0, a1, a2] for b0, b1, b2, a1, a2 in b])
    _, expected = scipy.signal.sosfreqz(sos, worN=2 * np.pi * np.arange(N // 2 + 1) / N)  # the rfft bins
    got = np.fft.rfft(h)
    assert np.max(np.abs(np.abs(got) - np.abs(expected))) < TOL * np.max(np.abs(expected))
    for want, have in zip(SECTIONS, layer.values()["sections"]):  # the initial values are the mapped ones
        assert have["freq_hz"] == pytest.approx(want["freq_hz"], rel=1e-5)
        assert have["q"] == pytest.approx(want["q"], rel=1e-5)
        assert have["gain_db"] == pytest.approx(want["gain_db"], abs=1e-5)


def test_peq_training_approximation_matches_the_exact_recursion() -> None:
    """Frequency sampling on an 8192-sample segment batch equals scipy's sosfilt recursion from zero state."""
    layer = ParametricEQ(SECTIONS, max_gain_db=12.0)
    x = _noise(batch=4)
    sos = np.concatenate([np.asarray(layer.coefficients(), dtype=np.float64)[:, :3], np.ones((5, 1)),
                          np.asarray(layer.coefficients(), dtype=np.float64)[:, 3:]], axis=1)  # fmt: skip
    expected = scipy.signal.sosfilt(sos, x[:, :, 0].astype(np.float64), axis=1)
    assert np.max(np.abs(_run(layer, x)[:, :, 0] - expected)) < TOL


def test_dc_blocker_matches_scipy_lfilter() -> None:
    layer = DCBlocker(0.995)
    x = _noise() + 0.5  # an offset to remove
    expected = scipy.signal.lfilter([1.0, -1.0], [1.0, -layer.values()["pole"]], x[0, :, 0].astype(np.float64))
    assert np.max(np.abs(_run(layer, x)[0, :, 0] - expected)) < TOL
    assert layer.values()["pole"] == pytest.approx(0.995, rel=1e-6)


def test_fir_is_causal_linear_convolution() -> None:
    layer = FIR(300)
    taps = np.random.default_rng(3).standard_normal(300).astype(np.float32) * 0.1
    layer.kernel.assign(taps)
    x = _noise(1000)
    expected = np.convolve(x[0, :, 0].astype(np.float64), taps.astype(np.float64))[:1000]
    assert np.max(np.abs(_run(layer, x)[0, :, 0] - expected)) < TOL


def test_fir_starts_as_the_identity() -> None:
    x = _noise(500)
    assert np.max(np.abs(_run(FIR(64), x) - x)) < 1e-6


def test_waveshaper_and_gain_compute_their_formulas() -> None:
    x = _noise(1000)
    ws = Waveshaper(12.0, 0.2, -3.0)
    d, b, g = 10 ** (12 / 20), 0.2, 10 ** (-3 / 20)
    assert np.max(np.abs(_run(ws, x) - g * (np.tanh(d * x + b) - np.tanh(b)))) < 1e-5
    assert np.max(np.abs(_run(Gain(-6.0), x) - x * 10 ** (-6 / 20))) < 1e-6
    assert _run(ws, np.zeros((1, 10, 1), np.float32)) == pytest.approx(0.0, abs=1e-7)  # silence stays silent
