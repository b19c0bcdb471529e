"""WaveNet features no shared NAM Core vector exercises (gated and blended layers, head1x1, groups,
layer1x1 off, per-channel PReLU, head kernel with dilation, every activation), checked against a
float64 reference written from FORMAT.md sections 3-5 in this file.

The reference draws each weight tensor as it consumes it, in NAM Core's order, so the flat list it
records is the file's `weights`; the native runtime then reads that file without prewarm.
"""

from __future__ import annotations

import json
import zlib
from typing import Any, Callable

import numpy as np
import pytest

from rtnt.native import NativeModel, native_available

pytestmark = pytest.mark.skipif(not native_available(), reason="rtnt._native is not built (pip install -e .)")


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


def _activation(spec: Any, z: np.ndarray) -> np.ndarray:
    """NAM's activation `spec` (name or object) on z, shape (channels, time)."""
    name = spec if isinstance(spec, str) else spec["type"]
    if name == "Tanh":
        return np.tanh(z)
    if name == "Hardtanh":
        return np.clip(z, -1.0, 1.0)
    if name == "Fasttanh":
        a, x2 = np.abs(z), z * z
        num = z * (2.45550750702956 + 2.45550750702956 * a + (0.893229853513558 + 0.821226666969744 * a) * x2)
        return num / (2.44506634652299 + (2.44506634652299 + x2) * np.abs(z + 0.814642734961073 * z * a))
    if name == "ReLU":
        return np.maximum(z, 0.0)
    if name in ("LeakyReLU", "PReLU"):
        slopes = np.asarray(
            spec.get("negative_slopes", [spec.get("negative_slope", 0.01)]) if isinstance(spec, dict) else [0.01]
        )
        return np.where(z > 0, z, slopes.reshape(-1, 1) * z)
    if name == "Sigmoid":
        return _sigmoid(z)
    if name == "SiLU":
        return z * _sigmoid(z)
    if name == "Hardswish":
        return np.where(z <= -3, 0.0, np.where(z >= 3, z, z * (z + 3) / 6))
    if name == "LeakyHardtanh":
        lo, hi, ls, hs = (
            spec.get(k, d) for k, d in (("min_val", -1.0), ("max_val", 1.0), ("min_slope", 0.01), ("max_slope", 0.01))
        )
        return np.where(z < lo, (z - lo) * ls + lo, np.where(z > hi, (z - hi) * hs + hi, z))
    if name == "Softsign":
        return z / (1 + np.abs(z))
    raise ValueError(name)


def _conv(x: np.ndarray, w: np.ndarray, b: np.ndarray | None, dilation: int, groups: int) -> np.ndarray:
    """Causal grouped conv: w (out, in/groups, K) with tap K-1 on the current sample (FORMAT.md section 3)."""
    out, ig, K = w.shape
    og = out // groups
    T = x.shape[1]
    pad = np.concatenate([np.zeros((x.shape[0], (K - 1) * dilation)), x], axis=1)
    y = np.zeros((out, T)) if b is None else np.repeat(b.reshape(-1, 1), T, axis=1)
    for o in range(out):
        g = o // og
        for i in range(ig):
            for k in range(K):
                y[o] += w[o, i, k] * pad[g * ig + i, k * dilation : k * dilation + T]
    return y


