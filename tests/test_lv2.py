"""LV2 export: a bundle built from a tiny self-made RTNeural model, run in real LV2 hosts.

Hosts:
- lilv's `lv2apply` (Debian lilv-utils): one instance, one sample per run() call, no features.
  Renders a second of the demo capture's dry input; checks parity with the native runtime, the
  gain ports and bypass. `lv2info` / `lv2ls` check that lilv loads the bundle's ttl.
- `LilvHost` below: a small host of our own on liblilv-0 (installed with lilv-utils) through
  ctypes. lilv discovers and instantiates the plugin; we call its descriptor as any host does.
  It covers what lv2apply cannot: two instances in one process, block-size changes between calls,
  the options feature (bufsz:maxBlockLength), in-place buffers, and control changes mid-stream
  (smoothed gain and bypass crossfade).
- `rtnt_lv2_rt_check` (native/lv2/tests/rt_check.cpp): a C++ host with counting malloc/free that
  proves run() makes no heap call through block-size, gain and bypass changes.
A `.nam` bundle (NAM Core's A2.nam) is rendered by lv2apply and compared with NAM Core's own output
(shared/conformance/nam), and its run() is checked for heap calls too.
The export refusals (malformed JSON or .nam, a run whose gate said not ready) need no host.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import json
import os
import platform
import shutil
import subprocess
import zipfile
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from rtnt.config import PACKAGE_DIR, REPO_DIR, shared_dir
from rtnt.errors import ExportError
from rtnt.export.lv2 import MODEL_FILE, PORTS, LV2Descriptor, bundle_uri, export_lv2, knob_symbols, smoothed_knob
from rtnt.native import NativeModel, native_available
from rtnt.runtime.controls import ControlSpec

SR = 48_000
RAMP = SR // 50  # the plugin's 20 ms gain / bypass ramp
TOL = 1e-5

needs_native = pytest.mark.skipif(not native_available(), reason="rtnt._native is not built (pip install -e .)")
needs_build = pytest.mark.skipif(
    shutil.which("c++") is None and shutil.which("g++") is None, reason="no C++ compiler to build the plugin"
)
needs_lv2apply = pytest.mark.skipif(
    shutil.which("lv2apply") is None or shutil.which("lv2info") is None,
    reason="lv2apply/lv2info not installed (apt-get install lilv-utils)",
)
LILV_LIB = ctypes.util.find_library("lilv-0")
NAM_DIR = shared_dir() / "conformance" / "nam"
needs_nam = pytest.mark.skipif(
    not (NAM_DIR / "models" / "A2.nam").exists(), reason=f"NAM conformance files not found at {NAM_DIR}"
)
needs_lilv = pytest.mark.skipif(LILV_LIB is None, reason="liblilv-0 not installed (apt-get install lilv-utils)")


def tiny_model(seed: int = 5) -> dict:
    """A small causal conv stack in RTNeural JSON (1 -> 6 -> 6 -> 1, dilations 1 and 4, tanh) with
    a dense output layer, random weights scaled to keep tanh unsaturated."""
    rng = np.random.default_rng(seed)

    def conv(cin: int, cout: int, k: int, d: int) -> dict:
        w = rng.normal(0, 1 / np.sqrt(k * cin), (k, cin, cout))
        b = rng.normal(0, 0.05, cout)
        return {
            "type": "conv1d", "activation": "tanh", "shape": [None, None, cout], "kernel_size": [k],
            "dilation": [d], "groups": 1, "weights": [w.tolist(), b.tolist()],
        }  # fmt: skip

    dense_w = rng.normal(0, 1 / np.sqrt(6), (6, 1))
    dense = {"type": "dense", "activation": "", "shape": [None, None, 1], "weights": [dense_w.tolist(), [0.01]]}
    return {"in_shape": [None, None, 1], "layers": [conv(1, 6, 3, 1), conv(6, 6, 3, 4), dense]}


def native_out(json_path: Path, x: np.ndarray) -> np.ndarray:
    """The native runtime's one-pass output for x from a fresh state."""
    model = NativeModel.from_file(json_path)
    model.prepare(4096)
    return np.asarray(model.process(np.ascontiguousarray(x, np.float32)), np.float64)


@pytest.fixture(scope="module")
def dry() -> np.ndarray:
    """One second of the embedded demo capture's dry input (from 2 s in, where it plays)."""
    x, sr = sf.read(PACKAGE_DIR / "demo" / "input.flac", dtype="float32", always_2d=True)
    assert sr == SR
    return np.ascontiguousarray(x[2 * SR : 3 * SR, 0])


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, Path]:
    """(bundle, plugin URI, model JSON) exported once for the module's host tests."""
    if not native_available():
        pytest.skip("rtnt._native is not built (pip install -e .)")
    root = tmp_path_factory.mktemp("lv2")
    json_path = root / "tiny.json"
    json_path.write_text(json.dumps(tiny_model()))
    bundle = export_lv2(str(json_path), "Tiny Crunch", root / "plugins")
    return bundle, bundle_uri(bundle), json_path


