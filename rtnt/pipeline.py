"""The rtnt-train pipeline: capture → model → export → validate → gate, every step tracked in MLflow.

Every number this module reports about the model is measured on the exported RTNeural JSON
(native runtime when available, else the numpy reference runtime), never on the in-memory model.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import mlflow  # noqa: E402
import numpy as np  # noqa: E402
from omegaconf import DictConfig, OmegaConf  # noqa: E402

from rtnt.capture.prepare import PreparedCapture, prepare_capture  # noqa: E402
from rtnt.data.splits import Splits, region_with_history, split_by_time  # noqa: E402
from rtnt.sweep.trial import trial_run_context  # noqa: E402
from rtnt.tracking.redact import redact_files, redact_text  # noqa: E402
from rtnt.tracking.run import flatten, git_commit, log_params_flat, run_name, tracked_run  # noqa: E402
from rtnt.tracking.uri import resolve_artifact_location, resolve_tracking_uri  # noqa: E402

if TYPE_CHECKING:
    from rtnt.train.fit import FitResult, Validation

log = logging.getLogger("rtnt")


class Renderer:
    """Renders audio through the exported file, loaded once: native runtime when available, else the
    reference. Every call starts from a reset state (for `.nam`, prewarmed on silence as NAM Core does,
    unless `prewarm=False`: zero histories, as Keras' causal padding)."""

    def __init__(self, json_path: Path, prefer_native: bool, prewarm: bool = True):
        from rtnt.native import NativeModel, native_available

        self.json_path = json_path
        if prefer_native and native_available():
            self.runtime = "native"
            self.model: Any = NativeModel.from_file(json_path, prewarm=prewarm)
            self.model.prepare(1024)
        else:
            from rtnt.runtime import load_reference

            self.runtime = "reference (native runtime unavailable)"
            self.model = load_reference(json_path, prewarm=prewarm)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        self.model.reset()
        return np.asarray(self.model.process(np.asarray(x, dtype=np.float32)), dtype=np.float32)


@contextmanager
def stage(name: str) -> Iterator[None]:
    """Log how long a pipeline stage took, as a log line and the metric `time.<name>_s`."""
    start = time.perf_counter()
    yield
    seconds = time.perf_counter() - start
    log.info("%s took %.1f s", name, seconds)
    mlflow.log_metric(f"time.{name}_s", seconds)


def _job_overrides() -> list[str]:
    from hydra.core.hydra_config import HydraConfig

    return [redact_text(o) for o in HydraConfig.get().overrides.task] if HydraConfig.initialized() else []


def _tags(cfg: DictConfig, overrides: list[str]) -> dict[str, str]:
    return {
        "preset": cfg.preset.name,
        "capture": cfg.capture.name,
        "family": cfg.preset.family,
        "git_commit": git_commit(),
        "sweep": str(cfg.sweep.get("name", "none")) if cfg.sweep else "none",
        "experiment": cfg.experiment_name or "none",
        "overrides": " ".join(overrides)[:5000] or "none",
    }


def _log_capture(prepared: PreparedCapture, out_dir: Path) -> None:
    cap_dir = out_dir / "capture"
    cap_dir.mkdir(parents=True, exist_ok=True)
    report = prepared.report.to_dict()
    (cap_dir / "capture_report.json").write_text(json.dumps(report, indent=2, default=str))
    for warning in prepared.warnings:
        log.warning("capture: %s", warning)
    prepared.report.save_plots(cap_dir)
    mlflow.log_artifacts(str(cap_dir), "capture")
    mlflow.log_metrics(
        {
            "capture.latency_samples": float(prepared.latency),
            "capture.latency_confidence": float(report["confidence"]),
            "capture.window_agreement": float(report["window_agreement"]),
            "capture.polarity": float(prepared.polarity),
        }
    )


def _log_validation(point: Validation) -> None:
    """One validation point as MLflow metrics at its training step."""
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


def _training_curves(history: list[Validation], path: Path) -> Path:
    """Training and validation ESR against step and against wall time, as a PNG (and the table as CSV)."""
    steps = [v.step for v in history]
    minutes = [v.seconds / 60 for v in history]
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.5))
    for ax, xs, label in ((axes[0], steps, "step"), (axes[1], minutes, "training wall time (min)")):
        ax.semilogy(xs, [v.train_esr for v in history], label="train ESR")
        ax.semilogy(xs, [v.val_esr for v in history], label="validation ESR")
        ax.set_xlabel(label)
        ax.set_ylabel("ESR")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    rows = ["step,seconds,train_esr,val_esr,learning_rate,samples_per_s"]
    rows += [
        f"{v.step},{v.seconds:.3f},{v.train_esr:.6g},{v.val_esr:.6g},{v.learning_rate:.6g},{v.samples_per_s:.1f}"
        for v in history
    ]
    path.with_suffix(".csv").write_text("\n".join(rows) + "\n")
    return path


