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


def run_evaluate(cwd: Path, uri: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "rtnt.cli.evaluate", *args],
        cwd=cwd, env={**os.environ, "MLFLOW_TRACKING_URI": uri}, capture_output=True, text=True, timeout=600,
    )


def test_evaluate_logs_the_file_evidence_as_a_run(tmp_path: Path) -> None:
    import json

    model = tmp_path / "stack.json"
    model.write_text(json.dumps(random_conv_stack(channels=4, dilations=[1, 2, 4], kernel_size=3, seed=0)))
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    proc = run_evaluate(tmp_path, uri, str(model), "capture=demo")
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
    assert proc.returncode == 2 and len(lines) == 1 and lines[0].startswith("error: ") and expected in lines[0], proc.stderr