def lv2apply(bundle: Path, uri: str, x: np.ndarray, tmp: Path, **controls: float) -> tuple[np.ndarray, str]:
    """Render x through the plugin with lv2apply (float WAV in and out); returns (output, stderr)."""
    src, dst = tmp / "dry.wav", tmp / "wet.wav"
    sf.write(src, x, SR, subtype="FLOAT")
    cmd = ["lv2apply", "-i", str(src), "-o", str(dst)]
    for symbol, value in controls.items():
        cmd += ["-c", symbol, repr(float(value))]
    env = dict(os.environ, LV2_PATH=str(bundle.parent))
    proc = subprocess.run([*cmd, uri], env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, f"lv2apply failed ({proc.returncode}): {proc.stderr}"
    y, sr = sf.read(dst, dtype="float32")
    assert sr == SR and y.shape == x.shape
    return np.asarray(y, np.float64), proc.stderr


# --------------------------------------------------------------------------- lv2apply / lv2info


@needs_lv2apply
@needs_build
@pytest.mark.lv2
def test_lv2apply_render_matches_native_runtime(exported, dry, tmp_path):
    bundle, uri, json_path = exported
    y, stderr = lv2apply(bundle, uri, dry, tmp_path)
    assert stderr == ""
    ref = native_out(json_path, dry)
    assert np.max(np.abs(ref)) > 0.05  # the model does something audible
    assert np.max(np.abs(y - ref)) <= TOL


@needs_lv2apply
@needs_build
@pytest.mark.lv2
def test_lilv_loads_the_ttl(exported):
    bundle, uri, _ = exported
    env = dict(os.environ, LV2_PATH=str(bundle.parent))
    listed = subprocess.run(["lv2ls"], env=env, capture_output=True, text=True, timeout=60)
    assert uri in listed.stdout.split()
    info = subprocess.run(["lv2info", uri], env=env, capture_output=True, text=True, timeout=60)
    assert info.returncode == 0 and info.stderr == "", info.stderr
    assert "Name:              Tiny Crunch" in info.stdout
    assert "Has latency:       yes, reported by port 5" in info.stdout
    for symbol in PORTS:  # `cabinet` only in the bundle of a gray-box model with a fir
        assert (f"Symbol:      {symbol}\n" in info.stdout) == (symbol != "cabinet")
    assert "Designation: http://lv2plug.in/ns/lv2core#enabled" in info.stdout
    assert {p.name for p in bundle.iterdir()} == {"manifest.ttl", "plugin.ttl", MODEL_FILE, "rtnt_model.so"}


@needs_lv2apply
@needs_build
@pytest.mark.lv2
def test_lv2apply_gain_ports_and_bypass(exported, dry, tmp_path):
    """Gains set before the first run apply from sample 0 (no ramp at start): +6 dB output gain is
    x1.995 of the model output, -6 dB input gain feeds the model x0.501, bypass passes the input."""
    bundle, uri, json_path = exported
    ref = native_out(json_path, dry)
    y, _ = lv2apply(bundle, uri, dry, tmp_path, output_gain=6.0)
    g = float(np.float32(10 ** (6 / 20)))
    assert abs(g - 1.9953) < 1e-4
    assert np.max(np.abs(y - g * ref)) <= TOL
    y, _ = lv2apply(bundle, uri, dry, tmp_path, input_gain=-6.0)
    assert np.max(np.abs(y - native_out(json_path, dry * np.float32(10 ** (-6 / 20))))) <= TOL
    y, _ = lv2apply(bundle, uri, dry, tmp_path, enabled=0.0, output_gain=12.0)
    assert np.array_equal(y, dry.astype(np.float64))


# --------------------------------------------------------------------------- a lilv host of our own


class _LilvInstanceImpl(ctypes.Structure):
    """lilv.h's public struct LilvInstanceImpl: descriptor, handle, private data."""

    _fields_ = [
        ("lv2_descriptor", ctypes.POINTER(LV2Descriptor)),
        ("lv2_handle", ctypes.c_void_p),
        ("pimpl", ctypes.c_void_p),
    ]


class _Feature(ctypes.Structure):
    _fields_ = [("URI", ctypes.c_char_p), ("data", ctypes.c_void_p)]


_MapFunc = ctypes.CFUNCTYPE(ctypes.c_uint32, ctypes.c_void_p, ctypes.c_char_p)


class _URIDMap(ctypes.Structure):
    _fields_ = [("handle", ctypes.c_void_p), ("map", _MapFunc)]


class _Option(ctypes.Structure):
    _fields_ = [
        ("context", ctypes.c_int),
        ("subject", ctypes.c_uint32),
        ("key", ctypes.c_uint32),
        ("size", ctypes.c_uint32),
        ("type", ctypes.c_uint32),
        ("value", ctypes.c_void_p),
    ]


class LilvHost:
    """A minimal LV2 host: a lilv world holding one bundle, instances created with urid:map and,
    when `max_block` is given, options announcing bufsz:maxBlockLength / nominalBlockLength."""

    def __init__(self, bundle: Path, uri: str, max_block: int | None = None) -> None:
        lib = ctypes.CDLL(LILV_LIB)
        for fn, res, args in (
            ("lilv_world_new", ctypes.c_void_p, []),
            ("lilv_world_free", None, [ctypes.c_void_p]),
            ("lilv_new_uri", ctypes.c_void_p, [ctypes.c_void_p, ctypes.c_char_p]),
            ("lilv_node_free", None, [ctypes.c_void_p]),
            ("lilv_world_load_bundle", None, [ctypes.c_void_p, ctypes.c_void_p]),
            ("lilv_world_get_all_plugins", ctypes.c_void_p, [ctypes.c_void_p]),
            ("lilv_plugins_get_by_uri", ctypes.c_void_p, [ctypes.c_void_p, ctypes.c_void_p]),
            (
                "lilv_plugin_instantiate",
                ctypes.POINTER(_LilvInstanceImpl),
                [ctypes.c_void_p, ctypes.c_double, ctypes.c_void_p],
            ),
            ("lilv_instance_free", None, [ctypes.POINTER(_LilvInstanceImpl)]),
        ):
            getattr(lib, fn).restype = res
            getattr(lib, fn).argtypes = args
        self.lib = lib
        self.world = lib.lilv_world_new()
        bundle_node = lib.lilv_new_uri(self.world, (bundle.as_uri() + "/").encode())
        lib.lilv_world_load_bundle(self.world, bundle_node)
        lib.lilv_node_free(bundle_node)
        uri_node = lib.lilv_new_uri(self.world, uri.encode())
        self.plugin = lib.lilv_plugins_get_by_uri(lib.lilv_world_get_all_plugins(self.world), uri_node)
        lib.lilv_node_free(uri_node)
        assert self.plugin, f"lilv did not find {uri} in {bundle}"

        self._urids: dict[bytes, int] = {}
        self._map_func = _MapFunc(lambda _h, u: self._urids.setdefault(u, len(self._urids) + 1))
        self._map = _URIDMap(None, self._map_func)
        feats = [
            _Feature(b"http://lv2plug.in/ns/ext/urid#map", ctypes.cast(ctypes.pointer(self._map), ctypes.c_void_p))
        ]
        if max_block is not None:
            self._block_value = ctypes.c_int32(max_block)
            int_type = self._map_func(None, b"http://lv2plug.in/ns/ext/atom#Int")
            opts = [
                _Option(0, 0, self._map_func(None, b"http://lv2plug.in/ns/ext/buf-size#" + key), 4, int_type,
                        ctypes.cast(ctypes.pointer(self._block_value), ctypes.c_void_p))
                for key in (b"maxBlockLength", b"nominalBlockLength")
            ] + [_Option(0, 0, 0, 0, 0, None)]  # fmt: skip
            self._options = (_Option * len(opts))(*opts)
            feats.append(
                _Feature(b"http://lv2plug.in/ns/ext/options#options", ctypes.cast(self._options, ctypes.c_void_p))
            )
        self._features = [ctypes.pointer(f) for f in feats]
        self.features = (ctypes.POINTER(_Feature) * (len(feats) + 1))(*self._features, None)
        self.instances: list[Instance] = []

    def instantiate(self) -> Instance:
        impl = self.lib.lilv_plugin_instantiate(self.plugin, float(SR), ctypes.cast(self.features, ctypes.c_void_p))
        assert impl, "the plugin failed to instantiate"
        inst = Instance(self, impl)
        self.instances.append(inst)
        return inst

    def close(self) -> None:
        for inst in self.instances:
            inst.desc.deactivate(inst.handle)
            self.lib.lilv_instance_free(inst.impl)
        self.lib.lilv_world_free(self.world)


class Instance:
    """One activated plugin instance with its control ports at their defaults (0 dB, enabled)."""

    def __init__(self, host: LilvHost, impl: ctypes.POINTER(_LilvInstanceImpl)) -> None:
        self.impl = impl
        self.desc = impl.contents.lv2_descriptor.contents
        self.handle = impl.contents.lv2_handle
        self.controls = {
            name: ctypes.c_float(v)
            for name, v in (("input_gain", 0), ("output_gain", 0), ("enabled", 1), ("latency", -1))
        }
        for name, value in self.controls.items():
            self.desc.connect_port(self.handle, PORTS[name], ctypes.addressof(value))
        self.desc.activate(self.handle)

    def set(self, name: str, value: float) -> None:
        self.controls[name].value = value

    def run(self, x: np.ndarray, in_place: bool = False) -> np.ndarray:
        """One run() call over x (a new float32 buffer; the same buffer for in and out if in_place)."""
        buf_in = np.array(x, dtype=np.float32)
        buf_out = buf_in if in_place else np.full_like(buf_in, np.nan)
        self.desc.connect_port(self.handle, PORTS["in"], buf_in.ctypes.data)
        self.desc.connect_port(self.handle, PORTS["out"], buf_out.ctypes.data)
        self.desc.run(self.handle, len(buf_in))
        return buf_out.astype(np.float64)


@pytest.fixture
def host_factory(exported):
    hosts: list[LilvHost] = []

    def make(max_block: int | None = None) -> LilvHost:
        bundle, uri, _ = exported
        hosts.append(LilvHost(bundle, uri, max_block))
        return hosts[-1]

    yield make
    for h in hosts:
        h.close()


def partition(n: int, sizes: list[int]) -> list[tuple[int, int]]:
    """(start, stop) spans covering n samples with the block sizes cycled."""
    spans, pos, k = [], 0, 0
    while pos < n:
        stop = min(n, pos + sizes[k % len(sizes)])
        spans.append((pos, stop))
        pos, k = stop, k + 1
    return spans


@needs_lilv
@needs_build
@pytest.mark.lv2
def test_two_instances_in_one_host_process(exported, host_factory, dry):
    """Two instances, interleaved call by call on different signals with random block sizes up to
    the announced maximum, each match the native runtime alone; latency reads 0."""
    _, _, json_path = exported
    host = host_factory(max_block=256)
    a, b = host.instantiate(), host.instantiate()
    other = np.ascontiguousarray(dry[::-1])
    rng = np.random.default_rng(1)
    sizes = [int(s) for s in rng.integers(1, 257, 400)]
    ya, yb = [], []
    for start, stop in partition(len(dry), sizes):
        ya.append(a.run(dry[start:stop]))
        yb.append(b.run(other[start:stop]))
    assert np.max(np.abs(np.concatenate(ya) - native_out(json_path, dry))) <= TOL
    assert np.max(np.abs(np.concatenate(yb) - native_out(json_path, other))) <= TOL
    assert a.controls["latency"].value == 0.0 and b.controls["latency"].value == 0.0


@needs_lilv
@needs_build
@pytest.mark.lv2
@pytest.mark.parametrize(
    ("max_block", "sizes", "in_place"),
    [
        (None, [1, 7, 512, 513, 4096, 3, 1024, 64, 9000], False),  # no options: internal 512 chunks
        (64, [64, 1, 33, 64, 17, 2], True),  # announced maximum, host processes in place
    ],
)
def test_block_size_changes_between_calls(exported, host_factory, dry, max_block, sizes, in_place):
    _, _, json_path = exported
    inst = host_factory(max_block).instantiate()
    y = np.concatenate([inst.run(dry[s:e], in_place=in_place) for s, e in partition(len(dry), sizes)])
    assert np.max(np.abs(y - native_out(json_path, dry))) <= TOL


def _between(y: np.ndarray, a: np.ndarray, b: np.ndarray, slack: float = 1e-6) -> bool:
    return bool(np.all(y >= np.minimum(a, b) - slack) and np.all(y <= np.maximum(a, b) + slack))


def _glides(y: np.ndarray, start: np.ndarray, end: np.ndarray) -> bool:
    """y moves gradually from `start` to `end`: its weight w in y = (1 - w) start + w end, read
    where the two differ clearly, starts near 0, ends near 1 and never steps back or jumps."""
    clear = np.abs(end - start) > 0.02
    w = (y[clear] - start[clear]) / (end[clear] - start[clear])
    steps = np.diff(w) / np.maximum(np.diff(np.flatnonzero(clear)), 1)
    return bool(w[0] < 0.05 and w[-1] > 0.95 and np.all(steps >= -1e-3) and np.all(steps < 5.0 / RAMP))


@needs_lilv
@needs_build
@pytest.mark.lv2
def test_gain_and_bypass_changes_are_smoothed(exported, host_factory, dry):
    """Mid-stream: +6 dB output gain ramps over 20 ms to exactly x1.995; bypass crossfades to the
    dry input (bit-exact once settled); re-enabling restarts the model from a clean state and fades
    it back in. Every ramp sample lies between its start and end values: no clicks."""
    _, _, json_path = exported
    inst = host_factory(max_block=128).instantiate()
    ref = native_out(json_path, dry)
    g = float(np.float32(10 ** (6 / 20)))
    t1, t2, t3 = 38 * 128, 112 * 128, 224 * 128  # control changes, at block starts
    out = np.zeros(len(dry))
    for s, e in partition(len(dry), [128]):
        if s == t1:
            inst.set("output_gain", 6.0)
        elif s == t2:
            inst.set("enabled", 0.0)
        elif s == t3:
            inst.set("enabled", 1.0)
        out[s:e] = inst.run(dry[s:e])
    x = dry.astype(np.float64)

    assert np.max(np.abs(out[:t1] - ref[:t1])) <= TOL
    ramp = slice(t1, t1 + RAMP)
    assert _between(out[ramp], ref[ramp], g * ref[ramp], slack=TOL)
    assert _glides(out[ramp], ref[ramp], g * ref[ramp])
    assert np.max(np.abs(out[t1 + RAMP : t2] - g * ref[t1 + RAMP : t2])) <= TOL

    fade = slice(t2, t2 + RAMP)
    assert _between(out[fade], g * ref[fade], x[fade], slack=TOL)
    assert _glides(out[fade], g * ref[fade], x[fade])
    assert np.array_equal(out[t2 + RAMP : t3], x[t2 + RAMP : t3])

    fresh = g * native_out(json_path, dry[t3:])
    fade_in = slice(0, RAMP)
    assert _between(out[t3:][fade_in], x[t3:][fade_in], fresh[fade_in], slack=TOL)
    assert _glides(out[t3:][fade_in], x[t3:][fade_in], fresh[fade_in])
    assert np.max(np.abs(out[t3 + RAMP :] - fresh[RAMP:])) <= TOL


# --------------------------------------------------------------------------- real-time rules


@needs_build
@pytest.mark.lv2
@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="heap counting needs glibc")
def test_run_makes_no_heap_call_and_imports_no_lock(exported, tmp_path):
    """rtnt_lv2_rt_check (native/lv2/tests/rt_check.cpp), a host with counting malloc/free, runs the
    exported binary through block-size, gain and bypass changes; the binary imports no lock."""
    bundle, uri, _ = exported
    _rt_check(bundle, uri, tmp_path)


