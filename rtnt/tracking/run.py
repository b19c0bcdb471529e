"""MLflow run lifecycle for rtnt-train: naming, tags, flattened params, and honest end states.

A run that raises ends FAILED, one stopped by SIGINT/SIGTERM ends KILLED, and a run whose process
died without a word (SIGKILL, power loss) is marked KILLED by the next run that starts on the same
host, found by its `rtnt.pid` tag.
"""

from __future__ import annotations

import hashlib
import os
import socket
import subprocess
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import mlflow
from mlflow.entities import RunStatus
from mlflow.tracking import MlflowClient

from rtnt.config import REPO_DIR

PARAM_VALUE_LIMIT = 6000
PARAM_BATCH = 100


def flatten(cfg: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """Flatten a nested mapping into dotted keys with string values (lists as their repr)."""
    out: dict[str, str] = {}
    for key, value in cfg.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(flatten(value, f"{name}."))
        else:
            out[name] = str(value)[:PARAM_VALUE_LIMIT]
    return out


def overrides_hash(overrides: list[str]) -> str:
    """Short stable hash of a job's Hydra overrides (order-insensitive)."""
    return hashlib.sha1("\n".join(sorted(overrides)).encode()).hexdigest()[:8]


def run_name(preset: str, capture: str, overrides: list[str]) -> str:
    """`<preset>@<capture>#<hash of overrides>`, so runs read at a glance in the MLflow UI."""
    return f"{preset}@{capture}#{overrides_hash(overrides)}"


def git_commit() -> str:
    """The repository's HEAD commit (with `+dirty` when the tree has changes), or `unknown`."""
    try:
        head = subprocess.run(
            ["git", "-C", str(REPO_DIR), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(REPO_DIR), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=5,
        ).stdout.strip()
        return head + ("+dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def mark_orphaned_runs(client: MlflowClient, experiment_id: str) -> list[str]:
    """End as KILLED every RUNNING run started on this host whose process no longer exists."""
    host = socket.gethostname()
    orphans = []
    runs = client.search_runs(
        [experiment_id], filter_string=f"attributes.status = 'RUNNING' and tags.`rtnt.host` = '{host}'"
    )
    for run in runs:
        pid = int(run.data.tags.get("rtnt.pid", "0") or 0)
        if pid and pid != os.getpid() and not _pid_alive(pid):
            client.set_tag(run.info.run_id, "rtnt.end_reason", "process died without ending the run (e.g. SIGKILL)")
            client.set_terminated(run.info.run_id, status=RunStatus.to_string(RunStatus.KILLED))
            orphans.append(run.info.run_id)
    return orphans


def log_params_flat(params: Mapping[str, str]) -> None:
    """Log many params in batches (MLflow accepts at most 100 per call)."""
    items = list(params.items())
    for i in range(0, len(items), PARAM_BATCH):
        mlflow.log_params(dict(items[i : i + PARAM_BATCH]))


def ensure_experiment(client: MlflowClient, name: str, artifact_location: str | None) -> str:
    """The id of experiment `name`, created with `artifact_location` if it does not exist yet."""
    exp = client.get_experiment_by_name(name)
    if exp is not None:
        return exp.experiment_id
    try:
        return client.create_experiment(name, artifact_location=artifact_location)
    except mlflow.exceptions.MlflowException:  # created concurrently by another job of a multirun
        return client.get_experiment_by_name(name).experiment_id


@contextmanager
def tracked_run(
    tracking_uri: str,
    experiment: str,
    name: str,
    tags: Mapping[str, str],
    *,
    artifact_location: str | None = None,
    parent_run_id: str | None = None,
) -> Iterator[mlflow.ActiveRun]:
    """Start an MLflow run and always end it with the true status: FINISHED, FAILED or KILLED."""
    mlflow.set_tracking_uri(tracking_uri)
    client = MlflowClient(tracking_uri)
    experiment_id = ensure_experiment(client, experiment, artifact_location)
    mlflow.set_experiment(experiment_id=experiment_id)
    mark_orphaned_runs(client, experiment_id)
    all_tags = {**tags, "rtnt.pid": str(os.getpid()), "rtnt.host": socket.gethostname()}
    run = mlflow.start_run(run_name=name, tags=all_tags, parent_run_id=parent_run_id, nested=parent_run_id is not None)
    try:
        yield run
    except (KeyboardInterrupt, SystemExit) as exc:
        mlflow.set_tag("rtnt.end_reason", f"interrupted ({type(exc).__name__})")
        mlflow.end_run(status=RunStatus.to_string(RunStatus.KILLED))
        raise
    except BaseException as exc:
        mlflow.set_tag("rtnt.end_reason", f"{type(exc).__name__}: {exc}"[:5000])
        mlflow.end_run(status=RunStatus.to_string(RunStatus.FAILED))
        raise
    else:
        mlflow.end_run(status=RunStatus.to_string(RunStatus.FINISHED))
