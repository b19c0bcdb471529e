"""What an exported model says about itself: the `metadata` object of RTNeural JSON and `.nam` files.

One typed record, `ModelMetadata`, feeds both exporters, which write the same object:

    date        {year, month, day, hour, minute, second} of the export
    loudness    NAM's loudness: the RMS level in dB of the model's output on `LOUDNESS_INPUT`, computed
                through the exported file itself (NAM's plugin levels models by this figure, so it is not LUFS)
    name, modeled_by, gear_type, gear_make, gear_model, tone_type, gain, input_level_dbu, output_level_dbu
                NAM's user fields, each only when set (gear and tone types take NAM's enum values)
    training    {validation_esr, test_esr}: measured on the exported file after export (`set_training_metadata`)
    rtnt        {version, run_id, preset, capture, sample_rate, loudness_lufs, loudness_input}: rtnt's own
                block; `loudness_lufs` is the ITU-R BS.1770-4 integrated loudness of the same output

The field names follow NAM's metadata (NAM's trainer and NAM Core read `loudness`, `input_level_dbu` and
`output_level_dbu`; the rest is informational), so a reader of either format finds the same keys.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from rtnt.config import PACKAGE_DIR
from rtnt.constants import GEAR_TYPES, SAMPLE_RATE, TONE_TYPES
from rtnt.errors import ExportError

# The loudness input: 3 s of strummed guitar DI from the embedded demo capture (seconds 7 to 10).
LOUDNESS_INPUT = PACKAGE_DIR / "demo" / "input.flac"
LOUDNESS_SECONDS = (7.0, 10.0)
NAM_USER_FIELDS = (
    "name",
    "modeled_by",
    "gear_type",
    "gear_make",
    "gear_model",
    "tone_type",
    "gain",
    "input_level_dbu",
    "output_level_dbu",
)

Levels = tuple[float, float]
"""(RMS dB, BS.1770-4 LUFS) of a model's output on the loudness input."""


@dataclass
class ModelMetadata:
    """What rtnt writes into an exported model's `metadata`; empty or None fields are left out.

    `name` ... `output_level_dbu` are NAM's user fields (gain is NAM's 0-1 drive), `validation_esr` / `test_esr`
    go under `training`, `run_id`, `preset`, `capture` and `sample_rate` under `rtnt`.
    """

    name: str = ""
    modeled_by: str = ""
    gear_type: str = ""
    gear_make: str = ""
    gear_model: str = ""
    tone_type: str = ""
    gain: float | None = None
    input_level_dbu: float | None = None
    output_level_dbu: float | None = None
    validation_esr: float | None = None
    test_esr: float | None = None
    run_id: str = ""
    preset: str = ""
    capture: str = ""
    sample_rate: int | None = None

    @classmethod
    def for_run(cls, capture: Any, preset_name: str, run_id: str, sample_rate: int) -> ModelMetadata:
        """The metadata of a training run: its preset, its capture (`capture.name` and the optional
        `capture.gear.*` fields of the capture config), run id and sample rate."""
        gear = capture.gear
        return cls(
            name=f"{preset_name}@{capture.name}",
            gear_type=gear.type or "",
            gear_make=gear.make or "",
            gear_model=gear.model or "",
            tone_type=gear.tone_type or "",
            run_id=run_id,
            preset=preset_name,
            capture=str(capture.name),
            sample_rate=int(sample_rate),
        )

    def check(self) -> None:
        """Refuse gear and tone types NAM does not know and a gain outside [0, 1], with one line."""
        if self.gear_type and self.gear_type not in GEAR_TYPES:
            raise ExportError(
                f"model metadata gear_type={self.gear_type!r} is invalid: must be one of {', '.join(GEAR_TYPES)}"
            )
        if self.tone_type and self.tone_type not in TONE_TYPES:
            raise ExportError(
                f"model metadata tone_type={self.tone_type!r} is invalid: must be one of {', '.join(TONE_TYPES)}"
            )
        if self.gain is not None and not 0.0 <= self.gain <= 1.0:
            raise ExportError(f"model metadata gain={self.gain!r} is invalid: NAM's gain is in [0, 1]")


