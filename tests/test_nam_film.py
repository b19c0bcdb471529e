"""NAM's WaveNet FiLMs (`conditioning=film` for `arch: wavenet`): the Keras layers, the `.nam` export (FiLM switches
and weights in NAM Core's order, FORMAT.md section 4), the numpy reference runtime against Keras, and the native
runtime against the reference for every FiLM switch NAM defines (per-sample controls, every block size bit-identical,
prewarm at the knobs' defaults). Files whose only FiLM is activation_pre_film (what rtnt trains) run in the native
fused layer kernels, the others in its generic path; `NativeModel.kernels` says which.

Tolerance as tests/test_nam_conditioned.py: Keras float32 against the float64 reference 1e-5 of max(1, peak); native
float32 against the reference 1e-5 of max(1, peak).
"""

from __future__ import annotations

import json

import keras
import numpy as np
import pytest
from knob_support import GAIN, TONE, changing_controls, exported_document, knob_test_signal
from omegaconf import OmegaConf

from rtnt.config import preset_config
from rtnt.export.nam import export_nam
from rtnt.model import build_model
from rtnt.model.wavenet import TRAINED_FILMS, build_wavenet
from rtnt.native import NativeModel, native_available
from rtnt.runtime.nam_reference import FILM_KEYS, NamModel
from rtnt.validate.parity import keras_predict

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
    data = exported_document(model, [GAIN])
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
    ref = NamModel.from_dict(exported_document(model, controls), prewarm=False)
    x = knob_test_signal(3000)
    outputs = []
    for value in (0.1, 0.9):
        ref.reset()
        y = ref.process(x, np.array([value, TONE.default], dtype=np.float32))
        _close(y, keras_predict(model, x, (value, TONE.default)))
        outputs.append(y)
    assert np.max(np.abs(outputs[0] - outputs[1])) > 1e-3
    c = changing_controls(controls, len(x))
    ref.reset()
    y_keras = np.asarray(model.predict(np.concatenate([x[:, None], c], axis=1)[None], verbose=0))[0, :, 0]
    _close(ref.process(x, c), y_keras)


def _film_rows(layer: dict, key: str, cond: int) -> int:
    """Output rows of FiLM `key`'s 1x1 in an A2 layer array (FORMAT.md section 4), for test files built by hand."""
    c, b = layer["channels"], layer["bottleneck"]
    z = 2 * b if layer["gating_mode"] != "none" else b
    h1 = layer["head1x1"]["out_channels"] if layer["head1x1"]["active"] else b
    dims = {"conv_pre_film": c, "conv_post_film": z, "input_mixin_pre_film": cond, "input_mixin_post_film": z}
    dims |= {"activation_pre_film": z, "activation_post_film": b, "layer1x1_post_film": c, "head1x1_post_film": h1}
    return (2 if layer[key].get("shift", True) else 1) * dims[key]


