"""A run killed with SIGKILL mid-training is marked KILLED and continues from its last checkpoint."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import mlflow
import pytest

pytestmark = pytest.mark.slow


def _wait_for_epochs(root: Path, epochs: int, proc: subprocess.Popen, timeout: float = 300) -> Path:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for state in root.glob("outputs/runs/*/*/checkpoints/state.json"):
            if json.loads(state.read_text())["epochs_completed"] >= epochs:
                return state.parent
        assert proc.poll() is None, proc.communicate()[1][-3000:]
        time.sleep(0.2)
    raise AssertionError("training never reached the wanted epoch")


def test_sigkilled_run_is_marked_killed_and_continues_without_lost_epochs(tmp_path: Path, tracking_uri: str) -> None:
    cmd = [
        sys.executable,
        "-m",
        "rtnt.cli.train",
        "train=smoke",
        "train.epochs=500",
        "train.early_stopping_patience=1000",
    ]
    proc = subprocess.Popen(cmd, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    ckpt_dir = _wait_for_epochs(tmp_path, 2, proc)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    state = json.loads((ckpt_dir / "state.json").read_text())
    done, done_steps = state["epochs_completed"], state["steps_completed"]
    killed_id = json.loads((ckpt_dir / "run.json").read_text())["run_id"]
    client = mlflow.MlflowClient(tracking_uri)
    assert client.get_run(killed_id).info.status == "RUNNING"  # nobody could mark it yet

    cont = subprocess.run(
        [sys.executable, "-m", "rtnt.cli.train", "train=smoke", "train.epochs=1", f"continue_from={killed_id}"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert cont.returncode == 0, cont.stderr[-3000:]
    assert client.get_run(killed_id).info.status == "KILLED"
    new = client.get_run(cont.stdout.split("MLflow run:")[1].split()[0])
    assert new.data.tags["rtnt.parent_run"] == killed_id
    assert new.data.tags["rtnt.initial_step"] == str(done_steps)
    assert new.data.metrics["epochs_completed"] == done + 1  # train=smoke: 4 steps per epoch
    steps = [m.step for m in client.get_metric_history(new.info.run_id, "train_loss")]
    assert steps == [done_steps + 4]


def test_continue_from_a_missing_checkpoint_is_one_line(tmp_path: Path, tracking_uri: str) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "rtnt.cli.train", "train=smoke", "continue_from=/nope/last.keras"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode != 0
    errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("error: ")]
    assert errors and "does not exist" in errors[0]


def test_continue_from_a_junk_checkpoint_is_one_line(tmp_path: Path, tracking_uri: str) -> None:
    junk = tmp_path / "junk.keras"
    junk.write_bytes(b"not a keras archive")
    proc = subprocess.run(
        [sys.executable, "-m", "rtnt.cli.train", "train=smoke", f"continue_from={junk}"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr[-3000:]
    errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("error: ")]
    assert len(errors) == 1 and "is not a loadable Keras model" in errors[0], proc.stderr[-2000:]


def test_ctrl_c_is_one_line_and_keeps_the_checkpoint(tmp_path: Path, tracking_uri: str) -> None:
    # Early stopping off: on a slow machine the run must still be training when the signal comes.
    cmd = [sys.executable, "-m", "rtnt.cli.train", "train=smoke", "train.epochs=500", "train.early_stopping_patience=0"]
    proc = subprocess.Popen(cmd, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    ckpt_dir = _wait_for_epochs(tmp_path, 1, proc)
    os.kill(proc.pid, signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130
    assert "Traceback" not in err, err[-3000:]
    errors = [ln for ln in err.splitlines() if ln.startswith("error: ")]
    assert len(errors) == 1 and errors[0].startswith("error: interrupted"), err[-2000:]
    state = json.loads((ckpt_dir / "state.json").read_text())
    assert state["steps_completed"] >= 4 and (ckpt_dir / "last.keras").exists()
    run_id = json.loads((ckpt_dir / "run.json").read_text())["run_id"]
    assert mlflow.MlflowClient(tracking_uri).get_run(run_id).info.status == "KILLED"
