"""The rtnt-train pipeline: capture → model → export → validate → gate, every step tracked in MLflow.

Stages compute typed results (`PreparedCapture`, `FitResult`, `ExportEvidence`); `rtnt.tracking.record` writes
and logs them. Every number reported about the model is measured on the exported file (native runtime when
available, else the numpy reference runtime), never on the in-memory model.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import mlflow
import numpy as np
from omegaconf import DictConfig, OmegaConf

from rtnt.capture.capture_set import prepare_capture_set
from rtnt.capture.prepare import prepare_capture
from rtnt.config import has_envelope_gain, preset_family
from rtnt.constants import SAMPLE_RATE
from rtnt.data.splits import split_by_time
from rtnt.model.conditioning import control_specs, unseen_setting
from rtnt.runtime.controls import ControlSpec
from rtnt.sweep.contract import JobResult, with_native_placeholders
from rtnt.sweep.trial import trial_run_context
from rtnt.tracking.machine import machine_tags
from rtnt.tracking.record import (
    record_capture,
    record_capture_set,
    record_checkpoint,
    record_device,
    record_evidence,
    record_fit,
    record_validation,
    stage,
)
from rtnt.tracking.redact import redact_files, redact_text
from rtnt.tracking.run import flatten, git_commit, log_params_flat, run_name, tracked_run
from rtnt.tracking.uri import resolve_artifact_location, resolve_tracking_uri
from rtnt.validate.evidence import ExportEvidence, Setting

log = logging.getLogger("rtnt")


def _job_overrides() -> list[str]:
    from hydra.core.hydra_config import HydraConfig

    return [redact_text(o) for o in HydraConfig.get().overrides.task] if HydraConfig.initialized() else []


def _tags(cfg: DictConfig, overrides: list[str]) -> dict[str, str]:
    return {
        "preset": cfg.preset.name,
        "capture": cfg.capture.name,
        "conditioning": cfg.conditioning.method,
        "family": preset_family(cfg.preset),
        "git_commit": git_commit(),
        "sweep": str(cfg.sweep.get("name", "none")) if cfg.sweep else "none",
        "experiment": cfg.experiment_name or "none",
        "overrides": " ".join(overrides)[:5000] or "none",
    }


def run_training(cfg: DictConfig, out_dir: Path) -> JobResult:
    """Run the whole pipeline for one composed config; return the task-function contract."""
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
        return _train_export_validate(cfg, out_dir, run.info.run_id, overrides)


@dataclass(frozen=True)
class TrainingData:
    """What the model trains on and is measured at. One capture: `y` (samples,), no knobs, `settings` is `y`.
    A capture set: `y` (training settings, samples) with their `knobs` (training settings, K), `settings` every
    setting (held-out ones included) plus one unseen setting, and the exported file's `controls`."""

    x: np.ndarray
    y: np.ndarray
    sample_rate: int
    knobs: np.ndarray | None = None
    settings: np.ndarray | tuple[Setting, ...] = ()
    controls: tuple[ControlSpec, ...] = ()


def prepare_training_data(cfg: DictConfig, out_dir: Path) -> TrainingData:
    """Load, check, align and record the capture (or capture set); crop it to `train.max_seconds`."""
    c = cfg.capture
    crop = int(cfg.train.max_seconds * SAMPLE_RATE) if cfg.train.max_seconds > 0 else None
    if not c.targets:
        prepared = prepare_capture(c)
        record_capture(prepared, c, out_dir)
        x, y = prepared.x[:crop], prepared.y[:crop]
        return TrainingData(x, y, prepared.sample_rate, settings=y)
    capture_set = prepare_capture_set(c)
    record_capture_set(capture_set, c, out_dir)
    if crop:
        capture_set = capture_set.cropped(crop)
    knobs = np.array([s.knobs for s in capture_set.training], dtype=np.float64)
    settings = tuple(Setting(s.knobs, s.y, "holdout" if s.held_out else "train") for s in capture_set.settings)
    return TrainingData(
        capture_set.x,
        np.stack([s.y for s in capture_set.training]),
        capture_set.sample_rate,
        knobs.astype(np.float32),
        (*settings, Setting(unseen_setting(knobs), None, "unseen")),
        tuple(control_specs(capture_set.knob_names, knobs)),
    )


