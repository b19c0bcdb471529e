"""The cabinet of a gray-box run as an impulse response: its chain's final FIR written as a 48 kHz float WAV.

`write_cabinet_ir(source, out)` reads the run's exported gray-box `model.json` (from an MLflow run id, or a
model.json path) and writes the taps of its last top-level `fir` layer (not one inside a `parallel` block's
branch, which is part of that branch; the LV2 `cabinet` port bypasses the same layer), one sample per tap, as a
mono 32-bit float WAV: convolving a dry signal with that file is the chain's cabinet alone, to swap or to switch off.
`cabinet_spectra(taps, target, dry)` sets the IR's magnitude response beside the target's long-term spectrum (and
that of the dry input through the IR alone), the picture `rtnt-export ir --against` draws.
"""

from __future__ import annotations

import json
import re
import tempfile
from dataclasses import dataclass
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


@dataclass(frozen=True)
class CabinetSpectra:
    """dB spectra on one frequency grid, 1/6-octave smoothed, each shifted to 0 dB mean over 100 Hz-5 kHz so their
    shapes compare:
    the IR's magnitude response, the target's long-term average spectrum (Welch) and, when given, that of the
    dry input convolved with the IR alone."""

    freqs_hz: np.ndarray
    ir_db: np.ndarray
    target_db: np.ndarray
    dry_through_ir_db: np.ndarray | None


def octave_smoothed(freqs: np.ndarray, power: np.ndarray, fraction: int = 6) -> np.ndarray:
    """`power` averaged at every frequency f over [f 2^(-1/(2 fraction)), f 2^(1/(2 fraction))] (1/fraction-octave
    smoothing, as loudspeaker and cabinet responses are usually shown); the DC bin is kept."""
    edges = np.concatenate([[0.0], np.cumsum(power)])
    half = 2.0 ** (0.5 / fraction)
    lo = np.searchsorted(freqs, freqs / half, side="left")
    hi = np.maximum(np.searchsorted(freqs, freqs * half, side="right"), lo + 1)
    smoothed = (edges[hi] - edges[lo]) / (hi - lo)
    smoothed[0] = power[0]
    return smoothed


def cabinet_spectra(
    taps: np.ndarray, target: np.ndarray, dry: np.ndarray | None = None, sample_rate: int = SAMPLE_RATE
) -> CabinetSpectra:
    """The IR `taps` against the long-term spectrum of `target` (Welch, Hann, 8192 samples) and of `dry`
    convolved with the IR, for the question "does the chain's FIR sound like the capture's cabinet"."""
    from scipy.signal import fftconvolve, welch

    n = 8192
    freqs = np.fft.rfftfreq(n, 1.0 / sample_rate)
    band = (freqs >= 100.0) & (freqs <= 5000.0)

    def level(power: np.ndarray) -> np.ndarray:
        db = 10.0 * np.log10(np.maximum(octave_smoothed(freqs, power), 1e-30))
        return db - np.mean(db[band])

    def ltas(x: np.ndarray) -> np.ndarray:
        return level(welch(np.asarray(x, dtype=np.float64), fs=sample_rate, nperseg=n)[1])

    ir = level(np.abs(np.fft.rfft(np.asarray(taps, dtype=np.float64), n)) ** 2)
    through = None if dry is None else ltas(fftconvolve(np.asarray(dry, dtype=np.float64), taps)[: len(dry)])
    return CabinetSpectra(freqs, ir, ltas(target), through)


def draw_cabinet_against(ir_wav: Path, audio: list[Path]) -> Path:
    """Draw `ir_wav` (written by `write_cabinet_ir`) against audio [TARGET] or [TARGET, DRY] (48 kHz files) into
    `<ir_wav>.png` (`rtnt.plots.cabinet_response`)."""
    import soundfile as sf

    from rtnt.capture.io import read_mono
    from rtnt.plots import cabinet_response

    if len(audio) > 2:
        raise ExportError(f"--against takes a target and optionally the dry input, not {len(audio)} files")
    signals = []
    for path in audio:
        x, sr = read_mono(path, role="--against", channel=0, option="--against")
        if sr != SAMPLE_RATE:
            raise ExportError(f"--against {path} is at {sr} Hz; the IR is at {SAMPLE_RATE} Hz, resample it first")
        signals.append(x)
    taps = sf.read(str(ir_wav), dtype="float32")[0]
    spectra = cabinet_spectra(taps, signals[0], signals[1] if len(signals) > 1 else None)
    return cabinet_response(spectra, Path(ir_wav).with_suffix(".png"))


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
