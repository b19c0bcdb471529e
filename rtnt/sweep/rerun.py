"""Re-benchmark a sweep's Pareto front on one machine (`rtnt-bench --rerun-pareto <sweep run id>`).

Trials of a shared study may have measured their speed on different machines; re-running the native
benchmark on every Pareto-front model file here gives figures that compare directly. The front is the
sweep parent run's `sweep.pareto_trials` tag (the report's front, machine-relative when hosts differed);
each trial's exported model file is the MLflow artifact of its run (tags `sweep.study` and `trial`).
"""

from __future__ import annotations

import ast
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from rtnt.errors import RtntError
from rtnt.tracking.uri import fetch_run

if TYPE_CHECKING:
    from mlflow import MlflowClient
    from mlflow.entities import Run

MODEL_ARTIFACTS = ("model.json", "model.nam")
RERUN_ARTIFACT_DIR = "sweep/rerun_pareto"


class SweepRunError(RtntError):
    """The run given to --rerun-pareto is not a finished sweep with a Pareto front and exported models."""


@dataclass(frozen=True)
class RerunRow:
    """One Pareto-front trial: what its sweep recorded and what this machine measures on its model file."""

    trial: int
    run_id: str
    model: str
    recorded_cpu: str
    recorded_rtf_worst: float
    recorded_efficiency_b128: float
    rtf_worst: float
    rtf_b128: float
    efficiency_b128: float


@dataclass(frozen=True)
class ParetoRerun:
    """The front re-benchmarked on `cpu` (single-thread sgemm `sgemm_gmacs` GMAC/s), and the files written."""

    sweep_run_id: str
    study: str
    cpu: str
    sgemm_gmacs: float
    rows: list[RerunRow]
    files: list[Path] = field(default_factory=list)

    def frame(self) -> pd.DataFrame:
        """One row per trial, fastest worst-case RTF here first."""
        frame = pd.DataFrame([vars(r) for r in self.rows])
        return frame.sort_values("rtf_worst", ascending=False).reset_index(drop=True) if len(frame) else frame


def _metric(run: Run, name: str) -> float:
    return float(run.data.metrics.get(name, math.nan))


def _sweep_parent(client: MlflowClient, run_id: str) -> Run:
    hint = "pass the sweep's parent run id (tag rtnt.sweep.role=parent) and --tracking-uri if it logged elsewhere"
    run = fetch_run(client, run_id, client.tracking_uri, hint, SweepRunError)
    if run.data.tags.get("rtnt.sweep.role") != "parent":
        raise SweepRunError(
            f"run {run_id} is not a sweep's parent run (tag rtnt.sweep.role=parent); a trial's own run names its "
            "parent in the tag mlflow.parentRunId"
        )
    if "sweep.pareto_trials" not in run.data.tags:
        raise SweepRunError(f"sweep run {run_id} has no Pareto front yet (tag sweep.pareto_trials); let it finish")
    return run


def _trial_run(client: MlflowClient, study: str, trial: int) -> Run:
    """The finished MLflow run of trial `trial` of `study` (a killed attempt of the same number is skipped)."""
    runs = client.search_runs(
        experiment_ids=[e.experiment_id for e in client.search_experiments()],
        filter_string=f"tags.`sweep.study` = '{study}' and tags.trial = '{trial}' and attributes.status = 'FINISHED'",
    )
    if not runs:
        raise SweepRunError(f"trial {trial} of study {study} has no finished MLflow run to take its model file from")
    return runs[0]


def _download_model(client: MlflowClient, run: Run, out_dir: Path) -> Path:
    names = {a.path for a in client.list_artifacts(run.info.run_id)}
    name = next((n for n in MODEL_ARTIFACTS if n in names), None)
    if name is None:
        raise SweepRunError(f"run {run.info.run_id} has no exported model artifact ({' or '.join(MODEL_ARTIFACTS)})")
    target = out_dir / run.info.run_id
    target.mkdir(parents=True, exist_ok=True)
    return Path(client.download_artifacts(run.info.run_id, name, str(target)))


def rerun_pareto(sweep_run_id: str, tracking_uri: str, out_dir: Path, seconds: float = 2.0) -> ParetoRerun:
    """Benchmark every Pareto-front model of the sweep on this machine (as `rtnt-bench` does), write
    `pareto_rerun.csv` and `.md` to `out_dir` and log them on the sweep's parent run under `sweep/rerun_pareto/`."""
    from mlflow import MlflowClient

    from rtnt.native import native_available
    from rtnt.tracking.machine import cpu_model
    from rtnt.validate.bench import benchmark_native

    if not native_available():
        raise RtntError(
            "the native runtime rtnt._native is not built; "
            "install rtnt with `pip install -e .` (needs a C++17 compiler)"
        )
    client = MlflowClient(tracking_uri)
    parent = _sweep_parent(client, sweep_run_id)
    study = parent.data.tags.get("study", "")
    front = [int(n) for n in ast.literal_eval(parent.data.tags["sweep.pareto_trials"])]
    out_dir.mkdir(parents=True, exist_ok=True)
    rows: list[RerunRow] = []
    sgemm = math.nan
    for trial in front:
        run = _trial_run(client, study, trial)
        model = _download_model(client, run, out_dir / "models")
        bench = benchmark_native(model, seconds=seconds)
        sgemm = bench.sgemm_gmacs
        rows.append(
            RerunRow(
                trial=trial,
                run_id=run.info.run_id,
                model=model.name,
                recorded_cpu=run.data.tags.get("machine.cpu", "unknown"),
                recorded_rtf_worst=_metric(run, "native_rtf_worst"),
                recorded_efficiency_b128=_metric(run, "native_efficiency_b128"),
                rtf_worst=bench.rtf_worst,
                rtf_b128=bench.rtf.get(128, math.nan),
                efficiency_b128=bench.efficiency.get(128, math.nan),
            )
        )
    result = ParetoRerun(sweep_run_id, study, cpu_model(), sgemm, rows)
    files = _write(result, out_dir)
    for f in files:
        client.log_artifact(sweep_run_id, str(f), RERUN_ARTIFACT_DIR)
    return ParetoRerun(result.sweep_run_id, result.study, result.cpu, result.sgemm_gmacs, result.rows, files)


def _write(result: ParetoRerun, out_dir: Path) -> list[Path]:
    from rtnt.sweep.report import markdown_table

    frame = result.frame()
    csv_path, md_path = out_dir / "pareto_rerun.csv", out_dir / "pareto_rerun.md"
    frame.to_csv(csv_path, index=False)
    md_path.write_text(
        f"# Pareto front of study `{result.study}` re-benchmarked on one machine\n\n"
        f"Sweep run {result.sweep_run_id}; every model file benchmarked here on {result.cpu} "
        f"(single-thread sgemm {result.sgemm_gmacs:.1f} GMAC/s, native runtime, single thread, 48 kHz), so "
        "`rtf_worst` and `rtf_b128` compare directly; `recorded_*` are the figures each trial logged on its own "
        "machine (`recorded_cpu`).\n\n" + (markdown_table(frame) if len(frame) else "The front is empty.\n")
    )
    return [csv_path, md_path]
