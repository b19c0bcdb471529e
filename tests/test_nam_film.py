"""NAM's WaveNet FiLMs (`conditioning=film` for `arch: wavenet`): the Keras layers, the `.nam` export (FiLM switches
and weights in NAM Core's order, FORMAT.md section 4), the numpy reference runtime against Keras, and the native
runtime against the reference for every FiLM switch NAM defines (per-sample controls, every block size bit-identical,
prewarm at the knobs' defaults).

Tolerance as tests/test_nam_conditioned.py: Keras float32 against the float64 reference 1e-5 of max(1, peak); native
float32 against the reference 1e-5 of max(1, peak).
"""

from __future__ import annotations

import json

import keras
import numpy as np
import pytest
from omegaconf import OmegaConf

from rtnt.config import preset_config
from rtnt.export.nam import export_nam
from rtnt.model import build_model
from rtnt.model.wavenet import TRAINED_FILMS, build_wavenet
from rtnt.native import native_available
from rtnt.runtime.controls import ControlSpec
from rtnt.runtime.nam_reference import FILM_KEYS, NamModel
from rtnt.validate.parity import keras_predict

GAIN = ControlSpec("gain", 0.1, 0.9, 0.5)
TONE = ControlSpec("tone", 0.0, 1.0, 0.25)
TOL = 1e-5
needs_native = pytest.mark.skipif(not native_available(), reason="native extension not built")

ARRAYS = [
    {"channels": 4, "dilations": [1, 2, 4], "head_size": 3},
    {"input_size": 4, "channels": 3, "dilations": [8, 1], "head_bias": True},
]
GATED = [  # A2 form: gated, bottleneck < channels, per-layer kernels
    {"channels": 5, "bottleneck": 3, "gated": True, "kernel_sizes": [3, 2], "dilations": [1, 3], "head_size": 4},
    {"input_size": 5, "channels": 4, "dilations": [2, 1], "activation": ["Tanh", "ReLU"], "head_bias": True},
]


def _preset(arrays: list[dict]):
    return preset_config({"name": "tiny_film", "arch": "wavenet", "layer_arrays": arrays})


def _perturb(model: keras.Model, seed: int) -> keras.Model:
    rng = np.random.default_rng(seed)
    for w in model.trainable_weights:
        w.assign(w.numpy() + 0.2 * rng.standard_normal(w.shape).astype(np.float32))
    return model


def film_model(k: int, films: tuple[str, ...], arrays: list[dict] = ARRAYS, seed: int = 0) -> keras.Model:
    """A tiny WaveNet with k knobs and the NAM FiLMs `films` on, weights perturbed so that every FiLM matters."""
    keras.utils.set_random_seed(seed)
    inputs = keras.Input(shape=(None, 1 + k))
    return _perturb(keras.Model(inputs, build_wavenet(_preset(arrays), inputs, films=films)), seed)


def _exported(model: keras.Model, controls: list[ControlSpec]) -> dict:
    return json.loads(json.dumps(export_nam(model, controls=controls, loudness=False)))


