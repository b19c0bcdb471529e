""".nam export of arch wavenet models: round trip through the numpy .nam reference runtime, NAM's config
form and version rules, metadata, and the format dispatch of export_model and parity_error.

Round-trip tolerance: Keras computes in float32, the reference in float64 from the same float32 weights,
so the two differ by float32 rounding only: 1e-5 of the output scale (max(1, peak)).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import keras
import numpy as np
import pytest
from omegaconf import DictConfig

from rtnt.config import REPO_DIR, load_preset, preset_config, shared_dir
from rtnt.errors import ExportError
from rtnt.export import export_model
from rtnt.export.metadata import ModelMetadata, set_training_metadata
from rtnt.export.nam import A1_VERSION, A2_VERSION, export_nam, save_nam
from rtnt.model import build_model, model_summary
from rtnt.native import NativeModel, native_available
from rtnt.runtime.nam_reference import NamModel, parse_version
from rtnt.validate.parity import keras_predict, parity_error

PRESETS = REPO_DIR / "conf" / "preset"
NAM_MODELS = shared_dir() / "conformance" / "nam" / "models"
needs_models = pytest.mark.skipif(not NAM_MODELS.exists(), reason="../shared/conformance/nam not present")


def preset_named(name: str) -> DictConfig:
    return load_preset(PRESETS / f"{name}.yaml")


def tiny_preset(*arrays: dict, head_scale: float = 0.02) -> DictConfig:
    return preset_config(
        {"name": "tiny", "arch": "wavenet", "head_scale": head_scale, "layer_arrays": [dict(a) for a in arrays]}
    )


def randomize(model: keras.Model, seed: int = 0) -> keras.Model:
    """Perturb every trainable weight so the round trip exercises all of them (the head scale stays)."""
    rng = np.random.default_rng(seed)
    for w in model.trainable_weights:
        w.assign(w.numpy() + 0.2 * rng.standard_normal(w.shape).astype(np.float32))
    return model


TINY = {
    "a1": (
        {"channels": 4, "dilations": [1, 2, 4], "head_size": 3},
        {"input_size": 4, "channels": 3, "dilations": [8, 1], "head_bias": True},
    ),
    "a1_gated": (
        {"channels": 4, "dilations": [1, 2], "gated": True, "activation": ["ReLU"], "head_size": 2},
        {"input_size": 4, "channels": 2, "dilations": [4, 1, 2], "gated": True, "head_bias": True},
    ),
    "a2_head_conv": (
        {
            "channels": 3,
            "kernel_sizes": [2, 4, 3],
            "dilations": [1, 3, 7],
            "activation": ["LeakyReLU", "Tanh", "Softsign"],
            "negative_slope": 0.05,
            "head_kernel_size": 5,
            "head_bias": True,
        },
    ),
    "a2_gated_bottleneck": (
        {
            "channels": 5,
            "bottleneck": 3,
            "kernel_sizes": [3, 2],
            "dilations": [2, 5],
            "gated": True,
            "activation": ["SiLU", "Hardtanh"],
            "head_size": 4,
            "head_kernel_size": 3,
        },
        {
            "input_size": 5,
            "channels": 4,
            "dilations": [1, 6],
            "activation": ["Sigmoid"],
            "head_kernel_size": 2,
            "head_bias": True,
        },
    ),
}


@pytest.mark.parametrize("name", TINY, ids=list(TINY))
def test_round_trip_matches_keras(name: str) -> None:
    keras.utils.set_random_seed(0)
    model = randomize(build_model(tiny_preset(*TINY[name])))
    data = json.loads(json.dumps(export_nam(model, loudness=False)))
    assert len(data["weights"]) == model.count_params()
    x = (0.5 * np.random.default_rng(1).standard_normal(model_summary(model).receptive_field_samples + 3000)).astype(
        np.float32
    )
    y_keras = keras_predict(model, x)
    y_nam = NamModel.from_dict(data, prewarm=False).process(x)
    assert np.max(np.abs(y_nam - y_keras)) <= 1e-5 * max(1.0, float(np.max(np.abs(y_keras))))
    assert np.max(np.abs(y_keras)) > 1e-3  # the comparison is not between two silences


@pytest.mark.parametrize("name", ["wavenet_a1_standard", "wavenet_a2_full"])
def test_round_trip_of_the_nam_shaped_presets(name: str) -> None:
    keras.utils.set_random_seed(0)
    model = randomize(build_model(preset_named(name)), seed=3)
    data = export_nam(model, loudness=False)
    x = (0.3 * np.random.default_rng(2).standard_normal(model_summary(model).receptive_field_samples + 2000)).astype(
        np.float32
    )
    y_keras = keras_predict(model, x)
    y_nam = NamModel.from_dict(data, prewarm=False).process(x)
    assert np.max(np.abs(y_nam - y_keras)) <= 1e-5 * max(1.0, float(np.max(np.abs(y_keras))))


def test_a_transposed_weight_breaks_the_round_trip() -> None:
    """Negative control: the round trip notices a layout mistake (a transposed layer1x1)."""
    keras.utils.set_random_seed(0)
    model = randomize(build_model(tiny_preset(*TINY["a1"])))
    data = export_nam(model, loudness=False)
    k = (
        model.get_layer("array0").layer1x1_kernels[0].numpy()
    )  # 4 x 4: its NAM block starts after rechannel, conv, mixin
    start = 4 + (3 * 4 * 4 + 4) + 4
    data["weights"][start : start + 16] = [float(v) for v in k.ravel()]  # (in, out) order instead of (out, in)
    x = (0.5 * np.random.default_rng(1).standard_normal(500)).astype(np.float32)
    assert np.max(np.abs(NamModel.from_dict(data, prewarm=False).process(x) - keras_predict(model, x))) > 1e-3


@needs_models
def test_a1_standard_config_is_nams_own() -> None:
    """The exported A1 standard config is the one in NAM's wavenet_a1_standard.nam, key for key."""
    model = build_model(preset_named("wavenet_a1_standard"))
    data = export_nam(model, loudness=False)
    nam = json.loads((NAM_MODELS / "wavenet_a1_standard.nam").read_text())
    assert data["config"] == nam["config"]
    assert data["version"] == A1_VERSION and data["sample_rate"] == 48000 and data["architecture"] == "WaveNet"


