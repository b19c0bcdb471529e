"""RTNeural JSON export: schema of every layer type, Keras -> JSON parity, smoothing folds, refusals."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import keras
import numpy as np
import pytest
from omegaconf import OmegaConf

from rtnt.config import REPO_DIR, load_preset
from rtnt.errors import ExportError
from rtnt.export.rtneural import export_rtneural, save_rtneural
from rtnt.model import SmoothTanh, build_model, model_summary
from rtnt.runtime.reference import ReferenceModel
from rtnt.validate import parity
from rtnt.validate.parity import keras_predict, parity_error

PRESETS = REPO_DIR / "conf" / "preset"
# Every preset that exports to RTNeural JSON; `arch: wavenet` exports to .nam (tests/test_nam_export.py).
PRESET_FILES = [
    p
    for p in sorted(PRESETS.glob("*.yaml")) + sorted((PRESETS / "legacy").glob("*.yaml"))
    if OmegaConf.load(p).get("arch") != "wavenet"
]
TOLERANCE = 1e-4


@pytest.fixture(autouse=True)
def seeded_keras_init() -> None:
    """Every test builds from the same Keras initial weights, so its parity figure is reproducible
    (unseeded, the randomized a2_prelu stack gave 3e-5 to 1.1e-4 from run to run)."""
    keras.utils.set_random_seed(0)


def randomize(model: keras.Model, seed: int = 0) -> keras.Model:
    """Perturb every weight (biases, BatchNorm statistics included) so parity exercises all of them."""
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        values = []
        for var, w in zip(layer.weights, layer.get_weights()):
            noise = rng.standard_normal(w.shape).astype(np.float32)
            values.append(np.abs(w + 0.3 * noise) + 0.05 if "variance" in var.path else w + 0.1 * noise)
        layer.set_weights(values)
    return model


def json_parity(model: keras.Model, n: int, seed: int = 0) -> float:
    """Max abs error of the exported JSON (reference runtime) against Keras on n samples of noise."""
    x = (0.5 * np.random.default_rng(seed).standard_normal(n)).astype(np.float32)
    y_ref = ReferenceModel.from_json(json.loads(json.dumps(export_rtneural(model)))).process(x)
    return float(np.max(np.abs(y_ref - keras_predict(model, x))))


@pytest.mark.parametrize("path", PRESET_FILES, ids=lambda p: p.stem)
def test_preset_parity(path: Path) -> None:
    preset = load_preset(path)
    for initial in (True, False):
        model = build_model(preset) if initial else randomize(build_model(preset))
        rf = model_summary(model).receptive_field_samples
        assert json_parity(model, rf + 400) < TOLERANCE


SMOOTHING_PRESETS = {
    "tcn": (PRESETS / "wavenet_tcn_edge.yaml", {}),
    "dense": (PRESETS / "legacy" / "dense.yaml", {}),
    "conv_bn_tanh": (PRESETS / "legacy" / "conv_bn_prelu.yaml", {"activation": "tanh"}),
    "conv_gru": (PRESETS / "legacy" / "conv_gru.yaml", {}),
}


@pytest.mark.parametrize("alpha", [1.0, 1.5, 3.0])
@pytest.mark.parametrize("scaled", [False, True])
@pytest.mark.parametrize("arch", sorted(SMOOTHING_PRESETS))
def test_smoothing_parity_and_plain_tanh_json(arch: str, scaled: bool, alpha: float) -> None:
    path, overrides = SMOOTHING_PRESETS[arch]
    model = randomize(
        build_model(load_preset(path, **overrides, smoothing_alpha=alpha, scaled_smoothing=scaled)), seed=7
    )
    data = export_rtneural(model)
    acts = {layer["activation"] for layer in data["layers"]}
    assert acts <= {"", "tanh"} and "tanh" in acts
    assert json_parity(model, 600, seed=3) < TOLERANCE


def test_smoothing_folds_into_weights() -> None:
    """tanh(x/a): conv weights and bias / a; a*tanh(x/a): the next conv's kernel * a, bias unchanged."""
    preset = load_preset(PRESETS / "wavenet_tcn_edge.yaml", smoothing_alpha=1.0, scaled_smoothing=False)
    base = randomize(build_model(preset), seed=5)
    smooth = build_model(load_preset(PRESETS / "wavenet_tcn_edge.yaml", smoothing_alpha=3.0, scaled_smoothing=True))
    smooth.set_weights(base.get_weights())
    plain, folded = export_rtneural(base)["layers"], export_rtneural(smooth)["layers"]
    k0, b0 = (np.array(w) for w in plain[0]["weights"])
    np.testing.assert_allclose(folded[0]["weights"][0], k0 / 3.0, rtol=1e-6)
    np.testing.assert_allclose(folded[0]["weights"][1], b0 / 3.0, rtol=1e-6)
    k1, b1 = (np.array(w) for w in plain[1]["weights"])
    np.testing.assert_allclose(folded[1]["weights"][0], k1 * 3.0 / 3.0, rtol=1e-6)  # *alpha in, /alpha out
    np.testing.assert_allclose(folded[1]["weights"][1], b1 / 3.0, rtol=1e-6)
    np.testing.assert_allclose(folded[-1]["weights"][0], np.array(plain[-1]["weights"][0]) * 3.0, rtol=1e-6)
    np.testing.assert_allclose(folded[-1]["weights"][1], plain[-1]["weights"][1], rtol=0)


