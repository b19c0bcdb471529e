"""Export a model (an MLflow run, an RTNeural JSON file or a NAM `.nam` file) as an LV2 plugin bundle.

`export_lv2` validates the model in the native runtime, refuses (unless forced) a run whose export
gate said not ready, builds the plugin binary from `native/lv2` with CMake, checks the built binary
against the native runtime, and writes `<name>.lv2/`:

    rtnt_model.so   the plugin (native/lv2/plugin.cpp on rtnt::runtime), URI compiled in
    manifest.ttl    plugin URI, binary, seeAlso plugin.ttl
    plugin.ttl      name and ports: in, out, input_gain (dB), output_gain (dB), enabled, latency, and for a
                    conditioned model one knob port per control (index 6 + j, see `knob_ports_ttl`), and for a
                    gray-box model with a `fir` layer `cabinet` after them (0 bypasses the final FIR)
    model.json      the model, loaded by the plugin at instantiate (model.nam for a NAM file)

A conditioned model's knob ports take lv2:name from the control name, lv2:symbol from `knob_symbols`,
and lv2:minimum / maximum / default from its ControlSpec. The plugin ramps each knob linearly over
KNOB_RAMP_SECONDS (see `smoothed_knob`) from the control's default at activate.

A `.nam` file (told apart by content) runs as NAM Core runs it, prewarmed on silence at activate;
a SlimmableContainer runs its default submodel. The URI is `urn:rtnt:run:<run id>` for a run and
`urn:rtnt:model:<sha256 of the file, 32 hex>` for a file, so exporting the same source again gives
the same URI. When the source is a run, the zipped
bundle is logged back to it as the artifact `lv2/<folder>.zip` and the tag `lv2.uri` is set.
"""

from __future__ import annotations

import ctypes
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from string import Template
from typing import Any

import numpy as np

from rtnt.config import NATIVE_DIR
from rtnt.constants import SAMPLE_RATE
from rtnt.errors import ExportError, RtntError, exception_summary
from rtnt.runtime.controls import ControlSpec, sweep_controls

PLUGIN_SOURCE = NATIVE_DIR / "lv2"
BINARY = "rtnt_model.dll" if sys.platform == "win32" else "rtnt_model.so"
MODEL_FILE = "model.json"
NAM_MODEL_FILE = "model.nam"
PLUGIN_TTL = "plugin.ttl"
ARTIFACT_DIR = "lv2"
# Port indices of native/lv2/plugin.ttl.in (and PortIndex in plugin.cpp).
PORTS = {"in": 0, "out": 1, "input_gain": 2, "output_gain": 3, "enabled": 4, "latency": 5}
FIRST_KNOB_PORT = 6  # knob j of a conditioned model is port 6 + j (kFirstKnob in plugin.cpp)
KNOB_RAMP_SECONDS = 0.02  # kRampSeconds in plugin.cpp: a knob change ramps linearly over 20 ms
SELF_CHECK_TOLERANCE = 1e-5

_URI_RE = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:[A-Za-z0-9:._/~-]+")
_RUN_ID_RE = re.compile(r"[A-Za-z0-9_-]+")


class LV2Descriptor(ctypes.Structure):
    """ctypes layout of the C struct LV2_Descriptor (LV2 core), for calling a plugin binary directly."""


LV2Descriptor._fields_ = [
    ("URI", ctypes.c_char_p),
    (
        "instantiate",
        ctypes.CFUNCTYPE(
            ctypes.c_void_p, ctypes.POINTER(LV2Descriptor), ctypes.c_double, ctypes.c_char_p, ctypes.c_void_p
        ),
    ),
    ("connect_port", ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_uint32, ctypes.c_void_p)),
    ("activate", ctypes.CFUNCTYPE(None, ctypes.c_void_p)),
    ("run", ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_uint32)),
    ("deactivate", ctypes.CFUNCTYPE(None, ctypes.c_void_p)),
    ("cleanup", ctypes.CFUNCTYPE(None, ctypes.c_void_p)),
    ("extension_data", ctypes.CFUNCTYPE(ctypes.c_void_p, ctypes.c_char_p)),
]


