"""Numpy reference runtime: RTNeural conformance vectors, streaming chunk-invariance, malformed JSON."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import pytest

from rtnt.config import shared_dir
from rtnt.errors import ModelJsonError
from rtnt.runtime.reference import ReferenceModel

CONFORMANCE = shared_dir() / "conformance" / "rtneural"
NAMES = ("conv", "dense", "gru", "lstm")
needs_shared = pytest.mark.skipif(not CONFORMANCE.is_dir(), reason="../shared/conformance/rtneural not present")


def _conformance(name: str) -> tuple[Path, np.ndarray, np.ndarray]:
    return (
        CONFORMANCE / f"{name}.json",
        np.loadtxt(CONFORMANCE / f"{name}_x.csv"),
        np.loadtxt(CONFORMANCE / f"{name}_y.csv"),
    )


def _stream(model: ReferenceModel, x: np.ndarray, sizes: list[int]) -> np.ndarray:
    model.reset()
    cuts = np.cumsum(sizes)[:-1]
    return np.concatenate([model.process(part) for part in np.split(x, cuts)])


def _chunkings(n: int, seed: int) -> list[list[int]]:
    rng = np.random.default_rng(seed)
    random_sizes = []
    while sum(random_sizes) < n:
        random_sizes.append(int(rng.integers(1, 40)))
    random_sizes[-1] -= sum(random_sizes) - n
    return [[1] * n, [n // 2, n - n // 2], random_sizes]


@needs_shared
@pytest.mark.parametrize("name", NAMES)
def test_conformance_within_1e5(name: str) -> None:
    path, x, y = _conformance(name)
    out = ReferenceModel.from_json(path).process(x.astype(np.float32))
    assert out.dtype == np.float32 and out.shape == y.shape
    assert np.max(np.abs(out - y)) < 1e-5


@needs_shared
@pytest.mark.parametrize("name", NAMES)
def test_conformance_chunk_invariant_and_reset(name: str) -> None:
    path, x, y = _conformance(name)
    model = ReferenceModel.from_json(json.loads(path.read_text()))
    x = x.astype(np.float32)
    whole = _stream(model, x, [len(x)])
    for sizes in _chunkings(len(x), seed=len(name)):
        np.testing.assert_allclose(_stream(model, x, sizes), whole, rtol=0, atol=1e-6)
    assert np.max(np.abs(whole - y)) < 1e-5


def _dilated_stack(rng: np.random.Generator) -> dict:
    """conv1d (k=3, d=1) -> conv1d (k=4, d=37, tanh) -> prelu -> dense: history longer than most chunks."""
    w = lambda *shape: (0.4 * rng.standard_normal(shape)).tolist()  # noqa: E731
    return {
        "in_shape": [None, None, 1],
        "layers": [
            {
                "type": "conv1d",
                "activation": "",
                "shape": [None, None, 4],
                "kernel_size": [3],
                "dilation": [1],
                "groups": 1,
                "weights": [w(3, 1, 4), w(4)],
            },
            {
                "type": "conv1d",
                "activation": "tanh",
                "shape": [None, None, 4],
                "kernel_size": [4],
                "dilation": [37],
                "groups": 2,
                "weights": [w(4, 2, 4), w(4)],
            },
            {"type": "prelu", "activation": "", "shape": [None, None, 4], "weights": [w(1, 4)]},
            {"type": "dense", "activation": "", "shape": [None, None, 1], "weights": [w(4, 1), w(1)]},
        ],
    }


def test_dilated_conv_chunk_invariant_and_causal() -> None:
    rng = np.random.default_rng(1)
    model = ReferenceModel.from_json(_dilated_stack(rng))
    x = rng.standard_normal(600).astype(np.float32)
    whole = _stream(model, x, [len(x)])
    for sizes in _chunkings(len(x), seed=2) + [[100] * 6, [7] * 85 + [5]]:
        np.testing.assert_allclose(_stream(model, x, sizes), whole, rtol=0, atol=1e-6)
    x2 = x.copy()
    x2[300:] += 1.0
    np.testing.assert_array_equal(_stream(model, x2, [len(x)])[:300], whole[:300])
    assert np.max(np.abs(_stream(model, x2, [len(x)])[300:] - whole[300:])) > 1e-3


def test_dilated_conv_matches_direct_formula() -> None:
    """conv1d tap i reads x[t - (k - 1 - i) * d] (Keras' causal orientation)."""
    rng = np.random.default_rng(3)
    spec = _dilated_stack(rng)
    conv = spec["layers"][0]
    conv["shape"], conv["kernel_size"], conv["dilation"] = [None, None, 1], [3], [5]
    kernel = np.array([[[0.5]], [[-2.0]], [[3.0]]])
    conv["weights"] = [kernel.tolist(), [0.25]]
    spec["layers"] = [conv]
    x = rng.standard_normal(50).astype(np.float32)
    xp = np.concatenate([np.zeros(10, np.float32), x])
    expected = 0.25 + 0.5 * xp[:-10] - 2.0 * xp[5:-5] + 3.0 * xp[10:]
    np.testing.assert_allclose(ReferenceModel.from_json(spec).process(x), expected, atol=1e-6)


def _broken(edit) -> dict:
    spec = copy.deepcopy(_dilated_stack(np.random.default_rng(0)))
    edit(spec)
    return spec


BROKEN = {
    "no in_shape": (lambda s: s.pop("in_shape"), "in_shape"),
    "stereo input": (lambda s: s.update(in_shape=[None, None, 2]), "in_shape"),
    "no layers": (lambda s: s.update(layers=[]), "layers"),
    "unknown type": (lambda s: s["layers"][2].update(type="layernorm"), "layer 2 (layernorm): unsupported layer type"),
    "bad activation": (
        lambda s: s["layers"][1].update(activation="gelu"),
        "layer 1 (conv1d): unsupported activation 'gelu'",
    ),
    "kernel shape": (
        lambda s: s["layers"][1].update(kernel_size=[5]),
        "layer 1 (conv1d): weights[0] has shape (4, 2, 4), expected (5, 2, 4)",
    ),
    "groups": (lambda s: s["layers"][1].update(groups=3), "layer 1 (conv1d): groups=3"),
    "missing dilation": (lambda s: s["layers"][1].pop("dilation"), "layer 1 (conv1d): 'dilation'"),
    "ragged weights": (
        lambda s: s["layers"][3]["weights"][0].__setitem__(0, [1.0, 2.0]),
        "layer 3 (dense): weights[0] is not a rectangular",
    ),
    "nan weight": (
        lambda s: s["layers"][3]["weights"].__setitem__(1, [float("nan")]),
        "layer 3 (dense): weights[1] holds NaN",
    ),
    "prelu alphas": (
        lambda s: s["layers"][2]["weights"].__setitem__(0, [[0.1, 0.2]]),
        "layer 2 (prelu): weights[0] has shape (1, 2)",
    ),
    "shape": (lambda s: s["layers"][2].update(shape=[None, None, 3]), "layer 2 (prelu): 'shape' ends in 3"),
    "not an object": (lambda s: s["layers"].__setitem__(0, "conv1d"), "layer 0: is not a JSON object"),
    "stereo output": (lambda s: s["layers"].pop(), "layer 2 (prelu): is the last layer but has 4 outputs"),
}


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_malformed_json_names_layer_and_problem(case: str) -> None:
    edit, message = BROKEN[case]
    with pytest.raises(ModelJsonError) as err:
        ReferenceModel.from_json(_broken(edit))
    assert message in str(err.value)
    assert "\n" not in str(err.value)


def test_gru_without_reset_after_bias_is_refused() -> None:
    spec = {
        "in_shape": [None, None, 1],
        "layers": [
            {
                "type": "gru",
                "activation": "",
                "shape": [None, None, 2],
                "weights": [np.zeros((1, 6)).tolist(), np.zeros((2, 6)).tolist(), np.zeros(6).tolist()],
            }
        ],
    }
    with pytest.raises(ModelJsonError, match=r"layer 0 \(gru\): bias must have shape \(2, 3 \* units\)"):
        ReferenceModel.from_json(spec)


def test_unreadable_files(tmp_path: Path) -> None:
    with pytest.raises(ModelJsonError, match="cannot read model file"):
        ReferenceModel.from_json(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ModelJsonError, match="is not valid JSON"):
        ReferenceModel.from_json(bad)


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        (b'{"in_shape": [1], "layers": [], "layers": []}', 'duplicate member name "layers"'),
        (b'{"in_shape": [1], "layers": [{"type": "dense\xe9"}]}', "is not UTF-8 text"),
        (b'{"in_shape": [1], "name": "\\ud800", "layers": []}', "is not UTF-8 text"),
    ],
    ids=["duplicate_key", "latin1", "lone_surrogate"],
)
def test_strict_json_rules_match_the_native_loader(tmp_path: Path, content: bytes, fragment: str) -> None:
    path = tmp_path / "model.json"
    path.write_bytes(content)
    with pytest.raises(ModelJsonError, match=fragment) as info:
        ReferenceModel.from_json(path)
    assert "\n" not in str(info.value)
