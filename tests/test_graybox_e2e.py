"""End to end: `rtnt-train train=smoke preset=graybox/wiener_hammerstein_cab` on the demo capture trains, exports
gray-box JSON with Keras parity, passes native validation and is benchmarked in the native runtime like every
RTNeural JSON, and `rtnt-export ir <run id>` writes the trained cabinet FIR."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import mlflow
import numpy as np
import pytest
import soundfile as sf

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def graybox_run(tmp_path_factory: pytest.TempPathFactory) -> dict:
    tmp = tmp_path_factory.mktemp("graybox_e2e")
    uri = f"sqlite:///{tmp / 'mlflow.db'}"
    mp = pytest.MonkeyPatch()
    mp.setenv("MLFLOW_TRACKING_URI", uri)
    command = [sys.executable, "-m", "rtnt.cli.train", "train=smoke", "preset=graybox/wiener_hammerstein_cab"]
    proc = subprocess.run(command + ["capture=demo"], cwd=tmp, capture_output=True, text=True, timeout=900)
    mp.undo()
    assert proc.returncode == 0, proc.stderr[-3000:]
    run_id = proc.stdout.split("MLflow run:")[1].split()[0]
    return {"proc": proc, "uri": uri, "run": mlflow.MlflowClient(uri).get_run(run_id), "cwd": tmp}


def test_the_run_finishes_with_parity_and_an_honest_gate(graybox_run: dict) -> None:
    proc, run = graybox_run["proc"], graybox_run["run"]
    assert run.info.status == "FINISHED" and run.data.tags["family"] == "graybox"
    output = (proc.stdout + proc.stderr).splitlines()  # Hydra logs to stdout
    assert not [line for line in output if "native runtime does not run" in line]
    assert run.data.metrics["parity_error"] < 1e-4 and run.data.metrics["native_validation"] == 1.0
    assert run.data.metrics["native_rtf_worst"] > 0
    assert "native_validation" not in run.data.tags.get("gate.failed", "")
    out_dir = Path(run.data.tags["rtnt.output_dir"])
    types = [layer["type"] for layer in json.loads((out_dir / "model.json").read_text())["layers"]]
    assert types == ["biquad", "gain", "dense", "dense", "dense", "biquad", "fir"]


def test_the_checkpoint_reloads_and_reproduces_the_export(graybox_run: dict) -> None:
    import keras

    import rtnt.model.build  # noqa: F401  (registers the gray-box blocks)
    from rtnt.runtime.reference import ReferenceModel

    out_dir = Path(graybox_run["run"].data.tags["rtnt.output_dir"])
    model = keras.models.load_model(out_dir / "model.keras", compile=False)
    x = np.random.default_rng(1).uniform(-0.8, 0.8, 9600).astype(np.float32)
    y_keras = np.asarray(model(x[None, :, None]))[0, :, 0]
    assert np.max(np.abs(y_keras - ReferenceModel.from_json(out_dir / "model.json").process(x))) < 1e-4


def test_export_ir_of_the_run_writes_its_trained_fir(graybox_run: dict, tmp_path: Path) -> None:
    run = graybox_run["run"]
    out = tmp_path / "cab.wav"
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from rtnt.cli.export import main; sys.exit(main())",
            "ir",
            run.info.run_id,
            "--out",
            str(out),
        ],  # fmt: skip
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "MLFLOW_TRACKING_URI": graybox_run["uri"]},
    )
    assert proc.returncode == 0, proc.stderr
    taps = json.loads((Path(run.data.tags["rtnt.output_dir"]) / "model.json").read_text())["layers"][-1]["weights"][0]
    wav, sr = sf.read(out, dtype="float32")
    assert sr == 48000 and wav.shape == (2048,)
    np.testing.assert_array_equal(wav, np.asarray(taps, dtype=np.float32))


def test_an_oversampled_chain_runs_end_to_end(tmp_path: Path) -> None:
    """`preset.oversampling=2` as a Hydra override: the ts9 chain trains, its file carries the filter pair, Keras
    and the file agree, the native runtime validates it and its ASR is measured."""
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    command = [sys.executable, "-m", "rtnt.cli.train", "train=smoke", "preset=graybox/ts9", "preset.oversampling=2"]
    proc = subprocess.run(
        command + ["capture=demo"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=900,
        env={**os.environ, "MLFLOW_TRACKING_URI": uri},
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    run = mlflow.MlflowClient(uri).get_run(proc.stdout.split("MLflow run:")[1].split()[0])
    assert run.info.status == "FINISHED" and run.data.params["preset.oversampling"] == "2"
    assert run.data.metrics["parity_error"] < 1e-4 and run.data.metrics["native_validation"] == 1.0
    assert np.isfinite(run.data.metrics["asr_mean_db"])
    layers = json.loads((Path(run.data.tags["rtnt.output_dir"]) / "model.json").read_text())["layers"]
    assert [layer.get("oversampling") for layer in layers] == [None] * 4  # parallel, PEQ, DC blocker, gain
    clean, clipped = layers[0]["branches"]  # the waveshaper sits in the clipped branch
    assert [b.get("oversampling", {}).get("factor") for b in clean + clipped] == [None, None, 2]


def test_the_run_logs_the_graybox_pictures_and_parameters(graybox_run: dict) -> None:
    client, run = mlflow.MlflowClient(graybox_run["uri"]), graybox_run["run"]
    logged = {a.path for a in client.list_artifacts(run.info.run_id, "graybox")}
    names = ("eq_response.png", "nonlinearity.png", "parameters.csv", "parameters.md")
    assert logged == {f"graybox/{n}" for n in names}
    table = (Path(run.data.tags["rtnt.output_dir"]) / "graybox" / "parameters.csv").read_text().splitlines()
    assert len(table) == 1 + 4 + 1 + 4  # header, PEQ(4), gain, PEQ(4)


@pytest.fixture(scope="module")
def knob_run(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """`rtnt-train train=smoke` of graybox/ts9 with a knob-controlled peaking gain (top-level PEQ b1) and output
    gain (b3) on a tiny synthetic capture set (three settings); the waveshaper sits inside ts9's parallel block,
    where controllers do not reach."""
    from parametric_support import smoke_parametric_run

    tmp = tmp_path_factory.mktemp("graybox_knob")
    run = smoke_parametric_run(
        tmp, "conditioning=concat", "preset=graybox/ts9", "preset.controlled=[b1.s1.gain_db,b3.gain_db]"
    )
    return {"run": mlflow.MlflowClient(run["uri"]).get_run(run["run_id"]), "out": run["out"]}


def test_a_knob_controlled_chain_trains_exports_and_matches_at_every_setting(knob_run: dict) -> None:
    import pandas as pd

    run, out = knob_run["run"], knob_run["out"]
    assert run.info.status == "FINISHED" and run.data.tags["conditioning"] == "concat"
    doc = json.loads((out / "model.json").read_text())
    assert doc["in_shape"] == [None, None, 2] and [c["name"] for c in doc["controls"]] == ["gain"]
    controlled = {(c["parameter"], c.get("section")) for layer in doc["layers"] for c in layer.get("controllers", [])}
    assert controlled == {("gain_db", None), ("gain_db", 1)}  # b3 (gain), section 1 of b1 (peq)
    table = pd.read_csv(out / "settings" / "settings.csv")
    assert sorted(table["role"]) == ["train", "train", "train", "unseen"]
    assert table["parity_error"].max() < 1e-4 and table["native_parity_error"].max() < 1e-5
    assert run.data.metrics["native_validation"] == 1.0
    assert (out / "graybox" / "nonlinearity.png").is_file()