def _log_fit(result: FitResult, out_dir: Path) -> None:
    """Budget figures of the fit and its curves."""
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
        curve = _training_curves(result.history, out_dir / "loss_curve.png")
        mlflow.log_artifact(str(curve))
        mlflow.log_artifact(str(curve.with_suffix(".csv")))


def run_training(cfg: DictConfig, out_dir: Path) -> dict[str, Any]:
    """Run the whole pipeline for one composed config; return the sweeper contract dict."""
    overrides = _job_overrides()
    tracking_uri = resolve_tracking_uri(cfg.tracking.uri)
    name = run_name(cfg.preset.name, cfg.capture.name, overrides)
    artifacts = resolve_artifact_location(tracking_uri, cfg.tracking.artifact_root)
    parent_run_id, trial_tags = trial_run_context(cfg.sweep)  # set by the rtnt_optuna sweeper
    with tracked_run(
        tracking_uri,
        cfg.tracking.experiment,
        name,
        {**_tags(cfg, overrides), **trial_tags},
        artifact_location=artifacts,
        parent_run_id=parent_run_id,
    ) as run:
        mlflow.set_tag("rtnt.output_dir", str(out_dir.resolve()))
        redact_files(list((out_dir / ".hydra").glob("*.yaml")))  # Hydra wrote the command line there
        log_params_flat({k: redact_text(v) for k, v in flatten(OmegaConf.to_container(cfg, resolve=True)).items()})
        config_path = out_dir / "config.yaml"
        config_path.write_text(redact_text(OmegaConf.to_yaml(cfg, resolve=True)))
        mlflow.log_artifact(str(config_path))
        result = _train_export_validate(cfg, out_dir, run.info.run_id)
        result["overrides"] = overrides
        return result


def _train_export_validate(cfg: DictConfig, out_dir: Path, run_id: str) -> dict[str, Any]:
    with stage("capture"):  # before TensorFlow loads: a bad capture fails in seconds
        prepared = prepare_capture(cfg.capture)
        _log_capture(prepared, out_dir)
    from rtnt.train.session import TrainingSession

    x, y, sr = prepared.x, prepared.y, prepared.sample_rate
    if cfg.train.max_seconds > 0:
        x, y = x[: int(cfg.train.max_seconds * sr)], y[: int(cfg.train.max_seconds * sr)]

    session = TrainingSession.create(cfg, out_dir)
    rf = session.receptive_field
    splits = split_by_time(len(x), cfg.train.val_fraction, cfg.train.test_fraction, rf)
    size_metrics = session.summary_metrics()
    mlflow.log_metrics(size_metrics)
    with stage("train"):
        fit_result = session.train(x, y, splits, on_validation=_log_validation)
    _log_fit(fit_result, out_dir)

    from rtnt.export.nam import NamMetadata, set_nam_training_metadata
    from rtnt.validate.parity import keras_predict

    model_path = session.export(out_dir, NamMetadata(name=f"{cfg.preset.name}@{cfg.capture.name}", run_id=run_id))
    mlflow.log_artifact(str(model_path))
    evidence = validate_exported(
        cfg,
        model_path,
        lambda x_in: keras_predict(session.model, x_in),
        session.receptive_field,
        x,
        y,
        splits,
        sr,
        out_dir,
    )
    if model_path.suffix == ".nam":  # NAM's trainer records the ESRs in the file; the weights stay as validated
        m = evidence["metrics"]
        set_nam_training_metadata(model_path, validation_esr=m["esr_val"], test_esr=m["esr"])
        mlflow.log_artifact(str(model_path))
    session.log_final_checkpoint()
    summary = {
        "run_id": run_id,
        "json_path": str(model_path),
        "metrics": {**size_metrics, **evidence["metrics"]},  # params and macs_per_sample are sweep objectives too
        "constraints": evidence["constraints"],
        "gate_ready": evidence["ready"],
    }
    _print_summary(summary, evidence)
    return summary


