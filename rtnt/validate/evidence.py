"""The evidence of one exported model file, measured without side effects.

`measure_exported` renders the capture, the aliasing probes and the preview window through the exported file
(native runtime when available, else the numpy reference runtime), validates and benchmarks it natively and
evaluates the gate. It writes no file and logs nothing: `rtnt.tracking.record` records what it returns.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
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
    RTNeural JSON. A knob-conditioned file renders at the setting `knobs` (`at(knobs)` gives a one-argument
    renderer fixed at a setting)."""

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
        self.controls = list(getattr(self.model, "controls", []))  # a knob-conditioned file's controls

    @property
    def native(self) -> bool:
        return self.runtime == "native"

    def __call__(self, x: np.ndarray, knobs: tuple[float, ...] = ()) -> np.ndarray:
        self.model.reset()
        x = np.asarray(x, dtype=np.float32)
        if not knobs:
            return np.asarray(self.model.process(x), dtype=np.float32)
        from rtnt.model.conditioning import setting_controls

        return np.asarray(self.model.process(x, setting_controls(len(x), knobs)), dtype=np.float32)

    def at(self, knobs: tuple[float, ...]) -> Callable[[np.ndarray], np.ndarray]:
        """A renderer of one signal at the knob setting `knobs`."""
        return lambda x: self(x, knobs)


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
        """native_parity_error, native_validation, native_rtf_worst, native_cost_stability_worst, the block-1
        and block-128 figures and the machine's single-thread sgemm rate `native_sgemm_gmacs` (the reference of
        `native_efficiency_b128`); `native_validation` 0 alone when the runtime is unavailable."""
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
            "native_sgemm_gmacs": b.sgemm_gmacs,
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
class Setting:
    """A knob setting the exported file is measured at: its knob values (() for a single capture), its target
    (None at an unseen setting) and its role: `capture` (a single capture), `train`, `holdout` or `unseen`."""

    knobs: tuple[float, ...]
    y: np.ndarray | None
    role: str


@dataclass(frozen=True)
class SettingEvidence:
    """The exported file at one setting: parity with Keras (reference runtime), the split metrics (None at an
    unseen setting), native validation (None where it did not run) and the aliasing probes."""

    knobs: tuple[float, ...]
    role: str
    parity_error: float
    splits: SplitMetrics | None
    native: NativeCheck | None
    asr: AsrReport


@dataclass(frozen=True)
class ExportEvidence:
    """Everything measured on one exported file; `stage_seconds` is how long each measurement took.

    For a capture set, `settings` holds each setting's evidence and the headline fields summarise them:
    `splits` the mean over the training settings, `parity_error` and `native` the worst setting (unseen
    included), `asr` the setting with the highest mean ASR."""

    model_path: Path
    runtime: str
    parity_error: float
    splits: SplitMetrics
    native: NativeEvidence
    asr: AsrReport
    preview: Preview
    gate: GateResult
    stage_seconds: Mapping[str, float] = field(default_factory=dict)
    settings: tuple[SettingEvidence, ...] = ()
    knob_names: tuple[str, ...] = ()

    def metrics(self) -> dict[str, float]:
        """The run's metrics, named as rtnt has always logged them (gate metrics included); a capture set adds
        `esr_worst_setting` (the training setting with the highest test ESR) and `esr_holdout` (mean over the
        held-out settings, where there are any); its `esr` is the mean test ESR over the training settings."""
        return {
            "parity_error": self.parity_error,
            **self.splits.metrics(),
            **self.native.metrics(),
            **self.asr.metrics(),
            **self.gate.mlflow_metrics(),
            **setting_metrics(self.settings),
        }


def setting_metrics(settings: Sequence[SettingEvidence]) -> dict[str, float]:
    """`esr_worst_setting` over the training settings and `esr_holdout` (mean) over the held-out ones."""
    out: dict[str, float] = {}
    trained = [s.splits.test.esr for s in settings if s.role == "train" and s.splits]
    held = [s.splits.test.esr for s in settings if s.role == "holdout" and s.splits]
    if trained:
        out["esr_worst_setting"] = float(max(trained))
    if held:
        out["esr_holdout"] = float(np.mean(held))
    return out


