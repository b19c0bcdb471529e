"""Recording a run: the one place where rtnt-train and rtnt-evaluate write artifacts and log to MLflow.

The stages compute typed results (`PreparedCapture`, `FitResult`, `ExportEvidence`); these functions write
them under the run's output folder and log them to the active MLflow run. Plots come from `rtnt.plots`.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import mlflow
import mlflow.data
import numpy as np

from rtnt import plots
from rtnt.runtime.graybox import is_graybox_file
from rtnt.tracking.machine import machine_tags

if TYPE_CHECKING:
    import pandas as pd
    from omegaconf import DictConfig

    from rtnt.capture.capture_set import PreparedCaptureSet
    from rtnt.capture.prepare import PreparedCapture
    from rtnt.config import CaptureConfig
    from rtnt.train.device import TrainingDevice
    from rtnt.train.fit import FitResult, Validation
    from rtnt.validate.evidence import ExportEvidence

log = logging.getLogger("rtnt")


@contextmanager
def stage(name: str) -> Iterator[None]:
    """Log how long a pipeline stage took, as a log line and the metric `time.<name>_s`."""
    start = time.perf_counter()
    yield
    record_stage_time(name, time.perf_counter() - start)


def record_stage_time(name: str, seconds: float) -> None:
    log.info("%s took %.1f s", name, seconds)
    mlflow.log_metric(f"time.{name}_s", seconds)


def record_capture(prepared: PreparedCapture, capture: CaptureConfig | DictConfig, out_dir: Path) -> None:
    """capture/capture_report.json, the capture plots, the alignment metrics, and the aligned pair as the run's
    MLflow dataset input (lineage: the UI shows which capture, by digest, trained or evaluated the run)."""
    cap_dir = out_dir / "capture"
    cap_dir.mkdir(parents=True, exist_ok=True)
    report = prepared.report.to_dict()
    (cap_dir / "capture_report.json").write_text(json.dumps(report, indent=2, default=str))
    for warning in prepared.warnings:
        log.warning("capture: %s", warning)
    plots.capture_plots(prepared.report, cap_dir)
    mlflow.log_artifacts(str(cap_dir), "capture")
    dataset = mlflow.data.from_numpy(
        prepared.x, targets=prepared.y, source=str(Path(capture.target).resolve()), name=capture.name
    )
    tags = {
        "input": str(capture.input),
        "target": str(capture.target),
        "seconds": f"{len(prepared.x) / prepared.sample_rate:.2f}",
        "sample_rate": str(prepared.sample_rate),
    }
    mlflow.log_input(dataset, context="capture", tags=tags)
    mlflow.log_metrics(
        {
            "capture.latency_samples": float(prepared.latency),
            "capture.latency_confidence": float(report["confidence"]),
            "capture.window_agreement": float(report["window_agreement"]),
            "capture.polarity": float(prepared.polarity),
        }
    )


def record_device(device: TrainingDevice) -> None:
    """The training device as tags: `train.device` (cpu or gpu), `train.device_name` (CPU model or GPU name) and
    `train.device_requested` (the `train.device` setting that chose it)."""
    log.info("training on %s (%s)", device.kind, device.name)
    mlflow.set_tags(
        {"train.device": device.kind, "train.device_name": device.name, "train.device_requested": device.requested}
    )


def record_capture_set(prepared: PreparedCaptureSet, capture: CaptureConfig | DictConfig, out_dir: Path) -> None:
    """capture/capture_set.json (the set's latency evidence, level trend and every file's report), the capture
    plots of the first setting, the set's alignment metrics and level per setting, and the aligned set (the
    input, one target column per setting) as the run's MLflow dataset input."""
    cap_dir = out_dir / "capture"
    cap_dir.mkdir(parents=True, exist_ok=True)
    (cap_dir / "capture_set.json").write_text(json.dumps(prepared.to_dict(), indent=2, default=str))
    for warning in prepared.warnings:
        log.warning("capture set: %s", warning)
    log.info("capture set %s: %s", prepared.name, prepared.level_trend.describe())
    plots.capture_plots(prepared.settings[0].report, cap_dir)
    mlflow.log_artifacts(str(cap_dir), "capture")
    targets = np.stack([s.y for s in prepared.settings], axis=1)
    source = str(Path(capture.input).resolve())
    dataset = mlflow.data.from_numpy(prepared.x, targets=targets, source=source, name=prepared.name)
    tags = {
        "input": str(capture.input),
        "targets": " ".join(s.target_path for s in prepared.settings)[:5000],
        "seconds": f"{len(prepared.x) / prepared.sample_rate:.2f}",
        "sample_rate": str(prepared.sample_rate),
    }
    mlflow.log_input(dataset, context="capture", tags=tags)
    trend = prepared.level_trend
    mlflow.log_metrics(
        {
            "capture.latency_samples": float(prepared.latency.latency),
            "capture.latency_onset_spread": float(max(prepared.latency.onsets) - min(prepared.latency.onsets)),
            "capture.polarity": float(prepared.polarity),
            **{f"capture.rms_dbfs.{trend.knob}_{v:g}": r for v, r in zip(trend.values, trend.rms_dbfs)},
        }
    )
    mlflow.set_tag("capture.level_trend", trend.direction)


