"""Shared fixtures: an isolated MLflow store per test and the location of ../shared."""

from __future__ import annotations

import os
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
