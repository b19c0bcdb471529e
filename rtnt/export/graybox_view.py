"""What an exported gray-box file does, in the pictures and numbers a player reads (issue #16, Deliver 5).

Computed from the exported gray-box JSON, never from the Keras model, so the picture is what the file does:

- every `biquad` layer (a `peq` or `dc_blocker` block; inside `parallel` branches too, named by JSON path): the
  magnitude response of each section and of the cascade
  on a log frequency grid (scipy.signal.sosfreqz of the stored coefficients);
- every memoryless nonlinearity (a `waveshaper` layer, or a run of `dense` layers from one channel to one
  channel: a `mlp` block): its transfer curve y(x), run through the numpy reference runtime's own layer code;
- the learned parameters of those blocks as a table (`parameters`): each section's kind, frequency, Q and
  gain, the DC blocker's pole, the waveshaper's drive, bias and gain, a gain block's gain.

In a knob-conditioned file the curves and responses are drawn with every control at its default (the middle
training value), as the reference runtime computes the controlled parameters there; the table gives the stored
(static) values, which a controller offsets.

`write_graybox_view(view, out_dir)` writes eq_response.png, nonlinearity.png, parameters.csv and parameters.md;
`rtnt.tracking.record.record_graybox_view` logs them for a run, `rtnt-export graybox-view` for any file.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rtnt.constants import SAMPLE_RATE
from rtnt.errors import ExportError
from rtnt.runtime.controls import default_controls

F_LOW, F_HIGH = 20.0, 24000.0  # the response plot's frequency range (Hz)
CURVE_RANGE = 1.5  # transfer curves over input -1.5 .. 1.5
PARAMETER_COLUMNS = ("layer", "block", "section", "kind", "freq_hz", "q", "gain_db", "pole", "drive_db", "bias")


@dataclass(frozen=True)
class EqResponse:
    """Magnitude response of one `biquad` layer: `freq_hz` (F,), `total_db` (F,), `sections_db` (sections, F),
    and each section's player-readable `parameters` as written in the file."""

    layer: int | str  # the index of a top-level layer, the JSON path of one in a parallel branch
    freq_hz: np.ndarray
    total_db: np.ndarray
    sections_db: np.ndarray
    parameters: tuple[Mapping[str, Any], ...]


@dataclass(frozen=True)
class TransferCurve:
    """y = f(x) of one memoryless nonlinearity (layers `first`..`last` of the file), `kind` waveshaper or mlp."""

    first: int | str  # as EqResponse.layer
    last: int | str
    kind: str
    x: np.ndarray
    y: np.ndarray


@dataclass(frozen=True)
class GrayBoxView:
    """Everything `write_graybox_view` draws and tabulates for one gray-box file."""

    source: str
    eqs: tuple[EqResponse, ...]
    curves: tuple[TransferCurve, ...]
    parameters: tuple[dict[str, Any], ...]


def frequency_grid(n: int = 512) -> np.ndarray:
    """`n` log-spaced frequencies from F_LOW to F_HIGH Hz."""
    return np.geomspace(F_LOW, F_HIGH, n)


def biquad_response(coefficients: np.ndarray, freq_hz: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(total dB, per-section dB (sections, F)) of a cascade (sections, 5) = b0, b1, b2, a1, a2 at `freq_hz`."""
    c = np.asarray(coefficients, dtype=np.float64)
    sections = []
    for row in c:
        sos = np.array([[row[0], row[1], row[2], 1.0, row[3], row[4]]])
        _, h = _sosfreqz(sos, freq_hz)
        sections.append(h)
    h_total = np.prod(np.array(sections), axis=0)
    return _db(h_total), np.array([_db(h) for h in sections])


def _sosfreqz(sos: np.ndarray, freq_hz: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    import scipy.signal

    return scipy.signal.sosfreqz(sos, worN=freq_hz, fs=SAMPLE_RATE)


def _db(h: np.ndarray) -> np.ndarray:
    return 20.0 * np.log10(np.maximum(np.abs(h), 1e-12))


def _submodel(layers: Sequence[Mapping[str, Any]], controls: Sequence[Mapping[str, Any]]) -> Any:
    """The reference runtime's model of just `layers` (with the file's controls when one of them is controlled)."""
    from rtnt.runtime.reference import ReferenceModel

    controls = list(controls) if any(spec.get("controllers") for spec in layers) else []
    doc = {"rtnt_format": "graybox-1", "in_shape": [None, None, 1 + len(controls)], "layers": list(layers)}
    return ReferenceModel.from_json({**doc, "controls": controls})


def transfer_curve(
    layers: Sequence[Mapping[str, Any]], x: np.ndarray, controls: Sequence[Mapping[str, Any]] = ()
) -> np.ndarray:
    """y(x) of the memoryless JSON `layers` (mono in, mono out), run sample by sample through the reference
    runtime (`rtnt.runtime.reference`) as a model of just those layers; knob-controlled parameters at the
    `controls`' defaults."""
    model = _submodel(layers, controls)
    return model.process(np.asarray(x, dtype=np.float32), default_controls(model.controls))