def plugin_uri(run_id: str | None, json_bytes: bytes) -> str:
    """The bundle's stable URI: from the run id when there is one, else from the JSON's content hash."""
    if run_id is not None:
        return f"urn:rtnt:run:{run_id}"
    return f"urn:rtnt:model:{hashlib.sha256(json_bytes).hexdigest()[:32]}"


def knob_symbols(controls: Sequence[ControlSpec]) -> list[str]:
    """The LV2 port symbol of each control: its name with every run of characters other than ASCII
    letters, digits and '_' replaced by '_', a leading '_' before a digit, 'knob' for a name with
    none of those, and '_2', '_3', .. appended where it would repeat a fixed port's or an earlier
    knob's symbol (an LV2 symbol matches [_a-zA-Z][_a-zA-Z0-9]* and is unique in its plugin)."""
    taken = set(PORTS)
    symbols = []
    for control in controls:
        base = re.sub(r"[^A-Za-z0-9_]+", "_", control.name.strip()).strip("_") or "knob"
        if base[0].isdigit():
            base = f"_{base}"
        symbol, n = base, 1
        while symbol in taken:
            n += 1
            symbol = f"{base}_{n}"
        taken.add(symbol)
        symbols.append(symbol)
    return symbols


def knob_ports_ttl(controls: Sequence[ControlSpec]) -> str:
    """The Turtle of a conditioned model's knob ports, to follow the fixed ports in plugin.ttl ('' for none)."""
    parts = []
    for j, (control, symbol) in enumerate(zip(controls, knob_symbols(controls), strict=True)):
        parts.append(
            " , [\n"
            "        a lv2:ControlPort , lv2:InputPort ;\n"
            f"        lv2:index {FIRST_KNOB_PORT + j} ;\n"
            f'        lv2:symbol "{symbol}" ;\n'
            f'        lv2:name "{_turtle_string(control.name)}" ;\n'
            '        rdfs:comment "Model control (ramped over 20 ms)" ;\n'
            f"        lv2:default {control.default!r} ;\n"
            f"        lv2:minimum {control.minimum!r} ;\n"
            f"        lv2:maximum {control.maximum!r}\n"
            "    ]"
        )
    return "".join(parts)


def smoothed_knob(start: float, values: Sequence[float], blocks: Sequence[int], sample_rate: float) -> np.ndarray:
    """The per-sample control the plugin feeds the model for one knob, as float32: it starts at `start`
    (the control's default at activate); at the start of each run() of `blocks[i]` samples whose port
    reads `values[i]` (already within the control's range), a changed value starts a linear ramp from
    the current value in round(sample_rate * KNOB_RAMP_SECONDS) equal float32 steps, whose last sample
    is the port value exactly (plugin.cpp's Ramp)."""
    length = max(1, round(sample_rate * KNOB_RAMP_SECONDS))
    current = target = np.float32(start)
    step, remaining = np.float32(0), 0
    out = []
    for value, n in zip(values, blocks, strict=True):
        if np.float32(value) != target:
            target = np.float32(value)
            remaining = length
            step = np.float32((target - current) / np.float32(length))
        for _ in range(n):
            if remaining > 0:
                remaining -= 1
                current = target if remaining == 0 else np.float32(current + step)
            out.append(current)
    return np.asarray(out, dtype=np.float32)


def bundle_folder(name: str) -> str:
    """The bundle folder name for a plugin name: `<name>.lv2`, with runs of other characters than
    letters, digits, '.', '_' and '-' replaced by '_' (e.g. "My Crunch" -> "My_Crunch.lv2")."""
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", name.strip()).strip("._")
    if not slug:
        raise ExportError(f"plugin name {name!r} has no letters or digits; give --name a readable name")
    return f"{slug}.lv2"


