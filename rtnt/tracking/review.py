"""Gate artifacts on an MLflow run and the human listening review that updates them.

A run's gate lives in the artifacts `gate/gate.json` (the `GateResult.to_dict` record, with its
evidence and thresholds) and `gate/report.md`, plus the tags and metrics of the result.
`record_review` sets the review on an existing run and re-evaluates the gate from gate.json.
"""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path, PurePosixPath

from rtnt.errors import RtntError
from rtnt.gate import GateResult, gate_from_dict
from rtnt.tracking.uri import existing_tracking_uri, fetch_run

GATE_DIR = "gate"
GATE_JSON = f"{GATE_DIR}/gate.json"
GATE_REPORT = f"{GATE_DIR}/report.md"
REVIEW_JSON = f"{GATE_DIR}/review.json"


def log_gate(client, run_id: str, result: GateResult, plots: Sequence[str] = ()) -> None:
    """Log tags, metrics, gate/gate.json and gate/report.md of `result` on run `run_id`.

    `client` is an mlflow.MlflowClient; `plots` are artifact paths of the run (e.g.
    "asr/asr_per_probe.png"), linked from the report relative to gate/.
    """
    from mlflow.entities import Metric, RunTag

    now = int(time.time() * 1000)
    client.log_batch(
        run_id,
        metrics=[Metric(k, v, now, 0) for k, v in result.mlflow_metrics().items()],
        tags=[RunTag(k, v) for k, v in result.mlflow_tags().items()],
    )
    client.log_text(run_id, json.dumps(result.to_dict(), indent=2), GATE_JSON)
    links = [_relative_to_gate(p) for p in plots]
    client.log_text(run_id, result.to_markdown(links), GATE_REPORT)


def _relative_to_gate(artifact_path: str) -> str:
    path = PurePosixPath(artifact_path)
    return str(path.relative_to(GATE_DIR)) if path.parts[:1] == (GATE_DIR,) else f"../{path}"


def _image_artifacts(client, run_id: str, path: str = "") -> list[str]:
    found: list[str] = []
    for info in client.list_artifacts(run_id, path or None):
        if info.is_dir:
            found += _image_artifacts(client, run_id, info.path)
        elif info.path.lower().endswith((".png", ".svg", ".jpg")):
            found.append(info.path)
    return found


def record_review(run_id: str, decision: str, note: str = "", tracking_uri: str = "") -> GateResult:
    """Record a listening review ("approved" or "rejected") on an existing run and re-gate it.

    Sets tags `review` and `review.note`, re-evaluates the gate from the run's gate/gate.json,
    updates tags gate.ready/gate.failed and the gate metrics, and logs the updated gate.json,
    report.md and review.json. Raises RtntError for an unknown run or a missing gate artifact.
    """
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    if decision not in ("approved", "rejected"):
        raise RtntError(f"review decision {decision!r} is invalid; use approved or rejected")
    uri = existing_tracking_uri(tracking_uri)
    client = MlflowClient(tracking_uri=uri)
    fetch_run(client, run_id, uri, "check the run id or set MLFLOW_TRACKING_URI", RtntError)
    with tempfile.TemporaryDirectory() as tmp:
        try:
            if GATE_JSON not in {a.path for a in client.list_artifacts(run_id, GATE_DIR)}:
                raise FileNotFoundError(GATE_JSON)
            local = client.download_artifacts(run_id, GATE_JSON, tmp)
            record = json.loads(Path(local).read_text())
        except (MlflowException, OSError, ValueError):
            raise RtntError(
                f"run {run_id} has no readable {GATE_JSON} artifact; "
                "only runs that reached the export gate can be reviewed"
            ) from None
    try:
        result = gate_from_dict(record, review=decision)
    except (KeyError, TypeError, ValueError) as exc:
        raise RtntError(f"run {run_id}: {GATE_JSON} is malformed ({exc}); re-run the export gate") from None
    log_gate(client, run_id, result, _image_artifacts(client, run_id))
    client.set_tag(run_id, "review.note", note)
    client.log_text(
        run_id,
        json.dumps({"review": decision, "note": note, "recorded_at": time.strftime("%Y-%m-%dT%H:%M:%S%z")}, indent=2),
        REVIEW_JSON,
    )
    return result
