"""The native runtime runs rtnt gray-box JSON (docs/graybox_format.md): parity with the numpy reference runtime
within 1e-5 max abs on every shipped chain and on each block, block-size invariance (blocks 1..4096 identical to
one pass), and the two FIR forms (direct, zero-latency partitioned FFT) against the direct convolution."""

from __future__ import annotations

import json

import numpy as np
import pytest

from rtnt.config import CONF_DIR, load_preset
from rtnt.native import NativeModel, native_available

pytestmark = pytest.mark.skipif(not native_available(), reason="rtnt._native is not built (pip install -e .)")

TOL = 1e-5
CHAINS = sorted(p.stem for p in (CONF_DIR / "preset" / "graybox").glob("*.yaml"))
BLOCKS = (1, 7, 63, 64, 65, 128, 1000, 4096)
ONE_BLOCK = {
    "gain": {"type": "gain", "gain_db": -4.0},
    "dc_blocker": {"type": "dc_blocker", "pole": 0.995},
    "peq": {
        "type": "peq",
        "sections": [
            {"kind": "low_shelf", "freq_hz": 150.0, "q": 0.7, "gain_db": 5.0},
            {"kind": "peaking", "freq_hz": 1200.0, "q": 2.0, "gain_db": -6.0},
            {"kind": "highpass", "freq_hz": 30.0, "q": 0.7},
        ],
    },
    "fir_long": {"type": "fir", "taps": 700},
    "waveshaper": {"type": "waveshaper", "drive_db": 20.0, "bias": 0.3, "gain_db": -6.0},
}


def _x(n: int = 12000, seed: int = 3) -> np.ndarray:
    return np.random.default_rng(seed).uniform(-0.8, 0.8, n).astype(np.float32)


def _document(model) -> dict:
    """The exported gray-box JSON of `model`, its FIRs moved off their identity start so real taps are tested."""
    from rtnt.export.graybox import export_graybox

    rng = np.random.default_rng(5)
    for layer in model.layers:
        if type(layer).__name__ == "FIR":
            layer.kernel.assign(rng.standard_normal(layer.taps).astype(np.float32) * 0.05)
    return json.loads(json.dumps(export_graybox(model)))


def _native_vs_reference(doc: dict) -> tuple[NativeModel, np.ndarray, np.ndarray]:
    from rtnt.runtime.reference import ReferenceModel

    x = _x()
    native = NativeModel.from_json_text(json.dumps(doc))
    native.prepare(4096)
    y = native.process(x)
    assert np.max(np.abs(y - ReferenceModel.from_json(doc).process(x))) < TOL
    return native, x, y


def _assert_block_invariant(native: NativeModel, x: np.ndarray, whole: np.ndarray) -> None:
    for block in BLOCKS:
        native.reset()
        np.testing.assert_array_equal(native.process_blocks(x, block), whole, err_msg=f"block {block}")


@pytest.mark.parametrize("chain", CHAINS)
def test_every_shipped_chain_runs_natively_like_the_reference(chain: str) -> None:
    from rtnt.model.build import build_model

    doc = _document(build_model(load_preset(CONF_DIR / "preset" / "graybox" / f"{chain}.yaml")))
    native, x, whole = _native_vs_reference(doc)
    assert {"biquad", "gain"} <= {layer["type"] for layer in doc["layers"]}
    _assert_block_invariant(native, x, whole)


@pytest.mark.parametrize("block", sorted(ONE_BLOCK))
def test_each_block_runs_natively_like_the_reference(block: str) -> None:
    from rtnt.config import preset_config
    from rtnt.model.build import build_model

    model = build_model(preset_config({"name": "t", "arch": "graybox", "blocks": [ONE_BLOCK[block]]}))
    native, x, whole = _native_vs_reference(_document(model))
    _assert_block_invariant(native, x, whole)


def _fir_text(taps: np.ndarray) -> str:
    layer = {"type": "fir", "activation": "", "shape": [None, None, 1], "taps": len(taps), "weights": [taps.tolist()]}
    return json.dumps({"rtnt_format": "graybox-1", "in_shape": [None, None, 1], "layers": [layer]})


@pytest.mark.parametrize("taps", [1, 64, 65, 129, 700, 1024, 2048])
@pytest.mark.parametrize("form", ["direct", "partitioned"])
def test_both_fir_forms_equal_the_direct_convolution_for_any_block(taps: int, form: str) -> None:
    h = np.random.default_rng(taps).standard_normal(taps) * 0.05
    x = _x(9000, seed=taps)
    expected = np.convolve(x.astype(np.float64), h)[: len(x)]
    native = NativeModel.from_json_text(_fir_text(h), fir_form=form)
    native.prepare(4096)
    whole = native.process(x)
    assert np.max(np.abs(whole - expected)) < TOL
    _assert_block_invariant(native, x, whole)


def test_an_unknown_fir_form_is_refused() -> None:
    with pytest.raises(ValueError, match="fir_form must be 'auto', 'direct' or 'partitioned'"):
        NativeModel.from_json_text(_fir_text(np.ones(3)), fir_form="fft")
