"""End to end: `rtnt-train train=smoke` on the embedded demo capture logs every metric, tag and artifact,
and the exported JSON reproduces the Keras model."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import mlflow
import numpy as np
import pytest

pytestmark = pytest.mark.slow

METRICS = [
    "esr",
    "esr_val",
    "esr_preemph",
    "parity_error",
    "params",
    "macs_per_sample",
    "receptive_field",
    "receptive_field_ms",
    "native_parity_error",
    "native_validation",
    "native_rtf_worst",
    "native_rtf_b1",
    "native_rtf_b128",
    "native_efficiency_b128",
    "native_cost_stability_worst",
    "native_sgemm_gmacs",
    "asr_mean",
    "asr_max",
    "asr_mean_db",
    "gate.ready",
    "epochs_completed",
]
TAGS = ["preset", "capture", "family", "git_commit", "gate.ready", "gate.failed", "review", "asr.runtime"]
TAGS += ["machine.cpu", "machine.cores", "machine.isa"]
ARTIFACTS = [
    "model.json",
    "config.yaml",
    "loss_curve.png",
    "loss_curve.csv",
    "gate/report.md",
    "gate/gate.json",
    "preview/input.wav",
    "preview/target.wav",
    "preview/prediction.wav",
    "preview/residual.wav",
    "bench/native_bench.json",
    "bench/native_bench.md",
    "asr/asr_probes.csv",
    "capture/capture_report.json",
    "checkpoint/last.keras",
]


# A credential planted in a logged config value: no file, MLflow record or output line may show it.
PLANTED_SECRET = "Planted-Secret-4711"
PLANTED_URL = f"http://rtnt:{PLANTED_SECRET}@example.invalid/db"


def run_rtnt_train(cwd: Path, *overrides: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "rtnt.cli.train", *overrides], cwd=cwd, capture_output=True, text=True, timeout=timeout
    )


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory: pytest.TempPathFactory) -> dict:
    tmp = tmp_path_factory.mktemp("e2e")
    uri = f"sqlite:///{tmp / 'mlflow.db'}"
    mp = pytest.MonkeyPatch()
    mp.setenv("MLFLOW_TRACKING_URI", uri)
    proc = run_rtnt_train(tmp, "train=smoke", f"capture.description='{PLANTED_URL}'")
    mp.undo()
    assert proc.returncode == 0, proc.stderr[-3000:]
    run_id = proc.stdout.split("MLflow run:")[1].split()[0]
    return {"proc": proc, "uri": uri, "run": mlflow.MlflowClient(uri).get_run(run_id), "cwd": tmp}


def test_run_finishes_and_prints_its_summary(smoke_run: dict) -> None:
    out = smoke_run["proc"].stdout
    for word in ("ESR", "parity error", "JSON:", "MLflow run:"):
        assert word in out
    assert smoke_run["run"].info.status == "FINISHED"


def test_no_credential_is_written_anywhere(smoke_run: dict) -> None:
    proc = smoke_run["proc"]
    assert PLANTED_SECRET not in proc.stdout + proc.stderr
    leaks = [p for p in smoke_run["cwd"].rglob("*") if p.is_file() and PLANTED_SECRET.encode() in p.read_bytes()]
    assert not leaks, leaks  # .hydra/*.yaml, config.yaml, every artifact, and the MLflow database itself
    assert smoke_run["run"].data.params["capture.description"] == "http://rtnt:***@example.invalid/db"


def test_run_logs_every_metric_and_tag(smoke_run: dict) -> None:
    run = smoke_run["run"]
    missing = [m for m in METRICS if m not in run.data.metrics]
    assert not missing, missing
    assert not [t for t in TAGS if t not in run.data.tags]
    assert run.data.tags["preset"] == "wavenet_tcn_balanced" and run.data.tags["capture"] == "demo"
    assert run.data.tags["review"] == "pending"
    assert run.data.params["train.epochs"] == "2"
    assert run.info.run_name.startswith("wavenet_tcn_balanced@demo#")


def test_the_capture_is_the_runs_dataset_input(smoke_run: dict) -> None:
    (dataset_input,) = smoke_run["run"].inputs.dataset_inputs
    tags = {t.key: t.value for t in dataset_input.tags}
    assert dataset_input.dataset.name == "demo" and dataset_input.dataset.digest
    assert tags["mlflow.data.context"] == "capture" and tags["sample_rate"] == "48000"
    assert tags["target"].endswith(".flac") and float(tags["seconds"]) > 10


def test_loss_curves_are_logged_per_validation_step(smoke_run: dict) -> None:
    client = mlflow.MlflowClient(smoke_run["uri"])
    for key in ("train_loss", "val_loss", "learning_rate", "train.elapsed_s"):
        steps = [m.step for m in client.get_metric_history(smoke_run["run"].info.run_id, key)]
        assert steps == [4, 8]  # train=smoke: 2 epochs of 4 steps, validated once per epoch
    metrics = smoke_run["run"].data.metrics
    assert metrics["train.steps"] == 8 and metrics["epochs_completed"] == 2
    assert metrics["train.samples_per_s"] > 0 and 0 <= metrics["train.overhead_share"] < 1


def test_artifacts_are_logged(smoke_run: dict) -> None:
    client = mlflow.MlflowClient(smoke_run["uri"])
    run_id = smoke_run["run"].info.run_id
    listed: set[str] = set()
    stack = [""]
    while stack:
        for f in client.list_artifacts(run_id, stack.pop() or None):
            (stack.append(f.path) if f.is_dir else listed.add(f.path))
    assert not [a for a in ARTIFACTS if a not in listed], sorted(listed)


def test_exported_json_reproduces_the_keras_model(smoke_run: dict) -> None:
    import keras

    import rtnt.model.layers  # noqa: F401  (registers SmoothTanh for loading)
    import rtnt.train.losses  # noqa: F401  (registers the ESR loss)
    from rtnt.runtime.reference import ReferenceModel

    run = smoke_run["run"]
    out_dir = Path(run.data.tags["rtnt.output_dir"])
    model = keras.models.load_model(out_dir / "model.keras")
    x = np.random.default_rng(1).uniform(-0.8, 0.8, 9600).astype(np.float32)
    y_keras = np.asarray(model(x[None, :, None]))[0, :, 0]
    y_json = ReferenceModel.from_json(out_dir / "model.json").process(x)
    assert np.max(np.abs(y_keras - y_json)) < 1e-4
    assert run.data.metrics["parity_error"] < 1e-4
    assert run.data.metrics["native_parity_error"] < 1e-4
    assert json.loads((out_dir / "model.json").read_text())["layers"][0]["type"] == "conv1d"


def test_demo_config_fits_its_five_minutes_and_converges_through_the_gate(tmp_path: Path) -> None:
    """The `make demo` recipe, shortened to 120 steps for CI: every gate criterion but ESR passes on the exported
    JSON (the RTF headroom where this machine is quiet enough) and the test ESR is already far below an untrained
    model's. The full demo (450 steps, capped at 4 minutes) passing its gate (test ESR <= 0.03) is checked by
    docs/benchmarks/demo.md, not by a timed test."""
    from hydra import compose, initialize_config_dir

    from rtnt.config import REPO_DIR, register_configs, register_resolvers

    register_configs()
    register_resolvers()
    with initialize_config_dir(config_dir=str(REPO_DIR / "conf"), version_base="1.3"):
        demo = compose("config", overrides=["train=demo"])
    assert 0 < demo.train.minutes <= 5 and demo.capture.name == "demo"

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "rtnt.cli.train",
            "train=demo",
            "train.minutes=0",
            "train.steps=120",
            "train.validate_every_s=0",
            "train.validate_every_steps=60",
        ],
        cwd=tmp_path,
        env={**os.environ, "MLFLOW_TRACKING_URI": uri},
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "step 120" in proc.stdout  # one plain progress line per validation when stdout is not a terminal
    run = mlflow.MlflowClient(uri).get_run(proc.stdout.split("MLflow run:")[1].split()[0])
    failed = set(run.data.tags["gate.failed"].split(",")) - {"none"}
    assert failed <= {"esr", "rtf_headroom"}, failed
    # The worst-case RTF is a 99th-percentile block time, which other work on the machine decides (CI runs two
    # test workers on 2 cores): its verdict must follow the measured figure, whatever that is here.
    rtf_worst = run.data.metrics["native_rtf_worst"]
    assert 0 < rtf_worst < math.inf
    assert ("rtf_headroom" in failed) == (rtf_worst < demo.gate.rtf_headroom), (failed, rtf_worst)
    assert run.data.metrics["esr"] < 0.2
    assert run.data.metrics["train.steps"] == 120