def _signal(n: int, seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (0.6 * np.sin(np.arange(n) * 0.03) + 0.2 * rng.standard_normal(n)).astype(np.float32)


def _changing(controls: list[ControlSpec], n: int) -> np.ndarray:
    t = np.arange(n)[:, None] / n
    lo = np.array([c.minimum for c in controls])
    hi = np.array([c.maximum for c in controls])
    return (lo + (hi - lo) * (0.5 + 0.5 * np.sin(2 * np.pi * 3 * t + np.arange(len(controls))))).astype(np.float32)


def _close(y: np.ndarray, y_ref: np.ndarray) -> None:
    np.testing.assert_allclose(y, y_ref, atol=TOL * max(1.0, float(np.max(np.abs(y_ref)))))


def test_conditioning_film_builds_activation_pre_film_starting_as_the_identity() -> None:
    preset = _preset(ARRAYS)
    keras.utils.set_random_seed(3)
    film = build_model(preset, n_knobs=2, conditioning=OmegaConf.create({"method": "film"}))
    keras.utils.set_random_seed(3)
    concat = build_model(preset, n_knobs=2, conditioning=OmegaConf.create({"method": "concat"}))
    specs = [layer.spec for layer in film.layers if hasattr(layer, "spec")]
    assert [s.films for s in specs] == [TRAINED_FILMS] * 2 == [("activation_pre_film",)] * 2
    film_weights = {w.path: w.numpy() for w in film.weights if "film" in w.path}
    assert len(film_weights) == 2 * (3 + 2)  # kernel and bias per layer
    frames = np.random.default_rng(0).uniform(-0.5, 0.5, (1, 500, 3)).astype(np.float32)
    # FiLM starts at S = 1, T = 0: the same output as the concat model with the same other weights
    np.testing.assert_array_equal(film.predict(frames, verbose=0), concat.predict(frames, verbose=0))
    data = export_nam(film, controls=[GAIN, TONE], loudness=False)
    assert (
        len(data["weights"])
        == film.count_params()
        == concat.count_params() + sum(2 * s.conv_out * (3 + 1) * s.num_layers for s in specs)
    )
    for layer in data["config"]["layers"]:
        assert layer["activation_pre_film"] == {"active": True, "shift": True, "groups": 1}
        assert all(not layer[k]["active"] for k in FILM_KEYS if k != "activation_pre_film")


@pytest.mark.parametrize("arrays", [ARRAYS, GATED], ids=["a1_shape", "gated"])
def test_every_film_switch_exports_with_its_weights_in_nams_order(arrays: list[dict]) -> None:
    model = film_model(1, FILM_KEYS, arrays)
    data = _exported(model, [GAIN])
    assert data["version"] == "0.7.0"
    assert len(data["weights"]) == model.count_params()
    assert all(layer[k]["active"] for layer in data["config"]["layers"] for k in FILM_KEYS)
    # the first layer's activation_pre_film sits after the conv, mix-in, layer1x1 and the three FiLMs before it
    a = model.get_layer(index=1)
    spec = a.spec
    z, c, b, cond = spec.conv_out, spec.channels, spec.bottleneck, spec.condition_size
    start = cond * c + (spec.kernel_sizes[0] * c * z + z) + cond * z + (b * c + c)
    start += sum(2 * spec.film_dim(k) * (cond + 1) for k in FILM_KEYS[:4])
    kernel, bias = a.films[0]["activation_pre_film"]
    got = np.asarray(data["weights"][start : start + 2 * z * (cond + 1)], dtype=np.float32)
    np.testing.assert_array_equal(got[: 2 * z * cond], kernel.numpy().T.ravel())
    np.testing.assert_array_equal(got[2 * z * cond :], bias.numpy())


@pytest.mark.parametrize(
    ("films", "arrays"),
    [(TRAINED_FILMS, ARRAYS), (FILM_KEYS, ARRAYS), (FILM_KEYS, GATED)],
    ids=["activation_pre", "every_film", "every_film_gated"],
)
def test_reference_matches_keras_at_constant_and_changing_knobs(films, arrays) -> None:
    controls = [GAIN, TONE]
    model = film_model(2, films, arrays)
    ref = NamModel.from_dict(_exported(model, controls), prewarm=False)
    x = _signal(3000)
    outputs = []
    for value in (0.1, 0.9):
        ref.reset()
        y = ref.process(x, np.array([value, TONE.default], dtype=np.float32))
        _close(y, keras_predict(model, x, (value, TONE.default)))
        outputs.append(y)
    assert np.max(np.abs(outputs[0] - outputs[1])) > 1e-3
    c = _changing(controls, len(x))
    ref.reset()
    y_keras = np.asarray(model.predict(np.concatenate([x[:, None], c], axis=1)[None], verbose=0))[0, :, 0]
    _close(ref.process(x, c), y_keras)
