"""The evidence of one exported model file, measured without side effects.

`measure_exported` renders the capture, the aliasing probes and the preview window through the exported file
(native runtime when available, else the numpy reference runtime), validates and benchmarks it natively and
evaluates the gate. It writes no file and logs nothing: `rtnt.tracking.record` records what it returns.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from omegaconf import DictConfig

from rtnt.data.splits import Region, Splits, region_with_history
from rtnt.gate import GateEvidence, GateResult, evaluate_gate
from rtnt.metrics.asr import AsrReport
from rtnt.validate.bench import BenchmarkResult
from rtnt.validate.native_check import NativeCheck


class Renderer:
    """Renders audio through the exported file, loaded once: native runtime when available, else the
    reference. Every call starts from a reset state (for `.nam`, prewarmed on silence as NAM Core does,
    unless `prewarm=False`: zero histories, as Keras' causal padding). rtnt gray-box JSON runs natively like any
    RTNeural JSON."""

    def __init__(self, model_path: Path, prefer_native: bool, prewarm: bool = True):
        from rtnt.native import NativeModel, native_available

        self.model_path = model_path
        if prefer_native and native_available():
            self.runtime = "native"
            self.model: Any = NativeModel.from_file(model_path, prewarm=prewarm)
            self.model.prepare(1024)
        else:
            from rtnt.runtime import load_reference

            self.runtime = "reference (native runtime unavailable)"
            self.model = load_reference(model_path, prewarm=prewarm)

    @property
    def native(self) -> bool:
        return self.runtime == "native"

    def __call__(self, x: np.ndarray) -> np.ndarray:
        self.model.reset()
        return np.asarray(self.model.process(np.asarray(x, dtype=np.float32)), dtype=np.float32)


@dataclass(frozen=True)
class RegionMetrics:
    """`rtnt.metrics.preview.preview_metrics` of the exported file on one region of the capture."""

    esr: float
    esr_preemph: float
    mrstft: float
    dc_offset: float
    loudness_diff_db: float


@dataclass(frozen=True)
class SplitMetrics:
    """The exported file's metrics on the validation and test regions."""

    val: RegionMetrics
    test: RegionMetrics

    def metrics(self) -> dict[str, float]:
        """`val.<metric>` and `test.<metric>`, plus the headline `esr` (test), `esr_val` and `esr_preemph` (test)."""
        out = {f"{name}.{k}": float(v) for name in ("val", "test") for k, v in vars(getattr(self, name)).items()}
        return {**out, "esr": self.test.esr, "esr_val": self.val.esr, "esr_preemph": self.test.esr_preemph}


@dataclass(frozen=True)
class NativeEvidence:
    """Native validation against the expected output and the real-time benchmark; `status` is `measured`,
    `unavailable` (the extension is not built: the gate fails) or `disabled` (`validate.native=false`)."""

    status: str
    check: NativeCheck | None = None
    bench: BenchmarkResult | None = None

    def metrics(self) -> dict[str, float]:
        """native_parity_error, native_validation, native_rtf_worst, native_cost_stability_worst and the
        block-1 and block-128 figures; `native_validation` 0 alone when the runtime is unavailable."""
        if self.status == "unavailable":
            return {"native_validation": 0.0}
        if self.check is None or self.bench is None:
            return {}
        b = self.bench
        out = {
            "native_parity_error": self.check.max_error,
            "native_validation": 1.0 if self.check.passed else 0.0,
            "native_rtf_worst": b.rtf_worst,
            "native_cost_stability_worst": b.cost_stability_worst,
        }
        if 1 in b.rtf:
            out["native_rtf_b1"] = b.rtf[1]
        if 128 in b.rtf:
            out.update(
                native_rtf_b128=b.rtf[128], native_gmacs_b128=b.gmacs[128], native_efficiency_b128=b.efficiency[128]
            )
        return {k: float(v) for k, v in out.items()}


@dataclass(frozen=True)
class Preview:
    """A listening window of the capture and the exported file's output on it."""

    x: np.ndarray
    y: np.ndarray
    prediction: np.ndarray
    sample_rate: int


@dataclass(frozen=True)
class ExportEvidence:
    """Everything measured on one exported file; `stage_seconds` is how long each measurement took."""

    model_path: Path
    runtime: str
    parity_error: float
    splits: SplitMetrics
    native: NativeEvidence
    asr: AsrReport
    preview: Preview
    gate: GateResult
    stage_seconds: Mapping[str, float] = field(default_factory=dict)

    def metrics(self) -> dict[str, float]:
        """The run's metrics, named as rtnt has always logged them (gate metrics included)."""
        return {
            "parity_error": self.parity_error,
            **self.splits.metrics(),
            **self.native.metrics(),
            **self.asr.metrics(),
            **self.gate.mlflow_metrics(),
        }


@contextmanager
def _timed(seconds: dict[str, float], name: str) -> Iterator[None]:
    start = time.perf_counter()
    yield
    seconds[name] = time.perf_counter() - start


def measure_exported(
    cfg: DictConfig,
    model_path: Path,
    expected: Callable[[np.ndarray], np.ndarray],
    rf: int,
    x: np.ndarray,
    y: np.ndarray,
    splits: Splits,
    sr: int,
) -> ExportEvidence:
    """Parity, split metrics, native validation and benchmark, aliasing probes, the preview window and the gate,
    all measured on the exported file. `expected(x)` is the output the file must reproduce (the Keras model it
    came from). The file is loaded once; its native instance serves every native measurement."""
    from rtnt.validate.parity import parity_error

    renderer = Renderer(model_path, prefer_native=cfg.validate.native)
    seconds: dict[str, float] = {}
    with _timed(seconds, "parity"):
        x_test = region_with_history(x, splits.test, rf)
        y_expected_test = expected(x_test)
        parity = parity_error(model_path, x_test, y_expected_test)
    with _timed(seconds, "split_metrics"):
        split_metrics = SplitMetrics(*(region_metrics(renderer, x, y, r, rf, sr) for r in (splits.val, splits.test)))
    with _timed(seconds, "native"):
        native = native_evidence(cfg, renderer, x_test, y_expected_test)
    with _timed(seconds, "asr"):
        asr = aliasing_evidence(cfg, renderer, sr)
    with _timed(seconds, "preview"):
        preview = preview_window(renderer, x, y, rf, sr)
    gate = evaluate_gate(
        GateEvidence(
            parity_error=parity,
            native_parity_error=native.check.max_error if native.check else math.nan,
            native_validation=bool(native.check and native.check.passed),
            native_rtf_worst=native.bench.rtf_worst if native.bench else math.nan,
            esr=split_metrics.test.esr,
            asr_mean_db=asr.asr_mean_db,
            review="pending",
            native_available=renderer.native,
        ),
        cfg.gate,
    )
    return ExportEvidence(model_path, renderer.runtime, parity, split_metrics, native, asr, preview, gate, seconds)


def region_metrics(renderer: Renderer, x: np.ndarray, y: np.ndarray, region: Region, rf: int, sr: int) -> RegionMetrics:
    """Preview metrics of the exported file on `region` (rendered with `rf - 1` samples of history)."""
    from rtnt.metrics.preview import preview_metrics

    pred = renderer(region_with_history(x, region, rf))[rf - 1 :]
    return RegionMetrics(**preview_metrics(y[region.start : region.stop], pred, sr))


def native_evidence(cfg: DictConfig, renderer: Renderer, x_test: np.ndarray, y_expected: np.ndarray) -> NativeEvidence:
    """Native validation against `y_expected` at `validate.validation_block_sizes` and the benchmark at
    `validate.bench_block_sizes`, both on the renderer's native instance of the file."""
    if not cfg.validate.native:
        return NativeEvidence("disabled")
    if not renderer.native:
        return NativeEvidence("unavailable")
    from rtnt.validate.bench import benchmark_native
    from rtnt.validate.native_check import validate_native

    check = validate_native(
        renderer.model,
        x_test,
        y_expected,
        block_sizes=tuple(cfg.validate.validation_block_sizes),
        tolerance=cfg.gate.native_tolerance,
    )
    bench = benchmark_native(
        renderer.model, block_sizes=tuple(cfg.validate.bench_block_sizes), seconds=cfg.validate.bench_seconds
    )
    return NativeEvidence("measured", check, bench)


def aliasing_evidence(cfg: DictConfig, renderer: Renderer, sr: int) -> AsrReport:
    """The sine probes of `validate.asr` through the exported file."""
    from rtnt.metrics.asr import render_asr_probes

    return render_asr_probes(
        renderer,
        sample_rate=sr,
        midi_notes=list(cfg.validate.asr.midi_notes),
        levels_dbfs=list(cfg.validate.asr.levels_dbfs),
        settle_seconds=cfg.validate.asr.settle_seconds,
        analysis_seconds=cfg.validate.asr.analysis_seconds,
        runtime=renderer.runtime,
    )


def preview_window(renderer: Renderer, x: np.ndarray, y: np.ndarray, rf: int, sr: int) -> Preview:
    """10 s of the capture with attacks and a decay, and the exported file's output on it."""
    from rtnt.metrics.preview import pick_preview_window

    window = pick_preview_window(x, sr, seconds=10.0)
    lead_in = min(window.start, rf - 1)
    pred = renderer(x[window.start - lead_in : window.stop])[lead_in:]
    return Preview(np.asarray(x[window]), np.asarray(y[window]), pred, sr)
