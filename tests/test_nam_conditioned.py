"""Knob-conditioned WaveNets (`arch: wavenet`, `conditioning=concat`) as `.nam` files with NAM's multi-channel
condition: export layout, the numpy reference runtime against Keras, the native runtime against the reference
(per-sample controls, every block size, prewarm at the knobs' defaults) and one-line refusals.

Tolerance: Keras computes in float32, the reference in float64 from the same float32 weights (1e-5 of the
output scale); the native runtime computes in float32 (1e-5 against the reference).
"""

from __future__ import annotations

import copy
import json
import re

import keras
import numpy as np
import pytest
from knob_support import GAIN, TONE, changing_controls, exported_document, knob_test_signal
from omegaconf import OmegaConf

from rtnt.config import preset_config
from rtnt.errors import ExportError, NamFileError
from rtnt.export.nam import export_nam
from rtnt.model import build_model
from rtnt.native import NativeModel, native_available
from rtnt.runtime.controls import ControlSpec
from rtnt.runtime.nam_reference import NamModel
from rtnt.validate.parity import keras_predict

TOL = 1e-5
needs_native = pytest.mark.skipif(not native_available(), reason="native extension not built")


def tiny_conditioned(k: int, seed: int = 0) -> keras.Model:
    """Two small layer arrays (NAM's A1 form) whose input is the audio and k knobs; weights perturbed so the
    knob mix-ins matter."""
    preset = preset_config(
        {
            "name": "tiny_knobs",
            "arch": "wavenet",
            "layer_arrays": [
                {"channels": 4, "dilations": [1, 2, 4], "head_size": 3},
                {"input_size": 4, "channels": 3, "dilations": [8, 1], "head_bias": True},
            ],
        }
    )
    conditioning = OmegaConf.create({"method": "concat"})
    keras.utils.set_random_seed(seed)
    model = build_model(preset, n_knobs=k, conditioning=conditioning)
    rng = np.random.default_rng(seed)
    for w in model.trainable_weights:
        w.assign(w.numpy() + 0.2 * rng.standard_normal(w.shape).astype(np.float32))
    return model


@pytest.fixture(scope="module", params=[1, 2], ids=["one_knob", "two_knobs"])
def conditioned(request) -> tuple[keras.Model, dict, list[ControlSpec]]:
    k = request.param
    controls = [GAIN, TONE][:k]
    model = tiny_conditioned(k)
    return model, exported_document(model, controls), controls


def test_export_uses_nams_multichannel_condition(conditioned) -> None:
    model, data, controls = conditioned
    cfg, k = data["config"], len(controls)
    assert cfg["in_channels"] == 1 + k
    assert cfg["layers"][0]["input_size"] == 1 + k and cfg["layers"][1]["input_size"] == 4
    assert [a["condition_size"] for a in cfg["layers"]] == [1 + k, 1 + k]
    assert data["controls"] == [c.to_json() for c in controls]
    assert len(data["weights"]) == model.count_params()  # the knobs' rechannel and mix-in columns included


def test_unconditioned_export_stays_mono() -> None:
    data = export_nam(tiny_conditioned(0), loudness=False)
    assert "in_channels" not in data["config"] and "controls" not in data
    assert data["config"]["layers"][0]["input_size"] == 1


def test_export_refuses_controls_that_do_not_match_the_inputs() -> None:
    with pytest.raises(ExportError, match="input has 2 channel"):
        export_nam(tiny_conditioned(1), controls=[GAIN, TONE], loudness=False)


def test_reference_matches_keras_at_constant_and_changing_knobs(conditioned) -> None:
    model, data, controls = conditioned
    x = knob_test_signal(3000)
    ref = NamModel.from_dict(data, prewarm=False)
    assert ref.controls == controls
    outputs = []
    for value in (0.1, 0.5, 0.9):
        knobs = tuple(value if c is GAIN else c.default for c in controls)
        ref.reset()
        y = ref.process(x, np.array(knobs, dtype=np.float32))
        y_keras = keras_predict(model, x, knobs)
        np.testing.assert_allclose(y, y_keras, atol=TOL * max(1.0, float(np.max(np.abs(y_keras)))))
        outputs.append(y)
    assert np.max(np.abs(outputs[0] - outputs[2])) > 1e-3  # the knob changes the output
    c = changing_controls(controls, len(x))
    ref.reset()
    frames = np.concatenate([x[:, None], c], axis=1)[None]
    y_keras = np.asarray(model.predict(frames, verbose=0))[0, :, 0]
    np.testing.assert_allclose(ref.process(x, c), y_keras, atol=TOL * max(1.0, float(np.max(np.abs(y_keras)))))