@needs_models
def test_a2_full_config_is_the_a2_fast_path_shape() -> None:
    """The exported A2-full config equals NAM's A2-Full submodel's (so NAM Core sends it to its A2 fast path)."""
    model = build_model(preset_named("wavenet_a2_full"))
    data = export_nam(model, loudness=False)
    nam = json.loads((NAM_MODELS / "A2_full_extracted.nam").read_text())
    assert data["config"] == nam["config"]
    assert data["version"] == A2_VERSION == nam["version"]


@pytest.mark.parametrize("name", ["a1", "a2_head_conv"])
def test_format_rules_version_and_head_scale(name: str) -> None:
    model = build_model(tiny_preset(*TINY[name], head_scale=0.03))
    data = json.loads(json.dumps(export_nam(model, loudness=False)))
    assert parse_version(data["version"], "test") == ((0, 5, 4) if name == "a1" else (0, 7, 0))
    assert (
        np.float32(data["config"]["head_scale"]) == np.float32(data["weights"][-1]) == np.float32(0.03)
    )  # as Core reads them
    assert NamModel.from_dict(data).head_scale == pytest.approx(0.03)
    layer = data["config"]["layers"][0]
    assert ("kernel_size" in layer) != ("kernel_sizes" in layer)  # NAM Core refuses both


def test_metadata_fields(tmp_path: Path) -> None:
    keras.utils.set_random_seed(0)
    model = build_model(preset_named("wavenet_a1_nano"))
    meta = ModelMetadata(
        name="My Crunch",
        modeled_by="rtnt test",
        gear_type="amp",
        tone_type="crunch",
        gain=0.4,
        validation_esr=0.012,
        test_esr=0.015,
        run_id="abc123",
    )
    path = save_nam(model, tmp_path / "x.nam", meta)
    data = json.loads(path.read_text())  # plain JSON: no NaN or Infinity
    md = data["metadata"]
    assert md["name"] == "My Crunch" and md["gear_type"] == "amp" and md["tone_type"] == "crunch" and md["gain"] == 0.4
    assert md["training"] == {"validation_esr": 0.012, "test_esr": 0.015}
    assert md["rtnt"]["run_id"] == "abc123" and md["rtnt"]["version"]
    assert set(md["date"]) == {"year", "month", "day", "hour", "minute", "second"}
    # loudness: NAM's RMS dB of the exported model's output on the fixed input; LUFS beside it
    assert math.isfinite(md["loudness"]) and -120 < md["loudness"] < 20
    assert math.isfinite(md["rtnt"]["loudness_lufs"]) and "input.flac" in md["rtnt"]["loudness_input"]
    set_training_metadata(path, validation_esr=0.02)
    assert json.loads(path.read_text())["metadata"]["training"] == {"validation_esr": 0.02, "test_esr": 0.015}
    assert json.loads(path.read_text())["weights"] == data["weights"]