@contextmanager
def _timed(seconds: dict[str, float], name: str) -> Iterator[None]:
    start = time.perf_counter()
    yield
    seconds[name] = time.perf_counter() - start


def measure_exported(
    cfg: DictConfig,
    model_path: Path,
    expected: Callable[..., np.ndarray],
    rf: int,
    x: np.ndarray,
    y: np.ndarray | Sequence[Setting],
    splits: Splits,
    sr: int,
) -> ExportEvidence:
    """Parity, split metrics, native validation and benchmark, aliasing probes, the preview window and the gate,
    all measured on the exported file. `expected(x)` (`expected(x, knobs)` for a capture set) is the output the
    file must reproduce (the Keras model it came from). `y` is the capture's target, or a capture set's
    `Setting`s: every setting is measured, and the benchmark, the preview (at the first training setting) and
    the gate run once. The file is loaded once; its native instance serves every native measurement."""
    settings = [Setting((), np.asarray(y), "capture")] if isinstance(y, np.ndarray) else list(y)
    renderer = Renderer(model_path, prefer_native=cfg.validate.native)
    seconds: dict[str, float] = {}
    per_setting = [
        measure_setting(cfg, renderer, model_path, expected, rf, x, s, splits, sr, seconds) for s in settings
    ]
    with _timed(seconds, "native"):
        native = native_evidence(cfg, renderer, [e.native for e in per_setting])
    main = next(s for s in settings if s.role in ("capture", "train"))
    with _timed(seconds, "preview"):
        preview = preview_window(renderer.at(main.knobs), x, main.y, rf, sr)
    trained = [e for e in per_setting if e.role in ("capture", "train")]
    split_metrics = mean_split_metrics([e.splits for e in trained if e.splits])
    parity = max(e.parity_error for e in per_setting)
    asr = max((e.asr for e in per_setting), key=lambda a: a.asr_mean_db)
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
    return ExportEvidence(
        model_path,
        renderer.runtime,
        parity,
        split_metrics,
        native,
        asr,
        preview,
        gate,
        seconds,
        tuple(per_setting) if settings[0].role != "capture" else (),
        tuple(c.name for c in renderer.controls),
    )


def measure_setting(
    cfg: DictConfig,
    renderer: Renderer,
    model_path: Path,
    expected: Callable[..., np.ndarray],
    rf: int,
    x: np.ndarray,
    setting: Setting,
    splits: Splits,
    sr: int,
    seconds: dict[str, float],
) -> SettingEvidence:
    """The exported file at one setting: parity and native validation on the test region's input against the
    Keras output, the split metrics against the setting's target (where it has one), the aliasing probes.
    Adds each measurement's time to `seconds`."""
    from rtnt.validate.parity import parity_error

    knobs = setting.knobs
    timings: dict[str, float] = {}
    with _timed(timings, "parity"):
        x_test = region_with_history(x, splits.test, rf)
        y_expected_test = expected(x_test, knobs) if knobs else expected(x_test)
        parity = parity_error(model_path, x_test, y_expected_test, knobs)
    with _timed(timings, "split_metrics"):
        split_metrics = (
            None
            if setting.y is None
            else SplitMetrics(
                *(region_metrics(renderer.at(knobs), x, setting.y, r, rf, sr) for r in (splits.val, splits.test))
            )
        )
    with _timed(timings, "native_validation"):
        check = native_check(cfg, renderer, x_test, y_expected_test, knobs)
    with _timed(timings, "asr"):
        asr = aliasing_evidence(cfg, renderer.at(knobs), sr, renderer.runtime)
    for name, t in timings.items():
        seconds[name] = seconds.get(name, 0.0) + t
    return SettingEvidence(knobs, setting.role, parity, split_metrics, check, asr)


