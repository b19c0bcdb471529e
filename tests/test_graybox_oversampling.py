"""`preset.oversampling` (2 or 4) runs a gray-box chain's static nonlinearities between a minimum-phase polyphase
filter pair (rtnt/model/graybox/oversampling.py, docs/graybox_format.md): the filters meet their stated figures,
Keras (eager and XLA), the numpy reference and the native runtime agree at every block size, a hard-driven
waveshaper aliases clearly less (rtnt's ASR on the runtime output), malformed `oversampling` objects are refused
in one line by both loaders, and the config refuses bad factors and conv stacks."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest
import scipy.signal

from rtnt.config import CONF_DIR, load_preset, preset_config
from rtnt.config_graybox import OVERSAMPLING_TAPS, graybox_receptive_field, validate_graybox
from rtnt.constants import SAMPLE_RATE
from rtnt.errors import ConfigError, ModelJsonError
from rtnt.model.graybox.oversampling import (
    PASSBAND_HZ,
    PASSBAND_RIPPLE_DB,
    STOPBAND_ATTENUATION_DB,
    STOPBAND_HZ,
    lowpass,
    oversampling_filters,
)
from rtnt.native import NativeModel, native_available
from rtnt.runtime.reference import ReferenceModel

KERAS_TOL = 1e-4  # Keras vs exported file, as every gray-box parity test
NATIVE_TOL = 1e-5  # native vs reference
BLOCKS = (1, 7, 64, 65, 1000, 4096)
needs_native = pytest.mark.skipif(not native_available(), reason="rtnt._native is not built")
WAVESHAPER = {"type": "waveshaper", "drive_db": 30.0, "bias": 0.2, "gain_db": -3.0}
MLP = {"type": "mlp", "hidden": [8, 8]}


def _preset(blocks: list[dict[str, Any]], factor: int) -> Any:
    return preset_config({"name": "t", "arch": "graybox", "oversampling": factor, "blocks": blocks})


def _x(n: int = 6000) -> np.ndarray:
    return np.random.default_rng(7).uniform(-0.8, 0.8, n).astype(np.float32)


@pytest.mark.parametrize("factor", [2, 4])
def test_the_filters_meet_their_stated_figures(factor: int) -> None:
    h = lowpass(factor)
    assert h.size == OVERSAMPLING_TAPS[factor]
    w, response = scipy.signal.freqz(h, worN=1 << 15, fs=SAMPLE_RATE * factor)
    db = 20 * np.log10(np.abs(response) + 1e-300)
    passband, stopband = db[w <= PASSBAND_HZ], db[w >= STOPBAND_HZ]
    assert passband.max() - passband.min() <= PASSBAND_RIPPLE_DB
    assert stopband.max() <= -STOPBAND_ATTENUATION_DB
    # minimum phase: no zero outside the unit circle (the stopband's zeros lie on it, found to ~1e-3), and a
    # passband group delay far below a linear-phase filter's (L - 1) / 2
    assert np.all(np.abs(np.roots(h)) <= 1.0 + 2e-3)
    _, delay = scipy.signal.group_delay((h, 1), w=np.linspace(100, PASSBAND_HZ, 50), fs=SAMPLE_RATE * factor)
    assert np.max(delay) < (h.size - 1) / 4
    filters = oversampling_filters(factor)
    np.testing.assert_allclose(filters.up, factor * filters.down, rtol=1e-6)


@pytest.mark.parametrize("factor", [2, 4])
@pytest.mark.parametrize("block", ["waveshaper", "mlp"])
def test_keras_reference_and_native_agree_at_every_block_size(factor: int, block: str) -> None:
    import tensorflow as tf

    from rtnt.export.graybox import export_graybox
    from rtnt.model.build import build_model

    peq = {"type": "peq", "sections": [{"kind": "peaking", "freq_hz": 800.0, "q": 1.0, "gain_db": 6.0}], "warmup": 0}
    chain = [{"type": "gain", "gain_db": 6.0}, WAVESHAPER if block == "waveshaper" else MLP, peq]
    model = build_model(_preset(chain, factor))
    x = _x()
    y_keras = np.asarray(model(x[None, :, None]))[0, :, 0]
    y_xla = np.asarray(tf.function(model, jit_compile=True)(tf.constant(x[None, :, None])))[0, :, 0]
    assert np.max(np.abs(y_xla - y_keras)) < KERAS_TOL
    doc = json.loads(json.dumps(export_graybox(model)))
    first = next(layer for layer in doc["layers"] if "oversampling" in layer)
    assert first["oversampling"]["factor"] == factor
    assert first["oversampling"]["layers"] == (1 if block == "waveshaper" else 3)
    reference = ReferenceModel.from_json(doc)
    y_ref = np.concatenate([reference.process(x[i : i + 77]) for i in range(0, len(x), 77)])
    # the PEQ trains by frequency sampling over the segment; the signal's end is far from its tail
    assert np.max(np.abs(y_ref[:4000] - y_keras[:4000])) < KERAS_TOL
    if not native_available():
        return
    native = NativeModel.from_json_text(json.dumps(doc))
    native.prepare(4096)
    whole = native.process(x)
    assert np.max(np.abs(whole - y_ref)) < NATIVE_TOL
    for size in BLOCKS:
        native.reset()
        np.testing.assert_array_equal(native.process_blocks(x, size), whole, err_msg=f"block {size}")


def test_the_filters_history_is_counted_in_the_receptive_field() -> None:
    from rtnt.model import model_summary
    from rtnt.model.build import build_model

    for factor in (1, 2, 4):
        preset = _preset([WAVESHAPER, MLP], factor)
        assert model_summary(build_model(preset)).receptive_field_samples == graybox_receptive_field(preset)
    assert graybox_receptive_field(_preset([WAVESHAPER, MLP], 2)) == 1 + 2 * 47


def test_an_oversampled_model_saves_and_reloads(tmp_path: Any) -> None:
    import keras

    from rtnt.model.build import build_model

    model = build_model(_preset([WAVESHAPER, MLP], 4))
    model.save(tmp_path / "m.keras")
    loaded = keras.models.load_model(tmp_path / "m.keras", compile=False)
    x = _x(1000)[None, :, None]
    np.testing.assert_array_equal(np.asarray(loaded(x)), np.asarray(model(x)))
    assert [layer.trainable for layer in loaded.layers if "_up" in layer.name or "_down" in layer.name] == [False] * 4


@needs_native
def test_a_hard_driven_waveshaper_aliases_less_oversampled() -> None:
    from rtnt.export.graybox import export_graybox
    from rtnt.metrics.asr import render_asr_probes
    from rtnt.model.build import build_model

    asr_db = {}
    for factor in (1, 2, 4):
        doc = export_graybox(build_model(_preset([WAVESHAPER], factor)))
        native = NativeModel.from_json_text(json.dumps(doc))

        def render(x: np.ndarray, native: NativeModel = native) -> np.ndarray:
            native.reset()
            return native.process(x)

        report = render_asr_probes(render, midi_notes=[76, 88, 100], levels_dbfs=[-12.0, -3.0], runtime="native")
        asr_db[factor] = report.asr_mean_db
    # measured: -23.3 dB (1x), -37.1 dB (2x), -51.8 dB (4x)
    assert asr_db[2] <= asr_db[1] - 8.0 and asr_db[4] <= asr_db[2] - 8.0, asr_db


def _waveshaper_doc(**oversampling: Any) -> dict[str, Any]:
    filters = oversampling_filters(2)
    o = {**filters.to_json(1), **oversampling}
    layer = {"type": "waveshaper", "activation": "", "shape": [None, None, 1], "oversampling": o}
    layer["weights"] = [[4, 0, 1]]
    return {"rtnt_format": "graybox-1", "in_shape": [None, None, 1], "layers": [layer]}


MALFORMED = {
    "bad factor": ({"factor": 3}, "factor"),
    "missing taps": ({"up": None}, "up"),
    "wrong taps length": ({"down": [0.5] * 47}, "down"),
    "run too long": ({"layers": 2}, "layers"),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_oversampling_is_refused_in_one_line_by_both_loaders(case: str) -> None:
    change, key = MALFORMED[case]
    doc = _waveshaper_doc(**change)
    if change.get("up", 1) is None:
        del doc["layers"][0]["oversampling"]["up"]
    with pytest.raises(ModelJsonError, match=f"oversampling.{key}") as reference_error:
        ReferenceModel.from_json(doc)
    assert "\n" not in str(reference_error.value)
    if native_available():
        with pytest.raises(ModelJsonError, match=f"oversampling.{key}") as native_error:
            NativeModel.from_json_text(json.dumps(doc))
        assert "\n" not in str(native_error.value)


def test_a_layer_with_memory_cannot_run_oversampled() -> None:
    doc = _waveshaper_doc()
    doc["layers"][0]["type"] = "fir"
    doc["layers"][0]["taps"] = 3
    doc["layers"][0]["weights"] = [[1.0, 0.0, 0.0]]
    with pytest.raises(ModelJsonError, match="only memoryless layers"):
        ReferenceModel.from_json(doc)
    if native_available():
        with pytest.raises(ModelJsonError, match="only memoryless layers"):
            NativeModel.from_json_text(json.dumps(doc))


def test_files_without_oversampling_load_unchanged() -> None:
    doc = _waveshaper_doc()
    del doc["layers"][0]["oversampling"]
    x = _x(500)
    expected = 1.0 * (np.tanh(4.0 * x) - np.tanh(0.0))
    np.testing.assert_allclose(ReferenceModel.from_json(doc).process(x), expected, atol=1e-6)


def test_the_config_refuses_bad_factors_and_conv_stacks_in_one_line() -> None:
    with pytest.raises(ConfigError, match=r"preset.oversampling=3 .*must be one of 1, 2, 4"):
        validate_graybox(_preset([WAVESHAPER], 3))
    hybrid = load_preset(CONF_DIR / "preset" / "graybox" / "hybrid_tcn.yaml", oversampling=2)
    with pytest.raises(ConfigError, match="conv_stack block has memory") as error:
        validate_graybox(hybrid)
    assert "\n" not in str(error.value)
    with pytest.raises(ConfigError, match="no static nonlinearity"):
        validate_graybox(_preset([{"type": "gain"}], 2))
    validate_graybox(load_preset(CONF_DIR / "preset" / "graybox" / "ts9.yaml", oversampling=4))


def test_the_oversampled_layers_count_their_macs_at_the_high_rate() -> None:
    from rtnt.model import model_summary
    from rtnt.model.build import build_model

    plain = model_summary(build_model(_preset([MLP], 1))).macs_per_sample
    assert plain == 8 + 64 + 8
    for factor in (2, 4):
        taps = OVERSAMPLING_TAPS[factor]
        assert model_summary(build_model(_preset([MLP], factor))).macs_per_sample == factor * plain + 2 * taps