def hand_built(seed: int = 5) -> dict:
    """A `.nam` no rtnt model exports: blended and gated layers, head1x1 with its FiLM, layer1x1_post_film (applied in
    blended layers only), FiLMs without shift and with 2 groups, and a 2-knob condition; random weights."""
    cond = 3
    film = {"active": True, "shift": True, "groups": 1}
    layer = {
        "input_size": cond,
        "condition_size": cond,
        "head": {"out_channels": 1, "kernel_size": 2, "bias": True},
        "channels": 4,
        "bottleneck": 2,
        "kernel_sizes": [3, 2],
        "dilations": [1, 2],
        "activation": ["Tanh", "ReLU"],
        "gating_mode": "blended",
        "secondary_activation": "Sigmoid",
        "layer1x1": {"active": True, "groups": 1},
        "head1x1": {"active": True, "out_channels": 3, "groups": 1},
        "groups_input": 1,
        "groups_input_mixin": 1,
        **{k: dict(film) for k in FILM_KEYS},
    }
    layer["conv_post_film"] = {"active": True, "shift": False, "groups": 1}
    layer["activation_post_film"] = {"shift": False}  # active by default
    layer["input_mixin_pre_film"] = {"active": True, "shift": True, "groups": 3}
    layer["head1x1_post_film"] = {"active": True, "shift": True, "groups": 1}
    second = {
        **layer,
        "input_size": 4,
        "gating_mode": ["gated", "none"],
        "head1x1": {"active": False, "out_channels": 2, "groups": 1},
    }
    second["head1x1_post_film"] = {"active": True, "shift": True, "groups": 1}  # weights read, never applied
    first = {**layer, "head": {"out_channels": 2, "kernel_size": 1, "bias": False}}
    first["head1x1"] = {"active": True, "out_channels": 2, "groups": 1}
    count = 1
    for la in (first, second):
        c, b = la["channels"], la["bottleneck"]
        count += la["input_size"] * c
        for i, k in enumerate(la["kernel_sizes"]):
            mode = la["gating_mode"][i] if isinstance(la["gating_mode"], list) else la["gating_mode"]
            z = 2 * b if mode != "none" else b
            per = {**la, "gating_mode": mode}
            count += z * c * k + z + z * cond + b * c + c
            count += (
                (la["head1x1"]["out_channels"] * b + la["head1x1"]["out_channels"]) if la["head1x1"]["active"] else 0
            )
            for key in FILM_KEYS:
                rows = _film_rows(per, key, cond)
                count += rows * cond // la[key].get("groups", 1) + rows
        h1 = la["head1x1"]["out_channels"] if la["head1x1"]["active"] else b
        count += la["head"]["out_channels"] * h1 * la["head"]["kernel_size"] + (
            la["head"]["out_channels"] if la["head"]["bias"] else 0
        )
    weights = np.random.default_rng(seed).uniform(-0.5, 0.5, count).astype(np.float32)
    weights[-1] = 0.5
    config = {"layers": [first, second], "head": None, "head_scale": 0.5, "in_channels": cond}
    return {"version": "0.7.0", "architecture": "WaveNet", "config": config, "weights": [float(w) for w in weights],
            "sample_rate": 48000, "controls": [GAIN.to_json(), TONE.to_json()]}  # fmt: skip


def without_shift(data: dict) -> dict:
    """`data` (ungated arrays without head1x1, activation_pre_film its only FiLM) with that FiLM's shift off: the
    shift rows of each FiLM's 1x1 and bias dropped from the weights (NAM Core's order, FORMAT.md section 4)."""
    weights, kept, pos = data["weights"], [], 0

    def take(n: int, keep: bool = True) -> None:
        nonlocal pos
        kept.extend(weights[pos : pos + n] if keep else [])
        pos += n

    layers = json.loads(json.dumps(data["config"]["layers"]))
    for la in layers:
        c, b, cond = la["channels"], la.get("bottleneck", la["channels"]), la["condition_size"]
        assert not la["head1x1"]["active"] and [k for k in FILM_KEYS if la[k]["active"]] == ["activation_pre_film"]
        take(la["input_size"] * c)
        for k in la["kernel_sizes"]:
            take(b * c * k + b + cond * b + (b * c + c if la["layer1x1"]["active"] else 0))
            take(b * cond)  # the FiLM's 1x1: its scale rows ...
            take(b * cond, keep=False)  # ... and shift rows
            take(b)  # its bias: scale ...
            take(b, keep=False)  # ... and shift
        la["activation_pre_film"]["shift"] = False
        head = la["head"]
        take(head["out_channels"] * b * head["kernel_size"] + (head["out_channels"] if head["bias"] else 0))
    take(1)  # head_scale
    assert pos == len(weights)
    return {**data, "config": {**data["config"], "layers": layers}, "weights": kept}


FILM_FILES = {  # each film_file's native kernels, per layer array
    "trained": "fused fused",
    "trained_no_shift": "fused fused",
    "every_film_gated": "generic generic",
    "hand_built": "generic generic",
}


@pytest.fixture(scope="module", params=list(FILM_FILES))
def film_file(request) -> dict:
    if request.param.startswith("trained"):
        data = exported_document(film_model(2, TRAINED_FILMS), [GAIN, TONE])
        return data if request.param == "trained" else without_shift(data)
    if request.param == "every_film_gated":
        return exported_document(film_model(2, FILM_KEYS, GATED), [GAIN, TONE])
    return hand_built()


@needs_native
def test_native_matches_reference_with_changing_knobs_at_every_block_size(film_file: dict, request) -> None:
    """Block size 1 runs the fused kernels' single-row path, the others its tiles (of every height, remainders
    included): all bit-identical."""
    x = knob_test_signal(4096)
    c = changing_controls([GAIN, TONE], len(x))
    y_ref = NamModel.from_dict(film_file, prewarm=False).process(x, c)
    native = NativeModel.from_json_text(json.dumps(film_file), prewarm=False)
    assert native.kernels == FILM_FILES[request.node.callspec.params["film_file"]]
    native.prepare(4096)
    outputs = []
    for block in (1, 2, 3, 7, 64, 128, 1000, 4096):
        native.reset()
        outputs.append(native.process_blocks(x, block, c))
        _close(outputs[-1], y_ref)
    for y in outputs[1:]:  # partition invariance: bit-identical
        np.testing.assert_array_equal(y, outputs[0])