def mean_split_metrics(metrics: Sequence[SplitMetrics]) -> SplitMetrics:
    """Element-wise mean of split metrics (one capture: itself)."""
    if len(metrics) == 1:
        return metrics[0]

    def mean(name: str) -> RegionMetrics:
        regions = [getattr(m, name) for m in metrics]
        return RegionMetrics(**{k: float(np.mean([vars(r)[k] for r in regions])) for k in vars(regions[0])})

    return SplitMetrics(mean("val"), mean("test"))


def region_metrics(
    renderer: Callable[[np.ndarray], np.ndarray], x: np.ndarray, y: np.ndarray, region: Region, rf: int, sr: int
) -> RegionMetrics:
    """Preview metrics of the exported file on `region` (rendered with `rf - 1` samples of history)."""
    from rtnt.metrics.preview import preview_metrics

    pred = renderer(region_with_history(x, region, rf))[rf - 1 :]
    return RegionMetrics(**preview_metrics(y[region.start : region.stop], pred, sr))


def native_check(
    cfg: DictConfig, renderer: Renderer, x_test: np.ndarray, y_expected: np.ndarray, knobs: tuple[float, ...] = ()
) -> NativeCheck | None:
    """Native validation against `y_expected` at `validate.validation_block_sizes` on the renderer's native
    instance (at the setting `knobs`); None when it does not run."""
    if not (cfg.validate.native and renderer.native):
        return None
    from rtnt.model.conditioning import setting_controls
    from rtnt.validate.native_check import validate_native

    return validate_native(
        renderer.model,
        x_test,
        y_expected,
        block_sizes=tuple(cfg.validate.validation_block_sizes),
        tolerance=cfg.gate.native_tolerance,
        controls=setting_controls(len(x_test), knobs) if knobs else None,
    )


def native_evidence(cfg: DictConfig, renderer: Renderer, checks: Sequence[NativeCheck | None]) -> NativeEvidence:
    """The worst of the settings' native checks (a failed one first, else the largest error) and the benchmark
    at `validate.bench_block_sizes`, on the renderer's native instance of the file."""
    if not cfg.validate.native:
        return NativeEvidence("disabled")
    if not renderer.native:
        return NativeEvidence("unavailable")
    from rtnt.validate.bench import benchmark_native

    worst = max((c for c in checks if c is not None), key=lambda c: (not c.passed, c.max_error))
    bench = benchmark_native(
        renderer.model, block_sizes=tuple(cfg.validate.bench_block_sizes), seconds=cfg.validate.bench_seconds
    )
    return NativeEvidence("measured", worst, bench)


def aliasing_evidence(cfg: DictConfig, render: Callable[[np.ndarray], np.ndarray], sr: int, runtime: str) -> AsrReport:
    """The sine probes of `validate.asr` through the exported file (`render`, at one setting)."""
    from rtnt.metrics.asr import render_asr_probes

    return render_asr_probes(
        render,
        sample_rate=sr,
        midi_notes=list(cfg.validate.asr.midi_notes),
        levels_dbfs=list(cfg.validate.asr.levels_dbfs),
        settle_seconds=cfg.validate.asr.settle_seconds,
        analysis_seconds=cfg.validate.asr.analysis_seconds,
        runtime=runtime,
    )


def preview_window(
    renderer: Callable[[np.ndarray], np.ndarray], x: np.ndarray, y: np.ndarray, rf: int, sr: int
) -> Preview:
    """10 s of the capture with attacks and a decay, and the exported file's output on it."""
    from rtnt.metrics.preview import pick_preview_window

    window = pick_preview_window(x, sr, seconds=10.0)
    lead_in = min(window.start, rf - 1)
    pred = renderer(x[window.start - lead_in : window.stop])[lead_in:]
    return Preview(np.asarray(x[window]), np.asarray(y[window]), pred, sr)
