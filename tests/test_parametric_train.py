"""End to end: `rtnt-train train=smoke capture=files_parametric conditioning=concat` on a tiny synthetic capture set
(3 s, three settings, one held out) logs the per-setting evidence, and the exported file matches Keras at every
setting and at the unseen value."""

from __future__ import annotations

import json

import mlflow
import numpy as np
import pandas as pd
import pytest
from parametric_support import smoke_parametric_run

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def parametric_run(tmp_path_factory: pytest.TempPathFactory) -> dict:
    tmp = tmp_path_factory.mktemp("parametric")
    return smoke_parametric_run(tmp, "conditioning=concat", "preset=wavenet_tcn_edge", "capture.holdout=[0.5]")


def test_run_logs_the_per_setting_metrics_and_table(parametric_run: dict) -> None:
    client = mlflow.MlflowClient(parametric_run["uri"])
    run = client.get_run(parametric_run["run_id"])
    m = run.data.metrics
    table = pd.read_csv(parametric_run["out"] / "settings" / "settings.csv")
    assert list(table["gain"]) == [0.1, 0.5, 0.9, 0.5]
    assert list(table["role"]) == ["train", "holdout", "train", "unseen"]
    trained = table[table["role"] == "train"]
    assert m["esr"] == pytest.approx(trained["esr"].mean(), rel=1e-5)
    assert m["esr_worst_setting"] == pytest.approx(trained["esr"].max(), rel=1e-5)
    assert m["esr_holdout"] == pytest.approx(float(table[table["role"] == "holdout"]["esr"].iloc[0]), rel=1e-5)
    assert np.isnan(table[table["role"] == "unseen"]["esr"]).all()
    assert table["asr_mean_db"].notna().all()
    for key in ("setting.gain_0.1.esr", "setting.gain_0.5.esr", "setting.gain_0.9.asr_mean_db", "capture.polarity"):
        assert key in m, key
    assert run.data.tags["conditioning"] == "concat" and run.data.tags["capture.level_trend"] == "rising"
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id, "settings")}
    assert {"settings/settings.csv", "settings/settings.md", "settings/esr_vs_knob.png"} <= artifacts
    assert "2 trained settings: ESR mean" in parametric_run["stdout"]


def test_exported_file_has_its_controls_and_matches_keras_at_every_setting_and_the_unseen_value(
    parametric_run: dict,
) -> None:
    import keras

    import rtnt.model.build  # noqa: F401  (registers SmoothTanh)
    from rtnt.native import NativeModel, native_available
    from rtnt.runtime.reference import ReferenceModel
    from rtnt.validate.parity import keras_predict

    out = parametric_run["out"]
    doc = json.loads((out / "model.json").read_text())
    assert doc["in_shape"] == [None, None, 2]
    assert doc["controls"] == [{"name": "gain", "minimum": 0.1, "maximum": 0.9, "default": 0.1}]
    table = pd.read_csv(out / "settings" / "settings.csv")
    assert (table["parity_error"] <= 1e-4).all(), table  # float32 tolerance of the gate
    if native_available():  # native validation ran at every setting, the unseen one included
        assert (table["native_parity_error"] <= 1e-4).all(), table
    model = keras.models.load_model(out / "model.keras", compile=False)
    reference = ReferenceModel.from_json(out / "model.json")
    x = np.random.default_rng(4).uniform(-0.8, 0.8, 4000).astype(np.float32)
    outputs = []
    for gain in (0.1, 0.5, 0.9, 0.3):
        reference.reset()
        y_ref = reference.process(x, np.array([gain], dtype=np.float32))
        y_keras = keras_predict(model, x, (gain,))
        np.testing.assert_allclose(y_ref, y_keras, atol=1e-4)
        if native_available():
            native = NativeModel.from_file(out / "model.json")
            native.prepare(512)
            np.testing.assert_allclose(native.process(x, np.array([gain], dtype=np.float32)), y_keras, atol=1e-4)
        outputs.append(y_keras)
    assert np.max(np.abs(outputs[0] - outputs[2])) > 1e-3  # the knob changes the output
