"""End to end: `rtnt-train train=smoke capture=files_parametric conditioning=concat preset=wavenet_a1_nano` on a
tiny synthetic capture set exports a knob-conditioned `.nam` (NAM's multi-channel condition plus rtnt's
`controls`), validates it at every setting, and the file matches Keras at every setting and an unseen value."""

from __future__ import annotations

import json
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
from parametric_support import capture_set_args, smoke_parametric_run

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def nam_parametric_run(tmp_path_factory: pytest.TempPathFactory) -> dict:
    tmp = tmp_path_factory.mktemp("parametric_nam")
    return smoke_parametric_run(tmp, "conditioning=concat", "preset=wavenet_a1_nano")


def assert_file_matches_keras(path: Path, model, gains: tuple[float, ...], n: int) -> None:
    """The `.nam` at `path` in the numpy reference (and the native runtime when built), each from its zero state,
    equals the Keras model within 1e-4 at every gain."""
    from rtnt.native import NativeModel, native_available
    from rtnt.runtime.nam_reference import NamModel
    from rtnt.validate.parity import keras_predict

    x = np.random.default_rng(4).uniform(-0.8, 0.8, n).astype(np.float32)
    for gain in gains:
        knob = np.array([gain], dtype=np.float32)
        y_keras = keras_predict(model, x, (gain,))
        np.testing.assert_allclose(NamModel.from_file(path, prewarm=False).process(x, knob), y_keras, atol=1e-4)
        if native_available():
            np.testing.assert_allclose(NativeModel.from_file(path, prewarm=False).process(x, knob), y_keras, atol=1e-4)


def test_run_exports_a_conditioned_nam_and_logs_its_settings(nam_parametric_run: dict) -> None:
    out = nam_parametric_run["out"]
    assert not (out / "model.json").exists()
    doc = json.loads((out / "model.nam").read_text())
    assert doc["architecture"] == "WaveNet" and doc["config"]["in_channels"] == 2
    assert doc["controls"] == [{"name": "gain", "minimum": 0.1, "maximum": 0.9, "default": 0.5}]
    table = pd.read_csv(out / "settings" / "settings.csv")
    assert list(table["role"]) == ["train", "train", "train", "unseen"]
    assert (table["parity_error"] <= 1e-4).all(), table
    assert table["asr_mean_db"].notna().all()
    run = mlflow.MlflowClient(nam_parametric_run["uri"]).get_run(nam_parametric_run["run_id"])
    assert run.data.metrics["esr"] == pytest.approx(table[table["role"] == "train"]["esr"].mean(), rel=1e-5)
    assert run.data.tags["conditioning"] == "concat"


def test_evaluate_measures_a_knob_nam_at_every_setting_of_its_capture_set(nam_parametric_run: dict) -> None:
    """`rtnt-evaluate model.nam capture=<its set>` reproduces the training run's per-setting evidence from the file
    alone; on a single capture it refuses the knob file in one line."""
    import os
    import subprocess
    import sys

    from rtnt.native import native_available

    if not native_available():
        pytest.skip("rtnt._native is not built (pip install -e .)")
    out, uri = nam_parametric_run["out"], nam_parametric_run["uri"]
    fast = ["validate.bench_seconds=0.25", "validate.bench_block_sizes=[1,128]"]

    def evaluate(*args: str) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "MLFLOW_TRACKING_URI": uri}
        cmd = [sys.executable, "-m", "rtnt.cli.evaluate", str(out / "model.nam"), *args, *fast]
        return subprocess.run(cmd, cwd=out.parent, env=env, capture_output=True, text=True, timeout=600)

    proc = evaluate(*capture_set_args(out.parent))
    assert proc.returncode == 0, proc.stderr[-3000:]
    client = mlflow.MlflowClient(uri)
    trained = client.get_run(nam_parametric_run["run_id"]).data.metrics
    evaluated = client.get_run(proc.stdout.split("MLflow run:")[1].split()[0]).data.metrics
    for key in ("esr", "esr_worst_setting", "esr_val"):
        assert evaluated[key] == pytest.approx(trained[key], rel=1e-3), key
    assert evaluated["parity_error"] < 1e-4 and evaluated["native_validation"] == 1

    proc = evaluate("capture=demo")
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert proc.returncode == 2 and len(lines) == 1 and "takes 1 knob(s)" in lines[0], proc.stderr


def test_exported_nam_matches_keras_at_every_setting(nam_parametric_run: dict) -> None:
    import keras

    import rtnt.model.build  # noqa: F401  (registers the WaveNet layers)

    out = nam_parametric_run["out"]
    model = keras.models.load_model(out / "model.keras", compile=False)
    assert_file_matches_keras(out / "model.nam", model, (0.1, 0.5, 0.9, 0.3), 4000)


@pytest.fixture(scope="module")
def nam_film_run(tmp_path_factory: pytest.TempPathFactory) -> dict:
    tmp = tmp_path_factory.mktemp("parametric_nam_film")
    return smoke_parametric_run(tmp, "conditioning=film", "preset=wavenet_a1_nano")


def test_film_run_exports_nams_activation_pre_film_and_validates_every_setting(nam_film_run: dict) -> None:
    import keras

    import rtnt.model.build  # noqa: F401  (registers the WaveNet layers)

    out = nam_film_run["out"]
    doc = json.loads((out / "model.nam").read_text())
    assert doc["config"]["in_channels"] == 2
    for layer in doc["config"]["layers"]:
        assert layer["activation_pre_film"] == {"active": True, "shift": True, "groups": 1}
    model = keras.models.load_model(out / "model.keras", compile=False)
    assert len(doc["weights"]) == model.count_params()
    table = pd.read_csv(out / "settings" / "settings.csv")
    assert list(table["role"]) == ["train", "train", "train", "unseen"]
    assert (table["parity_error"] <= 1e-4).all(), table
    run = mlflow.MlflowClient(nam_film_run["uri"]).get_run(nam_film_run["run_id"])
    assert run.data.tags["conditioning"] == "film"
    assert_file_matches_keras(out / "model.nam", model, (0.1, 0.9), 2000)
