"""Where runs are tracked: the configured URI, else $MLFLOW_TRACKING_URI, else a local sqlite store; and
`fetch_run`, the one way commands read a run by id.

The local store is `<project>/mlruns/mlflow.db` with artifacts under `<project>/mlruns/artifacts`, where the
project is the source checkout, or the working directory of a regular install.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from rtnt.config import project_dir
from rtnt.errors import RtntError, TrackingError

if TYPE_CHECKING:
    from mlflow import MlflowClient
    from mlflow.entities import Run


def local_store_dir() -> Path:
    """`<project>/mlruns` (the checkout, or the working directory of an installed rtnt), created on first use."""
    path = project_dir() / "mlruns"
    path.mkdir(parents=True, exist_ok=True)
    return path


def default_tracking_uri() -> str:
    """sqlite:///<project>/mlruns/mlflow.db (the folder is created)."""
    return f"sqlite:///{(local_store_dir() / 'mlflow.db').as_posix()}"


def default_artifact_root() -> str:
    """file URI of `<repo>/mlruns/artifacts` (created), the artifact root of the local store."""
    path = local_store_dir() / "artifacts"
    path.mkdir(parents=True, exist_ok=True)
    return path.as_uri()


def resolve_tracking_uri(configured: str = "") -> str:
    """The configured URI if given, else $MLFLOW_TRACKING_URI, else `default_tracking_uri()`. A plain folder
    or file: URI raises TrackingError: MLflow 3 refuses its file store, so rtnt uses a database."""
    uri = configured or os.environ.get("MLFLOW_TRACKING_URI", "") or default_tracking_uri()
    if "://" not in uri or uri.startswith("file:"):
        folder = uri.removeprefix("file://").removeprefix("file:")
        raise TrackingError(
            f"tracking URI {uri!r} is a folder, but MLflow no longer writes its file store; use a database, "
            f"e.g. sqlite:///{Path(folder).absolute().as_posix()}/mlflow.db, or a tracking server (http://...)"
        )
    return uri


def existing_tracking_uri(configured: str = "") -> str:
    """`resolve_tracking_uri` for commands that read runs: a sqlite store whose file does not exist raises
    TrackingError instead of MLflow silently creating an empty one."""
    uri = resolve_tracking_uri(configured)
    prefix = "sqlite:///"
    if uri.startswith(prefix) and not Path(uri[len(prefix) :]).exists():
        raise TrackingError(
            f"tracking store {uri} does not exist; "
            "pass --tracking-uri of an existing store (or set MLFLOW_TRACKING_URI)"
        )
    return uri


def fetch_run(client: MlflowClient, run_id: str, uri: str, hint: str, error: type[RtntError] = TrackingError) -> Run:
    """Run `run_id` of the store at `uri`. An unknown id raises `error` with one line: "run ID not found in
    tracking store URI; HINT"."""
    from mlflow.exceptions import MlflowException

    try:
        return client.get_run(run_id)
    except MlflowException:
        raise error(f"run {run_id} not found in tracking store {uri}; {hint}") from None


def resolve_artifact_location(tracking_uri: str, configured: str = "") -> str | None:
    """Artifact location for a new experiment: the configured root if given, the local root for
    the default store, else None (the tracking server decides)."""
    if configured:
        return configured
    return default_artifact_root() if tracking_uri == default_tracking_uri() else None
