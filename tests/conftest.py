"""Shared fixtures: an isolated MLflow store per test, the location of ../shared, and one trained `.nam` run."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from rtnt.config import shared_dir

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


@pytest.fixture
def tracking_uri(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh sqlite MLflow store under tmp_path, exported as MLFLOW_TRACKING_URI."""
    uri = f"sqlite:///{tmp_path / 'mlruns' / 'mlflow.db'}"
    (tmp_path / "mlruns").mkdir()
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    return uri


@pytest.fixture
def shared() -> Path:
    """../shared, or skip when this checkout has none beside it."""
    path = shared_dir()
    if not (path / "captures" / "manifest.json").exists():
        pytest.skip(f"shared material not found at {path}")
    return path


@dataclass(frozen=True)
class TrainedRun:
    tracking_uri: str
    run_id: str
    stdout: str


@pytest.fixture(scope="session")
def nam_smoke_run(tmp_path_factory: pytest.TempPathFactory) -> TrainedRun:
    """`rtnt-train train=smoke preset=wavenet_a1_nano` in its own store: a finished run that exported model.nam
    (shared by the tests that need a trained .nam run, to train it once)."""
    cwd = tmp_path_factory.mktemp("nam_run")
    uri = f"sqlite:///{cwd / 'mlflow.db'}"
    proc = subprocess.run(
        [sys.executable, "-m", "rtnt.cli.train", "train=smoke", "preset=wavenet_a1_nano"],
        cwd=cwd,
        env={**os.environ, "MLFLOW_TRACKING_URI": uri},
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return TrainedRun(uri, proc.stdout.split("MLflow run:")[1].split()[0], proc.stdout)
