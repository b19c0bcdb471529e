"""Two sweep workers share one Optuna study in a real PostgreSQL server started by the test:
no trial is lost or duplicated, and each trial has exactly one nested MLflow run."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import mlflow
import optuna
import pytest
from sweep_support import FAKE_APP, SweepSetup, create_databases

pytestmark = pytest.mark.postgres

N_PER_WORKER = 3


def test_two_workers_share_one_study_without_losing_or_duplicating_trials(postgres: str, tmp_path: Path) -> None:
    create_databases(postgres, "optuna", "mlflow")
    storage = f"{postgres}/optuna"
    tracking_uri = f"{postgres}/mlflow"
    # The team's tracking store exists before the workers start (as a tracking server's would).
    mlflow.set_tracking_uri(tracking_uri)
    mlflow.MlflowClient(tracking_uri).create_experiment("rtnt", artifact_location=(tmp_path / "artifacts").as_uri())

    setup = SweepSetup(tmp_path)
    workers = []
    for name in ("worker_a", "worker_b"):
        cmd = setup.command(
            [sys.executable, str(FAKE_APP)],
            "shared",
            N_PER_WORKER,
            "++sweep.fake.sleep_s=0.5",
            f"tracking.uri={tracking_uri}",
            storage=storage,
            name=name,
        )
        log = open(tmp_path / f"{name}.log", "w")
        workers.append((subprocess.Popen(cmd, cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT, text=True), log))
    for proc, log in workers:
        proc.wait(timeout=600)
        log.close()
    for (proc, _), name in zip(workers, ("worker_a", "worker_b")):
        assert proc.returncode == 0, (tmp_path / f"{name}.log").read_text()[-3000:]

    study = optuna.load_study(study_name="shared", storage=storage)
    numbers = [t.number for t in study.trials]
    assert sorted(numbers) == list(range(2 * N_PER_WORKER))
    assert all(t.state == optuna.trial.TrialState.COMPLETE for t in study.trials)
    by_worker: dict[str, list[int]] = {}
    for t in study.trials:
        by_worker.setdefault(t.user_attrs["worker"], []).append(t.number)
    assert sorted(len(v) for v in by_worker.values()) == [N_PER_WORKER, N_PER_WORKER]

    parents = setup.parents("shared", tracking_uri)
    assert len(parents) == 2
    trial_runs = []
    for parent_id in parents["run_id"]:
        children = setup.children(parent_id, tracking_uri)
        assert len(children) == N_PER_WORKER
        trial_runs += list(children["tags.trial"].astype(int))
    assert sorted(trial_runs) == list(range(2 * N_PER_WORKER))
    assert {t.user_attrs["run_id"] for t in study.trials} == {
        rid for pid in parents["run_id"] for rid in setup.children(pid, tracking_uri)["run_id"]
    }