def _rt_check(bundle: Path, uri: str, build_dir: Path, knobs: int = 0) -> None:
    from rtnt.export.lv2 import PLUGIN_SOURCE, build_tool

    cmake, ninja = build_tool("cmake"), build_tool("ninja")
    configure = [
        cmake,
        "-S",
        str(PLUGIN_SOURCE),
        "-B",
        str(build_dir),
        f"-DRTNT_LV2_URI={uri}",
        "-DRTNT_LV2_BUILD_TESTS=ON",
    ]
    if ninja:
        configure += ["-G", "Ninja", f"-DCMAKE_MAKE_PROGRAM={ninja}"]
    subprocess.run(configure, check=True, capture_output=True)
    subprocess.run([cmake, "--build", str(build_dir), "--target", "rtnt_lv2_rt_check"], check=True, capture_output=True)
    proc = subprocess.run(
        [str(build_dir / "rtnt_lv2_rt_check"), str(bundle), *([str(knobs)] if knobs else [])],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0 and "rt_check: ok" in proc.stdout, proc.stdout + proc.stderr
    if shutil.which("nm"):
        imported = subprocess.run(
            ["nm", "-D", "--undefined-only", str(bundle / "rtnt_model.so")], capture_output=True, text=True
        ).stdout
        locks = [
            ln
            for ln in imported.splitlines()
            if any(k in ln for k in ("pthread_mutex", "pthread_rwlock", "pthread_cond", "sem_wait", "mtx_lock"))
        ]
        assert not locks, locks


# --------------------------------------------------------------------------- a NAM .nam bundle


@pytest.fixture(scope="module")
def exported_nam(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """(bundle, URI) of NAM Core's A2.nam (a SlimmableContainer: its default submodel A2-Full)."""
    if not native_available():
        pytest.skip("rtnt._native is not built (pip install -e .)")
    if not (NAM_DIR / "models" / "A2.nam").exists():
        pytest.skip(f"NAM conformance files not found at {NAM_DIR}")
    bundle = export_lv2(str(NAM_DIR / "models" / "A2.nam"), "NAM A2", tmp_path_factory.mktemp("lv2nam") / "plugins")
    return bundle, bundle_uri(bundle)


def graybox_model(seed: int = 3) -> dict:
    """rtnt gray-box JSON: a biquad (DC blocker), a waveshaper and a final 300-tap FIR (its cabinet)."""
    h = np.random.default_rng(seed).standard_normal(300) * 0.05
    h[0] = 1.0
    mono = {"activation": "", "shape": [None, None, 1]}
    return {
        "rtnt_format": "graybox-1",
        "in_shape": [None, None, 1],
        "layers": [
            {"type": "biquad", **mono, "sections": 1, "weights": [[[1.0, -1.0, 0.0, -0.995, 0.0]]]},
            {"type": "waveshaper", **mono, "weights": [[6.0, 0.1, 0.5]]},
            {"type": "fir", **mono, "taps": 300, "weights": [h.tolist()]},
        ],
    }


@needs_lv2apply
@needs_build
@pytest.mark.lv2
def test_a_graybox_bundle_has_a_cabinet_port_that_bypasses_the_final_fir(exported, dry, tmp_path):
    """The bundle of a gray-box model with a `fir` gets the `cabinet` port (a plain RTNeural bundle does not):
    on (the default) the plugin renders the whole chain, off the chain without its final FIR."""
    assert '"cabinet"' not in (exported[0] / "plugin.ttl").read_text()
    doc = graybox_model()
    json_path = tmp_path / "cab.json"
    json_path.write_text(json.dumps(doc))
    bundle = export_lv2(str(json_path), "Cab Sim", tmp_path / "plugins")
    uri = bundle_uri(bundle)
    env = dict(os.environ, LV2_PATH=str(bundle.parent))
    info = subprocess.run(["lv2info", uri], env=env, capture_output=True, text=True, timeout=120)
    assert info.returncode == 0 and "cabinet" in info.stdout
    no_cab = tmp_path / "no_cab.json"
    no_cab.write_text(json.dumps({**doc, "layers": doc["layers"][:-1]}))
    x = dry[: SR // 4]
    on, _ = lv2apply(bundle, uri, x, tmp_path)
    off, _ = lv2apply(bundle, uri, x, tmp_path, cabinet=0.0)
    assert np.max(np.abs(on - native_out(json_path, x))) < 1e-5
    assert np.max(np.abs(off - native_out(no_cab, x))) < 1e-5
    assert np.max(np.abs(on - off)) > 1e-2


@needs_lv2apply
@needs_build
@needs_nam
@pytest.mark.lv2
def test_nam_bundle_in_lv2apply_reproduces_nam_core(exported_nam, tmp_path):
    """lv2apply (one sample per run()) renders 2 s of guitar through the A2.nam plugin: within the
    conformance tolerance of NAM Core's output, and bit for bit the native runtime's."""
    bundle, uri = exported_nam
    assert {p.name for p in bundle.iterdir()} == {"manifest.ttl", "plugin.ttl", "model.nam", "rtnt_model.so"}
    assert "expects 48000 Hz" in (bundle / "plugin.ttl").read_text()
    x = np.fromfile(NAM_DIR / "vectors" / "inputs" / "guitar_di_10s_2s.f32", dtype="<f4")
    y, stderr = lv2apply(bundle, uri, x, tmp_path)
    assert stderr == ""
    want = np.fromfile(NAM_DIR / "vectors" / "outputs" / "A2_full" / "guitar_di_10s_2s__b64.f32", dtype="<f4")
    assert np.max(np.abs(y - want)) <= 5e-5
    native = NativeModel.from_file(bundle / "model.nam")
    native.prepare(4096)
    assert np.array_equal(y, native.process(x).astype(np.float64))


@needs_lv2apply
@needs_build
@pytest.mark.lv2
def test_a_nam_with_an_envelope_gain_plays_in_lv2apply_as_natively(dry, tmp_path):
    """A "nam-envelope-gain-1" file (docs/envelope_gain_format.md) becomes a plugin like any model file: lv2apply
    (one sample per run()) reproduces the native runtime bit for bit, and the stage makes a difference."""
    if not native_available():
        pytest.skip("rtnt._native is not built (pip install -e .)")
    corpus = REPO_DIR / "native" / "fuzz" / "corpus"
    path = tmp_path / "staged.json"
    path.write_text((corpus / "nam_envelope_gain.json").read_text())
    bundle = export_lv2(str(path), "Staged A1", tmp_path / "plugins")
    y, stderr = lv2apply(bundle, bundle_uri(bundle), dry, tmp_path)
    assert stderr == ""
    assert np.array_equal(y, native_out(path, dry))
    network = tmp_path / "network.nam"
    network.write_text((corpus / "nam_wavenet_a1.nam").read_text())
    assert np.max(np.abs(y - native_out(network, dry))) > 1e-3


@needs_build
@needs_nam
@pytest.mark.lv2
@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="heap counting needs glibc")
def test_nam_run_makes_no_heap_call(exported_nam, tmp_path):
    """The .nam plugin's run(), including the prewarming reset when it fades in from bypass."""
    bundle, uri = exported_nam
    _rt_check(bundle, uri, tmp_path)


# --------------------------------------------------------------------------- a conditioned (knob) model

DRIVE = ControlSpec("Drive level", 0.1, 0.9, 0.5)


def tiny_conditioned_model(seed: int = 9) -> dict:
    """`tiny_model` conditioned on one knob: in_shape 1 + 1, the first conv reads [x, drive], and the knob
    is weighted strongly enough to change the sound."""
    model = tiny_model(seed)
    rng = np.random.default_rng(seed)
    first = model["layers"][0]
    kernel = np.asarray(first["weights"][0])  # (3, 1, 6)
    first["weights"][0] = np.concatenate([kernel, rng.normal(0, 1.0, kernel.shape)], axis=1).tolist()
    model["in_shape"] = [None, None, 2]
    model["controls"] = [DRIVE.to_json()]
    return model


@pytest.fixture(scope="module")
def exported_knob(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, Path]:
    """(bundle, URI, model JSON) of the one-knob model."""
    if not native_available():
        pytest.skip("rtnt._native is not built (pip install -e .)")
    root = tmp_path_factory.mktemp("lv2knob")
    json_path = root / "knob.json"
    json_path.write_text(json.dumps(tiny_conditioned_model()))
    return (bundle := export_lv2(str(json_path), "Knob Drive", root / "plugins")), bundle_uri(bundle), json_path


def test_knob_symbols_are_valid_and_unique() -> None:
    specs = [ControlSpec(n, 0, 1, 0.5) for n in ("gain", "Gain!", "gain", "3 band", "enabled", "ÄÖ", "a-b c")]
    assert knob_symbols(specs) == ["gain", "Gain", "gain_2", "_3_band", "enabled_2", "knob", "a_b_c"]


@needs_lv2apply
@needs_build
@pytest.mark.lv2
def test_knob_port_in_lv2info(exported_knob):
    bundle, uri, _ = exported_knob
    env = dict(os.environ, LV2_PATH=str(bundle.parent))
    info = subprocess.run(["lv2info", uri], env=env, capture_output=True, text=True, timeout=60)
    assert info.returncode == 0 and info.stderr == "", info.stderr
    port = info.stdout.split("Port 6:")[1]
    for line in ("Symbol:      Drive_level", "Name:        Drive level", "Minimum:     0.1", "Maximum:     0.9",
                 "Default:     0.5", "http://lv2plug.in/ns/lv2core#ControlPort"):  # fmt: skip
        assert line in port, port
    assert "Port 7:" not in info.stdout


@needs_lv2apply
@needs_build
@pytest.mark.lv2
def test_lv2apply_knob_matches_native_runtime_with_the_documented_ramp(exported_knob, dry, tmp_path):
    """lv2apply sets the knob before the first run(); the plugin ramps it linearly from the default (0.5)
    over 20 ms (960 samples), which `smoothed_knob` reproduces. Two knob values give different sounds."""
    bundle, uri, json_path = exported_knob
    outputs = {}
    for value in (0.8, 0.2):
        y, stderr = lv2apply(bundle, uri, dry, tmp_path, Drive_level=value)
        assert stderr == ""
        knob = smoothed_knob(DRIVE.default, [value], [len(dry)], SR)
        assert knob[RAMP - 2] != value and np.all(knob[RAMP - 1 :] == np.float32(value))
        native = NativeModel.from_file(json_path)
        native.prepare(4096)
        expected = np.asarray(native.process(dry, knob[:, None]), np.float64)
        assert np.max(np.abs(y - expected)) <= TOL
        native.reset()  # without the ramp the first 20 ms would differ: the test can see the smoothing
        unsmoothed = np.asarray(native.process(dry, [value]), np.float64)
        assert np.max(np.abs(y[:RAMP] - unsmoothed[:RAMP])) > 100 * TOL
        outputs[value] = y
    assert np.sqrt(np.mean((outputs[0.8] - outputs[0.2]) ** 2)) > 0.01 * np.sqrt(np.mean(outputs[0.8] ** 2))


@needs_build
@pytest.mark.lv2
def test_knob_moves_mid_stream_follow_the_documented_ramp(exported_knob, dry):
    """The plugin's descriptor called directly, block sizes changing, the knob moved every few blocks (also
    in the middle of a ramp, and beyond its range, which clamps): the output is the native runtime's given
    the `smoothed_knob` sequence."""
    bundle, uri, json_path = exported_knob
    lib = ctypes.CDLL(str(bundle / "rtnt_model.so"))
    lib.lv2_descriptor.restype = ctypes.POINTER(LV2Descriptor)
    desc = lib.lv2_descriptor(0)
    d = desc.contents
    handle = d.instantiate(desc, float(SR), (str(bundle) + os.sep).encode(), None)
    assert handle
    ports = {k: ctypes.c_float(v) for k, v in (("input_gain", 0.0), ("output_gain", 0.0), ("enabled", 1.0))}
    for key, value in ports.items():
        d.connect_port(handle, PORTS[key], ctypes.addressof(value))
    knob = ctypes.c_float(0.5)
    d.connect_port(handle, 6, ctypes.addressof(knob))
    x = np.ascontiguousarray(dry[:20000])
    y = np.zeros_like(x)
    blocks = [300, 500, 64, 1000, 7, 900, 2000, 333, 1200, 4096, 5000]
    moves = [0.5, 0.8, 0.8, 0.3, 0.3, 0.9, 0.9, 2.0, 0.2, 0.2, 0.6]  # 0.3 lands mid-ramp; 2.0 clamps to 0.9
    blocks[-1] = len(x) - sum(blocks[:-1])
    d.activate(handle)
    try:
        pos = 0
        for value, n in zip(moves, blocks, strict=True):
            knob.value = value
            d.connect_port(handle, PORTS["in"], x.ctypes.data + 4 * pos)
            d.connect_port(handle, PORTS["out"], y.ctypes.data + 4 * pos)
            d.run(handle, n)
            pos += n
    finally:
        d.cleanup(handle)
    control = smoothed_knob(DRIVE.default, [min(v, DRIVE.maximum) for v in moves], blocks, SR)
    native = NativeModel.from_file(json_path)
    native.prepare(4096)
    assert np.max(np.abs(y - native.process(x, control[:, None]))) <= TOL


@needs_build
@pytest.mark.lv2
@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="heap counting needs glibc")
def test_knob_run_makes_no_heap_call(exported_knob, tmp_path):
    """run() with the knob moving within, at and beyond its range (and NaN), through block-size changes."""
    bundle, uri, _ = exported_knob
    _rt_check(bundle, uri, tmp_path, knobs=1)


# --------------------------------------------------------------------------- refusals (no host)


@needs_native
def test_export_refuses_malformed_json(tmp_path, capsys):
    from rtnt.cli.export import main

    model = tiny_model()
    model["layers"][1]["weights"][0] = model["layers"][1]["weights"][0][:2]  # wrong kernel shape
    cases = {
        "shape.json": json.dumps(model),
        "truncated.json": json.dumps(tiny_model())[:200],
        "unknown.json": json.dumps(
            {"in_shape": [None, None, 1], "layers": [{"type": "wavelet", "shape": [None, None, 1]}]}
        ),
    }
    for name, text in cases.items():
        path = tmp_path / name
        path.write_text(text)
        with pytest.raises(ExportError) as err:
            export_lv2(str(path), "Broken", tmp_path / "out")
        message = str(err.value)
        assert "\n" not in message and "does not load" in message and name in message
        assert main(["lv2", str(path), "--name", "Broken", "--out", str(tmp_path / "out")]) == 2
        stderr = capsys.readouterr().err
        assert stderr.startswith("error: ") and stderr.count("\n") == 1 and "Traceback" not in stderr
    assert not (tmp_path / "out" / "Broken.lv2").exists()


@needs_native
@needs_nam
def test_export_refuses_malformed_or_unsupported_nam(tmp_path):
    a2_lite = json.loads((NAM_DIR / "models" / "A2_lite_extracted.nam").read_text())
    a2_lite["weights"].pop()
    cases = {
        "short.nam": (json.dumps(a2_lite), "holds 1870 values, but the config needs 1871"),
        "conditioned.nam": ((NAM_DIR / "models" / "wavenet_condition_dsp.nam").read_text(), "condition_dsp"),
    }
    for name, (text, fragment) in cases.items():
        path = tmp_path / name
        path.write_text(text)
        with pytest.raises(ExportError) as err:
            export_lv2(str(path), "Broken", tmp_path / "out")
        message = str(err.value)
        assert "\n" not in message and "model .nam does not load" in message and fragment in message and name in message
    assert not (tmp_path / "out" / "Broken.lv2").exists()


@pytest.fixture
def store(tracking_uri, tmp_path):
    """A client of the per-test sqlite store and an experiment with artifacts under tmp_path."""
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=tracking_uri)
    return client, client.create_experiment("lv2-test", artifact_location=(tmp_path / "artifacts").as_uri())