def bundle_uri(bundle: str | Path) -> str:
    """The plugin URI written in an exported bundle's manifest.ttl."""
    text = (Path(bundle) / "manifest.ttl").read_text()
    match = re.search(r"^<([^>]+)>\s*\n\s*a lv2:Plugin", text, re.MULTILINE)
    if not match:
        raise ExportError(f"{bundle}/manifest.ttl names no plugin; re-export the bundle")
    return match.group(1)


def export_lv2(
    source: str,
    name: str,
    out_dir: Path,
    *,
    force: bool = False,
    tracking_uri: str = "",
    portable: bool = False,
) -> Path:
    """Export `source` (an MLflow run id, or the path of an RTNeural JSON or `.nam` file) as the LV2
    bundle `out_dir/<name>.lv2`.

    Raises ExportError (one line) when the model does not load or fails native validation, when the
    run's gate said not ready and `force` is False, or when the build fails. `portable` builds
    without -march=native (for copying the bundle to another x86-64 machine). An existing rtnt
    bundle of the same folder name is replaced. Returns the bundle path.
    """
    name = name.strip()
    if not name or any(ord(c) < 32 or 0xD800 <= ord(c) < 0xE000 for c in name):
        raise ExportError(f"plugin name {name!r} is empty or holds control characters; give --name a one-line name")
    folder = bundle_folder(name)
    out_dir = Path(out_dir).expanduser()
    with tempfile.TemporaryDirectory(prefix="rtnt-lv2-") as tmp_name:
        tmp = Path(tmp_name)
        json_path, run_id, gate_note = _resolve_source(source, tmp, force, tracking_uri)
        json_bytes = json_path.read_bytes()
        nam = is_nam_file(json_path)
        validate_model_json(json_path)
        uri = plugin_uri(run_id, json_bytes)
        model_file = NAM_MODEL_FILE if nam else MODEL_FILE
        binary = build_plugin(uri, tmp / "build", portable=portable)

        out_dir.mkdir(parents=True, exist_ok=True)
        staging = out_dir / f".{folder}.partial-{os.getpid()}"
        shutil.rmtree(staging, ignore_errors=True)
        try:
            staging.mkdir()
            shutil.copy2(binary, staging / BINARY)
            (staging / model_file).write_bytes(json_bytes)
            origin = (
                f"MLflow run {run_id}"
                if run_id
                else f"{json_path.name} (sha256 {hashlib.sha256(json_bytes).hexdigest()[:16]})"
            )
            comment = f"rtnt neural model from {origin}; {_rate_note(json_path)}; {gate_note}"
            _write_ttl(staging, uri, name, comment, _model_controls(json_path), cabinet=has_cabinet(json_path))
            check_plugin_binary(staging, uri)
            final = out_dir / folder
            _replace_bundle(staging, final)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        if run_id is not None:
            _log_bundle(run_id, final, tmp, tracking_uri)
    return final


def is_nam_file(path: Path) -> bool:
    """True when `path` holds a NAM model: a JSON object with 'architecture', 'config' and 'weights'
    (the runtime tells the formats apart the same way)."""
    try:
        doc = json.loads(path.read_bytes())
    except (ValueError, OSError):
        return False
    return isinstance(doc, dict) and {"architecture", "config", "weights"} <= set(doc)


def _model_controls(path: Path) -> list[ControlSpec]:
    """The controls (knobs) of a model file, as the native runtime reads them."""
    from rtnt.native import NativeModel

    return NativeModel.from_file(path).controls


def _rate_note(path: Path) -> str:
    """The sample rate the model expects, for the plugin description."""
    from rtnt.native import NativeModel

    rate = NativeModel.from_file(path).sample_rate
    return f"expects {rate:g} Hz" if rate > 0 else "trained at 48 kHz"


