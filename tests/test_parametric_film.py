"""End to end: `rtnt-train train=smoke capture=files_parametric conditioning=film` on the tiny synthetic capture set
of test_parametric_train (3 s, three settings, one held out): the run writes the per-setting evidence as a concat
run does, and the exported film-1 file matches Keras in the reference and native runtimes at every setting and at
an unseen value."""

from __future__ import annotations

import json

import mlflow
import numpy as np
import pandas as pd
import pytest
from parametric_support import smoke_parametric_run

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def film_run(tmp_path_factory: pytest.TempPathFactory) -> dict:
    return smoke_parametric_run(
        tmp_path_factory.mktemp("parametric_film"),
        "conditioning=film",
        "conditioning.film_hidden=8",
        "preset=wavenet_tcn_edge",
        "capture.holdout=[0.5]",
    )


def test_film_run_logs_the_per_setting_evidence(film_run: dict) -> None:
    client = mlflow.MlflowClient(film_run["uri"])
    run = client.get_run(film_run["run_id"])
    table = pd.read_csv(film_run["out"] / "settings" / "settings.csv")
    assert list(table["role"]) == ["train", "holdout", "train", "unseen"]
    worst = table[table["role"] == "train"]["esr"].max()
    assert run.data.metrics["esr_worst_setting"] == pytest.approx(worst, rel=1e-5)
    assert run.data.tags["conditioning"] == "film"
    assert (table["parity_error"] <= 1e-4).all(), table
    from rtnt.native import native_available

    if native_available():
        assert (table["native_parity_error"] <= 1e-4).all(), table
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id, "settings")}
    assert {"settings/settings.csv", "settings/esr_vs_knob.png"} <= artifacts


def test_film_export_matches_keras_at_every_setting_and_an_unseen_value(film_run: dict) -> None:
    import keras

    import rtnt.model.build  # noqa: F401  (registers the FiLM layers)
    from rtnt.native import NativeModel, native_available
    from rtnt.runtime.reference import ReferenceModel
    from rtnt.validate.parity import keras_predict

    out = film_run["out"]
    doc = json.loads((out / "model.json").read_text())
    assert doc["rtnt_format"] == "film-1" and doc["in_shape"] == [None, None, 2]
    assert doc["controls"] == [{"name": "gain", "minimum": 0.1, "maximum": 0.9, "default": 0.1}]
    assert len(doc["film"]["mlp"]) == 2 and len(doc["film"]["mlp"][0]["weights"][1]) == 8
    model = keras.models.load_model(out / "model.keras", compile=False)
    reference = ReferenceModel.from_json(out / "model.json")
    x = np.random.default_rng(4).uniform(-0.8, 0.8, 4000).astype(np.float32)
    for gain in (0.1, 0.5, 0.9, 0.3):
        reference.reset()
        y_keras = keras_predict(model, x, (gain,))
        np.testing.assert_allclose(reference.process(x, np.array([gain], np.float32)), y_keras, atol=1e-4)
        if native_available():
            native = NativeModel.from_file(out / "model.json")
            native.prepare(512)
            np.testing.assert_allclose(native.process(x, np.array([gain], np.float32)), y_keras, atol=1e-4)