def _run(client, exp: str, tmp_path: Path, esr: float | None) -> str:
    """A run with model.json and, unless esr is None, an export gate verdict (ready iff esr is small)."""
    from rtnt.config import GateConfig
    from rtnt.gate import GateEvidence, evaluate_gate
    from rtnt.tracking.review import log_gate

    run_id = client.create_run(exp).info.run_id
    local = tmp_path / run_id
    local.mkdir()
    (local / MODEL_FILE).write_text(json.dumps(tiny_model()))
    client.log_artifact(run_id, str(local / MODEL_FILE))
    if esr is not None:
        log_gate(client, run_id, evaluate_gate(GateEvidence(1e-6, 2e-6, True, 9.0, esr, -31.0), GateConfig()))
    return run_id


@needs_native
def test_export_refuses_a_run_the_gate_did_not_pass(store, tracking_uri, tmp_path, capsys):
    from rtnt.cli.export import main

    client, exp = store
    not_ready = _run(client, exp, tmp_path, esr=5.0)
    no_gate = _run(client, exp, tmp_path, esr=None)
    assert client.get_run(not_ready).data.tags["gate.ready"] == "false"
    with pytest.raises(ExportError, match=r"did not pass the export gate \(failed: esr.*--force"):
        export_lv2(not_ready, "Not Ready", tmp_path / "out", tracking_uri=tracking_uri)
    with pytest.raises(ExportError, match=r"has no export gate verdict.*--force"):
        export_lv2(no_gate, "No Gate", tmp_path / "out")  # store from $MLFLOW_TRACKING_URI
    assert main(["lv2", not_ready, "--name", "Not Ready", "--out", str(tmp_path / "out")]) == 2
    stderr = capsys.readouterr().err
    assert stderr.startswith("error: run ") and stderr.count("\n") == 1
    assert not (tmp_path / "out").exists()


