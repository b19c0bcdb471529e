"""Keras model builders: shapes, causality, documented preset figures, SmoothTanh, lazy Keras import."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from omegaconf import DictConfig, OmegaConf

from rtnt.config import REPO_DIR, load_preset
from rtnt.model import model_summary, receptive_field

PRESET_FILES = sorted((REPO_DIR / "conf" / "preset").glob("*.yaml")) + sorted(
    (REPO_DIR / "conf" / "preset" / "legacy").glob("*.yaml")
)


PRESET_FIGURES = OmegaConf.load(Path(__file__).parent / "preset_figures.yaml")


def documented_figures(path: Path) -> DictConfig:
    """The figures tests/preset_figures.yaml states for the preset file `path`."""
    return PRESET_FIGURES[str(path.relative_to(REPO_DIR / "conf" / "preset").with_suffix(""))]


def test_every_preset_has_documented_figures() -> None:
    names = {str(p.relative_to(REPO_DIR / "conf" / "preset").with_suffix("")) for p in PRESET_FILES}
    assert set(PRESET_FIGURES) == names


def test_every_wavenet_and_legacy_preset_is_found() -> None:
    names = {p.stem for p in PRESET_FILES}
    assert {"wavenet_tcn_balanced", "wavenet_tcn_quality", "wavenet_tcn_edge", "wavenet_tcn_a2_prelu"} <= names
    assert {"dense", "gru", "lstm", "conv", "conv_bn_prelu", "conv_gru"} <= names


@pytest.mark.parametrize("path", PRESET_FILES, ids=lambda p: p.stem)
def test_documented_figures_match_built_model(path: Path) -> None:
    preset, documented = load_preset(path), documented_figures(path)
    s = model_summary(preset)
    assert documented.params == s.params
    assert documented.macs_per_sample == s.macs_per_sample
    assert abs(documented.receptive_field_ms - s.receptive_field_ms) <= 1e-3  # 3 decimals, < 0.05 sample
    assert s.receptive_field_samples == receptive_field(preset)


@pytest.mark.parametrize("path", PRESET_FILES, ids=lambda p: p.stem)
def test_mono_in_mono_out_and_causal(path: Path) -> None:
    from rtnt.model import build_model

    model = build_model(load_preset(path))
    rng = np.random.default_rng(0)
    x = rng.standard_normal((1, 400, 1)).astype(np.float32)
    y = model.predict_on_batch(x)
    assert y.shape == (1, 400, 1)
    x2 = x.copy()
    x2[0, 250:] += 1.0
    np.testing.assert_array_equal(model.predict_on_batch(x2)[0, :250], y[0, :250])


def test_balanced_counts_by_hand() -> None:
    """16 channels, 10 layers of kernel 3: MACs 3*1*16 + 9*3*16*16 + 16; params add 10*16 + 1 biases."""
    s = model_summary(load_preset(REPO_DIR / "conf" / "preset" / "wavenet_tcn_balanced.yaml"))
    assert s.macs_per_sample == 48 + 9 * 768 + 16
    assert s.params == s.macs_per_sample + 10 * 16 + 1
    assert s.receptive_field_samples == 1 + 2 * 1023


def test_a2_prelu_uses_per_channel_prelu() -> None:
    import keras

    from rtnt.model import build_model

    model = build_model(load_preset(REPO_DIR / "conf" / "preset" / "wavenet_tcn_a2_prelu.yaml"))
    prelus = [layer for layer in model.layers if isinstance(layer, keras.layers.PReLU)]
    assert len(prelus) == 14 and all(tuple(p.alpha.shape) == (1, 12) for p in prelus)


@pytest.mark.parametrize("scaled", [False, True])
def test_smooth_tanh_values_and_checkpoint_roundtrip(tmp_path: Path, scaled: bool) -> None:
    import keras

    from rtnt.model import SmoothTanh, build_model

    preset = load_preset(
        REPO_DIR / "conf" / "preset" / "wavenet_tcn_edge.yaml", smoothing_alpha=2.5, scaled_smoothing=scaled
    )
    x = np.linspace(-6, 6, 25, dtype=np.float32)
    expected = np.tanh(x / 2.5) * (2.5 if scaled else 1.0)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(SmoothTanh(2.5, scaled)(x)), expected, rtol=1e-6, atol=1e-6)

    model = build_model(preset)
    assert sum(isinstance(layer, SmoothTanh) for layer in model.layers) == 7
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    signal = np.random.default_rng(1).standard_normal((1, 300, 1)).astype(np.float32)
    np.testing.assert_array_equal(loaded.predict_on_batch(signal), model.predict_on_batch(signal))
    smooth = [layer for layer in loaded.layers if isinstance(layer, SmoothTanh)]
    assert smooth[0].alpha == 2.5 and smooth[0].scaled is scaled


def test_model_package_does_not_import_keras() -> None:
    code = (
        "import sys, rtnt.model; rtnt.model.receptive_field; "
        "assert 'keras' not in sys.modules and 'tensorflow' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO_DIR)