def _all_layer_types_model() -> keras.Model:
    """Every layer type RTNeural loads, with activations folded and standalone."""
    L = keras.layers
    inputs = keras.Input((None, 1))
    x = L.TimeDistributed(L.Dense(6, activation="tanh"), name="td")(inputs)
    x = L.Conv1D(6, 3, dilation_rate=2, padding="causal", groups=2, activation="relu", name="conv")(x)
    x = L.BatchNormalization(epsilon=0.01, name="bn")(x)
    x = L.PReLU(shared_axes=[1], name="prelu")(x)
    x = L.Dense(5, name="dense")(x)
    x = L.Activation("elu", name="elu")(x)
    x = L.Activation("softmax", name="softmax")(x)
    x = L.GRU(4, return_sequences=True, name="gru")(x)
    x = L.Activation("sigmoid", name="sigmoid")(x)
    x = L.LSTM(3, return_sequences=True, name="lstm")(x)
    x = L.Dense(1, use_bias=False, name="out")(x)
    return keras.Model(inputs, x)


def test_schema_of_every_layer_type() -> None:
    model = randomize(_all_layer_types_model(), seed=11)
    data = export_rtneural(model)
    assert data["in_shape"] == [None, None, 1]
    summary = [
        (layer["type"], layer["activation"], layer["shape"][-1], [np.shape(w) for w in layer["weights"]])
        for layer in data["layers"]
    ]
    assert summary == [
        ("time-distributed-dense", "tanh", 6, [(1, 6), (6,)]),
        ("conv1d", "relu", 6, [(3, 3, 6), (6,)]),
        ("batchnorm", "", 6, [(6,), (6,), (6,), (6,)]),
        ("prelu", "", 6, [(1, 6)]),
        ("dense", "elu", 5, [(6, 5), (5,)]),
        ("activation", "softmax", 5, []),
        ("gru", "", 4, [(5, 12), (4, 12), (2, 12)]),
        ("activation", "sigmoid", 4, []),
        ("lstm", "", 3, [(4, 12), (3, 12), (12,)]),
        ("dense", "", 1, [(3, 1), (1,)]),
    ]
    conv, bn = data["layers"][1], data["layers"][2]
    assert (conv["kernel_size"], conv["dilation"], conv["groups"]) == ([3], [2], 2)
    assert bn["epsilon"] == pytest.approx(0.01)
    assert all(set(layer) >= {"type", "activation", "shape", "weights"} for layer in data["layers"])
    np.testing.assert_array_equal(data["layers"][-1]["weights"][1], [0.0])
    flat = np.concatenate([np.ravel(w) for layer in data["layers"] for w in layer["weights"]])
    np.testing.assert_array_equal(flat, flat.astype(np.float32))
    assert json_parity(model, 300, seed=4) < TOLERANCE


def test_conv_kernel_orientation_matches_keras_layout() -> None:
    model = keras.Sequential([keras.Input((None, 2)), keras.layers.Conv1D(3, 4, dilation_rate=5, padding="causal")])
    randomize(model)
    kernel, bias = model.layers[0].get_weights()
    weights = export_rtneural(model)["layers"][0]["weights"]
    np.testing.assert_array_equal(np.array(weights[0], dtype=np.float32), kernel)  # (kernel, in, out), tap 0 oldest
    np.testing.assert_array_equal(np.array(weights[1], dtype=np.float32), bias)