def _resolve_source(source: str, tmp: Path, force: bool, tracking_uri: str) -> tuple[Path, str | None, str]:
    """(local model file, run id or None, gate note) for a model file path or an MLflow run id."""
    path = Path(source).expanduser()
    if path.is_file():
        kind = "a NAM .nam file" if is_nam_file(path) else "a JSON file"
        return path, None, f"exported from {kind} (no export gate)"
    if path.suffix.lower() in (".json", ".nam") or not _RUN_ID_RE.fullmatch(source):
        raise ExportError(
            f"model file {source} not found; give an existing model.json or .nam path, or an MLflow run id"
        )
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    from rtnt.tracking.registry import RUN_MODEL_FILES, gate_problem, run_model_artifact
    from rtnt.tracking.uri import existing_tracking_uri, fetch_run

    uri = existing_tracking_uri(tracking_uri)
    client = MlflowClient(tracking_uri=uri)
    run = fetch_run(client, source, uri, "give a model file path or a run id, or pass --tracking-uri", ExportError)
    problem = gate_problem(run)
    if problem is not None:
        if not force:
            raise ExportError(f"run {source} {problem}; fix the model or pass --force to export it anyway")
        gate_note = "export gate NOT READY, exported with --force"
    else:
        gate_note = "export gate READY"
    wanted = " or ".join(RUN_MODEL_FILES)
    try:
        artifact = run_model_artifact(client, source)
        if artifact is None:
            raise FileNotFoundError(wanted)
        local = Path(client.download_artifacts(source, artifact, str(tmp)))
    except (MlflowException, OSError):
        raise ExportError(
            f"run {source} has no readable {wanted} artifact; only runs that exported a model can become plugins"
        ) from None
    return local, source, gate_note


