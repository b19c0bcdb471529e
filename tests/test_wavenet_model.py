"""arch wavenet (NAM's residual WaveNet in Keras): preset sizes against exported .nam weight counts,
causality, XLA against graph training steps, and the layer-array config checks."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import ConfigKeyError
from test_model_build import documented_figures

from rtnt.config import REPO_DIR, LayerArrayConfig, load_preset, preset_config, validate_layer_arrays
from rtnt.errors import ConfigError
from rtnt.export.nam import nam_weights
from rtnt.model import build_model, model_summary, receptive_field
from rtnt.model.wavenet import wavenet_parts

PRESETS = REPO_DIR / "conf" / "preset"
WAVENET_PRESETS = sorted(p for p in PRESETS.glob("*.yaml") if OmegaConf.load(p).get("arch") == "wavenet")


def tiny_preset(*arrays: dict, head_scale: float = 0.02) -> DictConfig:
    """A wavenet preset from layer-array overrides (LayerArrayConfig defaults otherwise)."""
    return preset_config(
        {"name": "tiny", "arch": "wavenet", "head_scale": head_scale, "layer_arrays": [dict(a) for a in arrays]}
    )


# Two A1-form arrays (the second gated) and an A2-form array (per-layer kernels and activations, kernel-5 head).
TINY_A1 = (
    {"channels": 4, "dilations": [1, 2, 4], "head_size": 3},
    {"input_size": 4, "channels": 3, "dilations": [8, 1], "gated": True, "head_bias": True},
)
TINY_A2 = (
    {
        "channels": 3,
        "kernel_sizes": [2, 4, 3],
        "dilations": [1, 3, 7],
        "activation": ["LeakyReLU", "Tanh", "Softsign"],
        "negative_slope": 0.05,
        "head_kernel_size": 5,
        "head_bias": True,
    },
)


def test_a1_and_a2_presets_exist() -> None:
    names = {p.stem for p in WAVENET_PRESETS}
    assert {
        "wavenet_a1_standard",
        "wavenet_a1_lite",
        "wavenet_a1_feather",
        "wavenet_a1_nano",
        "wavenet_a2_full",
    } <= names


@pytest.mark.parametrize("path", WAVENET_PRESETS, ids=lambda p: p.stem)
def test_params_equal_exported_nam_weight_count(path: Path) -> None:
    preset = load_preset(path)
    model = build_model(preset)
    assert model.count_params() == nam_weights(model).size == documented_figures(path).params
    # conditioning=film (NAM's activation_pre_film in every layer, two knobs): still one parameter per .nam weight
    film = build_model(preset, n_knobs=2, conditioning=OmegaConf.create({"method": "film"}))
    arrays, _ = wavenet_parts(film)
    assert all(a.spec.films == ("activation_pre_film",) for a in arrays)
    assert film.count_params() == nam_weights(film).size == sum(a.spec.param_count for a in arrays) + 1


def test_a1_standard_and_a2_full_have_nams_sizes() -> None:
    """NAM Core's own counts (FORMAT.md): A1 standard 13 802 weights, receptive field 4093; A2-Full 12 146, 6347."""
    a1, a2 = load_preset(PRESETS / "wavenet_a1_standard.yaml"), load_preset(PRESETS / "wavenet_a2_full.yaml")
    assert (model_summary(a1).params, receptive_field(a1)) == (13802, 4093)
    assert (model_summary(a2).params, receptive_field(a2)) == (12146, 6347)
    # MACs by hand: array 0 = 1*16 + 10*(3*16*16 + 16 + 16*16) + 16*8, array 1 = 16*8 + 10*(3*8*8 + 8 + 8*8) + 8*1.
    assert model_summary(a1).macs_per_sample == (16 + 10 * (768 + 16 + 256) + 128) + (128 + 10 * (192 + 8 + 64) + 8)


@pytest.mark.parametrize("arrays", [TINY_A1, TINY_A2], ids=["a1_gated", "a2"])
def test_causal_and_receptive_field(arrays: tuple[dict, ...]) -> None:
    keras.utils.set_random_seed(0)
    preset = tiny_preset(*arrays)
    model = build_model(preset)
    rf = receptive_field(preset)
    assert model_summary(model).receptive_field_samples == rf
    x = np.random.default_rng(0).standard_normal((1, 300, 1)).astype(np.float32)
    y = model.predict_on_batch(x)
    assert y.shape == x.shape
    x2 = x.copy()
    x2[0, 200:] += 1.0
    y2 = model.predict_on_batch(x2)
    np.testing.assert_array_equal(y2[0, :200], y[0, :200])  # the future does not reach the past
    assert np.max(np.abs(y2[0, 200 : 200 + rf] - y[0, 200 : 200 + rf])) > 0  # ... and the present does
    x3 = x.copy()
    x3[0, 100] += 1.0  # an impulse at 100 reaches output 100 + rf - 1 and no further
    diff = np.abs(model.predict_on_batch(x3) - y)[0, :, 0]
    assert diff[100 + rf - 1] > 0 and np.all(diff[100 + rf :] < 1e-7)


