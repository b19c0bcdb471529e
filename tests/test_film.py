"""FiLM conditioning (`conditioning=film`, docs/film_format.md): the Keras model's start (gamma 1, beta 0) and
its XLA step, the film-1 export against Keras in the reference runtime at every training value and an unseen one,
the native runtime against the reference (changing controls, block sizes 1..4096 bit for bit), malformed film
files refused in one line by both loaders, and the families that refuse film."""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest
from omegaconf import OmegaConf

from rtnt.config import CONF_DIR, REPO_DIR, ConditioningConfig, load_preset
from rtnt.errors import ConfigError, ModelJsonError
from rtnt.model.conditioning import model_input
from rtnt.native import NativeModel, native_available
from rtnt.runtime.controls import ControlSpec
from rtnt.runtime.reference import ReferenceModel

TOL = 1e-4  # Keras vs exported file, max abs (the parity tolerance)
NATIVE_TOL = 1e-5  # native vs reference, max abs
GAIN = ControlSpec("gain", 0.1, 0.9, 0.5)
TONE = ControlSpec("tone", 0.0, 1.0, 0.5)
TRAINING_VALUES = (0.1, 0.5, 0.9)
UNSEEN = 0.7
FILM = ConditioningConfig(method="film", film_hidden=6, film_layers=2)
needs_native = pytest.mark.skipif(not native_available(), reason="rtnt._native is not built (pip install -e .)")


def tiny_preset(**overrides):
    """wavenet_tcn_edge (scaled smooth tanh, alpha 4: the fold FiLM must respect) cut to 4 channels, 3 layers."""
    return load_preset(CONF_DIR / "preset" / "wavenet_tcn_edge.yaml", channels=4, dilations=[1, 2, 4], **overrides)


def film_model(k: int = 1, seed: int = 5, randomize: bool = True, **preset_overrides):
    """A FiLM tcn with K knobs, its weights drawn at random (so that every gamma and beta differs from 1, 0)."""
    import keras

    from rtnt.model.build import build_model

    keras.utils.set_random_seed(seed)
    model = build_model(tiny_preset(**preset_overrides), k, FILM)
    if randomize:
        rng = np.random.default_rng(seed)
        for w in model.weights:
            w.assign(rng.normal(0.0, 0.4, w.shape).astype(np.float32))
    return model


def film_json(model, controls=(GAIN,)) -> dict:
    from rtnt.export.film import export_film

    return export_film(model, list(controls))