def _biquad_at_defaults(spec: Mapping[str, Any], controls: Sequence[Mapping[str, Any]]) -> tuple[np.ndarray, tuple]:
    """A biquad layer's coefficients (sections, 5) and section parameters, controlled sections recomputed by the
    reference runtime at the controls' defaults."""
    params = tuple(spec.get("parameters", ()))
    if not spec.get("controllers"):
        return np.asarray(spec["weights"][0], dtype=np.float64), params
    model = _submodel([spec], controls)
    layer = model.layers[0]
    layer.recompute(default_controls(model.controls))
    return layer.sos[:, [0, 1, 2, 4, 5]].copy(), tuple(layer.current)


def graybox_view(document: Mapping[str, Any], source: str = "model JSON", n_points: int = 601) -> GrayBoxView:
    """The view of a parsed gray-box JSON document (module doc); ExportError when it is not gray-box JSON."""
    from rtnt.runtime.graybox import is_graybox_document

    if not is_graybox_document(document):
        raise ExportError(
            f"{source} is not rtnt gray-box JSON (no biquad, fir, waveshaper or gain layer); give the model.json "
            "of an arch: graybox run (preset=graybox/...)"
        )
    controls = list(document.get("controls") or [])
    x = np.linspace(-CURVE_RANGE, CURVE_RANGE, n_points).astype(np.float32)
    view = _Collected([], [], [])
    _collect(list(document["layers"]), "", controls, x, view)
    return GrayBoxView(source, tuple(view.eqs), tuple(view.curves), tuple(view.rows))


@dataclass
class _Collected:
    eqs: list[EqResponse]
    curves: list[TransferCurve]
    rows: list[dict[str, Any]]


def _collect(
    layers: list[Any], prefix: str, controls: Sequence[Mapping[str, Any]], x: np.ndarray, out: _Collected
) -> None:
    """Add the responses, curves and rows of `layers` to `out`; a `parallel` layer's branches recursively. A layer
    is named by its index at the top level and by its JSON path inside a branch (`0.branches.1.1`: layer 1 of
    branch 1 of layer 0). An oversampled nonlinearity's curve is its static function (the run without its
    `oversampling` object: the filters are linear and near-flat in the passband)."""
    grid = frequency_grid()
    i = 0
    while i < len(layers):
        spec, name = layers[i], f"{prefix}{i}" if prefix else i
        kind = spec.get("type")
        if kind == "parallel":
            for k, branch in enumerate(spec.get("branches", [])):
                _collect(list(branch), f"{prefix}{i}.branches.{k}.", controls, x, out)
        elif kind == "biquad":
            coefficients, params = _biquad_at_defaults(spec, controls)
            total, per_section = biquad_response(coefficients, grid)
            out.eqs.append(EqResponse(name, grid, total, per_section, params))
            out.rows.extend(_section_row(name, j, p) for j, p in enumerate(params))
        elif kind == "waveshaper":
            curve = transfer_curve([_static(spec)], x, controls)
            out.curves.append(TransferCurve(name, name, "waveshaper", x, curve))
            out.rows.append(_waveshaper_row(name, spec["weights"][0]))
        elif kind == "gain":
            g = float(np.asarray(spec["weights"][0]).reshape(-1)[0])
            out.rows.append(_row(name, "gain", kind="linear", gain_db=20.0 * math.log10(abs(g)) if g else -math.inf))
        elif kind == "dense" and _width_before(layers, i) == 1:
            last = _dense_run_end(layers, i)
            if last is not None:
                run = [_static(layer) for layer in layers[i : last + 1]]
                last_name = f"{prefix}{last}" if prefix else last
                out.curves.append(TransferCurve(name, last_name, "mlp", x, transfer_curve(run, x)))
                i = last
        i += 1