def loudness_input() -> np.ndarray:
    """The fixed loudness input: `LOUDNESS_SECONDS` of `LOUDNESS_INPUT`, float32 mono."""
    import soundfile as sf

    start, stop = (int(s * SAMPLE_RATE) for s in LOUDNESS_SECONDS)
    x, _ = sf.read(str(LOUDNESS_INPUT), start=start, stop=stop, dtype="float32", always_2d=False)
    return np.asarray(x, dtype=np.float32)


def rms_db(y: np.ndarray) -> float:
    """20 log10 of the RMS of `y` (NAM's `loudness`); -inf for silence."""
    rms = math.sqrt(float(np.mean(np.square(np.asarray(y, dtype=np.float64)))))
    return 20.0 * math.log10(rms) if rms > 0 else -math.inf


def output_levels(y: np.ndarray) -> Levels:
    """(RMS dB, BS.1770-4 integrated LUFS) of a model's output `y` on the loudness input."""
    from rtnt.metrics.levels import integrated_loudness

    return rms_db(y), float(integrated_loudness(y, SAMPLE_RATE))


def metadata_object(meta: ModelMetadata, measure_levels: Callable[[], Levels] | None) -> dict[str, Any]:
    """The `metadata` object (module doc) of `meta`, checked first; `measure_levels` runs the exported file on
    the loudness input (None leaves loudness out)."""
    import rtnt

    meta.check()
    now = datetime.now()
    out: dict[str, Any] = {
        "date": {
            "year": now.year,
            "month": now.month,
            "day": now.day,
            "hour": now.hour,
            "minute": now.minute,
            "second": now.second,
        }
    }
    rtnt_part: dict[str, Any] = {"version": rtnt.__version__}
    if measure_levels is not None:
        rms, lufs = measure_levels()
        out["loudness"] = _finite(rms)
        start, stop = LOUDNESS_SECONDS
        rtnt_part.update(loudness_lufs=_finite(lufs), loudness_input=f"rtnt/demo/input.flac {start:g}-{stop:g} s")
    for key in NAM_USER_FIELDS:
        value = getattr(meta, key)
        if value not in ("", None):
            out[key] = value
    training = _training(meta.validation_esr, meta.test_esr)
    if training:
        out["training"] = training
    for key in ("run_id", "preset", "capture", "sample_rate"):
        value = getattr(meta, key)
        if value not in ("", None):
            rtnt_part[key] = value
    out["rtnt"] = rtnt_part
    return out


def _training(validation_esr: float | None, test_esr: float | None) -> dict[str, float | None]:
    pairs = (("validation_esr", validation_esr), ("test_esr", test_esr))
    return {k: _finite(float(v)) for k, v in pairs if v is not None}


def _finite(value: float) -> float | None:
    """JSON has no NaN or infinities: a silent model's loudness (or an undefined ESR) is written as null."""
    return value if math.isfinite(value) else None


def set_training_metadata(
    path: str | Path, *, validation_esr: float | None = None, test_esr: float | None = None
) -> None:
    """Record validation / test ESR measured after export in an exported model file (RTNeural JSON or `.nam`),
    as NAM's trainer records them; only `metadata.training` changes (Python's float repr round-trips the
    weights exactly)."""
    path = Path(path)
    data = json.loads(path.read_text())
    data.setdefault("metadata", {}).setdefault("training", {}).update(_training(validation_esr, test_esr))
    path.write_text(json.dumps(data, allow_nan=False))


def write_model_file(path: str | Path, data: dict[str, Any]) -> Path:
    """Write an exported model document to `path` as JSON (parent folders created); returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))
    return path