def test_save_and_parity_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    model = randomize(build_model(load_preset(PRESETS / "wavenet_tcn_edge.yaml")), seed=2)
    path = save_rtneural(model, tmp_path / "sub" / "model.json")
    assert json.loads(path.read_text()) == json.loads(json.dumps(export_rtneural(model)))
    x = np.random.default_rng(0).standard_normal(2000).astype(np.float32)
    y = keras_predict(model, x)
    assert parity_error(path, x, y) < TOLERANCE
    assert parity_error(path, x, y + 0.5) == pytest.approx(0.5, abs=TOLERANCE)
    monkeypatch.setattr(parity, "CHUNK", 300)  # chunks with receptive-field history equal one pass
    np.testing.assert_allclose(keras_predict(model, x), y, rtol=0, atol=1e-6)


def _seq(*layers: Any, channels: int = 1) -> keras.Model:
    return keras.Sequential([keras.Input((None, channels)), *layers])


def _two_inputs() -> keras.Model:
    a, b = keras.Input((None, 1)), keras.Input((None, 1))
    return keras.Model([a, b], keras.layers.Add(name="add")([a, b]))


def _branch() -> keras.Model:
    inputs = keras.Input((None, 1))
    x = keras.layers.Conv1D(2, 3, padding="causal", name="c1")(inputs)
    y = keras.layers.Conv1D(2, 1, name="c2")(x)
    return keras.Model(inputs, keras.layers.Add(name="skip")([x, y]))


L = keras.layers
REFUSED = {
    "same padding": (lambda: _seq(L.Conv1D(2, 3, padding="same", name="c")), "layer 'c' (Conv1D)", "padding 'same'"),
    "strides": (lambda: _seq(L.Conv1D(2, 3, strides=2, padding="causal", name="c")), "layer 'c' (Conv1D)", "strides"),
    "gelu": (lambda: _seq(L.Dense(2, activation="gelu", name="d")), "layer 'd' (Dense)", "activation 'gelu'"),
    "layer norm": (
        lambda: _seq(L.Dense(2), L.LayerNormalization(name="ln")),
        "layer 'ln' (LayerNormalization)",
        "unsupported layer type",
    ),
    "gru reset_after": (
        lambda: _seq(L.GRU(2, reset_after=False, return_sequences=True, name="g")),
        "layer 'g' (GRU)",
        "reset_after=False",
    ),
    "gru last only": (lambda: _seq(L.GRU(2, name="g")), "layer 'g' (GRU)", "return_sequences=True"),
    "lstm backwards": (
        lambda: _seq(L.LSTM(2, go_backwards=True, return_sequences=True, name="l")),
        "layer 'l' (LSTM)",
        "forwards",
    ),
    "lstm relu": (
        lambda: _seq(L.LSTM(2, activation="relu", return_sequences=True, name="l")),
        "layer 'l' (LSTM)",
        "activation tanh",
    ),
    "two inputs": (_two_inputs, "2 inputs", "single chain"),
    "branch": (_branch, "layer 'skip' (Add)", "several inputs"),
    "td conv": (
        lambda: _seq(L.TimeDistributed(L.Dense(2), name="td"), L.TimeDistributed(L.Reshape((2, 1)), name="tr")),
        "layer 'tr' (TimeDistributed)",
        "TimeDistributed(Dense) only",
    ),
    "scaled at output": (
        lambda: _seq(L.Dense(2), SmoothTanh(2.0, scaled=True, name="s")),
        "layer 's' (SmoothTanh)",
        "at the model output",
    ),
    "scaled then prelu": (
        lambda: _seq(
            L.Dense(2), SmoothTanh(2.0, scaled=True, name="s"), L.PReLU(shared_axes=[1], name="p"), L.Dense(1)
        ),
        "layer 's' (SmoothTanh)",
        "not 'p'",
    ),
    "smooth after prelu": (
        lambda: _seq(L.Dense(2), L.PReLU(shared_axes=[1]), SmoothTanh(2.0, name="s"), L.Dense(1)),
        "layer 's' (SmoothTanh)",
        "preceding Dense or Conv1D",
    ),
    "smooth after tanh": (
        lambda: _seq(L.Dense(2, activation="tanh"), SmoothTanh(2.0, name="s"), L.Dense(1)),
        "layer 's' (SmoothTanh)",
        "without activation",
    ),
    "prelu per step": (
        lambda: keras.Sequential([keras.Input((8, 2)), L.PReLU(name="p")]),
        "layer 'p' (PReLU)",
        "alpha shape",
    ),
}


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_refusals_name_the_layer(case: str) -> None:
    make, where, problem = REFUSED[case]
    with pytest.raises(ExportError) as err:
        export_rtneural(make())
    message = str(err.value)
    assert where in message and problem in message and "\n" not in message