def validate_exported(
    cfg: DictConfig,
    model_path: Path,
    expected: Callable[[np.ndarray], np.ndarray],
    rf: int,
    x: np.ndarray,
    y: np.ndarray,
    splits: Splits,
    sr: int,
    out_dir: Path,
) -> dict[str, Any]:
    """Parity, native validation and benchmark, aliasing probes, preview evidence and the gate, all measured
    on the exported file. `expected(x)` is the output the file must reproduce (the Keras model it came from)."""
    from rtnt.validate.parity import parity_error

    renderer = Renderer(model_path, prefer_native=cfg.export.native)
    metrics: dict[str, float] = {}
    with stage("parity"):
        x_test = region_with_history(x, splits.test, rf)
        y_expected_test = expected(x_test)
        metrics["parity_error"] = parity_error(model_path, x_test, y_expected_test)
    with stage("split_metrics"):
        metrics.update(_split_metrics(renderer, x, y, splits, rf, sr))
    with stage("native"):
        metrics.update(_native_evidence(cfg, model_path, x_test, y_expected_test, out_dir))
    with stage("asr"):
        asr_metrics, asr_plots = _asr_evidence(cfg, renderer, sr, out_dir)
        metrics.update(asr_metrics)
    with stage("preview"):
        residual_plot = _preview_evidence(renderer, x, y, rf, sr, out_dir)
    mlflow.log_metrics({k: v for k, v in metrics.items() if isinstance(v, (int, float))})
    gate = _gate(cfg, metrics, renderer, [f"asr/{p.name}" for p in asr_plots] + [f"preview/{residual_plot.name}"])
    metrics.update(gate.mlflow_metrics())
    return {"metrics": metrics, "constraints": gate.constraints, "ready": gate.ready, "gate": gate}


def _split_metrics(
    renderer: Renderer, x: np.ndarray, y: np.ndarray, splits: Splits, rf: int, sr: int
) -> dict[str, float]:
    """ESR and preview metrics of the exported JSON on the validation and test regions."""
    from rtnt.metrics.preview import preview_metrics

    out: dict[str, float] = {}
    for region in (splits.val, splits.test):
        pred = renderer(region_with_history(x, region, rf))[rf - 1 :]
        target = y[region.start : region.stop]
        out.update({f"{region.name}.{k}": float(v) for k, v in preview_metrics(target, pred, sr).items()})
    out["esr"] = out["test.esr"]
    out["esr_val"] = out["val.esr"]
    out["esr_preemph"] = out["test.esr_preemph"]
    return out


def _asr_evidence(cfg: DictConfig, renderer: Renderer, sr: int, out_dir: Path) -> tuple[dict[str, float], list[Path]]:
    """Sine probes through the exported JSON: ASR table, plots and metrics."""
    from rtnt.metrics.asr import render_asr_probes

    asr = render_asr_probes(
        renderer,
        sample_rate=sr,
        midi_notes=list(cfg.export.asr.midi_notes),
        levels_dbfs=list(cfg.export.asr.levels_dbfs),
        settle_seconds=cfg.export.asr.settle_seconds,
        analysis_seconds=cfg.export.asr.analysis_seconds,
        runtime=renderer.runtime,
    )
    asr_dir = out_dir / "asr"
    asr_dir.mkdir(exist_ok=True)
    plots = asr.save_plots(asr_dir)
    asr.to_frame().to_csv(asr_dir / "asr_probes.csv", index=False)
    (asr_dir / "asr.json").write_text(json.dumps(asr.to_dict(), indent=2, default=float))
    mlflow.log_artifacts(str(asr_dir), "asr")
    mlflow.set_tag("asr.runtime", renderer.runtime)
    return {"asr_mean": asr.asr_mean, "asr_max": asr.asr_max, "asr_mean_db": asr.asr_mean_db}, plots


def _preview_evidence(renderer: Renderer, x: np.ndarray, y: np.ndarray, rf: int, sr: int, out_dir: Path) -> Path:
    """10 s of input, target, prediction and residual as WAVs, with the residual spectrum."""
    from rtnt.metrics.preview import pick_preview_window, residual_spectrum_plot, write_preview_wavs

    window = pick_preview_window(x, sr, seconds=10.0)
    lead_in = min(window.start, rf - 1)
    pred = renderer(x[window.start - lead_in : window.stop])[lead_in:]
    preview_dir = out_dir / "preview"
    write_preview_wavs(preview_dir, x[window], y[window], pred, sr, slice(0, len(pred)))
    plot = residual_spectrum_plot(y[window], pred, sr, preview_dir / "residual_spectrum.png")
    mlflow.log_artifacts(str(preview_dir), "preview")
    return plot


