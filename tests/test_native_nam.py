"""The native runtime on NAM `.nam` files: NAM Core's own outputs (shared/conformance/nam), block-size
invariance, prewarm, slim selection, instance isolation and one-line errors for malformed files.

Every entry of vectors/index.json is checked: supported variants against the tolerance stated in
native/README.md, refused models for a refusal that names the feature.
"""

from __future__ import annotations

import copy
import json
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pytest

from rtnt.config import shared_dir
from rtnt.errors import ModelJsonError
from rtnt.native import NativeModel, native_available

NAM_DIR = shared_dir() / "conformance" / "nam"
INDEX = NAM_DIR / "vectors" / "index.json"

pytestmark = [
    pytest.mark.skipif(not native_available(), reason="rtnt._native is not built (pip install -e .)"),
    pytest.mark.skipif(not INDEX.exists(), reason=f"NAM conformance vectors not found at {NAM_DIR}"),
]

ABS_TOL = 5e-5  # native/README.md: 5e-5 absolute, or 1e-4 of the output peak where that is larger
REL_TOL = 1e-4
# Valid NAM features rtnt refuses, with the words its refusal must contain.
REFUSED = {
    "wavenet_condition_dsp": "condition_dsp",
    "wavenet_a2_max": "condition_dsp",
    "slimmable_wavenet": "slimmable WaveNets",
    "slimmable_wavenet_slim0": "slimmable WaveNets",
    "slimmable_wavenet_slim0p5": "slimmable WaveNets",
}
# NAM's global fast-tanh switch (an approximation up to 1.6e-2 off exact tanh) is not a reference.
UNSUPPORTED_VARIANTS = {"b64_fasttanh"}


def _index() -> dict[str, Any]:
    return json.loads(INDEX.read_text()) if INDEX.exists() else {"entries": []}


def _f32(rel: str) -> np.ndarray:
    return np.fromfile(NAM_DIR / rel, dtype="<f4")


@lru_cache(maxsize=None)
def _model(model_file: str, slim: float | None, prewarm: bool) -> NativeModel:
    m = NativeModel.from_file(NAM_DIR / model_file, slim=slim, prewarm=prewarm)
    return m


def _entry_id(e: dict[str, Any]) -> str:
    return f"{e['model_id']}-{e['input'].split('_')[0]}-{e['variant']}"


ENTRIES = _index()["entries"]


@pytest.mark.parametrize("entry", ENTRIES, ids=[_entry_id(e) for e in ENTRIES])
def test_conformance_with_nam_core(entry: dict[str, Any]) -> None:
    """Each output NAM Core wrote: same block size, same prewarm, within tolerance."""
    path = NAM_DIR / entry["model_file"]
    if entry["model_id"] in REFUSED:
        with pytest.raises(ModelJsonError) as err:
            NativeModel.from_file(path, slim=entry["slim"])
        assert REFUSED[entry["model_id"]] in str(err.value) and "\n" not in str(err.value)
        return
    if entry["variant"] in UNSUPPORTED_VARIANTS:
        pytest.skip("NAM's fast-tanh approximation is a speed comparison point, not the reference")
    model = _model(entry["model_file"], entry["slim"], entry["prewarm_on_reset"])
    model.prepare(entry["max_block"])
    x, want = _f32(entry["input_file"]), _f32(entry["output_file"])
    got = model.process_blocks(x, entry["block_size"])
    tol = max(ABS_TOL, REL_TOL * entry["output_peak"])
    err = float(np.max(np.abs(got.astype(np.float64) - want)))
    assert err <= tol, f"max abs error {err:.3g} > {tol:.3g}"


def test_every_index_model_is_covered() -> None:
    """No model of the index is silently skipped: each is supported or refused by name."""
    supported = {"wavenet_a1_standard", "wavenet", "A2_full", "A2_lite", "A2_full_extracted", "A2_lite_extracted",
                 "lstm", "slimmable_container", "slimmable_container_slim0", "slimmable_container_slim0p5"}  # fmt: skip
    assert {e["model_id"] for e in ENTRIES} == supported | set(REFUSED)


@pytest.fixture(scope="module")
def a1() -> NativeModel:
    return NativeModel.from_file(NAM_DIR / "models" / "wavenet_a1_standard.nam")


@pytest.fixture(scope="module")
def guitar() -> np.ndarray:
    return _f32("vectors/inputs/guitar_di_10s_2s.f32")[:24000]


def _partition(n: int, sizes: list[int]) -> list[int]:
    out, total, k = [], 0, 0
    while total < n:
        b = min(sizes[k % len(sizes)], n - total)
        out.append(b)
        total += b
        k += 1
    return out


