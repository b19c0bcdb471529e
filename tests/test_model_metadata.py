"""Models that describe themselves: the `metadata` object of RTNeural JSON and `.nam` exports, fed by one
`ModelMetadata` and the `capture.gear.*` config, and read unchanged by every runtime."""

from __future__ import annotations

import json
import math
from pathlib import Path

import keras
import numpy as np
import pytest
from hydra import compose

import rtnt
from rtnt.config import CONF_DIR, load_preset
from rtnt.errors import ExportError
from rtnt.export.metadata import ModelMetadata, loudness_input, output_levels, set_training_metadata
from rtnt.export.nam import save_nam
from rtnt.export.rtneural import export_rtneural, save_rtneural
from rtnt.model import build_model
from rtnt.native import NativeModel, native_available
from rtnt.runtime.reference import ReferenceModel

PRESETS = CONF_DIR / "preset"
META = ModelMetadata(
    name="edge@ts9",
    gear_make="guitarix",
    gear_model="TS9",
    gear_type="pedal",
    tone_type="overdrive",
    run_id="0123abcd",
    preset="wavenet_tcn_edge",
    capture="ts9_pedal",
    sample_rate=48000,
)


@pytest.fixture(scope="module")
def edge_model() -> keras.Model:
    """The edge preset with every weight perturbed (seeded), so the outputs exercise all of them."""
    keras.utils.set_random_seed(0)
    model = build_model(load_preset(PRESETS / "wavenet_tcn_edge.yaml"))
    rng = np.random.default_rng(0)
    for layer in model.layers:
        layer.set_weights([w + 0.1 * rng.standard_normal(w.shape).astype(np.float32) for w in layer.get_weights()])
    return model


def guitar_signal(n: int = 12000) -> np.ndarray:
    return (0.4 * np.random.default_rng(3).standard_normal(n)).astype(np.float32)


def test_the_metadata_key_is_the_only_change_to_the_json(edge_model: keras.Model, tmp_path: Path) -> None:
    plain = export_rtneural(edge_model)
    path = save_rtneural(edge_model, tmp_path / "model.json", META)
    set_training_metadata(path, validation_esr=0.012, test_esr=0.015)  # as the pipeline does after evaluation
    data = json.loads(path.read_text())
    assert list(data) == ["in_shape", "layers", "metadata"]
    without = {k: v for k, v in data.items() if k != "metadata"}
    assert json.dumps(without) == json.dumps(plain)  # byte for byte: weights, order and layout unchanged
    md = data["metadata"]
    assert md["rtnt"]["version"] == rtnt.__version__ and md["rtnt"]["run_id"] == "0123abcd"
    assert md["rtnt"]["preset"] == "wavenet_tcn_edge" and md["rtnt"]["capture"] == "ts9_pedal"
    assert md["rtnt"]["sample_rate"] == 48000
    assert md["training"] == {"validation_esr": 0.012, "test_esr": 0.015}
    assert (md["gear_make"], md["gear_model"], md["gear_type"], md["tone_type"]) == (
        "guitarix",
        "TS9",
        "pedal",
        "overdrive",
    )
    assert math.isfinite(md["loudness"]) and math.isfinite(md["rtnt"]["loudness_lufs"])
    assert "input.flac" in md["rtnt"]["loudness_input"]


def test_json_loudness_is_measured_on_the_exported_file(edge_model: keras.Model) -> None:
    """The figures are those of the file's own output on the loudness input (native runtime, which the numpy
    reference matches within 1e-4 max abs: 1e-3 dB here), and follow the output level: x2 is +6.02 dB."""
    plain = export_rtneural(edge_model)
    md = export_rtneural(edge_model, META)["metadata"]
    rms, lufs = output_levels(ReferenceModel.from_json(plain).process(loudness_input()))
    assert md["loudness"] == pytest.approx(rms, abs=1e-3)
    assert md["rtnt"]["loudness_lufs"] == pytest.approx(lufs, abs=1e-3)
    last = edge_model.layers[-1]
    kernel, bias = last.get_weights()
    last.set_weights([2 * kernel, 2 * bias])
    try:
        louder = export_rtneural(edge_model, META)["metadata"]
    finally:
        last.set_weights([kernel, bias])
    assert louder["loudness"] - md["loudness"] == pytest.approx(20 * math.log10(2), abs=1e-3)
    assert louder["rtnt"]["loudness_lufs"] - md["rtnt"]["loudness_lufs"] == pytest.approx(20 * math.log10(2), abs=1e-3)


