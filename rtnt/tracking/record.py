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

from rtnt import plots
from rtnt.tracking.machine import machine_tags

if TYPE_CHECKING:
    from omegaconf import DictConfig

    from rtnt.capture.prepare import PreparedCapture
    from rtnt.config import CaptureConfig
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

    mlflow.log_metrics({k: v for k, v in evidence.metrics().items() if not k.startswith("gate.")})
    links = [f"asr/{path.name}" for path in asr_plots] + [f"preview/{residual.name}"]
    log_gate(mlflow.MlflowClient(), mlflow.active_run().info.run_id, evidence.gate, links)
