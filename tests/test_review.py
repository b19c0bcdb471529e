"""rtnt-review against a temporary sqlite MLflow store."""

import json
from pathlib import Path

import pytest

from rtnt.cli.review import main
from rtnt.config import GateConfig
from rtnt.errors import TrackingError
from rtnt.gate import GateEvidence, evaluate_gate
from rtnt.tracking.review import GATE_JSON, GATE_REPORT, log_gate
from rtnt.tracking.uri import default_tracking_uri, existing_tracking_uri, resolve_tracking_uri

EVIDENCE = GateEvidence(1e-6, 2e-6, True, 9.0, 0.012, -31.0)


@pytest.fixture()
def store(tracking_uri, tmp_path):
    """A client of the per-test sqlite store (conftest) and an experiment with artifacts in tmp_path."""
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=tracking_uri)
    exp = client.create_experiment("review-test", artifact_location=(tmp_path / "artifacts").as_uri())
    return client, exp


def _run_with_gate(client, exp) -> str:
    run = client.create_run(exp)
    client.log_text(run.info.run_id, "png bytes stand-in", "asr/asr_per_probe.png")
    log_gate(client, run.info.run_id, evaluate_gate(EVIDENCE, GateConfig()), ["asr/asr_per_probe.png"])
    client.set_terminated(run.info.run_id)
    return run.info.run_id


def _artifact(client, run_id, path, tmp_path) -> str:
    return open(client.download_artifacts(run_id, path, str(tmp_path))).read()


def test_review_rejected_then_approved_updates_tags_metric_and_report(store, tmp_path, capsys):
    client, exp = store
    run_id = _run_with_gate(client, exp)
    tags = client.get_run(run_id).data.tags
    assert tags["gate.ready"] == "true" and tags["review"] == "pending"
    assert "pending listening review" in _artifact(client, run_id, GATE_REPORT, tmp_path / "a")

    assert main([run_id, "rejected", "--note", "metallic on high notes"]) == 0
    data = client.get_run(run_id).data
    assert data.tags["review"] == "rejected" and data.tags["review.note"] == "metallic on high notes"
    assert data.tags["gate.ready"] == "false" and data.tags["gate.failed"] == "review"
    assert data.metrics["gate.ready"] == 0.0
    record = json.loads(_artifact(client, run_id, GATE_JSON, tmp_path / "b"))
    assert record["evidence"]["review"] == "rejected" and record["failed"] == ["review"]
    report = _artifact(client, run_id, GATE_REPORT, tmp_path / "b")
    assert "listening review rejected" in report and "(../asr/asr_per_probe.png)" in report
    assert "NOT READY" in capsys.readouterr().out

    assert main([run_id, "approved"]) == 0
    data = client.get_run(run_id).data
    assert data.tags["review"] == "approved" and data.tags["gate.ready"] == "true"
    assert data.tags["gate.failed"] == "none" and data.metrics["gate.ready"] == 1.0


def test_unknown_run_and_missing_gate_are_one_line_errors(store, capsys):
    client, exp = store
    assert main(["0123456789abcdef0123456789abcdef", "approved"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: run 0123456789abcdef0123456789abcdef not found") and err.count("\n") == 1
    assert "Traceback" not in err

    bare = client.create_run(exp).info.run_id
    assert main([bare, "approved"]) == 2
    err = capsys.readouterr().err
    assert "has no readable gate/gate.json" in err and err.count("\n") == 1
    assert "review" not in client.get_run(bare).data.tags


def test_tracking_uri_resolution(monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert default_tracking_uri().startswith("sqlite:///") and default_tracking_uri().endswith("/mlruns/mlflow.db")
    assert resolve_tracking_uri() == default_tracking_uri()
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://example:5000")
    assert resolve_tracking_uri() == "http://example:5000"
    assert resolve_tracking_uri("sqlite:///x.db") == "sqlite:///x.db"


def test_folder_uris_and_missing_stores_are_one_line_errors(tmp_path: Path) -> None:
    for folder in (str(tmp_path / "store"), f"file://{tmp_path}/store"):
        with pytest.raises(
            TrackingError, match=r"is a folder, but MLflow no longer writes its file store; use a database"
        ):
            resolve_tracking_uri(folder)
    missing = f"sqlite:///{tmp_path}/nowhere/mlflow.db"
    with pytest.raises(TrackingError, match="does not exist; pass --tracking-uri of an existing store"):
        existing_tracking_uri(missing)
    assert not (tmp_path / "nowhere").exists()
    assert main(["0123456789abcdef0123456789abcdef", "approved", "--tracking-uri", missing]) == 2