def _signal(n: int, seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (0.6 * np.sin(np.arange(n) * 0.03) + 0.2 * rng.standard_normal(n)).astype(np.float32)


def keras_out(model, x: np.ndarray, c: np.ndarray) -> np.ndarray:
    frames = np.concatenate([x[:, None], c], axis=1)[None].astype(np.float32)
    return np.asarray(model(frames))[0, :, 0]


def test_fresh_model_starts_unmodulated_and_trains_under_xla() -> None:
    import keras

    model = film_model(randomize=False)
    x = _signal(256)
    low, high = (keras_out(model, x, np.full((len(x), 1), v, np.float32)) for v in (0.1, 0.9))
    assert np.array_equal(low, high)  # gamma 1, beta 0 whatever the knob
    data = film_json(model)
    for adaptor in data["film"]["adaptors"]:
        kernel, bias = np.asarray(adaptor["weights"][0]), np.asarray(adaptor["weights"][1])
        assert not kernel.any() and list(bias) == [1.0] * 4 + [0.0] * 4
    assert {layer.name for layer in model.layers} >= {"knob_split", "film_mlp0", "film_mlp1", "film0", "film_apply2"}
    model.compile(optimizer=keras.optimizers.Adam(1e-2), loss="mse", jit_compile=True)
    batch = model_input(x, [0.3])[None]
    target = np.tanh(2 * x)[None, :, None]
    first = model.train_on_batch(batch, target)
    for _ in range(3):
        last = model.train_on_batch(batch, target)
    assert np.isfinite(last) and last < first


@pytest.mark.parametrize("k", [1, 2])
def test_export_matches_keras_in_the_reference_at_every_setting_and_with_changing_controls(k: int) -> None:
    model = film_model(k)
    data = film_json(model, [GAIN, TONE][:k])
    assert data["rtnt_format"] == "film-1" and data["in_shape"] == [None, None, 1 + k]
    assert data["layers"][0] == {"type": "film-split", "activation": "", "shape": [None, None, 1]}
    assert "weights" not in data["layers"][0]  # RTNeural's parser (.at("weights")) refuses the file
    assert [a["layer"] for a in data["film"]["adaptors"]] == [1, 2, 3]
    assert all(data["layers"][i]["type"] == "conv1d" for i in (1, 2, 3))
    ref = ReferenceModel.from_json(data)
    assert ref.controls == [GAIN, TONE][:k]
    x = _signal(3000)
    for value in (*TRAINING_VALUES, UNSEEN):
        c = np.full((len(x), k), value, np.float32)
        ref.reset()
        assert np.max(np.abs(ref.process(x, c) - keras_out(model, x, c))) <= TOL
    ramp = np.stack([np.linspace(0.1, 0.9, len(x)), 0.5 + 0.4 * np.sin(np.arange(len(x)) * 0.01)][:k], 1)
    ramp = ramp.astype(np.float32)
    ref.reset()
    y = ref.process(x, ramp)
    assert np.max(np.abs(y - keras_out(model, x, ramp))) <= TOL
    ref.reset()
    pieces = np.concatenate([ref.process(x[s : s + 77], ramp[s : s + 77]) for s in range(0, len(x), 77)])
    assert np.max(np.abs(pieces - y)) <= 1e-5
    ref.reset()
    low = ref.process(x, [0.1] * k)
    ref.reset()
    assert np.max(np.abs(low - ref.process(x, [0.9] * k))) > 1e-2  # the knob modulates the output


def test_unscaled_smoothing_and_prelu_export_match_keras() -> None:
    x = _signal(1500)
    c = np.full((len(x), 1), 0.3, np.float32)
    for overrides in ({"scaled_smoothing": False, "smoothing_alpha": 2.0}, {"activation": "prelu"}):
        model = film_model(**overrides)
        ref = ReferenceModel.from_json(film_json(model))
        assert np.max(np.abs(ref.process(x, c) - keras_out(model, x, c))) <= TOL, overrides


@pytest.fixture(scope="module")
def film_doc() -> dict:
    return film_json(film_model(2), [GAIN, TONE])


@needs_native
def test_native_matches_reference_at_every_setting_and_is_block_invariant(film_doc: dict) -> None:
    ref = ReferenceModel.from_json(film_doc)
    native = NativeModel.from_json_text(json.dumps(film_doc), "film.json")
    assert native.controls == [GAIN, TONE] and "FiLM" in native.description
    x = _signal(5000)
    for value in (*TRAINING_VALUES, UNSEEN):
        ref.reset()
        native.reset()
        assert np.max(np.abs(native.process(x, [value, 0.5]) - ref.process(x, [value, 0.5]))) <= NATIVE_TOL
    c = np.stack([0.5 + 0.45 * np.sin(np.arange(len(x)) * 0.003), np.full(len(x), 0.25)], 1).astype(np.float32)
    c[1000:1500] = [0.9, 0.25]  # held, then changing again
    ref.reset()
    native.reset()
    whole = native.process(x, c)
    assert np.max(np.abs(whole - ref.process(x, c))) <= NATIVE_TOL
    for block in (1, 3, 64, 100, 512, 4096):
        native.prepare(block)
        assert np.array_equal(native.process_blocks(x, block, c), whole), block


def _mutations():
    def adaptor_without_weights(d):
        d["film"]["adaptors"][0].pop("weights")

    def adaptor_wrong_size(d):
        kernel, bias = d["film"]["adaptors"][1]["weights"]
        d["film"]["adaptors"][1]["weights"] = [[row[:-2] for row in kernel], bias[:-2]]  # 2 C - 2 outputs

    def no_controls(d):
        d.pop("controls")
        d["in_shape"] = [None, None, 1]

    def no_format(d):
        d.pop("rtnt_format")

    def no_film(d):
        d.pop("film")

    def adaptor_on_output(d):
        d["film"]["adaptors"][2]["layer"] = 4

    def split_missing(d):
        d["layers"].pop(0)

    def mlp_wrong_width(d):
        d["film"]["mlp"][0]["weights"][0] = d["film"]["mlp"][0]["weights"][0][:1]

    return {
        "adaptor_without_weights": (adaptor_without_weights, ("weights", "film.adaptors[0]")),
        "adaptor_wrong_size": (adaptor_wrong_size, ("adaptor", "film.adaptors[1]")),
        "film_without_controls": (no_controls, ("controls",)),
        "film_without_format": (no_format, ("rtnt_format",)),
        "format_without_film": (no_film, ("'film' object",)),
        "adaptor_on_a_non_film_layer": (adaptor_on_output, ("layer",)),
        "split_layer_missing": (split_missing, ("film-split",)),
        "mlp_wrong_width": (mlp_wrong_width, ("film.mlp[0]",)),
    }


MUTATIONS = _mutations()


@pytest.mark.parametrize("case", sorted(MUTATIONS))
def test_malformed_film_files_refused_in_one_line_by_both_loaders(film_doc: dict, case: str) -> None:
    mutate, needles = MUTATIONS[case]
    data = copy.deepcopy(film_doc)
    mutate(data)
    with pytest.raises(ModelJsonError) as info:
        ReferenceModel.from_json(data)
    message = str(info.value)
    assert "\n" not in message and any(n in message for n in needles), message
    if native_available():
        with pytest.raises(Exception) as info:
            NativeModel.from_json_text(json.dumps(data), "film.json")
        message = str(info.value)
        assert "\n" not in message and any(n in message for n in needles), message


def test_fuzz_corpus_film_seed_loads() -> None:
    path = REPO_DIR / "native" / "fuzz" / "corpus" / "film.json"
    ref = ReferenceModel.from_json(path)
    x = _signal(400)
    y = ref.process(x, np.stack([np.linspace(0, 1, 400), np.full(400, 0.5)], 1).astype(np.float32))
    assert np.all(np.isfinite(y))
    if native_available():
        native = NativeModel.from_file(path)
        ref.reset()
        c = np.full((400, 2), 0.3, np.float32)
        assert np.max(np.abs(native.process(x, c) - ref.process(x, c))) <= NATIVE_TOL


@pytest.mark.parametrize("preset", ["legacy/conv", "graybox/ts9"])
def test_families_without_film_refuse_it_in_one_line(preset: str) -> None:
    from rtnt.config import validate_conditioning
    from rtnt.model.build import build_model

    p = load_preset(CONF_DIR / "preset" / f"{preset}.yaml")
    with pytest.raises(ConfigError) as info:
        build_model(p, 1, FILM)
    assert "does not support conditioning=film" in str(info.value) and "\n" not in str(info.value)
    cfg = OmegaConf.create({"conditioning": {"method": "film", "film_hidden": 16, "film_layers": 2}})
    cfg.preset, cfg.capture = p, {"name": "x", "targets": []}
    with pytest.raises(ConfigError) as info:
        validate_conditioning(cfg)
    assert "does not support conditioning=film" in str(info.value)
