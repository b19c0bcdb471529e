"""Malformed or unsupported RTNeural JSON: one-line ModelJsonError naming the layer and the problem."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any, Callable

import pytest

from rtnt.errors import ModelJsonError
from rtnt.native import NativeModel, native_available

pytestmark = pytest.mark.skipif(not native_available(), reason="rtnt._native is not built (pip install -e .)")


def _valid() -> dict[str, Any]:
    return {
        "in_shape": [None, None, 1],
        "layers": [
            {"type": "dense", "activation": "tanh", "shape": [None, None, 2], "weights": [[[0.5, -0.5]], [0.0, 0.1]]},
            {
                "type": "conv1d",
                "activation": "tanh",
                "shape": [None, None, 2],
                "kernel_size": [2],
                "dilation": [4],
                "groups": 1,
                "weights": [[[[0.1, 0.2], [0.3, 0.4]], [[0.5, 0.6], [0.7, 0.8]]], [0.0, 0.0]],
            },
            {
                "type": "batchnorm",
                "activation": "",
                "shape": [None, None, 2],
                "epsilon": 0.001,
                "weights": [[1.0, 1.0], [0.0, 0.0], [0.0, 0.0], [1.0, 1.0]],
            },
            {
                "type": "gru",
                "activation": "tanh",
                "shape": [None, None, 1],
                "weights": [[[0.1] * 3, [0.2] * 3], [[0.3] * 3], [[0.0] * 3, [0.0] * 3]],
            },
        ],
    }


def _mutate(fn: Callable[[dict[str, Any]], None]) -> str:
    d = copy.deepcopy(_valid())
    fn(d)
    return json.dumps(d)


def _set(layer: int, key: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def f(d: dict[str, Any]) -> None:
        d["layers"][layer][key] = value

    return f


def _del(layer: int, key: str) -> Callable[[dict[str, Any]], None]:
    def f(d: dict[str, Any]) -> None:
        del d["layers"][layer][key]

    return f


VALID = json.dumps(_valid())
GAIN = {"name": "gain", "minimum": 0.1, "maximum": 0.9, "default": 0.5}


def _conditioned(fn: Callable[[dict[str, Any]], None] = lambda d: None) -> str:
    """The valid model conditioned on one knob (in_shape 1 + 1, first dense layer 2 -> 2), then `fn` applied."""

    def f(d: dict[str, Any]) -> None:
        d["in_shape"] = [None, None, 2]
        d["layers"][0]["weights"][0] = [[0.5, -0.5], [0.1, 0.2]]
        d["controls"] = [dict(GAIN)]
        fn(d)

    return _mutate(f)


def _control(key: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def f(d: dict[str, Any]) -> None:
        d["controls"][0][key] = value

    return f


def _graybox() -> dict[str, Any]:
    """A valid gray-box document (docs/graybox_format.md): biquad, fir, waveshaper, gain."""
    mono = {"activation": "", "shape": [None, None, 1]}
    return {
        "rtnt_format": "graybox-1",
        "in_shape": [None, None, 1],
        "layers": [
            {"type": "biquad", **mono, "sections": 1, "weights": [[[1.0, -1.0, 0.0, -0.995, 0.0]]]},
            {"type": "fir", **mono, "taps": 3, "weights": [[0.5, 0.25, 0.125]]},
            {"type": "waveshaper", **mono, "weights": [[4.0, 0.2, 0.5]]},
            {"type": "gain", **mono, "weights": [[0.7]]},
        ],
    }


def _gray(change: Callable[[dict[str, Any]], None]) -> str:
    d = _graybox()
    change(d)
    return json.dumps(d)


CASES: dict[str, tuple[str, str]] = {
    "truncated": (VALID[: len(VALID) // 2], "the file is truncated"),
    "empty_file": ("", "unexpected end of input"),
    "not_json": ("rtneural model v1", "JSON syntax error at line 1, column 1"),
    "top_level_array": ("[1, 2, 3]", "must be a JSON object"),
    "missing_layers": (json.dumps({"in_shape": [None, 1]}), "'layers' is missing"),
    "empty_layers": (json.dumps({"in_shape": [None, 1], "layers": []}), "'layers' is empty"),
    "missing_in_shape": (_mutate(lambda d: d.pop("in_shape")), "'in_shape' is missing"),
    "unknown_type": (_mutate(_set(1, "type", "attention")), "layers[1] (attention): unknown layer type"),
    "unknown_activation": (_mutate(_set(0, "activation", "swish")), "layers[0] (dense): unknown activation 'swish'"),
    "missing_type": (_mutate(_del(2, "type")), "layers[2]: missing key 'type'"),
    "missing_weights": (_mutate(_del(0, "weights")), "layers[0] (dense): missing key 'weights'"),
    "missing_dilation": (_mutate(_del(1, "dilation")), "layers[1] (conv1d): missing key 'dilation'"),
    "missing_epsilon": (_mutate(_del(2, "epsilon")), "layers[2] (batchnorm): missing key 'epsilon'"),
    "wrong_type_shape": (_mutate(_set(0, "shape", "2")), "layers[0] (dense): 'shape' must be an array, got a string"),
    "wrong_type_kernel_size": (
        _mutate(_set(1, "kernel_size", ["2"])),
        "layers[1] (conv1d): 'kernel_size' must be a whole number",
    ),
    "fractional_dilation": (
        _mutate(_set(1, "dilation", [1.5])),
        "layers[1] (conv1d): 'dilation' must be a whole number",
    ),
    "negative_dilation": (
        _mutate(_set(1, "dilation", [-2])),
        "layers[1] (conv1d): 'dilation' is -2, outside [1, 1048576]",
    ),
    "zero_kernel_size": (_mutate(_set(1, "kernel_size", [0])), "layers[1] (conv1d): 'kernel_size' is 0"),
    "huge_output_size": (
        _mutate(_set(0, "shape", [None, None, 10**9])),
        "layers[0] (dense): output size 1000000000 is outside [1, 4096]",
    ),
    "huge_dilation_history": (
        _mutate(lambda d: d["layers"][1].update(kernel_size=[9], dilation=[1 << 20])),
        "layers[1] (conv1d): (kernel_size - 1) * dilation = 8388608 samples of 2 channels is too much history",
    ),
    "wrong_kernel_shape": (
        _mutate(lambda d: d["layers"][0]["weights"].__setitem__(0, [[0.5, -0.5, 1.0]])),
        "layers[0] (dense): weights[0] has shape (1, 3), expected (1, 2) (in, out)",
    ),
    "wrong_conv_kernel_shape": (
        _mutate(lambda d: d["layers"][1]["weights"].__setitem__(0, [[[0.1, 0.2], [0.3, 0.4]]])),
        "layers[1] (conv1d): weights[0] has shape (1, 2, 2), expected (2, 2, 2) (kernel_size, in/groups, out)",
    ),
    "wrong_bias_length": (
        _mutate(lambda d: d["layers"][0]["weights"].__setitem__(1, [0.0])),
        "layers[0] (dense): weights[1] has shape (1,), expected (2,) (out,)",
    ),
    "ragged_weights": (
        _mutate(lambda d: d["layers"][1]["weights"][0].__setitem__(1, [[0.5, 0.6], [0.7]])),
        "layers[1] (conv1d): weights[0][1][1] is ragged: expected 2 entries",
    ),
    "string_weight": (
        _mutate(lambda d: d["layers"][0]["weights"][0][0].__setitem__(1, "0.5")),
        "layers[0] (dense): weights[0][0][1] is a string, expected a number",
    ),
    "nan_weight": (
        _mutate(lambda d: d["layers"][1]["weights"][1].__setitem__(0, float("nan"))),
        "layers[1] (conv1d): weights[1][0] is NaN; weights must be finite",
    ),
    "infinite_weight": (
        _mutate(lambda d: d["layers"][0]["weights"][0][0].__setitem__(0, float("inf"))),
        "layers[0] (dense): weights[0][0][0] is infinite or beyond float range",
    ),
    "too_many_weight_arrays": (
        _mutate(lambda d: d["layers"][0]["weights"].append([1.0, 2.0])),
        "layers[0] (dense): 'weights' holds 3 arrays, expected 1 or 2",
    ),
    "gru_reset_before_bias": (
        _mutate(lambda d: d["layers"][3]["weights"].__setitem__(2, [0.0] * 3)),
        "layers[3] (gru): weights[2] has shape (3,), expected (2, 3) (2, 3 * units): only reset_after=True",
    ),
    "bad_groups": (_mutate(_set(1, "groups", 3)), "layers[1] (conv1d): groups=3 must divide"),
    "size_mismatch_batchnorm": (
        _mutate(_set(2, "shape", [None, None, 3])),
        "layers[2] (batchnorm): output size 3 differs from the input size 2",
    ),
    "negative_variance": (
        _mutate(lambda d: d["layers"][2]["weights"].__setitem__(3, [1.0, -1.0])),
        "layers[2] (batchnorm): variance + epsilon of channel 1 is not positive",
    ),
    "layer_not_object": (
        _mutate(lambda d: d["layers"].__setitem__(2, [1, 2])),
        "layers[2]: expected an object, got an array",
    ),
    "deep_nesting": ("[" * 5000 + "]" * 5000, "nesting deeper than 64 levels"),
    # A second "layers" would silently win (an empty model benchmarked at 0 MACs); it is refused.
    "duplicate_key": (VALID[:-1] + ', "layers": []}', 'duplicate member name "layers" in one object'),
    "duplicate_layer_key": (
        VALID.replace('"kernel_size": [2]', '"kernel_size": [2], "kernel_size": [3]'),
        'duplicate member name "kernel_size"',
    ),
    "lone_high_surrogate": (_mutate(_set(0, "name", "x")).replace('"x"', '"\\ud800"'), "lone UTF-16 high surrogate"),
    "lone_low_surrogate": (_mutate(_set(0, "name", "x")).replace('"x"', '"a\\udc00"'), "lone UTF-16 low surrogate"),
    "controls_not_array": (_conditioned(lambda d: d.update(controls={"gain": 0.5})), "'controls' must be an array"),
    "control_not_object": (_conditioned(lambda d: d.update(controls=["gain"])), "controls[0] must be an object"),
    "control_k_mismatch": (
        _conditioned(lambda d: d["controls"].append({**GAIN, "name": "tone"})),
        "'in_shape' ends in 2 but 'controls' lists 2 control(s)",
    ),
    "control_missing_default": (
        _conditioned(lambda d: d["controls"][0].pop("default")),
        "controls[0]: missing key 'default'",
    ),
    "control_unknown_key": (_conditioned(_control("unit", "dB")), "controls[0]: unknown key 'unit'"),
    "control_empty_name": (_conditioned(_control("name", "")), "controls[0]: 'name' must be a non-empty string"),
    "control_numeric_name": (_conditioned(_control("name", 1)), "controls[0]: 'name' must be a non-empty string"),
    "control_string_minimum": (
        _conditioned(_control("minimum", "0")),
        "controls[0]: 'minimum' must be a finite number, got a string",
    ),
    "control_huge_maximum": (
        _conditioned(_control("maximum", 1e300)),
        "controls[0]: 'maximum' must be a finite number",
    ),
    "control_min_not_below_max": (
        _conditioned(_control("minimum", 0.9)),
        "controls[0] ('gain'): minimum 0.9 must be below maximum 0.9",
    ),
    "control_default_outside": (
        _conditioned(_control("default", 1.5)),
        "controls[0] ('gain'): default 1.5 is outside [0.1, 0.9]",
    ),
    "control_repeated_name": (
        _conditioned(lambda d: (d.update(in_shape=[None, None, 3]), d["controls"].append(dict(GAIN)))),
        "controls[1]: the name 'gain' repeats",
    ),
    "graybox_type_without_format": (
        _gray(lambda d: d.pop("rtnt_format")),
        'layers[0] (biquad): is a gray-box layer type; the file needs the top-level "rtnt_format": "graybox-1"',
    ),
    "graybox_unknown_format": (
        _gray(lambda d: d.update(rtnt_format="graybox-9")),
        "'rtnt_format' must be \"graybox-1\"",
    ),
    "biquad_wrong_shape": (
        _gray(lambda d: d["layers"][0].update(sections=2)),
        "layers[0] (biquad): weights[0] has shape (1, 5), expected (2, 5) (sections, 5) of b0, b1, b2, a1, a2",
    ),
    "biquad_unstable": (
        _gray(lambda d: d["layers"][0]["weights"][0][0].__setitem__(3, -1.0)),
        "layers[0] (biquad): section 0 is unstable (a1 = -1, a2 = 0): its poles must lie inside the unit circle",
    ),
    "biquad_nan": (
        _gray(lambda d: d["layers"][0]["weights"][0][0].__setitem__(0, float("nan"))),
        "layers[0] (biquad): weights[0][0][0] is NaN; weights must be finite",
    ),
    "fir_taps_mismatch": (
        _gray(lambda d: d["layers"][1].update(taps=4)),
        "layers[1] (fir): weights[0] has shape (3,), expected (4,) (taps,)",
    ),
    "fir_zero_taps": (
        _gray(lambda d: d["layers"][1].update(taps=0)),
        "layers[1] (fir): 'taps' is 0, outside [1, 262144]",
    ),
    "fir_infinite_tap": (
        _gray(lambda d: d["layers"][1]["weights"][0].__setitem__(2, float("inf"))),
        "layers[1] (fir): weights[0][2] is infinite or beyond float range",
    ),
    "waveshaper_wrong_shape": (
        _gray(lambda d: d["layers"][2]["weights"].__setitem__(0, [4.0, 0.2])),
        "layers[2] (waveshaper): weights[0] has shape (2,), expected (3,) (drive, bias, gain)",
    ),
    "gain_two_arrays": (
        _gray(lambda d: d["layers"][3]["weights"].append([1.0])),
        "layers[3] (gain): 'weights' holds 2 arrays, expected 1",
    ),
    "graybox_not_mono": (
        _gray(lambda d: d["layers"][3].update(shape=[None, None, 2])),
        "layers[3] (gain): a gray-box layer is mono in and out, but its input has 1 channels and 'shape' ends in 2",
    ),
    "graybox_activation": (
        _gray(lambda d: d["layers"][2].update(activation="tanh")),
        "layers[2] (waveshaper): a gray-box layer takes no activation",
    ),
    # Each layer stays under the per-layer history limit; together they pass the 64 MiB budget.
    "memory_budget": (
        _mutate(
            lambda d: d["layers"].__setitem__(
                slice(1, 2), [{**d["layers"][1], "kernel_size": [2], "dilation": [1 << 20]} for _ in range(10)]
            )
        ),
        "layers[8] (conv1d): the model's weights and state reach 64.00 MiB here, more than the 64.00 MiB memory budget",
    ),
}


def test_valid_base_model_loads() -> None:
    model = NativeModel.from_json_text(VALID)
    assert model.out_size == 1
    conditioned = NativeModel.from_json_text(_conditioned())
    assert conditioned.in_size == 2 and [c.name for c in conditioned.controls] == ["gain"]
    assert NativeModel.from_json_text(json.dumps(_graybox())).out_size == 1


@pytest.mark.parametrize("case", sorted(CASES))
def test_malformed_json_text(case: str) -> None:
    text, fragment = CASES[case]
    with pytest.raises(ModelJsonError) as info:
        NativeModel.from_json_text(text, source=f"{case}.json")
    message = str(info.value)
    assert fragment in message
    assert "\n" not in message
    assert message.startswith(f"{case}.json: ")


@pytest.mark.parametrize("case", ["truncated", "unknown_type", "nan_weight", "negative_dilation", "huge_output_size"])
def test_malformed_json_file(case: str, tmp_path: Path) -> None:
    path = tmp_path / f"{case}.json"
    path.write_text(CASES[case][0])
    with pytest.raises(ModelJsonError, match=str(path).replace(".", r"\.")):
        NativeModel.from_file(path)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ModelJsonError, match="cannot open model file"):
        NativeModel.from_file(tmp_path / "absent.json")


def test_invalid_utf8_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "latin1.json"
    path.write_bytes(VALID.replace('"dense"', '"dense\xe9"', 1).encode("latin-1"))
    with pytest.raises(ModelJsonError, match="invalid UTF-8 (byte|sequence) in a string; save the file as UTF-8"):
        NativeModel.from_file(path)


def test_oversized_file_is_refused_before_parsing(tmp_path: Path) -> None:
    from rtnt._native import max_file_bytes

    path = tmp_path / "huge.json"
    with path.open("w") as f:
        f.write(VALID[:-1] + ', "padding": "')
        f.write(" " * max_file_bytes)
        f.write('"}')
    with pytest.raises(
        ModelJsonError, match=r"huge\.json' is 16\.00 MiB, more than the 16\.00 MiB a model file may be"
    ):
        NativeModel.from_file(path)