def _gate(cfg: DictConfig, metrics: dict[str, float], renderer: Renderer, plots: list[str]) -> Any:
    """Evaluate the export gate on the measured evidence and log it (tags, metrics, report)."""
    from rtnt.gate import GateEvidence, evaluate_gate
    from rtnt.tracking.review import log_gate

    gate = evaluate_gate(
        GateEvidence(
            parity_error=metrics["parity_error"],
            native_parity_error=metrics.get("native_parity_error", math.nan),
            native_validation=metrics.get("native_validation", 0.0),
            native_rtf_worst=metrics.get("native_rtf_worst", math.nan),
            esr=metrics["esr"],
            asr_mean_db=metrics["asr_mean_db"],
            review="pending",
            native_available=renderer.runtime == "native",
        ),
        cfg.export.gate,
    )
    log_gate(mlflow.MlflowClient(), mlflow.active_run().info.run_id, gate, plots)
    return gate


def _native_evidence(
    cfg: DictConfig, json_path: Path, x_test: np.ndarray, y_keras_test: np.ndarray, out_dir: Path
) -> dict[str, float]:
    """Native validation against Keras and the real-time benchmark, logged as metrics and tables."""
    from rtnt.native import native_available

    if not cfg.export.native:
        return {}
    if not native_available():
        mlflow.set_tag("native", "unavailable")
        log.warning("native runtime unavailable: native validation and benchmark skipped, gate will fail them")
        return {"native_validation": 0.0}
    from rtnt.validate.bench import benchmark_native, benchmark_table_markdown
    from rtnt.validate.native_check import validate_native

    check = validate_native(
        json_path,
        x_test,
        y_keras_test,
        block_sizes=tuple(cfg.export.validation_block_sizes),
        tolerance=cfg.export.gate.native_tolerance,
    )
    bench = benchmark_native(
        json_path, block_sizes=tuple(cfg.export.bench_block_sizes), seconds=cfg.export.bench_seconds
    )
    bench_dir = out_dir / "bench"
    bench_dir.mkdir(exist_ok=True)
    (bench_dir / "native_bench.json").write_text(json.dumps(bench, indent=2, default=float))
    (bench_dir / "native_bench.md").write_text(benchmark_table_markdown(bench))
    (bench_dir / "native_validation.json").write_text(json.dumps(check, indent=2, default=float))
    mlflow.log_artifacts(str(bench_dir), "bench")
    rtf = {int(k): float(v) for k, v in bench["rtf"].items()}
    eff = {int(k): float(v) for k, v in bench["efficiency"].items()}
    out = {
        "native_parity_error": float(check["native_parity_error"]),
        "native_validation": float(check["native_validation"]),
        "native_rtf_worst": float(bench["rtf_worst"]),
        "native_cost_stability_worst": float(bench["cost_stability_worst"]),
    }
    if 1 in rtf:
        out["native_rtf_b1"] = rtf[1]
    if 128 in rtf:
        out["native_rtf_b128"] = rtf[128]
        out["native_gmacs_b128"] = float(bench["gmacs"][128])
        out["native_efficiency_b128"] = eff[128]
    return out


def _print_summary(summary: dict[str, Any], evidence: dict[str, Any], command: str = "rtnt-train") -> None:
    """The run's headline numbers, all measured on the exported file."""
    m = summary["metrics"]
    gate = evidence["gate"]
    nan = float("nan")
    print(f"{command} done (all figures measured on the exported file)")
    print(f"  ESR test {m['esr']:.4g}, validation {m['esr_val']:.4g}; ASR mean {m['asr_mean_db']:.1f} dB")
    print(f"  parity error {m['parity_error']:.3g} (reference), {m.get('native_parity_error', nan):.3g} (native)")
    print(f"  native RTF worst {m.get('native_rtf_worst', nan):.1f}, block 128 {m.get('native_rtf_b128', nan):.1f}")
    failed = ", ".join(gate.failed) or "none"
    print(f"  gate: {'READY' if gate.ready else 'NOT READY'} (failed: {failed}; listening review pending)")
    path = Path(summary["json_path"])
    print(f"{path.suffix.lstrip('.').upper()}: {path}")
    print(f"MLflow run: {summary['run_id']}", flush=True)
