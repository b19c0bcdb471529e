"""A tiny Hydra app for the sweeper tests: rtnt's real config tree, a fake training job.

It composes and validates exactly what `rtnt-train` does, nests its MLflow run under the sweep's
parent run the same way rtnt/pipeline.py does, and returns the task-function contract with
metrics computed in microseconds from the preset geometry (no TensorFlow), so a sweep of a few
trials takes seconds. `sweep.fake` (free-form) makes chosen trials misbehave:

- `raise_on: [N, ...]`  trial N raises inside its MLflow run;
- `nan_on: [N, ...]`    trial N returns a NaN ESR;
- `infeasible_on: [N]`  trial N violates the RTF-headroom constraint;
- `sleep_s: x`          each job sleeps x seconds (lets concurrent workers interleave);
- `kill_on: [N, ...]`   trial N's job process kills itself with SIGKILL (a job the launcher loses).

Run it like rtnt-train: `python tests/sweep_fake_app.py -m sweep=dilations_smoothing ...`.
"""

from __future__ import annotations

import math
import os
import signal
import time

import hydra
import mlflow
from omegaconf import DictConfig

from rtnt.config import REPO_DIR, kernel_size_per_layer, register_configs, register_resolvers, validate_config
from rtnt.sweep.contract import JobResult
from rtnt.sweep.trial import trial_run_context
from rtnt.tracking.run import tracked_run
from rtnt.tracking.uri import resolve_artifact_location, resolve_tracking_uri


def fake_metrics(cfg: DictConfig) -> dict[str, float]:
    """Deterministic stand-ins: wider/deeper lowers ESR, larger alpha lowers ASR, more MACs lower RTF."""
    preset = cfg.preset
    kernels = kernel_size_per_layer(preset)
    layers = len(preset.dilations)
    macs = float(preset.channels**2 * sum(kernels) + preset.channels * layers)
    alpha = float(preset.smoothing_alpha)
    esr = (
        0.5
        / (1.0 + preset.channels * layers / 50.0)
        * (1.0 + 0.2 * abs(math.log(alpha)))
        * (0.004 / cfg.train.learning_rate) ** 0.1
    )
    asr_mean_db = -30.0 - 6.0 * math.log2(alpha)
    return {
        "params": macs,
        "macs_per_sample": macs,
        "receptive_field": float(sum((k - 1) * d for k, d in zip(kernels, preset.dilations)) + 1),
        "receptive_field_ms": 1.0,
        "esr": esr,
        "esr_val": esr * 1.1,
        "esr_preemph": esr * 1.2,
        "parity_error": 1e-6,
        "asr_mean": 10 ** (asr_mean_db / 10),
        "asr_max": 10 ** (asr_mean_db / 10),
        "asr_mean_db": asr_mean_db,
        "asr_max_db": asr_mean_db,
        "native_parity_error": 1e-6,
        "native_validation": 1.0,
        "native_rtf_worst": 2.0e6 / macs,
        "native_efficiency_b128": 0.5,
        "native_cost_stability_worst": 0.9,
    }


@hydra.main(config_path=str(REPO_DIR / "conf"), config_name="config", version_base="1.3")
def fake_train(cfg: DictConfig) -> JobResult:
    """Task function with rtnt-train's contract (a JobResult)."""
    from hydra.core.hydra_config import HydraConfig

    validate_config(cfg)
    fake = cfg.sweep.get("fake", {}) or {}
    trial = cfg.sweep.get("trial")
    start = time.time()
    time.sleep(float(fake.get("sleep_s", 0.0)))
    # Which process ran the job, and when it slept (launcher tests).
    print(f"rtnt-fake-job trial={trial} pid={os.getpid()} slept={start:.3f}:{time.time():.3f}", flush=True)
    if trial in list(fake.get("kill_on", [])):
        os.kill(os.getpid(), signal.SIGKILL)
    tracking_uri = resolve_tracking_uri(cfg.tracking.uri)
    parent_run_id, trial_tags = trial_run_context(cfg.sweep)
    tags = {"preset": cfg.preset.name, "sweep": str(cfg.sweep.get("name", "none")), **trial_tags}
    artifacts = resolve_artifact_location(tracking_uri, cfg.tracking.artifact_root)
    with tracked_run(
        tracking_uri, cfg.tracking.experiment, "fake", tags, artifact_location=artifacts, parent_run_id=parent_run_id
    ) as run:
        if trial in list(fake.get("raise_on", [])):
            raise RuntimeError(f"fake failure of trial {trial}")
        metrics = fake_metrics(cfg)
        if trial in list(fake.get("nan_on", [])):
            metrics["esr"] = math.nan
        headroom = cfg.gate.rtf_headroom - metrics["native_rtf_worst"]
        if trial in list(fake.get("infeasible_on", [])):
            headroom = 1.0
        constraints = {
            "parity": metrics["parity_error"] - cfg.gate.parity_tolerance,
            "native_validation": 0.0,
            "rtf_headroom": headroom,
            "esr": metrics["esr"] - cfg.gate.esr_max,
            "asr": metrics["asr_mean_db"] - cfg.gate.asr_mean_db_max,
        }
        mlflow.log_metrics({k: v for k, v in metrics.items() if math.isfinite(v)})
        return JobResult(
            run.info.run_id,
            "model.json",
            metrics,
            constraints,
            gate_ready=all(v <= 0 for v in constraints.values()),
            overrides=list(HydraConfig.get().overrides.task),
        )


if __name__ == "__main__":
    register_configs()
    register_resolvers()
    fake_train()