def reference(config: dict[str, Any], x: np.ndarray, draw: Callable[[tuple[int, ...]], np.ndarray]) -> np.ndarray:
    """FORMAT.md section 5 in float64; `draw(shape)` supplies each weight tensor in file order."""
    c = x.reshape(1, -1).astype(np.float64)
    layer_in, acc_prev = c, None
    for la in config["layers"]:
        L = len(la["dilations"])
        C, B = la["channels"], la.get("bottleneck", la["channels"])
        kernels = la.get("kernel_sizes", [la.get("kernel_size")] * L)
        acts = la["activation"] if isinstance(la["activation"], list) else [la["activation"]] * L
        modes = la.get("gating_mode", "gated" if la.get("gated") else "none")
        modes = modes if isinstance(modes, list) else [modes] * L
        sec = la.get("secondary_activation", "Sigmoid")
        sec = sec if isinstance(sec, list) else [sec] * L
        l1 = la.get("layer1x1", {"active": True, "groups": 1})
        h1 = la.get("head1x1", {"active": False, "out_channels": C, "groups": 1})
        gi, gm = la.get("groups_input", 1), la.get("groups_input_mixin", 1)
        head = la["head"]
        h = _conv(layer_in, draw((C, la["input_size"], 1)), None, 1, 1)
        acc = np.zeros((h1["out_channels"] if h1["active"] else B, len(x))) if acc_prev is None else acc_prev
        for li in range(L):
            Z = B if modes[li] == "none" else 2 * B
            z = _conv(h, draw((Z, C // gi, kernels[li])), draw((Z,)), la["dilations"][li], gi)
            z += _conv(c, draw((Z, 1 // gm, 1)), None, 1, gm)
            if modes[li] == "none":
                a = _activation(acts[li], z)
            elif modes[li] == "gated":
                a = _activation(acts[li], z[:B]) * _activation(sec[li] or "Sigmoid", z[B:])
            else:
                alpha = _activation(sec[li] or "Sigmoid", z[B:])
                a = alpha * _activation(acts[li], z[:B]) + (1 - alpha) * z[:B]
            if l1["active"]:
                w1, b1 = draw((C, B // l1["groups"], 1)), draw((C,))
            if h1["active"]:
                acc = acc + _conv(
                    a, draw((h1["out_channels"], B // h1["groups"], 1)), draw((h1["out_channels"],)), 1, h1["groups"]
                )
            else:
                acc = acc + a
            if l1["active"]:
                h = h + _conv(a, w1, b1, 1, l1["groups"])
        w = draw((head["out_channels"], acc.shape[0], head["kernel_size"]))
        acc_prev = _conv(
            acc, w, draw((head["out_channels"],)) if head["bias"] else None, head.get("head_dilation", 1), 1
        )
        layer_in = h
    return draw(()) * acc_prev[0]


def _array(**kw: Any) -> dict[str, Any]:
    base = {"input_size": 1, "condition_size": 1, "channels": 4, "dilations": [1, 3], "kernel_sizes": [3, 2],
            "activation": "Tanh", "head": {"out_channels": 1, "kernel_size": 1, "bias": True}}  # fmt: skip
    base.update(kw)
    return base


CASES: dict[str, list[dict[str, Any]]] = {
    "gated_default_sigmoid": [_array(gated=True, kernel_sizes=None, kernel_size=3, activation="ReLU")],
    "gated_and_blended": [
        _array(
            bottleneck=3,
            gating_mode=["gated", "blended"],
            activation=["SiLU", {"type": "PReLU", "negative_slopes": [0.1, 0.2, 0.3]}],
            secondary_activation=[
                "Hardswish",
                {"type": "LeakyHardtanh", "min_val": -0.5, "max_val": 0.8, "min_slope": 0.05, "max_slope": 0.02},
            ],
        )
    ],
    "head1x1_groups": [
        _array(
            head1x1={"active": True, "out_channels": 2, "groups": 2},
            groups_input=2,
            layer1x1={"active": True, "groups": 2},
            activation=["Softsign", "Hardtanh"],
            head={"out_channels": 1, "kernel_size": 4, "bias": False, "head_dilation": 2},
        )
    ],
    "layer1x1_off_two_arrays": [
        _array(
            layer1x1={"active": False, "groups": 1},
            activation="Fasttanh",
            head={"out_channels": 3, "kernel_size": 2, "bias": True},
        ),
        _array(
            input_size=4, channels=3, activation={"type": "LeakyReLU", "negative_slope": 0.2}, gating_mode="blended"
        ),
    ],
    "sigmoid_and_leaky": [
        _array(activation=["Sigmoid", {"type": "LeakyReLU", "negative_slope": 0.05}], dilations=[2, 5])
    ],
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_feature_matches_float64_reference(case: str) -> None:
    layers = [{k: v for k, v in la.items() if v is not None} for la in CASES[case]]
    config = {"layers": layers, "head": None, "head_scale": 0.5}
    rng = np.random.default_rng(zlib.crc32(case.encode()))
    recorded: list[np.ndarray] = []

    def draw(shape: tuple[int, ...]) -> np.ndarray:
        fan_in = int(np.prod(shape[1:])) if len(shape) > 1 else 4
        w = rng.normal(0.0, 1.0 / np.sqrt(max(fan_in, 1)), shape).astype(np.float32).astype(np.float64)
        recorded.append(w.reshape(-1))
        return w

    n = 3000
    t = np.arange(n) / 48000.0
    x = (0.6 * np.sin(2 * np.pi * 220 * t) * np.exp(-3 * t) + 0.05 * rng.standard_normal(n)).astype(np.float32)
    want = reference(config, x.astype(np.float64), draw)
    doc = {
        "version": "0.7.0",
        "architecture": "WaveNet",
        "config": config,
        "weights": np.concatenate(recorded).tolist(),
        "sample_rate": 48000,
    }
    model = NativeModel.from_json_text(json.dumps(doc), case, prewarm=False)
    model.prepare(64)
    got = model.process(x).astype(np.float64)
    assert np.max(np.abs(want)) > 1e-2  # the case produces signal
    err = np.max(np.abs(got - want))
    print(f"{case}: max abs error {err:.3g}, peak {np.max(np.abs(want)):.3g}")
    assert err <= 5e-5 + 1e-4 * np.max(np.abs(want))