def _train_export_validate(cfg: DictConfig, out_dir: Path, run_id: str, overrides: list[str]) -> JobResult:
    with stage("capture"):  # before TensorFlow loads: a bad capture fails in seconds
        data = prepare_training_data(cfg, out_dir)
    from rtnt.train.device import select_device

    record_device(select_device(cfg.train.device))  # before TensorFlow creates its devices
    from rtnt.export import export_model
    from rtnt.export.metadata import ModelMetadata, set_training_metadata
    from rtnt.tracking.checkpoint import resolve_checkpoint
    from rtnt.train.fit import LAST_CHECKPOINT, STATE_FILE
    from rtnt.train.session import TrainingSession
    from rtnt.validate.evidence import measure_exported
    from rtnt.validate.parity import keras_predict

    x, sr = data.x, data.sample_rate
    checkpoint = resolve_checkpoint(cfg.continue_from, mlflow.get_tracking_uri()) if cfg.continue_from else None
    session = TrainingSession.create(cfg, out_dir, run_id, checkpoint, len(data.controls))
    if session.continued_from:
        mlflow.set_tags(session.continued_from)
    rf = session.receptive_field
    splits = split_by_time(len(x), cfg.train.val_fraction, cfg.train.test_fraction, rf)
    size_metrics = session.summary_metrics()
    mlflow.log_metrics(size_metrics)
    with stage("train"):
        fit_result = session.train(x, data.y, splits, on_validation=record_validation, knobs=data.knobs)
    record_fit(fit_result, out_dir)

    session.model.save(out_dir / "model.keras")  # the exact Keras model the file is exported from
    metadata = ModelMetadata.for_run(cfg.capture, cfg.preset.name, run_id, sr)
    model_path = export_model(session.model, out_dir, metadata, data.controls)
    mlflow.log_artifact(str(model_path))

    def expected(x_in: np.ndarray, knobs: tuple[float, ...] = ()) -> np.ndarray:
        return keras_predict(session.model, x_in, knobs)

    history = rf
    if has_envelope_gain(cfg.preset):  # the run's file becomes the .nam with its fitted stage
        from rtnt.export.envelope_gain import attach_envelope_gain

        with stage("envelope_gain"):
            staged = attach_envelope_gain(cfg.preset.envelope_gain, model_path, x, data.y, splits, metadata, sr)
        mlflow.log_metrics(staged.metrics())
        mlflow.log_artifact(str(staged.nam_path))
        mlflow.log_artifact(str(staged.path))
        model_path, expected, history = staged.path, staged.expected(expected), rf + staged.settling
    evidence = measure_exported(cfg, model_path, expected, history, x, data.settings, splits, sr)
    record_evidence(evidence, out_dir)
    # As NAM's trainer does, the file records its ESRs; only its metadata changes, the weights stay as validated.
    set_training_metadata(model_path, validation_esr=evidence.splits.val.esr, test_esr=evidence.splits.test.esr)
    mlflow.log_artifact(str(model_path))
    record_checkpoint(session.checkpoint_dir, (LAST_CHECKPOINT, STATE_FILE))
    result = job_result(run_id, evidence, size_metrics, overrides)
    print_summary(result, evidence)
    return result


def job_result(
    run_id: str, evidence: ExportEvidence, size_metrics: dict[str, float], overrides: list[str]
) -> JobResult:
    """The task-function contract of a run from its evidence and the model's size metrics."""
    return JobResult(
        run_id=run_id,
        model_path=str(evidence.model_path),
        metrics=with_native_placeholders({**size_metrics, **evidence.metrics()}),
        constraints=dict(evidence.gate.constraints),
        gate_ready=evidence.gate.ready,
        overrides=overrides,
        machine=machine_tags(),
    )


def print_summary(result: JobResult, evidence: ExportEvidence, command: str = "rtnt-train") -> None:
    """The run's headline numbers, all measured on the exported file."""
    m = result.metrics
    gate = evidence.gate
    nan = float("nan")
    print(f"{command} done (all figures measured on the exported file)")
    print(f"  ESR test {m['esr']:.4g}, validation {m['esr_val']:.4g}; ASR mean {m['asr_mean_db']:.1f} dB")
    if evidence.settings:
        trained = sum(s.role == "train" for s in evidence.settings)
        held = f", held out {m['esr_holdout']:.4g}" if "esr_holdout" in m else ""
        print(f"  {trained} trained settings: ESR mean {m['esr']:.4g}, worst {m['esr_worst_setting']:.4g}{held}")
    print(f"  parity error {m['parity_error']:.3g} (reference), {m.get('native_parity_error', nan):.3g} (native)")
    print(f"  native RTF worst {m.get('native_rtf_worst', nan):.1f}, block 128 {m.get('native_rtf_b128', nan):.1f}")
    failed = ", ".join(gate.failed) or "none"
    print(f"  gate: {'READY' if gate.ready else 'NOT READY'} (failed: {failed}; listening review pending)")
    path = Path(result.model_path)
    print(f"{path.suffix.lstrip('.').upper()}: {path}")
    print(f"MLflow run: {result.run_id}", flush=True)