@needs_native
@needs_build
def test_forced_export_of_a_run_logs_the_zipped_bundle(store, tracking_uri, tmp_path, capsys):
    from rtnt.cli.export import main

    client, exp = store
    run_id = _run(client, exp, tmp_path, esr=5.0)
    assert main(["lv2", run_id, "--name", "Forced Crunch", "--out", str(tmp_path / "plugins"), "--force"]) == 0
    printed = capsys.readouterr().out
    bundle = tmp_path / "plugins" / "Forced_Crunch.lv2"
    uri = f"urn:rtnt:run:{run_id}"
    assert f"bundle: {bundle}" in printed and f"uri:    {uri}" in printed
    assert bundle_uri(bundle) == uri and "exported with --force" in (bundle / "plugin.ttl").read_text()
    run = client.get_run(run_id)
    assert run.data.tags["lv2.uri"] == uri
    zipped = client.download_artifacts(run_id, "lv2/Forced_Crunch.lv2.zip", str(tmp_path / "dl"))
    names = set(zipfile.ZipFile(zipped).namelist())
    assert {f"Forced_Crunch.lv2/{f}" for f in ("manifest.ttl", "plugin.ttl", MODEL_FILE, "rtnt_model.so")} <= names


@needs_lv2apply
@needs_build
@pytest.mark.lv2
@pytest.mark.slow
def test_bundle_of_a_trained_nam_run_plays_in_lv2apply(nam_smoke_run, tmp_path, dry):
    """rtnt-train of a NAM WaveNet preset (train=smoke) logs model.nam; `rtnt-export lv2 <run id>` bundles it and
    lv2apply renders bit for bit what the native runtime renders from the run's own file."""
    from rtnt.cli.export import main

    run_id = nam_smoke_run.run_id
    args = ["lv2", run_id, "--name", "Nano Run", "--out", str(tmp_path / "plugins"), "--force"]
    assert main([*args, "--tracking-uri", nam_smoke_run.tracking_uri]) == 0
    bundle = tmp_path / "plugins" / "Nano_Run.lv2"
    assert (bundle / "model.nam").exists() and not (bundle / MODEL_FILE).exists()
    y, stderr = lv2apply(bundle, f"urn:rtnt:run:{run_id}", dry, tmp_path)
    native = NativeModel.from_file(bundle / "model.nam")
    native.prepare(4096)
    assert np.array_equal(y, native.process(dry).astype(np.float64))
    assert np.max(np.abs(y)) > 0


