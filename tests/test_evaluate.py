"""`rtnt-evaluate MODEL capture=...`: the exported-file evidence of any model file, logged as an MLflow run."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import mlflow
import numpy as np
import pytest

from rtnt.validate.bench import random_conv_stack

pytestmark = pytest.mark.slow
FAST_BENCH = ("validate.bench_seconds=0.25", "validate.bench_block_sizes=[1,128]")  # the evidence, not its precision


def run_evaluate(cwd: Path, uri: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "rtnt.cli.evaluate", *args],
        cwd=cwd,
        env={**os.environ, "MLFLOW_TRACKING_URI": uri},
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_evaluate_logs_the_file_evidence_as_a_run(tmp_path: Path) -> None:
    import json

    model = tmp_path / "stack.json"
    model.write_text(json.dumps(random_conv_stack(channels=4, dilations=[1, 2, 4], kernel_size=3, seed=0)))
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    proc = run_evaluate(tmp_path, uri, str(model), "capture=demo", *FAST_BENCH)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "rtnt-evaluate done" in proc.stdout
    run = mlflow.MlflowClient(uri).get_run(proc.stdout.split("MLflow run:")[1].split()[0])
    assert run.info.status == "FINISHED"
    assert run.data.tags["preset"] == "stack" and run.data.tags["family"] == "rtneural"
    for key in ("esr", "esr_val", "asr_mean_db", "parity_error", "native_validation", "native_rtf_worst", "gate.ready"):
        assert np.isfinite(run.data.metrics[key]), key
    assert run.data.metrics["parity_error"] < 1e-4 and run.data.metrics["native_validation"] == 1
    listed = {f.path for f in mlflow.MlflowClient(uri).list_artifacts(run.info.run_id)}
    assert {"stack.json", "gate", "preview", "asr", "bench"} <= listed


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["nope.json", "capture=demo"], "model file"),
        (["model.txt"], "neither an RTNeural .json nor a .nam"),
        (["MODEL", "capture=nope"], "unknown config choice 'capture/nope'"),
    ],
)
def test_evaluate_bad_input_is_one_line(tmp_path: Path, args: list[str], expected: str) -> None:
    (tmp_path / "model.txt").write_text("{}")
    (tmp_path / "m.json").write_text("{}")
    args = [str(tmp_path / "m.json") if a == "MODEL" else a for a in args]
    proc = run_evaluate(tmp_path, f"sqlite:///{tmp_path / 'mlflow.db'}", *args)
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert proc.returncode == 2 and len(lines) == 1 and lines[0].startswith("error: ") and expected in lines[0], (
        proc.stderr
    )


NAM_MODELS = Path(__file__).resolve().parents[1].parent / "shared" / "conformance" / "nam" / "models"


@pytest.mark.skipif(not (NAM_MODELS / "wavenet.nam").exists(), reason="../shared/conformance/nam not found")
def test_evaluate_a_shared_nam_model_end_to_end(tmp_path: Path) -> None:
    """A NAM Core example model on the demo capture: every exported-file metric, the numpy .nam runtime against
    the native one within the gate's tolerance, the file logged as an artifact."""
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    proc = run_evaluate(tmp_path, uri, str(NAM_MODELS / "wavenet.nam"), "capture=demo", *FAST_BENCH)
    assert proc.returncode == 0, proc.stderr[-3000:]
    run = mlflow.MlflowClient(uri).get_run(proc.stdout.split("MLflow run:")[1].split()[0])
    assert run.data.tags["family"] == "nam" and run.data.tags["preset"] == "wavenet"
    m = run.data.metrics
    assert m["parity_error"] < 1e-4 and m["native_validation"] == 1 and m["native_rtf_worst"] > 0
    assert np.isfinite(m["esr"]) and np.isfinite(m["asr_mean_db"])
    assert "wavenet.nam" in {f.path for f in mlflow.MlflowClient(uri).list_artifacts(run.info.run_id)}


def test_training_a_wavenet_preset_exports_and_validates_a_nam(nam_smoke_run) -> None:
    """train=smoke with NAM's A1 nano shape: the run's file is model.nam with rtnt's metadata, and parity of the
    exported file holds in both runtimes."""
    import json

    assert "NAM: " in nam_smoke_run.stdout
    client = mlflow.MlflowClient(nam_smoke_run.tracking_uri)
    run = client.get_run(nam_smoke_run.run_id)
    out_dir = Path(run.data.tags["rtnt.output_dir"])
    nam = json.loads((out_dir / "model.nam").read_text())
    assert nam["architecture"] == "WaveNet" and nam["sample_rate"] == 48000
    assert nam["metadata"]["training"]["test_esr"] == pytest.approx(run.data.metrics["esr"], rel=1e-6)
    assert nam["metadata"]["rtnt"]["run_id"] == run.info.run_id
    assert run.data.metrics["parity_error"] < 1e-4 and run.data.metrics["native_parity_error"] < 1e-4
    assert "model.nam" in {f.path for f in client.list_artifacts(run.info.run_id)}
