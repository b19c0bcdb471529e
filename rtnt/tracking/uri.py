"""Where runs are tracked: the configured URI, else $MLFLOW_TRACKING_URI, else a local sqlite store.

The local store is `<repo>/mlruns/mlflow.db` with artifacts under `<repo>/mlruns/artifacts`.
"""

from __future__ import annotations

import os
from pathlib import Path

from rtnt.config import REPO_DIR


LOCAL_STORE = REPO_DIR / "mlruns"
LOCAL_URI = f"sqlite:///{(LOCAL_STORE / 'mlflow.db').as_posix()}"


def local_store_dir() -> Path:
    """`<repo>/mlruns`, created on first use."""
    LOCAL_STORE.mkdir(parents=True, exist_ok=True)
    return LOCAL_STORE


def default_tracking_uri() -> str:
    """sqlite:///<repo>/mlruns/mlflow.db (the folder is created)."""
    local_store_dir()
    return LOCAL_URI


def default_artifact_root() -> str:
    """file URI of `<repo>/mlruns/artifacts` (created), the artifact root of the local store."""
    path = local_store_dir() / "artifacts"
    path.mkdir(parents=True, exist_ok=True)
    return path.as_uri()


def resolve_tracking_uri(configured: str = "") -> str:
    """The configured URI if given, else $MLFLOW_TRACKING_URI, else `default_tracking_uri()`."""
    return configured or os.environ.get("MLFLOW_TRACKING_URI", "") or default_tracking_uri()


def resolve_artifact_location(tracking_uri: str, configured: str = "") -> str | None:
    """Artifact location for a new experiment: the configured root if given, the local root for
    the default store, else None (the tracking server decides)."""
    if configured:
        return configured
    return default_artifact_root() if tracking_uri == LOCAL_URI else None