@pytest.mark.parametrize(
    "text",
    ["model\nwith a newline.json", 'say "hi" \\ back\tslash', "nul \x00 bell \x07 del \x7f", "surrogate \udcff byte"],
    ids=["newline", "quote_backslash_tab", "control", "lone_surrogate"],
)
def test_ttl_strings_are_escaped_and_parse_back(tmp_path, text):
    """Every string that goes into Turtle is escaped; the written bundle is parsed back before success."""
    import rdflib

    from rtnt.export.lv2 import _write_ttl

    uri = "urn:rtnt:test"
    _write_ttl(tmp_path, uri, "Amp", f"from {text}")
    graph = rdflib.Graph().parse(tmp_path / "plugin.ttl", format="turtle")
    (comment,) = graph.objects(rdflib.URIRef(uri), rdflib.URIRef("http://www.w3.org/2000/01/rdf-schema#comment"))
    assert str(comment) == f"from {text}".replace("\udcff", "\ufffd")


def test_plugin_names_with_control_characters_or_surrogates_are_refused(tmp_path):
    for name in ("Amp\nTwo", "Amp \udcff"):
        with pytest.raises(ExportError, match="is empty or holds control characters"):
            export_lv2("unused.json", name, tmp_path)


# --------------------------------------------------------------------------- a FiLM-conditioned model


