"""The cabinet of a gray-box run as an impulse response: its chain's final FIR written as a 48 kHz float WAV.

`write_cabinet_ir(source, out)` reads the run's exported gray-box `model.json` (from an MLflow run id, or a
model.json path) and writes the taps of its last top-level `fir` layer (not one inside a `parallel` block's
branch, which is part of that branch; the LV2 `cabinet` port bypasses the same layer), one sample per tap, as a
mono 32-bit float WAV: convolving a dry signal with that file is the chain's cabinet alone, to swap or to switch off.
"""

from __future__ import annotations

import json
import re
import tempfile
from pathlib import Path

import numpy as np

from rtnt.constants import SAMPLE_RATE
from rtnt.errors import ExportError

_RUN_ID_RE = re.compile(r"[0-9a-f]{32}")


def final_fir(document: dict, source: str) -> np.ndarray:
    """The taps of the last `fir` layer of a gray-box JSON document; ExportError when it has none."""
    layers = document.get("layers") if isinstance(document, dict) else None
    firs = [spec for spec in layers or [] if isinstance(spec, dict) and spec.get("type") == "fir"]
    if not firs and _nested_fir(layers or []):
        raise ExportError(
            f"{source} has FIR layers only inside parallel blocks: the cabinet is the chain's final 'fir' layer "
            "outside any parallel block (a branch's FIR is part of that branch); move the cabinet FIR after it"
        )
    if not firs:
        raise ExportError(
            f"{source} has no FIR block (a 'fir' layer): only gray-box chains ending in a cabinet FIR, e.g. "
            "preset=graybox/wiener_hammerstein_cab, have an impulse response to export"
        )
    try:
        taps = np.asarray(firs[-1]["weights"][0], dtype=np.float32)
    except (KeyError, IndexError, TypeError, ValueError):
        raise ExportError(f"{source}: its last 'fir' layer has no taps in weights[0]; re-export the model") from None
    if taps.ndim != 1 or not taps.size or not np.all(np.isfinite(taps)):
        raise ExportError(f"{source}: its last 'fir' layer's taps are not a finite 1-D list; re-export the model")
    return taps


def _nested_fir(layers: list) -> bool:
    """True when a `parallel` layer among `layers` holds a `fir` layer in one of its branches, at any depth."""
    for spec in layers:
        if isinstance(spec, dict) and spec.get("type") == "parallel":
            for branch in spec.get("branches") or []:
                if isinstance(branch, list) and (
                    any(isinstance(b, dict) and b.get("type") == "fir" for b in branch) or _nested_fir(branch)
                ):
                    return True
    return False


def write_cabinet_ir(source: str, out: str | Path, tracking_uri: str = "") -> Path:
    """Write the final FIR of `source` (MLflow run id or gray-box model.json path) to `out` as a float WAV."""
    import soundfile as sf

    path = Path(source).expanduser()
    with tempfile.TemporaryDirectory() as tmp:
        if not path.is_file():
            path = download_model(source, Path(tmp), tracking_uri)
        try:
            document = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ExportError(f"{source}: cannot read its model JSON ({exc}); give a gray-box model.json") from None
        taps = final_fir(document, source)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(out), taps, SAMPLE_RATE, subtype="FLOAT")
    return out


def download_model(run_id: str, tmp: Path, tracking_uri: str) -> Path:
    """The model.json artifact of MLflow run `run_id`, downloaded into `tmp`."""
    if not _RUN_ID_RE.fullmatch(run_id):
        raise ExportError(f"{run_id!r} is neither a model.json file nor an MLflow run id; check the path or run id")
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    from rtnt.tracking.uri import existing_tracking_uri

    uri = existing_tracking_uri(tracking_uri)
    try:
        return Path(MlflowClient(tracking_uri=uri).download_artifacts(run_id, "model.json", str(tmp)))
    except (MlflowException, OSError):
        raise ExportError(
            f"run {run_id} has no readable model.json artifact in tracking store {uri}; "
            "check the run id, or pass --tracking-uri"
        ) from None