@pytest.mark.parametrize(
    ("name", "slim"),
    [("wavenet_a1_standard.nam", None), ("A2.nam", None), ("A2.nam", 0.0), ("wavenet.nam", None), ("lstm.nam", None)],
)
def test_block_partition_invariance_bit_exact(name: str, slim: float | None, guitar: np.ndarray) -> None:
    """Blocks 1 ... 4096 and a random partition give the one-pass output bit for bit (A2-Lite and
    wavenet.nam run the narrow path for arrays of at most 4 channels)."""
    model = NativeModel.from_file(NAM_DIR / "models" / name, slim=slim)
    model.prepare(4096)
    ref = model.process(guitar)
    rng = np.random.default_rng(0)
    partitions = [[1], [7], [64], [128], [511], [4096], [int(b) for b in rng.integers(1, 4097, 64)]]
    for sizes in partitions:
        model.reset()
        y = np.concatenate(
            [model.process(part) for part in np.split(guitar, np.cumsum(_partition(len(guitar), sizes))[:-1])]
        )
        assert np.array_equal(y, ref), f"partition {sizes[:4]} differs"


@pytest.mark.parametrize(
    ("name", "slim", "rf"), [("wavenet_a1_standard.nam", None, 4093), ("A2.nam", 0.0, 6347), ("wavenet.nam", None, 23)]
)
def test_prewarm_is_silence_heard_forever(name: str, slim: float | None, rf: int, guitar: np.ndarray) -> None:
    """reset() with prewarm equals, bit for bit, a zeroed model that first processed prewarm_samples zeros."""
    warm_model = NativeModel.from_file(NAM_DIR / "models" / name, slim=slim)
    assert warm_model.prewarm_samples == rf == warm_model.receptive_field
    warm_model.prepare(64)
    warm = warm_model.process(guitar)
    cold = NativeModel.from_file(NAM_DIR / "models" / name, slim=slim, prewarm=False)
    cold.prepare(64)
    cold.process(np.zeros(rf, np.float32))
    assert np.array_equal(cold.process(guitar), warm)
    cold.reset()
    assert np.max(np.abs(cold.process(guitar)[:rf] - warm[:rf])) > 1e-4  # prewarm matters at the start


def test_prewarm_off_applies_from_the_first_call() -> None:
    """from_file(prewarm=False) starts from zeroed histories even without prepare() or reset()."""
    path = NAM_DIR / "models" / "wavenet.nam"
    x = _f32("vectors/inputs/impulse_1_then_0p25s_zeros.f32")
    fresh = NativeModel.from_file(path, prewarm=False).process(x)
    again = NativeModel.from_file(path, prewarm=False)
    again.prepare(256)
    assert np.array_equal(fresh, again.process(x))
    assert not np.array_equal(fresh, NativeModel.from_file(path).process(x))


def test_reset_restarts_and_state_carries(a1: NativeModel, guitar: np.ndarray) -> None:
    a1.prepare(256)
    first = a1.process(guitar)
    a1.reset()
    halves = np.concatenate([a1.process(guitar[:9999]), a1.process(guitar[9999:])])
    assert np.array_equal(halves, first)


def test_two_interleaved_instances(guitar: np.ndarray) -> None:
    path = NAM_DIR / "models" / "A2.nam"
    a, b, solo = (NativeModel.from_file(path) for _ in range(3))
    for m in (a, b, solo):
        m.prepare(512)
    other = np.ascontiguousarray(guitar[::-1])
    ya, yb = [], []
    for part in _partition(len(guitar), [33, 512, 1, 200]):
        start = sum(len(p) for p in ya)
        ya.append(a.process(guitar[start : start + part]))
        yb.append(b.process(other[start : start + part]))
    assert np.array_equal(np.concatenate(ya), solo.process(guitar))
    solo.reset()
    assert np.array_equal(np.concatenate(yb), solo.process(other))


def test_slim_selects_the_container_submodel() -> None:
    path = NAM_DIR / "models" / "A2.nam"
    full, lite, half = (
        NativeModel.from_file(path),
        NativeModel.from_file(path, slim=0.0),
        NativeModel.from_file(path, slim=0.5),
    )
    assert "submodel 2 of 2" in full.description and "channels 8" in full.description
    assert "submodel 1 of 2" in lite.description and "channels 3" in lite.description
    assert "submodel 2 of 2" in half.description  # 0.5 is not below A2-Lite's max_value 0.5
    assert full.macs_per_sample > 5 * lite.macs_per_sample
    assert full.sample_rate == 48000.0 and full.prewarm_samples == 6347


def test_properties() -> None:
    a1 = NativeModel.from_file(NAM_DIR / "models" / "wavenet_a1_standard.nam")
    assert a1.sample_rate == -1.0 and a1.in_size == 1 and a1.out_size == 1
    assert "NAM 0.5.0 WaveNet: 2 layer array(s), 20 layers, channels 16 8" == a1.description
    lstm = NativeModel.from_file(NAM_DIR / "models" / "lstm.nam")
    assert lstm.prewarm_samples == 24000 and "LSTM" in lstm.description