@needs_lv2apply
@needs_build
@pytest.mark.lv2
def test_film_bundle_has_its_knob_ports_and_renders_as_the_native_runtime(dry, tmp_path):
    """The fuzz corpus's two-knob film-1 model (docs/film_format.md): one port per knob, in order, and lv2apply's
    render with the gain knob set equals the native runtime given the plugin's 20 ms ramp."""
    if not native_available():
        pytest.skip("rtnt._native is not built (pip install -e .)")
    json_path = REPO_DIR / "native" / "fuzz" / "corpus" / "film.json"
    bundle = export_lv2(str(json_path), "Film Knobs", tmp_path / "plugins")
    uri = bundle_uri(bundle)
    info = subprocess.run(
        ["lv2info", uri], env=dict(os.environ, LV2_PATH=str(bundle.parent)), capture_output=True, text=True
    )
    assert info.returncode == 0, info.stderr
    assert (
        "Symbol:      gain" in info.stdout.split("Port 6:")[1]
        and "Symbol:      tone" in info.stdout.split("Port 7:")[1]
    )
    y, stderr = lv2apply(bundle, uri, dry, tmp_path, gain=0.8)
    assert stderr == ""
    native = NativeModel.from_file(json_path)
    native.prepare(4096)
    gain = smoothed_knob(0.5, [0.8], [len(dry)], SR)
    controls = np.stack([gain, np.full(len(dry), 0.5, np.float32)], axis=1)
    assert np.max(np.abs(y - np.asarray(native.process(dry, controls), np.float64))) <= TOL