def _probe_signal(n: int = 8192, seed: int = 7) -> np.ndarray:
    """A guitar-level test signal: two decaying plucks over low noise, peak about 0.6."""
    rng = np.random.default_rng(seed)
    t = np.arange(n) / SAMPLE_RATE
    pluck = np.sin(2 * np.pi * 110.0 * t) + 0.5 * np.sin(2 * np.pi * 330.0 * t)
    second = t >= t[n // 2]
    env = np.exp(-6.0 * t) + second * np.exp(-6.0 * (t - t[n // 2]) * second)
    return (0.4 * pluck * env + 0.01 * rng.standard_normal(n)).astype(np.float32)


def validate_model_json(json_path: Path) -> None:
    """Raise ExportError unless the model loads in the native runtime as a mono model and runs
    correctly on a probe signal. RTNeural JSON (and rtnt's JSON formats): the native runtime must match the numpy
    reference runtime at many block partitions. `.nam`: its outputs must be finite and bit-identical at every
    block partition and across two instances (`self_check`); conformance with NAM Core itself is
    tested on NAM Core's outputs in tests/test_native_nam.py."""
    from rtnt.native import NativeModel, native_available
    from rtnt.validate.native_check import self_check, validate_native

    if not native_available():
        raise ExportError(
            "the native runtime rtnt._native is not built, so the model cannot be validated; run `pip install -e .`"
        )
    nam = is_nam_file(json_path)
    try:
        model = NativeModel.from_file(json_path)
        if not nam:  # RTNeural JSON and rtnt's JSON formats, a .nam with an envelope gain included
            from rtnt.runtime import load_reference

            reference = load_reference(json_path, prewarm=False)
    except RtntError as exc:
        raise ExportError(f"model {'.nam' if nam else 'JSON'} does not load, so no plugin can run it: {exc}") from None
    controls = model.controls
    if model.in_size != 1 + len(controls) or model.out_size != 1:
        raise ExportError(
            f"{json_path}: the model has {model.in_size} input(s) and {model.out_size} output(s); "
            "the LV2 plugin runs mono models (1 audio input plus one per listed control, 1 out)"
        )
    if nam:
        check = self_check(model)
        if not check.passed:
            raise ExportError(
                f"{json_path}: the .nam model fails the native self-check (finite output: {check.finite}, "
                f"worst block-partition deviation {check.max_error:.3g}); it cannot be exported"
            )
        return
    x = _probe_signal()
    if controls:
        _validate_conditioned(json_path, model, reference, x)
        return
    y_ref = reference.process(x)
    if not np.all(np.isfinite(y_ref)):
        raise ExportError(
            f"{json_path}: the model outputs NaN or Inf on a guitar-level probe signal; re-train or re-export it"
        )
    result = validate_native(model, x, y_ref)
    if not result.passed:
        raise ExportError(
            f"{json_path} fails native validation: the native runtime differs from the reference runtime by "
            f"{result.max_error:.3g} max abs (tolerance {result.tolerance:g}); "
            "re-export the model"
        )


def _validate_conditioned(json_path: Path, model: Any, reference: Any, x: np.ndarray) -> None:
    """Raise ExportError unless a conditioned model passes `validate_native` against the reference runtime
    with every control held at its minimum, default and maximum, and with the controls sweeping their
    ranges sample by sample."""
    from rtnt.validate.native_check import validate_native

    settings = {
        "minimum": np.array([c.minimum for c in model.controls], np.float32),
        "default": np.array([c.default for c in model.controls], np.float32),
        "maximum": np.array([c.maximum for c in model.controls], np.float32),
        "sweeping": sweep_controls(model.controls, len(x)),
    }
    for label, controls in settings.items():
        reference.reset()
        y_ref = reference.process(x, controls)
        if not np.all(np.isfinite(y_ref)):
            raise ExportError(f"{json_path}: the model outputs NaN or Inf at its {label} controls; re-train it")
        result = validate_native(model, x, y_ref, controls=controls)
        if not result.passed:
            raise ExportError(
                f"{json_path} fails native validation at its {label} controls: the native runtime differs from the "
                f"reference runtime by {result.max_error:.3g} max abs (tolerance {result.tolerance:g}); "
                "re-export the model"
            )


def build_tool(name: str) -> str | None:
    """A build tool from this Python environment's bin folder (cmake, ninja from PyPI), else PATH."""
    local = Path(sys.executable).parent / name
    return str(local) if local.exists() else shutil.which(name)


def build_plugin(uri: str, build_dir: Path, *, portable: bool = False) -> Path:
    """Configure and build native/lv2 for `uri` in `build_dir`; returns the built plugin binary."""
    if not _URI_RE.fullmatch(uri):
        raise ExportError(
            f"plugin URI {uri!r} has characters a plugin binary cannot carry; use letters, digits and :._/~-"
        )
    if not (PLUGIN_SOURCE / "CMakeLists.txt").exists():
        raise ExportError(
            f"the LV2 plugin sources {PLUGIN_SOURCE} are missing; reinstall rtnt "
            "(pip install ., or pip install -e . in a checkout)"
        )
    cmake = build_tool("cmake")
    if cmake is None:
        raise ExportError("cmake not found; install it with `pip install cmake ninja` in this environment")
    configure = [
        cmake, "-S", str(PLUGIN_SOURCE), "-B", str(build_dir),
        f"-DRTNT_LV2_URI={uri}", "-DCMAKE_BUILD_TYPE=Release",
        f"-DRTNT_NATIVE_ARCH={'OFF' if portable else 'ON'}",
    ]  # fmt: skip
    ninja = build_tool("ninja")
    if ninja:
        configure += ["-G", "Ninja", f"-DCMAKE_MAKE_PROGRAM={ninja}"]
    for step, cmd in (("configure", configure), ("build", [cmake, "--build", str(build_dir), "--parallel", "2"])):
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            log = Path(tempfile.gettempdir()) / f"rtnt-lv2-build-{hashlib.sha1(uri.encode()).hexdigest()[:8]}.log"
            log.write_text(proc.stdout + proc.stderr)
            lines = [ln.strip() for ln in (proc.stderr + proc.stdout).splitlines() if "error" in ln.lower()]
            first = lines[0] if lines else f"exit status {proc.returncode}"
            raise ExportError(
                f"building the LV2 plugin failed at {step}: {first} (full log: {log}); check the C++ compiler"
            )
    binary = build_dir / BINARY
    if not binary.exists():
        raise ExportError(f"the LV2 build finished but produced no {BINARY} in {build_dir}; check the CMake output")
    return binary


_TURTLE_ECHAR = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\r": "\\r", "\t": "\\t", "\b": "\\b", "\f": "\\f"}


def _turtle_string(text: str) -> str:
    """`text` as the body of a Turtle "..." literal (W3C Turtle, STRING_LITERAL_QUOTE): ECHAR escapes, other
    control characters as UCHAR, and U+FFFD for a lone surrogate (an undecodable byte in a file name)."""
    out = []
    for ch in text:
        code = ord(ch)
        if ch in _TURTLE_ECHAR:
            out.append(_TURTLE_ECHAR[ch])
        elif code < 0x20 or code == 0x7F:
            out.append(f"\\u{code:04X}")
        elif 0xD800 <= code < 0xE000:
            out.append("\ufffd")
        else:
            out.append(ch)
    return "".join(out)


def has_cabinet(path: Path) -> bool:
    """True when `path` is rtnt gray-box JSON with a top-level `fir` layer (one inside a `parallel` block's branch
    does not count): its bundle gets the `cabinet` port, and the plugin bypasses the last such layer when the port
    is 0."""
    from rtnt.runtime.graybox import is_graybox_file

    if not is_graybox_file(path):
        return False
    layers = json.loads(path.read_bytes()).get("layers", [])
    return any(isinstance(layer, dict) and layer.get("type") == "fir" for layer in layers)


def cabinet_port_ttl(index: int) -> str:
    """The Turtle of a gray-box bundle's `cabinet` toggle at port `index` (after any knob ports)."""
    return (
        " , [\n"
        "        a lv2:ControlPort , lv2:InputPort ;\n"
        f"        lv2:index {index} ;\n"
        '        lv2:symbol "cabinet" ;\n'
        '        lv2:name "Cabinet" ;\n'
        "        rdfs:comment \"0 bypasses the model's final FIR (its cabinet impulse response); "
        'switches at a block edge" ;\n'
        "        lv2:portProperty lv2:toggled ;\n"
        "        lv2:default 1 ;\n"
        "        lv2:minimum 0 ;\n"
        "        lv2:maximum 1\n"
        "    ]"
    )


def _write_ttl(
    bundle: Path, uri: str, name: str, comment: str, controls: Sequence[ControlSpec] = (), *, cabinet: bool = False
) -> None:
    """Write manifest.ttl and plugin.ttl (with a knob port per control, then the `cabinet` port if `cabinet`), then
    parse them back: a bundle whose Turtle a host could not read, or that names the plugin differently, is an
    ExportError, never a reported
    success."""
    import rdflib

    values = {
        "uri": uri,
        "binary": BINARY,
        "name": _turtle_string(name),
        "comment": _turtle_string(comment),
        "extra_ports": knob_ports_ttl(controls)
        + (cabinet_port_ttl(FIRST_KNOB_PORT + len(controls)) if cabinet else ""),
    }
    graph = rdflib.Graph()
    for template, target in (("manifest.ttl.in", "manifest.ttl"), ("plugin.ttl.in", PLUGIN_TTL)):
        text = Template((PLUGIN_SOURCE / template).read_text()).substitute(values)
        (bundle / target).write_text(text, encoding="utf-8")
        try:
            graph.parse(bundle / target, format="turtle", publicID=(bundle.resolve().as_uri() + "/"))
        except Exception as exc:  # rdflib raises several parser error types
            raise ExportError(
                f"the generated {target} is not valid Turtle ({exception_summary(exc)}); please report this"
            ) from None
    names = {str(o) for o in graph.objects(rdflib.URIRef(uri), rdflib.URIRef("http://usefulinc.com/ns/doap#name"))}
    if names != {name}:
        raise ExportError(
            f"the generated {PLUGIN_TTL} names the plugin {sorted(names)!r}, not {name!r}; please report this"
        )


def check_plugin_binary(bundle: Path, uri: str, block: int = 300) -> None:
    """Load the bundle's binary without a host, instantiate it on the bundle, run the probe signal in
    blocks of `block` at 0 dB / enabled (a conditioned model's knobs at their defaults), and raise
    ExportError unless its descriptor carries `uri` and its output matches the native runtime within
    SELF_CHECK_TOLERANCE."""
    from rtnt.native import NativeModel

    lib = ctypes.CDLL(str(bundle / BINARY))
    lib.lv2_descriptor.restype = ctypes.POINTER(LV2Descriptor)
    lib.lv2_descriptor.argtypes = [ctypes.c_uint32]
    desc = lib.lv2_descriptor(0)
    if not desc or desc.contents.URI.decode() != uri:
        raise ExportError(f"the built plugin {bundle / BINARY} does not describe {uri}; rebuild it")
    d = desc.contents
    handle = d.instantiate(desc, float(SAMPLE_RATE), (str(bundle) + os.sep).encode(), None)
    if not handle:
        raise ExportError(f"the built plugin failed to instantiate from {bundle}; see the messages above")
    try:
        x = _probe_signal()
        y = np.zeros_like(x)
        controls = {
            k: ctypes.c_float(v)
            for k, v in (("input_gain", 0.0), ("output_gain", 0.0), ("enabled", 1.0), ("latency", -1.0))
        }
        for key, value in controls.items():
            d.connect_port(handle, PORTS[key], ctypes.addressof(value))
        knobs = [ctypes.c_float(c.default) for c in _model_controls(bundle_model_file(bundle))]
        for j, knob in enumerate(knobs):
            d.connect_port(handle, FIRST_KNOB_PORT + j, ctypes.addressof(knob))
        d.activate(handle)
        for start in range(0, len(x), block):
            n = min(block, len(x) - start)
            d.connect_port(handle, PORTS["in"], x.ctypes.data + 4 * start)
            d.connect_port(handle, PORTS["out"], y.ctypes.data + 4 * start)
            d.run(handle, n)
        d.deactivate(handle)
    finally:
        d.cleanup(handle)
    native = NativeModel.from_file(bundle_model_file(bundle))
    native.prepare(1024)
    expected = native.process(x, [k.value for k in knobs] if knobs else None)
    err = float(np.max(np.abs(y.astype(np.float64) - expected)))
    if not err <= SELF_CHECK_TOLERANCE or controls["latency"].value != 0.0:
        raise ExportError(
            f"the built plugin differs from the native runtime by {err:.3g} max abs "
            f"(tolerance {SELF_CHECK_TOLERANCE:g}) "
            f"or reports latency {controls['latency'].value:g}; rebuild it"
        )


def bundle_model_file(bundle: Path) -> Path:
    """The model file of an exported bundle: model.nam or model.json (the plugin looks in that order)."""
    for name in (NAM_MODEL_FILE, MODEL_FILE):
        if (bundle / name).exists():
            return bundle / name
    raise ExportError(f"{bundle} holds neither {NAM_MODEL_FILE} nor {MODEL_FILE}; re-export the bundle")


def _replace_bundle(staging: Path, final: Path) -> None:
    """Move the finished bundle into place, replacing an earlier rtnt export of the same name."""
    if final.exists():
        is_rtnt = (final / "manifest.ttl").exists() and any((final / f).exists() for f in (MODEL_FILE, NAM_MODEL_FILE))
        if not is_rtnt:
            raise ExportError(f"{final} exists and is not an rtnt LV2 bundle; choose another --name or --out")
        shutil.rmtree(final)
    staging.rename(final)


def _log_bundle(run_id: str, bundle: Path, tmp: Path, tracking_uri: str) -> None:
    """Log the zipped bundle to the run as lv2/<folder>.zip and tag the run with lv2.uri."""
    from mlflow import MlflowClient

    from rtnt.tracking.uri import resolve_tracking_uri

    archive = shutil.make_archive(str(tmp / bundle.name), "zip", root_dir=bundle.parent, base_dir=bundle.name)
    client = MlflowClient(tracking_uri=resolve_tracking_uri(tracking_uri))
    client.log_artifact(run_id, archive, ARTIFACT_DIR)
    client.set_tag(run_id, "lv2.uri", bundle_uri(bundle))
