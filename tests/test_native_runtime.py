"""Native runtime: conformance, block-partition invariance, two instances, reset, validation."""

from __future__ import annotations

import functools
import json
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rtnt.config import shared_dir
from rtnt.native import NativeModel, native_available
from rtnt.validate.bench import random_conv_stack
from rtnt.validate.native_check import run_blocks, self_check, validate_native

pytestmark = pytest.mark.skipif(not native_available(), reason="rtnt._native is not built (pip install -e .)")

CONFORMANCE = shared_dir() / "conformance" / "rtneural"
NAMES = ("conv", "dense", "gru", "lstm")


def _conformance(name: str) -> tuple[Path, np.ndarray, np.ndarray]:
    path = CONFORMANCE / f"{name}.json"
    if not path.exists():
        pytest.skip(f"conformance vectors not found at {CONFORMANCE}")
    x = np.loadtxt(CONFORMANCE / f"{name}_x.csv", dtype=np.float32)
    y = np.loadtxt(CONFORMANCE / f"{name}_y.csv")
    return path, x, y


def _signal(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    return (0.5 * np.sin(0.013 * t) * np.sin(0.0007 * t) + 0.1 * rng.standard_normal(n)).astype(np.float32)


@pytest.fixture(scope="module")
def tcn_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small WaveNet-style conv stack (8 channels, dilations 1..256) with random weights."""
    path = tmp_path_factory.mktemp("native") / "tcn.json"
    path.write_text(json.dumps(random_conv_stack(8, [2**i for i in range(9)], seed=3)))
    return path


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("block", [1, 7, 100])
def test_conformance(name: str, block: int) -> None:
    path, x, y = _conformance(name)
    model = NativeModel.from_file(path)
    assert np.max(np.abs(run_blocks(model, x, [block]) - y)) <= 1e-5


@pytest.mark.parametrize("name", NAMES)
def test_from_json_text_matches_file(name: str) -> None:
    path, x, _ = _conformance(name)
    a = NativeModel.from_file(path).process(x)
    b = NativeModel.from_json_text(path.read_text()).process(x)
    assert np.array_equal(a, b)


@pytest.mark.parametrize("sizes", [[1], [7], [32], [64], [128], [511], [1024], [4096], [5, 1, 300, 4096, 2, 77]])
def test_partition_invariance(tcn_path: Path, sizes: list[int]) -> None:
    model = NativeModel.from_file(tcn_path)
    model.prepare(4096)
    x = _signal(9000)
    ref = run_blocks(model, x, [len(x)])
    assert np.max(np.abs(run_blocks(model, x, sizes) - ref)) <= 1e-6


@settings(max_examples=25, deadline=None)
@given(st.lists(st.integers(min_value=1, max_value=600), min_size=1, max_size=40), st.sampled_from(NAMES + ("tcn",)))
def test_random_partitions(sizes: list[int], name: str) -> None:
    path = _tcn_for_hypothesis() if name == "tcn" else _conformance(name)[0]
    model = NativeModel.from_file(path)
    model.prepare(256)  # partitions up to 600 also exercise internal chunking
    x = _signal(3000, seed=1)
    ref = run_blocks(model, x, [len(x)])
    assert np.max(np.abs(run_blocks(model, x, sizes) - ref)) <= 1e-6


@functools.lru_cache(maxsize=1)
def _tcn_for_hypothesis() -> Path:
    path = Path(tempfile.mkdtemp()) / "tcn.json"
    path.write_text(json.dumps(random_conv_stack(16, [1, 2, 4, 8, 16, 32, 64], seed=5)))
    return path


def test_process_longer_than_max_block(tcn_path: Path) -> None:
    model = NativeModel.from_file(tcn_path)
    x = _signal(5000)
    model.prepare(4096)
    ref = run_blocks(model, x, [len(x)])
    model.prepare(32)
    assert model.max_block == 32
    assert np.array_equal(run_blocks(model, x, [1000]), ref)


def test_two_instances_interleaved_are_bit_identical(tcn_path: Path) -> None:
    x_a, x_b = _signal(6000, seed=2), _signal(6000, seed=9)
    solo = NativeModel.from_file(tcn_path)
    ref_a, ref_b = run_blocks(solo, x_a, [64]), run_blocks(solo, x_b, [64])
    a, b = NativeModel.from_file(tcn_path), NativeModel.from_file(tcn_path)
    out_a, out_b = [], []
    for pos in range(0, 6000, 64):
        out_a.append(a.process(x_a[pos : pos + 64]))
        out_b.append(b.process(x_b[pos : pos + 64]))
    assert np.array_equal(np.concatenate(out_a), ref_a)
    assert np.array_equal(np.concatenate(out_b), ref_b)


def test_state_carries_across_calls_and_reset_restarts(tcn_path: Path) -> None:
    model = NativeModel.from_file(tcn_path)
    x = _signal(3000)
    first = model.process(x)
    again = model.process(x)  # continues from the state left by the first call
    assert not np.array_equal(first, again)
    model.reset()
    assert np.array_equal(model.process(x), first)
    model.prepare(128)  # prepare also resets
    assert np.array_equal(model.process(x), first)


def test_model_properties(tcn_path: Path) -> None:
    model = NativeModel.from_file(tcn_path)
    assert model.in_size == 1 and model.out_size == 1
    assert model.receptive_field == 1 + 2 * sum(2**i for i in range(9))
    assert model.macs_per_sample == 3 * 8 + 8 * 3 * 8 * 8 + 8
    assert model.process(np.zeros(0, np.float32)).shape == (0,)


def test_denormal_inputs_are_flushed(tcn_path: Path) -> None:
    model = NativeModel.from_file(tcn_path)
    y = model.process(np.full(512, 1e-40, np.float32))
    assert np.all(np.isfinite(y))


def test_validate_native_against_reference(tcn_path: Path) -> None:
    model = NativeModel.from_file(tcn_path)
    x = _signal(4000)
    y_ref = model.process(x).astype(np.float64) + 2e-5
    res = validate_native(tcn_path, x, y_ref)
    assert res.passed
    assert abs(res.max_error - 2e-5) < 1e-6
    assert {"block_1", "block_77", "random_0", "two_channel", "two_channel_isolation"} <= set(res.case_errors)
    assert res.case_errors["two_channel_isolation"] == 0.0
    bad = validate_native(tcn_path, x, y_ref + 1e-3)
    assert not bad.passed and bad.max_error > 1e-4


@pytest.mark.parametrize("name", NAMES)
def test_validate_native_conformance(name: str) -> None:
    path, x, y = _conformance(name)
    res = validate_native(path, x, y, tolerance=1e-5)
    assert res.passed, res


def test_self_check(tcn_path: Path) -> None:
    res = self_check(tcn_path, n=4096)
    assert res.passed and res.finite and res.max_error <= 1e-6


def test_self_check_fails_a_model_that_overflows_at_full_scale(tmp_path: Path) -> None:
    """4e38 * x: finite on the self-check's quiet test signal (peak about 0.6), infinite on a full-scale sine."""
    dense = {"type": "dense", "activation": "", "shape": [None, None, 1], "weights": [[[2e19]], [0.0]]}
    path = tmp_path / "overflow.json"
    path.write_text(json.dumps({"in_shape": [None, None, 1], "layers": [dense, dense]}))
    res = self_check(path, n=4096)
    assert not res.finite and not res.passed