def _static(spec: Mapping[str, Any]) -> dict[str, Any]:
    """A JSON layer without its `oversampling` object."""
    return {key: value for key, value in spec.items() if key != "oversampling"}


def _width_before(layers: Sequence[Any], i: int) -> int:
    """The channel count into layer i of a gray-box chain (the previous layer's shape; the chain starts mono)."""
    shape = layers[i - 1].get("shape") if i else [1]
    return int(shape[-1]) if shape else 0


def _dense_run_end(layers: Sequence[Any], i: int) -> int | None:
    """The index of the last layer of the run of `dense` layers starting at i, when it ends in one channel."""
    j = i
    while j + 1 < len(layers) and layers[j + 1].get("type") == "dense":
        j += 1
    return j if int(layers[j]["shape"][-1]) == 1 else None


def _row(layer: int | str, block: str, **values: Any) -> dict[str, Any]:
    return {column: values.get(column, "") for column in PARAMETER_COLUMNS} | {"layer": layer, "block": block}


def _section_row(layer: int | str, section: int, p: Mapping[str, Any]) -> dict[str, Any]:
    if p.get("kind") == "dc_blocker":
        return _row(layer, "biquad", section=section, kind="dc_blocker", pole=p.get("pole", ""))
    gain = p.get("gain_db", "") if p.get("kind") not in ("lowpass", "highpass") else ""
    return _row(layer, "biquad", section=section, kind=p.get("kind", ""), freq_hz=p.get("freq_hz", ""),
                q=p.get("q", ""), gain_db=gain)  # fmt: skip


def _waveshaper_row(layer: int | str, weights: Sequence[float]) -> dict[str, Any]:
    drive, bias, gain = (float(v) for v in np.asarray(weights, dtype=np.float64).reshape(-1)[:3])
    return _row(layer, "waveshaper", kind="tanh", drive_db=20.0 * math.log10(drive), bias=bias,
                gain_db=20.0 * math.log10(gain))  # fmt: skip


def read_graybox_view(path: str | Path, source: str | None = None) -> GrayBoxView:
    """`graybox_view` of the JSON file at `path`; unreadable JSON is a one-line ExportError."""
    source = source or str(path)
    try:
        document = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ExportError(f"{source}: cannot read its model JSON ({exc}); give a gray-box model.json") from None
    if not isinstance(document, dict):
        raise ExportError(f"{source} holds no JSON object; give a gray-box model.json")
    return graybox_view(document, source)


def write_graybox_view(view: GrayBoxView, out_dir: str | Path) -> list[Path]:
    """Write eq_response.png (when the file has a biquad), nonlinearity.png (when it has a nonlinearity),
    parameters.csv and parameters.md under `out_dir`; returns the paths."""
    import pandas as pd

    from rtnt import plots
    from rtnt.tracking.record import markdown_table

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = [p for p in (plots.eq_responses(view.eqs, out / "eq_response.png"),
                         plots.transfer_curves(view.curves, out / "nonlinearity.png")) if p]  # fmt: skip
    frame = pd.DataFrame(list(view.parameters), columns=list(PARAMETER_COLUMNS))
    frame.to_csv(out / "parameters.csv", index=False, float_format="%.6g")
    (out / "parameters.md").write_text(markdown_table(frame))
    return [*paths, out / "parameters.csv", out / "parameters.md"]


def export_graybox_view(source: str, out_dir: str | Path, tracking_uri: str = "") -> list[Path]:
    """`write_graybox_view` of `source` (an MLflow run id or a gray-box model.json path) into `out_dir`."""
    import tempfile

    from rtnt.export.ir import download_model

    path = Path(source).expanduser()
    with tempfile.TemporaryDirectory() as tmp:
        if not path.is_file():
            path = download_model(source, Path(tmp), tracking_uri)
        view = read_graybox_view(path, source)
    return write_graybox_view(view, out_dir)
