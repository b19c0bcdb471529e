"""Knob controllers of gray-box chains (issue #16 Deliver 2, second bullet): `preset.controlled` names, config
errors, the Keras blocks' controlled parameters staying in range, export of `controls` and `controllers`, parity
Keras vs the exported file in the reference runtime (1e-4 max abs) at every training setting and an unseen one,
block invariance of a changing control (1e-6), the runtime's RBJ recompute against rtnt.model.graybox.rbj, and
the native runtime against the reference."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from omegaconf import OmegaConf
from parametric_support import write_set
from test_capture_set import set_config

from rtnt.config import RtntConfig, preset_config, register_resolvers, validate_config
from rtnt.constants import SAMPLE_RATE
from rtnt.errors import ConfigError, ModelJsonError
from rtnt.runtime.controls import ControlSpec

TOL = 1e-4
SETTINGS = (0.1, 0.3, 0.5, 0.7, 0.9)
UNSEEN = 0.6
BLOCKS = [
    {"type": "peq", "sections": [{"kind": "highpass", "freq_hz": 120.0, "q": 0.7},
                                 {"kind": "peaking", "freq_hz": 720.0, "q": 0.8, "gain_db": 6.0}]},
    {"type": "waveshaper", "drive_db": 18.0, "bias": 0.05, "gain_db": -6.0},
    {"type": "peq", "sections": [{"kind": "low_shelf", "freq_hz": 200.0, "q": 0.7, "gain_db": 2.0}]},
    {"type": "gain", "gain_db": -2.0},
]  # fmt: skip
CONTROLLED = ["waveshaper.drive_db", "waveshaper.bias", "b0.s1.gain_db", "b0.s0.freq_hz", "b2.s0.q", "gain.gain_db"]
CONTROLS = [ControlSpec("drive", 0.1, 0.9, 0.5)]


def _preset(controlled=CONTROLLED, blocks=BLOCKS):
    return preset_config({"name": "t", "arch": "graybox", "blocks": blocks, "controlled": controlled})


@pytest.fixture(scope="module")
def model():
    from rtnt.model.build import build_model

    m = build_model(_preset(), 1)
    rng = np.random.default_rng(0)
    for layer in m.layers:  # move the controllers off zero so every knob setting differs
        if getattr(layer, "controlled", None):
            layer.controller.assign(rng.standard_normal(layer.controller.shape).astype(np.float32))
    return m


@pytest.fixture(scope="module")
def document(model) -> dict:
    from rtnt.export.graybox import export_graybox

    return json.loads(json.dumps(export_graybox(model, controls=CONTROLS)))


def _x(n: int = 24000, seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).uniform(-0.8, 0.8, n).astype(np.float32)


def _cfg(tmp_path: Path, preset: dict, conditioning: str = "concat", capture_set: bool = True):
    register_resolvers()
    inp, targets = write_set(tmp_path)
    cfg = OmegaConf.structured(RtntConfig)
    cfg.preset = _preset(**preset)
    if capture_set:
        cfg = OmegaConf.merge(cfg, {"capture": OmegaConf.to_container(set_config(inp, targets))})
    else:
        cfg = OmegaConf.merge(cfg, {"capture": {"input": str(inp), "target": str(targets[0])}})
    return OmegaConf.merge(cfg, {"conditioning": {"method": conditioning}})


def test_names_resolve_and_bad_names_are_one_line() -> None:
    from rtnt.config_graybox import ControlledParameter, resolve_controlled

    assert resolve_controlled(_preset())[:3] == [
        ControlledParameter(1, None, "drive_db"), ControlledParameter(1, None, "bias"),
        ControlledParameter(0, 1, "gain_db"),
    ]  # fmt: skip
    for bad, words in (
        (["peq.s0.freq_hz"], "2 block(s) of type 'peq'"),
        (["b9.gain_db"], "blocks b0..b3"),
        (["waveshaper.q"], "controllable parameters drive_db, bias, gain_db"),
        (["b0.s5.q"], "sections s0..s1"),
        (["b0.s0.gain_db"], "highpass, which has no gain"),
        (["b0.q"], "sections s0..s1"),
        (["drive"], "<block>.<parameter>"),
        (["gain.gain_db", "b3.gain_db"], "names a parameter twice"),
    ):
        with pytest.raises(ConfigError, match="preset.controlled") as err:
            resolve_controlled(_preset(controlled=bad))
        assert words in str(err.value) and "\n" not in str(err.value)


def test_conditioning_and_controlled_go_together(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="has conditioning=concat but no knob-controlled parameter") as err:
        validate_config(_cfg(tmp_path, {"controlled": []}))
    assert "\n" not in str(err.value)
    with pytest.raises(ConfigError, match="names controlled parameters .* but conditioning=none"):
        validate_config(_cfg(tmp_path, {}, conditioning="none", capture_set=False))
    validate_config(_cfg(tmp_path, {"controlled": ["waveshaper.drive_db"]}))
    validate_config(_cfg(tmp_path, {"controlled": []}, conditioning="none", capture_set=False))


def test_controlled_parameters_stay_in_range_at_any_knob(model) -> None:
    import tensorflow as tf

    ws = model.get_layer("b1_waveshaper")
    ws.controller.assign([[50.0, -50.0]])  # a controller pushed far past the range
    drive, bias, _ = ws.parameters(ws.raw_offset(tf.constant([[[1.0], [-1.0]]])))
    drive_db = 20 * np.log10(np.asarray(drive))
    assert np.all(drive_db >= -24 - 1e-3) and np.all(drive_db <= 48 + 1e-3) and np.all(np.abs(bias) <= 1.0)
    rng = np.random.default_rng(0)
    ws.controller.assign(rng.standard_normal((1, 2)).astype(np.float32))  # as the fixture left it
    peq = model.get_layer("b0_peq")
    freq, q, gain = peq.parameters(peq.raw_offset(tf.constant([[-30.0], [30.0]]), tf.float64))
    assert np.all((np.asarray(freq) >= 20) & (np.asarray(freq) <= 20000)) and np.all(np.abs(gain) <= 24)


def test_export_writes_controls_and_controllers(document: dict) -> None:
    assert document["in_shape"] == [None, None, 2] and document["controls"] == [c.to_json() for c in CONTROLS]
    by_type = {layer["type"]: layer for layer in document["layers"]}
    first = document["layers"][0]
    assert {(c["section"], c["parameter"], c["mapping"]) for c in first["controllers"]} == {
        (1, "gain_db", "tanh"), (0, "freq_hz", "log_sigmoid")}  # fmt: skip
    assert first["parameters"][1]["kind"] == "peaking"  # the RBJ form the runtimes recompute from
    ws = by_type["waveshaper"]["controllers"]
    assert [(c["parameter"], c["minimum"], c["maximum"]) for c in ws] == [("drive_db", -24, 48), ("bias", -1, 1)]
    assert all(len(c["weights"]) == 1 for layer in document["layers"] for c in layer.get("controllers", []))


@pytest.mark.parametrize("knob", [*SETTINGS, UNSEEN])
def test_reference_parity_at_every_setting(model, document: dict, knob: float) -> None:
    from rtnt.runtime.reference import ReferenceModel
    from rtnt.validate.parity import keras_predict

    x = _x()
    y_ref = ReferenceModel.from_json(document).process(x, np.array([knob], dtype=np.float32))
    assert np.max(np.abs(keras_predict(model, x, (knob,)) - y_ref)) < TOL


def test_settings_really_differ(model, document: dict) -> None:
    from rtnt.runtime.reference import ReferenceModel

    x = _x(4800)
    outs = [ReferenceModel.from_json(document).process(x, np.array([k], np.float32)) for k in (0.1, 0.9)]
    assert np.max(np.abs(outs[0] - outs[1])) > 1e-2


def _sweep(n: int) -> np.ndarray:
    from rtnt.runtime.controls import sweep_controls

    c = sweep_controls(CONTROLS, n)
    c[n // 3 : n // 2] = 0.3  # a stretch of constant control between sweeps
    return c


def test_changing_controls_are_block_invariant(document: dict) -> None:
    from rtnt.runtime.reference import ReferenceModel

    x, c = _x(2400), _sweep(2400)
    whole = ReferenceModel.from_json(document).process(x, c)
    for block in (1, 77, 512):
        m = ReferenceModel.from_json(document)
        parts = [m.process(x[s : s + block], c[s : s + block]) for s in range(0, len(x), block)]
        np.testing.assert_allclose(np.concatenate(parts), whole, atol=1e-6)


def test_recomputed_sections_are_the_rbj_cookbook(document: dict) -> None:
    from rtnt.model.graybox.rbj import rbj_coefficients
    from rtnt.runtime.graybox import map_raw
    from rtnt.runtime.reference import ReferenceModel

    m = ReferenceModel.from_json(document)
    m.process(_x(10), np.full((10, 1), 0.7, np.float32))
    layer, spec = m.layers[0], document["layers"][0]
    params = [dict(p) for p in spec["parameters"]]
    for c in spec["controllers"]:
        raw = c["raw"] + float(np.float32(0.7)) * c["weights"][0]
        params[c["section"]][c["parameter"]] = float(map_raw(c["mapping"], c["minimum"], c["maximum"], raw))
    for j, p in enumerate(params):
        expected = rbj_coefficients(p["kind"], p["freq_hz"], p["q"], p["gain_db"], SAMPLE_RATE, np)
        np.testing.assert_allclose(layer.sos[j][[0, 1, 2, 4, 5]], expected, rtol=1e-12, atol=1e-14)


def test_malformed_controllers_are_one_line(document: dict) -> None:
    from rtnt.runtime.reference import ReferenceModel

    cases = [
        (lambda d: d.pop("controls"), "lists no 'controls'"),
        (lambda d: d["layers"][1]["controllers"][0].update(weights=[1.0, 2.0]), "1 weights"),
        (lambda d: d["layers"][1]["controllers"][0].update(mapping="cubic"), "'mapping' must be one of"),
        (lambda d: d["layers"][0]["controllers"][0].pop("section"), "integer 'section'"),
        (lambda d: d["layers"][0].pop("parameters"), "needs 'parameters'"),
    ]
    for breaks, words in cases:
        doc = json.loads(json.dumps(document))
        breaks(doc)
        if "controls" not in doc:
            doc["in_shape"] = [None, None, 1]
        with pytest.raises(ModelJsonError) as err:
            ReferenceModel.from_json(doc)
        assert words in str(err.value) and "\n" not in str(err.value)


def _native(document: dict):
    from rtnt.native import NativeModel, native_available

    if not native_available():
        pytest.skip("rtnt._native is not built (pip install -e .)")
    return NativeModel.from_json_text(json.dumps(document))


@pytest.mark.parametrize("knob", [*SETTINGS, UNSEEN])
def test_native_matches_the_reference_at_every_setting(document: dict, knob: float) -> None:
    from rtnt.runtime.reference import ReferenceModel

    native, x = _native(document), _x(12000)
    assert native.controls == CONTROLS
    c = np.full((len(x), 1), knob, dtype=np.float32)
    y_ref = ReferenceModel.from_json(document).process(x, c)
    assert np.max(np.abs(native.process(x, c) - y_ref)) < 1e-5


def test_native_follows_a_changing_control_block_invariantly(document: dict) -> None:
    from rtnt.runtime.reference import ReferenceModel

    native, x, c = _native(document), _x(2400), _sweep(2400)
    whole = native.process(x, c)
    assert np.max(np.abs(whole - ReferenceModel.from_json(document).process(x, c))) < 1e-5
    native.prepare(4096)
    for block in (1, 7, 64, 65, 1000):
        native.reset()
        np.testing.assert_array_equal(native.process_blocks(x, block, c), whole)


def test_native_refuses_malformed_controllers_in_one_line(document: dict) -> None:
    from rtnt.errors import RtntError
    from rtnt.native import NativeModel

    _native(document)
    for breaks, words in (
        (lambda d: d["layers"][1]["controllers"][0].update(weights=[1.0, 2.0]), "1 weights"),
        (lambda d: d["layers"][1]["controllers"][0].update(mapping="cubic"), "'mapping' must be one of"),
        (lambda d: d["layers"][0].pop("parameters"), "parameters"),
    ):
        doc = json.loads(json.dumps(document))
        breaks(doc)
        with pytest.raises(RtntError) as err:
            NativeModel.from_json_text(json.dumps(doc))
        assert words in str(err.value) and "\n" not in str(err.value)


def test_pictures_of_a_conditioned_file_are_drawn_at_the_controls_defaults(document: dict) -> None:
    from rtnt.export.graybox_view import graybox_view
    from rtnt.runtime.reference import ReferenceModel

    view = graybox_view(document)
    shaper = view.curves[0]
    alone = ReferenceModel.from_json({**document, "layers": [document["layers"][1]]})
    np.testing.assert_array_equal(shaper.y, alone.process(shaper.x, np.array([0.5], dtype=np.float32)))
    peaking_at_default = view.eqs[0].parameters[1]["gain_db"]
    assert peaking_at_default != document["layers"][0]["parameters"][1]["gain_db"]


def test_controllers_reach_top_level_blocks_of_a_parallel_chain_only() -> None:
    """graybox/ts9 (parallel[[gain], [PEQ, waveshaper]] -> PEQ -> DC -> gain): the top-level PEQ and gain take
    controllers and the file matches Keras at two knob settings (1e-4); a block inside a branch, or a controlled
    waveshaper under oversampling, is a one-line ConfigError."""
    from rtnt.config import CONF_DIR, load_preset
    from rtnt.config_graybox import validate_graybox
    from rtnt.export.graybox import export_graybox
    from rtnt.model.build import build_model
    from rtnt.runtime.reference import ReferenceModel
    from rtnt.validate.parity import keras_predict

    preset = load_preset(CONF_DIR / "preset" / "graybox" / "ts9.yaml")
    preset.controlled = ["b1.s1.gain_db", "b3.gain_db"]
    model = build_model(preset, 1)
    for layer in model.layers:
        if getattr(layer, "controlled", None):
            layer.controller.assign(np.full(layer.controller.shape, 0.7, dtype=np.float32))
    doc = json.loads(json.dumps(export_graybox(model, controls=CONTROLS)))
    assert doc["layers"][0]["type"] == "parallel" and doc["layers"][3]["controllers"][0]["parameter"] == "gain_db"
    ref, x = ReferenceModel.from_json(doc), _x(6000)
    for knob in (0.0, 1.0):
        c = np.full((len(x), 1), knob, dtype=np.float32)
        ref.reset()
        y = ref.process(x, c)
        assert np.max(np.abs(keras_predict(model, x, (knob,)) - y)) < 1e-4
    for controlled, words in (
        (["b0.branches.1.1.drive_db"], "reach top-level blocks only"),
        (["waveshaper.drive_db"], r"0 block\(s\) of type 'waveshaper' at the top level"),
    ):
        preset.controlled = controlled
        with pytest.raises(ConfigError, match=words) as err:
            validate_graybox(preset)
        assert "\n" not in str(err.value)
    flat = _preset(controlled=["waveshaper.drive_db"])
    flat.oversampling = 2
    with pytest.raises(ConfigError, match="cannot run oversampled"):
        validate_graybox(flat)