def renders_follow_the_first_knob(
    bundle: Path, model_path: Path, x: np.ndarray, tmp_path: Path, symbol: str, values: tuple[float, ...]
) -> dict[float, np.ndarray]:
    """lv2apply's render of `x` with the first knob port (`symbol`) set to each of `values`, each checked against
    the native runtime given the plugin's 20 ms ramp from the knob's default (other knobs at their defaults)."""
    outputs = {}
    for value in values:
        y, stderr = lv2apply(bundle, bundle_uri(bundle), x, tmp_path, **{symbol: value})
        assert stderr == ""
        native = NativeModel.from_file(model_path)
        native.prepare(4096)
        controls = np.tile(np.array([c.default for c in native.controls], np.float32), (len(x), 1))
        controls[:, 0] = smoothed_knob(native.controls[0].default, [value], [len(x)], SR)
        assert np.max(np.abs(y - np.asarray(native.process(x, controls), np.float64))) <= TOL
        outputs[value] = y
    return outputs


@needs_lv2apply
@needs_build
@pytest.mark.lv2
@pytest.mark.parametrize("corpus_file", ["nam_knobs.nam", "nam_film.nam"])
def test_knob_conditioned_nam_bundle_plays_its_knobs(dry, tmp_path, corpus_file):
    """The fuzz corpus's two-knob `.nam` files (NAM's multi-channel condition with rtnt's `controls`; the second
    with FiLMs): one port per knob, and lv2apply's render (prewarmed at activate with the knobs at their defaults)
    equals the native runtime given the plugin's 20 ms ramp."""
    if not native_available():
        pytest.skip("rtnt._native is not built (pip install -e .)")
    nam_path = REPO_DIR / "native" / "fuzz" / "corpus" / corpus_file
    bundle = export_lv2(str(nam_path), "NAM Knobs", tmp_path / "plugins")
    assert (bundle / "model.nam").exists()
    outputs = renders_follow_the_first_knob(bundle, nam_path, dry[: SR // 4], tmp_path, "gain", (0.9, 0.1))
    assert np.max(np.abs(outputs[0.9] - outputs[0.1])) > 1e-3


@needs_lv2apply
@needs_build
@pytest.mark.lv2
def test_a_knob_controlled_graybox_bundle_plays_its_knob(dry, tmp_path):
    """A gray-box chain whose waveshaper drive follows a knob (`controllers`, docs/graybox_format.md) gets the
    knob port like any conditioned model, and lv2apply renders what the native runtime does with the ramped knob."""
    doc = graybox_model()
    doc["in_shape"], doc["controls"] = [None, None, 2], [DRIVE.to_json()]
    doc["layers"][1]["controllers"] = [
        {"parameter": "drive_db", "mapping": "sigmoid", "minimum": -24.0, "maximum": 48.0, "raw": 0.3, "weights": [2.0]}
    ]
    json_path = tmp_path / "knob_cab.json"
    json_path.write_text(json.dumps(doc))
    bundle = export_lv2(str(json_path), "Knob Cab", tmp_path / "plugins")
    outputs = renders_follow_the_first_knob(bundle, json_path, dry[: SR // 4], tmp_path, "Drive_level", (0.8, 0.2))
    assert np.max(np.abs(outputs[0.8] - outputs[0.2])) > 1e-2