def test_loudness_follows_the_output_level() -> None:
    """Doubling the head scale doubles the output: loudness rises by 6.02 dB."""
    keras.utils.set_random_seed(0)
    model = build_model(preset_named("wavenet_a1_nano"))
    quiet = export_nam(model)["metadata"]["loudness"]
    model.get_layer("head_scale").scale.assign(0.04)
    assert export_nam(model)["metadata"]["loudness"] - quiet == pytest.approx(20 * math.log10(2), abs=1e-3)


@pytest.mark.parametrize(("field", "value"), [("gear_type", "guitar"), ("tone_type", "metal"), ("gain", 1.5)])
def test_bad_metadata_is_one_line(field: str, value: object) -> None:
    model = build_model(preset_named("wavenet_a1_nano"))
    with pytest.raises(ExportError, match=f"metadata {field}="):
        export_nam(model, ModelMetadata(**{field: value}), loudness=False)


def test_export_model_picks_the_format_and_parity_follows(tmp_path: Path) -> None:
    keras.utils.set_random_seed(0)
    wavenet = randomize(build_model(tiny_preset(*TINY["a1_gated"])))
    nam_path = export_model(wavenet, tmp_path / "w")
    assert nam_path == tmp_path / "w" / "model.nam"
    x = (0.5 * np.random.default_rng(4).standard_normal(2000)).astype(np.float32)
    y = keras_predict(wavenet, x)
    assert parity_error(nam_path, x, y) < 1e-5
    assert parity_error(nam_path, x, y + 0.25) == pytest.approx(0.25, abs=1e-5)
    tcn = build_model(preset_named("wavenet_tcn_edge"))
    assert export_model(tcn, tmp_path / "t") == tmp_path / "t" / "model.json"


def test_rtneural_export_refuses_a_wavenet_and_nam_export_refuses_a_tcn() -> None:
    from rtnt.export.rtneural import export_rtneural

    with pytest.raises(ExportError):
        export_rtneural(build_model(tiny_preset(*TINY["a1"])))
    with pytest.raises(ExportError, match="not an rtnt WaveNet"):
        export_nam(build_model(preset_named("wavenet_tcn_edge")), loudness=False)


def test_checkpoint_round_trip_keeps_the_model(tmp_path: Path) -> None:
    """A saved .keras WaveNet (checkpoint) loads back with the same output and exports the same weights."""
    keras.utils.set_random_seed(0)
    model = randomize(build_model(tiny_preset(*TINY["a2_gated_bottleneck"])))
    model.save(tmp_path / "m.keras")
    loaded = keras.models.load_model(tmp_path / "m.keras")
    assert export_nam(loaded, loudness=False)["weights"] == export_nam(model, loudness=False)["weights"]


@pytest.mark.skipif(not native_available(), reason="native runtime not built")
@pytest.mark.parametrize("name", ["a1", "a2_head_conv"])
def test_native_narrow_arrays_match_keras_at_every_block_size(name: str) -> None:
    """Arrays of at most 4 channels run the narrow kernel (one history per channel, vectorised over time; single
    samples over the output channels): both arrays of `a1` (the second starts its skip sum from the first's head),
    per-layer kernel sizes, activations and a head conv in `a2_head_conv`. Keras agrees at every block size, and
    every partition gives the same bits."""
    keras.utils.set_random_seed(0)
    model = randomize(build_model(tiny_preset(*TINY[name])))
    native = NativeModel.from_json_text(json.dumps(export_nam(model, loudness=False)), prewarm=False)
    assert set(native.kernels.split()) == {"narrow"}
    x = (0.5 * np.random.default_rng(4).standard_normal(3000)).astype(np.float32)
    y_keras = keras_predict(model, x)
    native.prepare(64)
    outputs = {}
    for block in (1, 3, 16, 17, 64):
        native.reset()
        outputs[block] = native.process_blocks(x, block)
        assert np.max(np.abs(outputs[block] - y_keras)) <= 1e-5 * max(1.0, float(np.max(np.abs(y_keras))))
    assert all(np.array_equal(y, outputs[1]) for y in outputs.values())
    assert np.max(np.abs(y_keras)) > 1e-3