@needs_native
def test_native_prewarm_matches_reference_at_the_knob_defaults(film_file: dict) -> None:
    defaults = np.array([GAIN.default, TONE.default], dtype=np.float32)
    x = knob_test_signal(1000)
    y_ref = NamModel.from_dict(film_file, prewarm=True).process(x, defaults)
    native = NativeModel.from_json_text(json.dumps(film_file), prewarm=True)
    _close(native.process(x, defaults), y_ref)


@needs_native
@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("activation_pre_film", 3, "activation_pre_film: must be false or a FiLM object"),
        ("conv_post_film", {"active": True, "groups": 2}, "conv_post_film groups=2 must divide"),
    ],
)
def test_native_refuses_malformed_films_in_one_line(key: str, value, message: str) -> None:
    from rtnt.errors import ModelJsonError

    bad = hand_built()
    bad["config"]["layers"][0][key] = value
    with pytest.raises(ModelJsonError) as info:
        NativeModel.from_json_text(json.dumps(bad), source="bad.nam")
    assert message in str(info.value) and "\n" not in str(info.value)


def test_fuzz_corpus_film_seed_is_hand_built() -> None:
    """native/fuzz/corpus/nam_film.nam (every FiLM switch; the allocation test's FiLM model) is `hand_built()` with
    its weights rounded, and runs in both runtimes alike."""
    from rtnt.config import REPO_DIR

    seed = json.loads((REPO_DIR / "native" / "fuzz" / "corpus" / "nam_film.nam").read_text())
    built = hand_built()
    assert seed["config"] == built["config"]
    np.testing.assert_allclose(seed["weights"], built["weights"], atol=5e-5)
    if native_available():
        x, c = knob_test_signal(500), changing_controls([GAIN, TONE], 500)
        y_ref = NamModel.from_dict(seed, prewarm=True).process(x, c)
        _close(NativeModel.from_json_text(json.dumps(seed), prewarm=True).process(x, c), y_ref)


def test_fuzz_corpus_trained_film_seed_is_the_trained_form() -> None:
    """native/fuzz/corpus/nam_film_trained.nam (activation_pre_film alone, as `conditioning=film` trains it; the
    allocation test's fused FiLM model) is the "trained" film_file with its weights rounded, and runs fused."""
    from rtnt.config import REPO_DIR

    seed = json.loads((REPO_DIR / "native" / "fuzz" / "corpus" / "nam_film_trained.nam").read_text())
    built = exported_document(film_model(2, TRAINED_FILMS), [GAIN, TONE])
    assert seed["config"] == built["config"] and seed["controls"] == built["controls"]
    np.testing.assert_allclose(seed["weights"], built["weights"], atol=5e-5)
    if native_available():
        x, c = knob_test_signal(500), changing_controls([GAIN, TONE], 500)
        native = NativeModel.from_json_text(json.dumps(seed), prewarm=True)
        assert native.kernels == "fused fused"
        _close(native.process(x, c), NamModel.from_dict(seed, prewarm=True).process(x, c))


@needs_native
def test_native_runs_a_mono_film_file_in_the_wide_fused_kernels() -> None:
    """A FiLM file without knobs (condition = the audio alone) on arrays of at most 4 channels: the two-rows-per-
    register kernels (`narrow`, where built) run no FiLM, so it takes the wide fused kernels, every block size
    bit-identical."""
    data = exported_document(film_model(0, TRAINED_FILMS), [])
    native = NativeModel.from_json_text(json.dumps(data), prewarm=False)
    assert native.kernels == "fused fused"
    x = knob_test_signal(3000)
    y_ref = NamModel.from_dict(data, prewarm=False).process(x)
    native.prepare(4096)
    outputs = []
    for block in (1, 3, 64, 4096):
        native.reset()
        outputs.append(native.process_blocks(x, block))
        _close(outputs[-1], y_ref)
    for y in outputs[1:]:
        np.testing.assert_array_equal(y, outputs[0])