def _compiled(preset: DictConfig, jit: bool) -> keras.Model:
    keras.utils.set_random_seed(1)
    model = build_model(preset)
    model.compile(optimizer=keras.optimizers.Adam(1e-2), loss="mse", jit_compile=jit)
    return model


def test_xla_train_step_matches_graph_mode() -> None:
    preset = tiny_preset(*TINY_A1)
    rng = np.random.default_rng(2)
    x = (0.5 * rng.standard_normal((2, 256, 1))).astype(np.float32)
    y = np.tanh(3 * x)
    xla, graph = _compiled(preset, True), _compiled(preset, False)
    for _ in range(2):  # the second loss is after one update: gradients agree too
        loss_xla, loss_graph = float(xla.train_on_batch(x, y)), float(graph.train_on_batch(x, y))
        assert loss_xla == pytest.approx(loss_graph, rel=1e-5)
    assert xla.jit_compile is True


def test_last_arrays_unused_residual_update_is_frozen() -> None:
    """NAM's last layer's layer1x1 cannot reach the output: its weights exist (the .nam holds them) but do not train."""
    model = build_model(tiny_preset(*TINY_A1))
    frozen = {w.path for w in model.non_trainable_weights}
    assert frozen == {"array1/layer1_layer1x1", "array1/layer1_layer1x1_bias", "head_scale/head_scale"}


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        ({"layer_arrays": []}, "config preset.layer_arrays=0 is invalid: arch wavenet needs at least one layer array"),
        ({"head_scale": 0.0}, "preset.head_scale=0.0 is invalid"),
        (
            {"layer_arrays": [{"kernel_sizes": [3, 3]}]},
            "preset.layer_arrays.0.kernel_sizes=[3, 3] is invalid: give one kernel size or one per layer (10)",
        ),
        (
            {"layer_arrays": [{"activation": ["Gelu"]}]},
            "preset.layer_arrays.0.activation=['Gelu'] is invalid: each must be one of Tanh",
        ),
        (
            {"layer_arrays": [{"input_size": 2}]},
            "preset.layer_arrays.0.input_size=2 is invalid: must be 1 for the first array",
        ),
        (
            {"layer_arrays": [{"head_size": 8}]},
            "preset.layer_arrays.0.head_size=8 is invalid: must be 1 for the last array",
        ),
        (
            {"layer_arrays": [{"head_size": 16}, {"input_size": 12}]},
            "preset.layer_arrays.1.input_size=12 is invalid: must equal the channels of layer array 0 (16)",
        ),
        (
            {"layer_arrays": [{"head_size": 4}, {"input_size": 16}]},
            "preset.layer_arrays.0.head_size=4 is invalid: must equal the bottleneck of layer array 1 (16)",
        ),
        ({"layer_arrays": [{"bottleneck": 8, "layer1x1": False}]}, "preset.layer_arrays.0.layer1x1=False is invalid"),
        (
            {"layer_arrays": [{"dilations": [1, 0]}]},
            "preset.layer_arrays.0.dilations=[1, 0] is invalid: every dilation must be >= 1",
        ),
    ],
)
def test_bad_layer_arrays_are_one_line_config_errors(override: dict, expected: str) -> None:
    preset = OmegaConf.merge(preset_config({"name": "x", "arch": "wavenet", "layer_arrays": [{}]}), override)
    with pytest.raises(ConfigError) as info:
        validate_layer_arrays(preset)
    message = str(info.value)
    assert expected in message and "\n" not in message


def test_unknown_layer_array_key_is_refused_by_the_schema() -> None:
    with pytest.raises(ConfigKeyError, match="kernel_size"):
        preset_config({"arch": "wavenet", "layer_arrays": [{"kernel_size": 3}]})


def test_cli_refuses_a_broken_chain_in_one_line_before_tensorflow() -> None:
    probe = (
        "import sys\nfrom rtnt.cli.train import main\n"
        "sys.argv = ['rtnt-train', 'preset=wavenet_a1_standard', 'preset.layer_arrays.0.channels=12']\n"
        "try:\n    main()\nexcept SystemExit as exc:\n"
        "    print('EXIT', exc.code, 'TF_LOADED', 'tensorflow' in sys.modules)\n"
    )
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert lines == [
        "error: config preset.layer_arrays.1.input_size=16 is invalid: must equal the channels of layer array 0 (12); "
        "fix it on the command line (preset.layer_arrays.1.input_size=...) or in conf/"
    ], proc.stderr
    assert "EXIT 2 TF_LOADED False" in proc.stdout


def test_every_wavenet_preset_passes_the_checks() -> None:
    for path in WAVENET_PRESETS:
        validate_layer_arrays(load_preset(path))
    assert LayerArrayConfig().activation == ["Tanh"]