def record_validation(point: Validation) -> None:
    """One validation point of the fit as MLflow metrics at its training step."""
    mlflow.log_metrics(
        {
            "train_loss": point.train_esr,
            "val_loss": point.val_esr,
            "learning_rate": point.learning_rate,
            "train.elapsed_s": point.seconds,
            "train.samples_per_s_window": point.samples_per_s,
        },
        step=point.step,
    )


def record_fit(result: FitResult, out_dir: Path) -> None:
    """Budget figures of the fit, and its curves (loss_curve.png and .csv)."""
    state = result.state
    mlflow.log_metrics(
        {
            "epochs_completed": state.epochs_completed,
            "train.steps": float(state.steps_completed),
            "train.samples_per_s": result.samples_per_s,
            "train.overhead_share": result.overhead_share,
            "train.first_step_s": result.first_step_seconds,
            "train.wall_s": result.wall_seconds,
            "train.best_val_esr": state.best_val_esr,
        }
    )
    mlflow.set_tag("train.jit_compile", str(result.jit_compile).lower())
    if result.history:
        curve = plots.training_curves(result.history, out_dir / "loss_curve.png")
        rows = ["step,seconds,train_esr,val_esr,learning_rate,samples_per_s"]
        rows += [
            f"{v.step},{v.seconds:.3f},{v.train_esr:.6g},{v.val_esr:.6g},{v.learning_rate:.6g},{v.samples_per_s:.1f}"
            for v in result.history
        ]
        curve.with_suffix(".csv").write_text("\n".join(rows) + "\n")
        mlflow.log_artifact(str(curve))
        mlflow.log_artifact(str(curve.with_suffix(".csv")))


def record_checkpoint(checkpoint_dir: Path, names: tuple[str, ...]) -> None:
    """Log the named checkpoint files as artifacts under `checkpoint/`, so any machine can continue the run."""
    for name in names:
        f = checkpoint_dir / name
        if f.exists():
            mlflow.log_artifact(str(f), "checkpoint")


def record_evidence(evidence: ExportEvidence, out_dir: Path) -> None:
    """Write and log the evidence of the exported file: bench/, asr/ and preview/ artifacts, every metric,
    the stage times, and the gate (tags, metrics, gate/gate.json and gate/report.md)."""
    from rtnt.metrics.preview import write_preview_wavs
    from rtnt.tracking.review import log_gate
    from rtnt.validate.bench import benchmark_table_markdown

    for name, seconds in evidence.stage_seconds.items():
        record_stage_time(name, seconds)
    mlflow.set_tags(machine_tags())
    native = evidence.native
    if native.status == "unavailable":
        mlflow.set_tag("native", "unavailable")
        log.warning("native runtime unavailable: native validation and benchmark skipped, gate will fail them")
    if native.check is not None and native.bench is not None:
        bench_dir = out_dir / "bench"
        bench_dir.mkdir(exist_ok=True)
        (bench_dir / "native_bench.json").write_text(json.dumps(native.bench.to_dict(), indent=2, default=float))
        (bench_dir / "native_bench.md").write_text(benchmark_table_markdown(native.bench))
        (bench_dir / "native_validation.json").write_text(json.dumps(native.check.to_dict(), indent=2, default=float))
        mlflow.log_artifacts(str(bench_dir), "bench")

    asr_dir = out_dir / "asr"
    asr_dir.mkdir(exist_ok=True)
    asr_plots = plots.asr_plots(evidence.asr, asr_dir)
    evidence.asr.to_frame().to_csv(asr_dir / "asr_probes.csv", index=False)
    (asr_dir / "asr.json").write_text(json.dumps(evidence.asr.to_dict(), indent=2, default=float))
    mlflow.log_artifacts(str(asr_dir), "asr")
    mlflow.set_tag("asr.runtime", evidence.runtime)

    p = evidence.preview
    preview_dir = out_dir / "preview"
    write_preview_wavs(preview_dir, p.x, p.y, p.prediction, p.sample_rate, slice(0, len(p.prediction)))
    residual = plots.residual_spectrum(p.y, p.prediction, p.sample_rate, preview_dir / "residual_spectrum.png")
    mlflow.log_artifacts(str(preview_dir), "preview")

    links = [f"asr/{path.name}" for path in asr_plots] + [f"preview/{residual.name}"]
    if evidence.settings:
        links += record_settings(evidence, out_dir)
    if is_graybox_file(evidence.model_path):
        links += record_graybox_view(evidence.model_path, out_dir)
    mlflow.log_metrics({k: v for k, v in evidence.metrics().items() if not k.startswith("gate.")})
    log_gate(mlflow.MlflowClient(), mlflow.active_run().info.run_id, evidence.gate, links)


