"""Helpers of the sweeper tests: run a sweep in a subprocess, read back the study and the MLflow runs."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import mlflow
import optuna
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
FAKE_APP = REPO / "tests" / "sweep_fake_app.py"


@dataclass
class SweepSetup:
    """Where one test's sweeps keep their study, MLflow store and outputs."""

    root: Path

    @property
    def tracking_uri(self) -> str:
        return f"sqlite:///{self.root / 'mlflow.db'}"

    @property
    def journal(self) -> Path:
        return self.root / "optuna_journal.log"

    def command(
        self,
        app: list[str],
        study: str,
        n_trials: int,
        *overrides: str,
        storage: str | None = None,
        name: str = "sweep",
    ) -> list[str]:
        """`<app> -m sweep=dilations_smoothing` with this setup's storage, store and a sweep dir per `name`."""
        return [
            *app,
            "-m",
            "sweep=dilations_smoothing",
            "train=smoke",
            f"hydra.sweeper.n_trials={n_trials}",
            f"hydra.sweeper.study_name={study}",
            f"hydra.sweeper.storage={storage or self.journal}",
            f"hydra.sweep.dir={self.root / name}",
            f"tracking.uri={self.tracking_uri}",
            f"tracking.artifact_root={self.root / 'artifacts'}",
            *overrides,
        ]

    def run_fake(
        self, study: str, n_trials: int, *overrides: str, name: str = "sweep", timeout: float = 300
    ) -> subprocess.CompletedProcess[str]:
        """A sweep of the fake app (tests/sweep_fake_app.py), run to completion."""
        cmd = self.command([sys.executable, str(FAKE_APP)], study, n_trials, *overrides, name=name)
        return subprocess.run(cmd, cwd=self.root, capture_output=True, text=True, timeout=timeout)

    def study(self, name: str, storage: str | None = None) -> optuna.Study:
        backend = storage or optuna.storages.JournalStorage(
            optuna.storages.journal.JournalFileBackend(str(self.journal))
        )
        return optuna.load_study(study_name=name, storage=backend)

    def parents(self, study: str, tracking_uri: str | None = None) -> pd.DataFrame:
        mlflow.set_tracking_uri(tracking_uri or self.tracking_uri)
        return mlflow.search_runs(
            search_all_experiments=True,
            filter_string=f"tags.`rtnt.sweep.role` = 'parent' and tags.study = '{study}'",
            order_by=["attributes.start_time ASC"],
        )

    def children(self, parent_run_id: str, tracking_uri: str | None = None) -> pd.DataFrame:
        mlflow.set_tracking_uri(tracking_uri or self.tracking_uri)
        return mlflow.search_runs(
            search_all_experiments=True, filter_string=f"tags.mlflow.parentRunId = '{parent_run_id}'"
        )


def progress_lines(stdout: str) -> list[str]:
    """The sweeper's per-trial progress lines."""
    return [line for line in stdout.splitlines() if line.startswith("[rtnt_optuna] trial ")]


def create_databases(server: str, *names: str) -> None:
    """Create the named databases on the PostgreSQL server of the `postgres` fixture."""
    import psycopg2

    conn = psycopg2.connect(server.replace("+psycopg2", "") + "/postgres")
    conn.autocommit = True
    with conn.cursor() as cur:
        for name in names:
            cur.execute(f"CREATE DATABASE {name}")
    conn.close()