def test_reference_prewarms_on_silence_at_the_knob_defaults(conditioned) -> None:
    _, data, controls = conditioned
    defaults = np.array([c.default for c in controls], dtype=np.float32)
    warm = NamModel.from_dict(data, prewarm=True)
    cold = NamModel.from_dict(data, prewarm=False)
    n = warm.receptive_field
    cold.process(np.zeros(n, dtype=np.float32), defaults)  # the prewarm, by hand
    x = knob_test_signal(500)
    np.testing.assert_allclose(warm.process(x, defaults), cold.process(x, defaults), atol=1e-6)


def test_reference_requires_the_knobs() -> None:
    data = export_nam(tiny_conditioned(1), controls=[GAIN], loudness=False)
    with pytest.raises(Exception, match="takes 1 control"):
        NamModel.from_dict(data).process(knob_test_signal(10))


def _broken(data: dict, how: str) -> dict:
    bad = copy.deepcopy(data)
    if how == "no_controls":
        del bad["controls"]
    elif how == "mono_with_controls":
        bad["config"]["in_channels"] = 1
    elif how == "condition_size":
        bad["config"]["layers"][1]["condition_size"] = 1
    return bad


BROKEN = {  # regular expressions
    "no_controls": "lists no 'controls'",
    "mono_with_controls": r"\(1 channel\(s\), config 'in_channels'\)|'in_channels' is 1",
    "condition_size": "condition_size(: | )is 1",
}


@pytest.mark.parametrize("how", list(BROKEN))
def test_reference_refuses_inconsistent_conditioned_files_in_one_line(how: str) -> None:
    data = export_nam(tiny_conditioned(1), controls=[GAIN], loudness=False)
    with pytest.raises(NamFileError) as info:
        NamModel.from_dict(_broken(data, how), source="bad.nam")
    assert re.search(BROKEN[how], str(info.value)) and "\n" not in str(info.value)


@needs_native
@pytest.mark.parametrize("how", list(BROKEN))
def test_native_refuses_inconsistent_conditioned_files_in_one_line(how: str) -> None:
    from rtnt.errors import ModelJsonError

    data = export_nam(tiny_conditioned(1), controls=[GAIN], loudness=False)
    with pytest.raises(ModelJsonError) as info:
        NativeModel.from_json_text(json.dumps(_broken(data, how)), source="bad.nam")
    assert re.search(BROKEN[how], str(info.value)) and "\n" not in str(info.value)


@needs_native
def test_native_matches_reference_with_changing_knobs_at_every_block_size(conditioned) -> None:
    _, data, controls = conditioned
    x = knob_test_signal(4096)
    c = changing_controls(controls, len(x))
    y_ref = NamModel.from_dict(data, prewarm=False).process(x, c)
    native = NativeModel.from_json_text(json.dumps(data), prewarm=False)
    assert native.controls == controls
    native.prepare(4096)
    outputs = []
    for block in (1, 3, 64, 128, 4096):
        native.reset()
        outputs.append(native.process_blocks(x, block, c))
        np.testing.assert_allclose(outputs[-1], y_ref, atol=TOL * max(1.0, float(np.max(np.abs(y_ref)))))
    for y in outputs[1:]:  # partition invariance: bit-identical
        np.testing.assert_array_equal(y, outputs[0])


@needs_native
def test_native_prewarm_matches_reference_at_the_knob_defaults(conditioned) -> None:
    _, data, controls = conditioned
    defaults = np.array([c.default for c in controls], dtype=np.float32)
    x = knob_test_signal(1000)
    y_ref = NamModel.from_dict(data, prewarm=True).process(x, defaults)
    native = NativeModel.from_json_text(json.dumps(data), prewarm=True)
    np.testing.assert_allclose(native.process(x, defaults), y_ref, atol=TOL)
