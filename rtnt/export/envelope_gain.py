"""Fitting an envelope gain to a trained network's exported output, and writing rtnt's "nam-envelope-gain-1"
file: the complete `.nam` under `nam`, the stage under `envelope_gain` (docs/envelope_gain_format.md)."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import scipy.optimize

from rtnt.data.splits import Region, Splits
from rtnt.errors import ExportError
from rtnt.export.metadata import (
    ModelMetadata,
    loudness_input,
    metadata_object,
    output_levels,
    set_training_metadata,
    write_model_file,
)
from rtnt.runtime.envelope_gain import FORMAT, EnvelopeGain, EnvelopeGainSpec, NamEnvelopeGainModel, envelopes_db

CHAIN_FILE = "model.json"
"""The file name of a run's "nam-envelope-gain-1" export, beside its `model.nam`."""


MAX_SLOPE = 1.0
"""The largest gain change per dB of either envelope the fit may choose (a compressor's slope 1 - 1/ratio is
below 1; an expander's may reach it)."""


def fit_envelope_gain(
    y_model: np.ndarray, y_target: np.ndarray, region: Region, spec: EnvelopeGainSpec, sample_rate: float
) -> EnvelopeGainSpec:
    """`spec` with the weights that minimise the squared error of the stage's output against `y_target` over
    `region` (bounded trust-region least squares on the 3 weights, from unity gain; slopes within +/- MAX_SLOPE,
    the gain clamped as the runtime clamps it). The envelopes run over `y_model` from its first sample, as the
    stage hears it, so the region sees the signal's real history. Raises ExportError for a silent region."""
    peak_db, level_db = envelopes_db(y_model, spec, sample_rate)
    window = slice(region.start, region.stop)
    y_hat = np.asarray(y_model, dtype=np.float64)[window]
    y = np.asarray(y_target, dtype=np.float64)[window]
    features = np.column_stack([np.ones(len(y)), peak_db[window], level_db[window]])
    if not np.any(y_hat) or not np.any(y):
        raise ExportError(
            f"cannot fit the envelope gain on the {region.name} region: it is silent; use a longer capture"
        )
    scale, limit = math.log(10) / 20, spec.max_gain_db

    def residual(w: np.ndarray) -> np.ndarray:
        return y - y_hat * np.exp(scale * np.clip(features @ w, -limit, limit))

    def jacobian(w: np.ndarray) -> np.ndarray:
        g = features @ w
        slope = np.where(np.abs(g) < limit, y_hat * np.exp(scale * np.clip(g, -limit, limit)) * scale, 0.0)
        return -slope[:, None] * features

    offset = limit + 2 * MAX_SLOPE * abs(spec.floor_db)  # any gain within the clamp at any envelope values
    bounds = ([-offset, -MAX_SLOPE, -MAX_SLOPE], [offset, MAX_SLOPE, MAX_SLOPE])
    fit = scipy.optimize.least_squares(residual, np.zeros(3), jac=jacobian, bounds=bounds, method="trf")
    weights = (float(fit.x[0]), float(fit.x[1]), float(fit.x[2]))
    return EnvelopeGainSpec(spec.attack_ms, spec.release_ms, spec.level_ms, spec.floor_db, spec.max_gain_db, weights)


def export_envelope_gain(
    nam: dict[str, Any], spec: EnvelopeGainSpec, metadata: ModelMetadata | None = None
) -> dict[str, Any]:
    """The "nam-envelope-gain-1" document of a `.nam` object and a fitted stage; its `metadata` like the `.nam`'s,
    the loudness that of the whole chain (the stage changes the level)."""
    data: dict[str, Any] = {"rtnt_format": FORMAT, "nam": nam, "envelope_gain": spec.to_json(), "metadata": {}}

    def levels() -> tuple[float, float]:
        chain = NamEnvelopeGainModel.from_dict(data, prewarm=True)
        return output_levels(chain.process(loudness_input()))

    data["metadata"] = metadata_object(metadata or ModelMetadata(), levels)
    return data


def save_envelope_gain(
    nam_path: str | Path, spec: EnvelopeGainSpec, path: str | Path, metadata: ModelMetadata | None = None
) -> Path:
    """Write the "nam-envelope-gain-1" file of the `.nam` at `nam_path` and `spec` to `path`; returns the path."""
    nam = json.loads(Path(nam_path).read_text())
    return write_model_file(path, export_envelope_gain(nam, spec, metadata))


@dataclass(frozen=True)
class StagedExport:
    """A `.nam` with its fitted envelope gain: the "nam-envelope-gain-1" file at `path`, the network's own file at
    `nam_path`, and the network's ESRs (without the stage) from the same one-pass native render the fit used."""

    path: Path
    nam_path: Path
    spec: EnvelopeGainSpec
    sample_rate: float
    nam_esr_val: float
    nam_esr_test: float

    @property
    def settling(self) -> int:
        """The stage's settling span in samples: the history a region needs beyond the network's."""
        return self.spec.settling_samples(self.sample_rate)

    def metrics(self) -> dict[str, float]:
        """`nam_esr` (test) and `nam_esr_val`: the `.nam` alone, as NAM Core plays it."""
        return {"nam_esr": self.nam_esr_test, "nam_esr_val": self.nam_esr_val}

    def expected(self, network: Callable[..., np.ndarray]) -> Callable[..., np.ndarray]:
        """What the file must reproduce: `network(x)` (the Keras model's output) through the stage from zero state."""

        def with_stage(x: np.ndarray) -> np.ndarray:
            return EnvelopeGain(self.spec, self.sample_rate).process(network(x))

        return with_stage


def attach_envelope_gain(
    config: Any,
    nam_path: Path,
    x: np.ndarray,
    y: np.ndarray,
    splits: Splits,
    metadata: ModelMetadata | None,
    sample_rate: float,
) -> StagedExport:
    """Render the exported `.nam` over the capture (native runtime, else the reference; prewarmed as NAM Core plays
    it), fit the envelope gain `config` (a preset's `envelope_gain`) on its `fit_region`, and write `model.json`
    beside the `.nam`; the `.nam` records its own validation and test ESR."""
    from rtnt.metrics.esr import esr
    from rtnt.validate.evidence import Renderer

    y_model = Renderer(nam_path, prefer_native=True)(x).astype(np.float64)  # the reference where native is absent
    region = splits.val if config.fit_region == "validation" else splits.train
    start = EnvelopeGainSpec(config.attack_ms, config.release_ms, config.level_ms, config.floor_db, config.max_gain_db)
    spec = fit_envelope_gain(y_model, y, region, start, sample_rate)
    path = save_envelope_gain(nam_path, spec, nam_path.with_name(CHAIN_FILE), metadata)

    def region_esr(r: Region) -> float:
        return float(esr(y[r.start : r.stop], y_model[r.start : r.stop]))

    staged = StagedExport(path, nam_path, spec, sample_rate, region_esr(splits.val), region_esr(splits.test))
    set_training_metadata(nam_path, validation_esr=staged.nam_esr_val, test_esr=staged.nam_esr_test)
    return staged
