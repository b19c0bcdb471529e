"""Conditioned (knob) models: ControlSpec; the reference runtime fed [x, c1..cK] per sample against Keras; the
native runtime against the reference at every training value and an unseen one, with changing controls."""

from __future__ import annotations

import json

import numpy as np
import pytest

from rtnt.errors import ModelJsonError, RtntError
from rtnt.native import NativeModel, native_available
from rtnt.runtime.controls import ControlSpec
from rtnt.runtime.reference import ReferenceModel

TOL = 1e-5
GAIN = ControlSpec("gain", 0.1, 0.9, 0.5)
TONE = ControlSpec("tone", 0.0, 1.0, 0.5)


def test_control_spec_round_trips_json() -> None:
    assert ControlSpec.from_json(GAIN.to_json()) == GAIN
    assert json.loads(json.dumps(GAIN.to_json())) == {"name": "gain", "minimum": 0.1, "maximum": 0.9, "default": 0.5}
    assert isinstance(ControlSpec("x", 0, 1, 1).minimum, float)


@pytest.mark.parametrize(
    ("entry", "needle"),
    [
        ({"name": "", "minimum": 0, "maximum": 1, "default": 0.5}, "non-empty string"),
        ({"name": 3, "minimum": 0, "maximum": 1, "default": 0.5}, "non-empty string"),
        ({"name": "g", "minimum": 1, "maximum": 1, "default": 1}, "must be below maximum"),
        ({"name": "g", "minimum": 2, "maximum": 1, "default": 1.5}, "must be below maximum"),
        ({"name": "g", "minimum": 0, "maximum": 1, "default": 1.5}, "outside [0, 1]"),
        ({"name": "g", "minimum": 0, "maximum": "1", "default": 0.5}, "must be a finite number"),
        ({"name": "g", "minimum": float("nan"), "maximum": 1, "default": 0.5}, "must be a finite number"),
        ({"name": "g", "minimum": 0, "maximum": 1}, "lacks default"),
        ({"name": "g", "minimum": 0, "maximum": 1, "default": 0.5, "unit": "dB"}, "unknown key(s) unit"),
        (["g", 0, 1, 0.5], "must be an object"),
    ],
)
def test_control_spec_refuses_bad_values_in_one_line(entry, needle: str) -> None:
    with pytest.raises(ModelJsonError) as info:
        ControlSpec.from_json(entry, "controls[0]")
    assert needle in str(info.value) and "\n" not in str(info.value)


def conditioned_keras(k: int, seed: int = 3):
    """A tiny conditioned Keras model: input (None, 1 + k) -> causal conv (k=3, d=2) tanh -> dense 4 tanh
    -> dense 1, with random weights."""
    import keras

    keras.utils.set_random_seed(seed)
    inputs = keras.Input(shape=(None, 1 + k))
    h = keras.layers.Conv1D(6, 3, dilation_rate=2, padding="causal", activation="tanh")(inputs)
    h = keras.layers.Dense(4, activation="tanh")(h)
    return keras.Model(inputs, keras.layers.Dense(1)(h))


def conditioned_json(k: int, controls: list[ControlSpec] | None = None, seed: int = 3) -> tuple[dict, object]:
    """(RTNeural JSON with the `controls` key, Keras model) of `conditioned_keras(k)`."""
    from rtnt.export.rtneural import export_rtneural

    model = conditioned_keras(k, seed)
    data = export_rtneural(model)
    assert data["in_shape"] == [None, None, 1 + k]
    data["controls"] = [c.to_json() for c in (controls or [GAIN, TONE][:k])]
    return data, model


def keras_out(model, x: np.ndarray, c: np.ndarray) -> np.ndarray:
    frames = np.concatenate([x[:, None], c], axis=1)[None].astype(np.float32)
    return np.asarray(model.predict(frames, verbose=0))[0, :, 0]