@pytest.mark.skipif(not native_available(), reason="the native runtime rtnt._native is not built")
def test_both_runtimes_and_rtneural_read_the_file_unchanged(edge_model: keras.Model, tmp_path: Path) -> None:
    """The runtimes give bit-identical output with and without the `metadata` key. Real RTNeural reads only two
    keys of the top-level object, so it loads the file unchanged: at RTNeural 1fb1f07, `json_parser::parseJson`
    (RTNeural/model_loader.h) takes `parent.at("in_shape")` and `parent.at("layers")`, and
    `modelt_detail::parseJson` (RTNeural/ModelT.h) `parent["in_shape"]` and `parent["layers"]`; nlohmann::json
    accepts any other member."""
    plain = export_rtneural(edge_model)
    plain_path = tmp_path / "plain.json"
    plain_path.write_text(json.dumps(plain))
    path = save_rtneural(edge_model, tmp_path / "model.json", META)
    x = guitar_signal()
    y_ref = ReferenceModel.from_json(path).process(x)
    assert np.array_equal(y_ref, ReferenceModel.from_json(plain_path).process(x))
    y_native = NativeModel.from_file(path).process(x)
    assert np.array_equal(y_native, NativeModel.from_file(plain_path).process(x))
    assert np.array_equal(NativeModel.from_json_text(path.read_text()).process(x), y_native)
    assert np.max(np.abs(y_native - y_ref)) < 1e-4  # the two runtimes agree (parity tolerance)


@pytest.mark.skipif(not native_available(), reason="the native runtime rtnt._native is not built")
def test_the_native_loader_still_refuses_a_broken_model_beside_metadata(edge_model: keras.Model) -> None:
    from rtnt.errors import ModelJsonError

    data = export_rtneural(edge_model, META, loudness=False)
    del data["in_shape"]
    with pytest.raises(ModelJsonError, match="in_shape"):
        NativeModel.from_json_text(json.dumps(data))


def test_capture_gear_feeds_the_json_and_the_nam(hydra_conf: None, edge_model: keras.Model, tmp_path: Path) -> None:
    cfg = compose("config", overrides=["capture=ts9_pedal", "preset=wavenet_a1_nano"])
    meta = ModelMetadata.for_run(cfg.capture, cfg.preset.name, "run42", 48000)
    keras.utils.set_random_seed(0)
    nam = json.loads(save_nam(build_model(cfg.preset), tmp_path / "model.nam", meta, loudness=False).read_text())
    js = export_rtneural(edge_model, meta, loudness=False)
    gear = {"gear_make": "guitarix", "gear_model": "TS9 (drive 0.7)", "gear_type": "pedal", "tone_type": "overdrive"}
    for md in (nam["metadata"], js["metadata"]):
        assert {k: md[k] for k in gear} == gear
        assert md["name"] == "wavenet_a1_nano@ts9_pedal" and md["rtnt"]["run_id"] == "run42"
        assert md["rtnt"]["capture"] == "ts9_pedal" and md["rtnt"]["sample_rate"] == 48000
    own = compose("config", overrides=["capture=files", "capture.input=DI.wav", "capture.target=AMP.wav"])
    md = export_rtneural(edge_model, ModelMetadata.for_run(own.capture, "edge", "r", 48000), loudness=False)
    assert not {"gear_make", "gear_model", "gear_type", "tone_type"} & set(md["metadata"])  # not configured: left out


@pytest.mark.parametrize(("field", "value"), [("gear_type", "guitar"), ("tone_type", "metal"), ("gain", 1.5)])
def test_bad_metadata_is_one_line_for_json_too(edge_model: keras.Model, field: str, value: object) -> None:
    with pytest.raises(ExportError, match=f"metadata {field}=.* is invalid") as info:
        export_rtneural(edge_model, ModelMetadata(**{field: value}))
    assert "\n" not in str(info.value)
