"""The MLflow model registry: a run whose exported model passed its export gate becomes a registered model
version (`rtnt-export register <run id>`), with the exported file (`model.json` or `model.nam`) as its artifact.

MLflow treats a model version's source as a folder (`models:/<name>/<version>` downloads a folder), so the file is
also logged to the run under `model/` and that folder is registered: `mlflow.artifacts.download_artifacts(
"models:/<name>/<version>")` gives a folder holding exactly the exported file.

A run's gate verdict is its tag `gate.ready` ("true" / "false", set by `rtnt.tracking.review.log_gate` and
updated by a listening review); `gate_problem` and `run_model_artifact` are shared with the LV2 export, which
asks the same two questions of a run.
"""

from __future__ import annotations

import re
import tempfile
from dataclasses import dataclass
from typing import Any

from rtnt.errors import RtntError
from rtnt.export import NAM_FILE, RTNEURAL_FILE
from rtnt.tracking.uri import existing_tracking_uri, fetch_run

# Run artifacts that hold the exported model, looked for in this order (the first one a run has is used).
RUN_MODEL_FILES = (RTNEURAL_FILE, NAM_FILE)
REGISTERED_DIR = "model"  # the run's artifact folder that a model version points to


@dataclass(frozen=True)
class RegisteredModel:
    """A registered model version: registry name and version, the run it came from and its artifact source."""

    name: str
    version: str
    run_id: str
    source: str  # runs:/<run id>/model (a folder holding the exported model.json or model.nam)


def gate_problem(run: Any) -> str | None:
    """None when the MLflow run passed its export gate (tag `gate.ready` is "true"), else why not, as a phrase
    that follows "run <id> ...": no verdict, or the failed criteria."""
    ready = run.data.tags.get("gate.ready")
    if ready == "true":
        return None
    if ready is None:
        return "has no export gate verdict (tag gate.ready); it did not reach the gate"
    return f"did not pass the export gate (failed: {run.data.tags.get('gate.failed', 'unknown')}; see gate/report.md)"


def run_model_artifact(client: Any, run_id: str) -> str | None:
    """The run's exported model artifact (the first of `RUN_MODEL_FILES` it has), or None."""
    present = {a.path for a in client.list_artifacts(run_id)}
    return next((f for f in RUN_MODEL_FILES if f in present), None)


def default_model_name(run: Any) -> str:
    """`<preset>-<capture>` from the run's tags, with characters other than letters, digits and `._-` replaced by
    `_` (a registry name is part of `models:/<name>/<version>` URIs, where `/`, `@` and `:` have meanings)."""
    tags = run.data.tags
    name = f"{tags.get('preset', 'model')}-{tags.get('capture', 'capture')}"
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name)


def register_model(run_id: str, name: str | None = None, tracking_uri: str = "") -> RegisteredModel:
    """Register the exported model of run `run_id` as a new version of registered model `name` (default
    `default_model_name`), creating the registered model on first use. Refuses, with one line, an unknown run, a
    run that did not pass its export gate, and a run without a model file."""
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    uri = existing_tracking_uri(tracking_uri)
    client = MlflowClient(tracking_uri=uri)
    run = fetch_run(client, run_id, uri, "check the run id or pass --tracking-uri", RtntError)
    problem = gate_problem(run)
    if problem is not None:
        raise RtntError(f"run {run_id} {problem}; only runs that passed their export gate can be registered")
    artifact = run_model_artifact(client, run_id)
    if artifact is None:
        raise RtntError(
            f"run {run_id} has no {' or '.join(RUN_MODEL_FILES)} artifact; "
            "only runs that exported a model can be registered"
        )
    name = (name or "").strip() or default_model_name(run)
    source = f"runs:/{run_id}/{REGISTERED_DIR}"
    try:
        with tempfile.TemporaryDirectory(prefix="rtnt-register-") as tmp:
            client.log_artifact(run_id, client.download_artifacts(run_id, artifact, tmp), REGISTERED_DIR)
        _ensure_registered(client, name)
        version = client.create_model_version(name, source=source, run_id=run_id, tags={"rtnt.file": artifact})
    except MlflowException as exc:
        first = str(exc.message).splitlines()[0] if str(exc.message) else type(exc).__name__
        raise RtntError(f"the model registry of {uri} refused '{name}': {first}; pass another --name") from None
    return RegisteredModel(name=name, version=str(version.version), run_id=run_id, source=source)


def _ensure_registered(client: Any, name: str) -> None:
    """Create registered model `name` unless it exists."""
    from mlflow.exceptions import MlflowException
    from mlflow.protos.databricks_pb2 import RESOURCE_DOES_NOT_EXIST, ErrorCode

    try:
        client.get_registered_model(name)
    except MlflowException as exc:
        if exc.error_code != ErrorCode.Name(RESOURCE_DOES_NOT_EXIST):
            raise
        client.create_registered_model(name, description="rtnt exported models (RTNeural JSON or .nam)")