def _signal(n: int, seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (0.5 * np.sin(np.arange(n) * 0.05) + 0.1 * rng.standard_normal(n)).astype(np.float32)


@pytest.mark.parametrize("k", [1, 2])
def test_reference_matches_keras_for_constant_and_changing_controls(k: int) -> None:
    data, model = conditioned_json(k)
    ref = ReferenceModel.from_json(data)
    assert ref.controls == [GAIN, TONE][:k]
    n = 600
    x = _signal(n)
    constant = np.tile(np.linspace(0.2, 0.8, k, dtype=np.float32), (n, 1))
    ramp = np.stack([np.linspace(0.1, 0.9, n), np.sin(np.arange(n) * 0.01)][:k], axis=1).astype(np.float32)
    for c in (constant, ramp):
        ref.reset()
        y = ref.process(x, c)
        assert np.max(np.abs(y - keras_out(model, x, c))) <= TOL
    ref.reset()
    held = ref.process(x, constant[0])  # one row, held for every sample
    ref.reset()
    assert np.array_equal(held, ref.process(x, constant))
    ref.reset()  # streaming in pieces with per-sample controls gives the same output as one pass
    pieces = [ref.process(x[s : s + 77], ramp[s : s + 77]) for s in range(0, n, 77)]
    ref.reset()
    # numpy's BLAS may round a product's edge rows differently by matrix shape (OpenBLAS's AVX-512 kernels do,
    # by one ulp on a piece's last sample): the same output to float32 rounding, not bit for bit. Lost state
    # between pieces would differ by orders of magnitude more.
    assert np.max(np.abs(np.concatenate(pieces) - ref.process(x, ramp))) <= 1e-6


def test_controls_change_the_output() -> None:
    data, _ = conditioned_json(1)
    ref = ReferenceModel.from_json(data)
    x = _signal(300)
    low = ref.process(x, [0.1])
    ref.reset()
    assert np.max(np.abs(low - ref.process(x, [0.9]))) > 1e-3


def test_unconditioned_model_has_no_controls() -> None:
    data, _ = conditioned_json(0)
    ref = ReferenceModel.from_json(data)
    assert ref.controls == []
    x = _signal(100)
    assert np.array_equal(ref.process(x), ReferenceModel.from_json({**data, "controls": []}).process(x))


@pytest.mark.parametrize(
    ("mutate", "needle"),
    [
        (lambda d: d.update(controls=[GAIN.to_json()]), "lists 1 control(s)"),  # K mismatch: in_shape 3
        (lambda d: d.pop("controls"), "lists 0 control(s)"),
        (lambda d: d.update(controls="gain"), "must be a list of controls"),
        (lambda d: d.update(controls=[GAIN.to_json(), GAIN.to_json()]), "repeat"),
        (lambda d: d["controls"][1].update(default=2.0), "controls[1]: control 'tone': default 2 is outside"),
        (lambda d: d.update(in_shape=[None, None, 0]), "'in_shape' must be a list ending in 1"),
    ],
)
def test_malformed_controls_refused_in_one_line(mutate, needle: str) -> None:
    data, _ = conditioned_json(2)
    mutate(data)
    with pytest.raises(ModelJsonError) as info:
        ReferenceModel.from_json(data)
    assert needle in str(info.value) and "\n" not in str(info.value)


def test_missing_or_misshaped_controls_at_process_refused() -> None:
    data, _ = conditioned_json(2)
    ref = ReferenceModel.from_json(data)
    x = _signal(50)
    for controls, needle in [
        (None, "takes 2 control(s)"),
        (np.zeros((50, 1)), "shape (50, 1)"),
        (np.zeros((49, 2)), "shape (49, 2)"),
        (np.full((50, 2), np.nan), "NaN"),
    ]:
        with pytest.raises(RtntError) as info:
            ref.process(x, controls)
        assert needle in str(info.value) and "\n" not in str(info.value)


# --------------------------------------------------------------------------- native runtime

needs_native = pytest.mark.skipif(not native_available(), reason="rtnt._native is not built (pip install -e .)")
TRAINING_VALUES = (0.1, 0.3, 0.5, 0.7, 0.9)
UNSEEN = 0.62


@pytest.fixture(scope="module")
def conditioned() -> tuple[dict, ReferenceModel, NativeModel]:
    """A one-knob model (gain, trained 0.1..0.9) as JSON, in the reference and the native runtime."""
    data, _ = conditioned_json(1)
    native = NativeModel.from_json_text(json.dumps(data), "gain.json")
    native.prepare(256)
    return data, ReferenceModel.from_json(data), native


@needs_native
@pytest.mark.parametrize("value", [*TRAINING_VALUES, UNSEEN])
def test_native_matches_reference_at_each_control_value(conditioned, value: float) -> None:
    _, ref, native = conditioned
    x = _signal(4000)
    ref.reset()
    native.reset()
    y = native.process(x, np.full((len(x), 1), value, np.float32))
    assert np.max(np.abs(y - ref.process(x, [value]))) <= TOL
    native.reset()
    assert np.array_equal(y, native.process(x, [value]))  # a (K,) row is held for every sample


@needs_native
def test_native_controls_and_properties(conditioned) -> None:
    _, _, native = conditioned
    assert native.controls == [GAIN] and native.in_size == 2
    assert "1 control(s)" in native.description
    assert NativeModel.from_json_text(json.dumps(conditioned_json(0)[0])).controls == []


def _sweep(n: int) -> np.ndarray:
    """Per-sample gain values that sweep the range, jump and sit outside it: (n, 1) float32."""
    c = 0.5 + 0.45 * np.sin(np.arange(n) * 0.003)
    c[n // 3 : n // 3 + 50] = 0.95
    return c[:, None].astype(np.float32)


@needs_native
def test_native_changing_controls_match_reference(conditioned) -> None:
    _, ref, native = conditioned
    x = _signal(6000)
    c = _sweep(len(x))
    ref.reset()
    native.reset()
    assert np.max(np.abs(native.process(x, c) - ref.process(x, c))) <= TOL


@needs_native
def test_native_block_size_invariance_with_per_sample_controls(conditioned) -> None:
    _, _, native = conditioned
    x = _signal(9000)
    c = _sweep(len(x))
    native.reset()
    whole = native.process(x, c)
    for block in (1, 2, 3, 4, 7, 16, 63, 64, 65, 255, 256, 257, 1000, 4096):
        native.reset()
        assert np.array_equal(native.process_blocks(x, block, c), whole), block


@needs_native
def test_native_flushes_denormal_controls(conditioned) -> None:
    _, _, native = conditioned
    x = _signal(512)
    native.reset()
    tiny = native.process(x, np.full((512, 1), 1e-40, np.float32))
    native.reset()
    assert np.all(np.isfinite(tiny)) and np.array_equal(tiny, native.process(x, np.zeros((512, 1), np.float32)))


@needs_native
def test_native_time_blocks_takes_controls(conditioned) -> None:
    _, _, native = conditioned
    x = _signal(1024)
    timing = native.time_blocks(x, 128, warmup=1, controls=_sweep(1024))
    assert timing.times.shape == (8,) and timing.total > 0


@needs_native
def test_native_missing_or_misshaped_controls_refused(conditioned) -> None:
    _, _, native = conditioned
    x = _signal(50)
    for controls, needle in [
        (None, "takes 1 control(s)"),
        (np.zeros((50, 2)), "shape (50, 2)"),
        (np.zeros((49, 1)), "shape (49, 1)"),
    ]:
        with pytest.raises(RtntError) as info:
            native.process(x, controls)
        assert needle in str(info.value) and "\n" not in str(info.value)
    plain = NativeModel.from_json_text(json.dumps(conditioned_json(0)[0]))
    with pytest.raises(RtntError, match="takes no controls"):
        plain.process(x, np.zeros((50, 1)))


@needs_native
def test_validation_self_check_and_benchmark_take_a_conditioned_model(conditioned) -> None:
    from rtnt.runtime.controls import sweep_controls
    from rtnt.validate.bench import benchmark_native
    from rtnt.validate.native_check import self_check, validate_native

    data, ref, _ = conditioned
    text = json.dumps(data)
    x = _signal(3000)
    for controls in ([0.3], sweep_controls(ref.controls, len(x))):
        ref.reset()
        y_ref = ref.process(x, controls)
        check = validate_native(NativeModel.from_json_text(text), x, y_ref, controls=controls)
        assert check.passed and check.max_error <= TOL, check
        wrong = validate_native(NativeModel.from_json_text(text), x, y_ref, controls=[0.9], tolerance=TOL)
        assert not wrong.passed  # the check sees the controls
    sweep = sweep_controls([GAIN, TONE], 1000)
    assert sweep.shape == (1000, 2) and sweep.min() >= 0.0 and np.isclose(sweep[:, 0].max(), 0.9, atol=1e-4)
    assert sweep_controls([], 10) is None
    assert self_check(NativeModel.from_json_text(text), n=4096).passed
    result = benchmark_native(NativeModel.from_json_text(text), block_sizes=(64,), seconds=0.05, repeats=1)
    assert result.rtf[64] > 0