# ------------------------------------------------------------------------------ malformed files


def _tiny() -> dict[str, Any]:
    """wavenet.nam: a valid 2-array A1 WaveNet with 131 weights."""
    return json.loads((NAM_DIR / "models" / "wavenet.nam").read_text())


def _a2_lite() -> dict[str, Any]:
    return json.loads((NAM_DIR / "models" / "A2_lite_extracted.nam").read_text())


def _mutate(base: Callable[[], dict[str, Any]], fn: Callable[[dict[str, Any]], Any]) -> str:
    d = copy.deepcopy(base())
    fn(d)
    return json.dumps(d)


def _layer(d: dict[str, Any], i: int = 0) -> dict[str, Any]:
    return d["config"]["layers"][i]


MALFORMED: dict[str, tuple[Callable[[], str], str]] = {
    "version_too_old": (
        lambda: _mutate(_tiny, lambda d: d.update(version="0.4.9")),
        "version: version 0.4.9 is older than 0.5.0",
    ),
    "version_newer_minor": (
        lambda: _mutate(_tiny, lambda d: d.update(version="0.8.0")),
        "version: version 0.8.0 is newer than 0.7.x",
    ),
    "version_newer_major": (lambda: _mutate(_tiny, lambda d: d.update(version="1.0.0")), "is newer than 0.7.x"),
    "version_not_semver": (
        lambda: _mutate(_tiny, lambda d: d.update(version="0.5")),
        "not a version of the form MAJOR.MINOR.PATCH",
    ),
    "version_wrong_type": (
        lambda: _mutate(_tiny, lambda d: d.update(version=5)),
        "version: must be a string, got a number",
    ),
    "too_few_weights": (
        lambda: _mutate(_tiny, lambda d: d["weights"].pop()),
        "weights: holds 130 values, but the config needs 131",
    ),
    "too_many_weights": (
        lambda: _mutate(_tiny, lambda d: d["weights"].append(0.5)),
        "weights: holds 132 values, but the config needs 131",
    ),
    "empty_weights": (
        lambda: _mutate(_tiny, lambda d: d.update(weights=[])),
        "holds 0 values, but the config needs 131",
    ),
    "weight_not_number": (
        lambda: _mutate(_tiny, lambda d: d["weights"].__setitem__(7, "x")),
        "weights[7]: is a string, expected a number",
    ),
    "unknown_activation": (
        lambda: _mutate(_tiny, lambda d: _layer(d).update(activation="Swish")),
        "config.layers[0].activation: unknown activation 'Swish'",
    ),
    "unknown_activation_in_list": (
        lambda: _mutate(_a2_lite, lambda d: _layer(d)["activation"].__setitem__(4, {"type": "GELU"})),
        "config.layers[0].activation[4]: unknown activation 'GELU'",
    ),
    "missing_channels": (
        lambda: _mutate(_tiny, lambda d: _layer(d).pop("channels")),
        "config.layers[0]: missing key 'channels'",
    ),
    "dilations_wrong_type": (
        lambda: _mutate(_tiny, lambda d: _layer(d).update(dilations="1,2")),
        "config.layers[0].dilations: must be an array, got a string",
    ),
    "zero_dilation": (
        lambda: _mutate(_tiny, lambda d: _layer(d).update(dilations=[1, 0])),
        "config.layers[0].dilations[1]: is 0, outside [1,",
    ),
    "both_kernel_keys": (
        lambda: _mutate(_tiny, lambda d: _layer(d).update(kernel_sizes=[3, 3])),
        "gives both 'kernel_size' and 'kernel_sizes'",
    ),
    "kernel_sizes_length": (
        lambda: _mutate(_a2_lite, lambda d: _layer(d)["kernel_sizes"].pop()),
        "kernel_sizes: holds 22 entries, but 'dilations' has 23",
    ),
    "input_size_mismatch": (
        lambda: _mutate(_tiny, lambda d: _layer(d, 1).update(input_size=2)),
        "config.layers[1].input_size: is 2, but the previous array's residual stream has 3",
    ),
    "head_size_mismatch": (
        lambda: _mutate(_tiny, lambda d: _layer(d, 0).update(head_size=3)),
        "the previous array's head outputs 3 channels",
    ),
    "stereo_input": (
        lambda: _mutate(_tiny, lambda d: _layer(d).update(input_size=2)),
        "config.layers[0].input_size: is 2",
    ),
    "bottleneck_without_layer1x1": (
        lambda: _mutate(_a2_lite, lambda d: _layer(d).update(bottleneck=2, layer1x1={"active": False, "groups": 1})),
        "'layer1x1' is inactive, so 'bottleneck' (2) must equal 'channels' (3)",
    ),
    "missing_head_scale": (
        lambda: _mutate(_tiny, lambda d: d["config"].pop("head_scale")),
        "config: missing key 'head_scale'",
    ),
    "missing_config_key": (lambda: _mutate(_tiny, lambda d: d.pop("version")), "the file: missing key 'version'"),
    "unknown_architecture": (
        lambda: _mutate(_tiny, lambda d: d.update(architecture="Transformer")),
        "unknown architecture 'Transformer'",
    ),
    "convnet_refused": (
        lambda: _mutate(_tiny, lambda d: d.update(architecture="ConvNet")),
        "'ConvNet' is a NAM architecture rtnt does not run",
    ),
    "film_without_its_weights": (
        lambda: _mutate(
            _a2_lite, lambda d: _layer(d).update(conv_pre_film={"active": True, "shift": True, "groups": 1})
        ),
        "weights: holds 1871 values, but the config needs",
    ),
    "post_stack_head_refused": (
        lambda: _mutate(
            _tiny,
            lambda d: d["config"].update(
                head={"channels": 2, "out_channels": 1, "kernel_sizes": [1], "activation": "ReLU"}
            ),
        ),
        "config.head: a post-stack 'head' is not supported",
    ),
    "lstm_weight_count": (
        lambda: _mutate(
            lambda: json.loads((NAM_DIR / "models" / "lstm.nam").read_text()), lambda d: d["weights"].pop()
        ),
        "weights: holds 69 values, but the config needs 70",
    ),
    "container_unsorted": (
        lambda: _mutate(
            lambda: json.loads((NAM_DIR / "models" / "slimmable_container.nam").read_text()),
            lambda d: d["config"]["submodels"][1].update(max_value=0.2),
        ),
        "config.submodels[1].max_value: is 0.2; max_value must increase",
    ),
    "container_bad_submodel": (
        lambda: _mutate(
            lambda: json.loads((NAM_DIR / "models" / "slimmable_container.nam").read_text()),
            lambda d: d["config"]["submodels"][0]["model"]["weights"].pop(),
        ),
        "config.submodels[0].model.weights: holds 69 values",
    ),
    "truncated_json": (lambda: json.dumps(_tiny())[:500], "JSON syntax error"),
    "duplicate_key": (lambda: json.dumps(_tiny())[:-1] + ', "weights": []}', 'duplicate member name "weights"'),
    # Each layer's history is within the per-layer limit; together they pass the 64 MiB budget.
    "memory_budget": (
        lambda: _mutate(_tiny, lambda d: _layer(d).update(dilations=[1 << 20, 1 << 20])),
        "config.layers[0]: the model's weights and state reach",
    ),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_nam_gives_one_line_error(case: str, tmp_path: Path) -> None:
    make, fragment = MALFORMED[case]
    path = tmp_path / f"{case}.nam"
    path.write_text(make())
    with pytest.raises(ModelJsonError) as err:
        NativeModel.from_file(path)
    message = str(err.value)
    assert "\n" not in message and fragment in message and path.name in message, message


def test_newer_patch_version_loads() -> None:
    d = _tiny()
    d["version"] = "0.7.3"
    NativeModel.from_json_text(json.dumps(d))


@pytest.mark.parametrize(
    ("name", "slim", "fragment"),
    [
        ("wavenet.nam", 0.5, "this WaveNet model is not slimmable"),
        ("A2.nam", 1.5, "slim value 1.5 is outside [0, 1]"),
        ("A2.nam", float("nan"), "is outside [0, 1]"),
    ],
)
def test_bad_slim_values(name: str, slim: float, fragment: str) -> None:
    with pytest.raises(ModelJsonError, match=".*") as err:
        NativeModel.from_file(NAM_DIR / "models" / name, slim=slim)
    assert fragment in str(err.value)


def test_validate_native_on_a_nam_file() -> None:
    """validate_native runs .nam files: by default from zero histories (what a Keras reference starts
    from), with prewarm=True as NAM Core does."""
    from rtnt.validate.native_check import validate_native

    path = NAM_DIR / "models" / "A2.nam"
    x = _f32("vectors/inputs/logsweep_20_20k_0p5s_m6dbfs.f32")
    warm = _f32("vectors/outputs/A2_lite/logsweep_20_20k_0p5s_m6dbfs__b64.f32")
    cold = _f32("vectors/outputs/A2_lite/logsweep_20_20k_0p5s_m6dbfs__b64_noprewarm.f32")
    assert validate_native(path, x, cold, tolerance=5e-5, slim=0.0).passed
    assert validate_native(path, x, warm, tolerance=5e-5, slim=0.0, prewarm=True).passed
    assert not validate_native(path, x, warm, tolerance=5e-5, slim=0.0).passed