SETTING_COLUMNS = (
    "role",
    "esr",
    "esr_val",
    "esr_preemph",
    "asr_mean_db",
    "asr_max_db",
    "parity_error",
    "native_parity_error",
)


def settings_table(evidence: ExportEvidence) -> list[dict[str, float | str]]:
    """One row per setting of a capture set: the knob values, the role and the exported file's figures there
    (NaN where a figure does not apply: no ESR at the unseen setting, no native error where it did not run)."""
    nan = float("nan")
    rows: list[dict[str, float | str]] = []
    for s in evidence.settings:
        test, val = (s.splits.test, s.splits.val) if s.splits else (None, None)
        rows.append(
            {
                **dict(zip(evidence.knob_names, s.knobs)),
                "role": s.role,
                "esr": test.esr if test else nan,
                "esr_val": val.esr if val else nan,
                "esr_preemph": test.esr_preemph if test else nan,
                "asr_mean_db": s.asr.asr_mean_db,
                "asr_max_db": s.asr.asr_max_db,
                "parity_error": s.parity_error,
                "native_parity_error": s.native.max_error if s.native else nan,
            }
        )
    return rows


def record_settings(evidence: ExportEvidence, out_dir: Path) -> list[str]:
    """settings/settings.csv and settings.md (ESR and ASR per setting), settings/esr_vs_knob.png, and per-setting
    metrics `setting.<knob>_<value>.<figure>`; returns the artifact paths for the gate report."""
    import pandas as pd

    settings_dir = out_dir / "settings"
    settings_dir.mkdir(exist_ok=True)
    frame = pd.DataFrame(settings_table(evidence), columns=[*evidence.knob_names, *SETTING_COLUMNS])
    frame.to_csv(settings_dir / "settings.csv", index=False, float_format="%.6g")
    (settings_dir / "settings.md").write_text(markdown_table(frame))
    plot = plots.esr_vs_knob(evidence.settings, evidence.knob_names[0], settings_dir / "esr_vs_knob.png")
    mlflow.log_artifacts(str(settings_dir), "settings")
    metrics = {}
    for row in frame.to_dict("records"):
        label = "_".join(f"{k}_{row[k]:g}" for k in evidence.knob_names)
        for key in ("esr", "asr_mean_db", "parity_error"):
            if not pd.isna(row[key]):
                metrics[f"setting.{label}.{key}"] = float(row[key])
    mlflow.log_metrics(metrics)
    return ["settings/settings.md"] + ([f"settings/{plot.name}"] if plot else [])


def markdown_table(frame: pd.DataFrame) -> str:
    """A pipe table of `frame`, numbers to 4 significant digits."""
    cells = [[v if isinstance(v, str) else f"{v:.4g}" for v in row] for row in frame.itertuples(index=False)]
    lines = ["| " + " | ".join(map(str, frame.columns)) + " |", "|" + "---|" * len(frame.columns)]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in cells]) + "\n"


def record_graybox_view(model_path: Path, out_dir: Path) -> list[str]:
    """Write and log the pictures and parameter table of an exported gray-box file (`rtnt.export.graybox_view`)
    under `graybox/`; returns the artifact paths for the gate report."""
    from rtnt.export.graybox_view import read_graybox_view, write_graybox_view

    view_dir = out_dir / "graybox"
    paths = write_graybox_view(read_graybox_view(model_path), view_dir)
    mlflow.log_artifacts(str(view_dir), "graybox")
    return [f"graybox/{p.name}" for p in paths if p.suffix in (".png", ".md")]
