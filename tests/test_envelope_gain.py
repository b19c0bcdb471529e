"""The envelope gain after a `.nam` network (rtnt.runtime.envelope_gain, docs/envelope_gain_format.md): its
definition, the native runtime against the numpy reference, real-time rules, the fit, malformed files, the
config, and a training run that exports, validates and evaluates a "nam-envelope-gain-1" file end to end."""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pytest
from hydra import compose
from test_device_and_registry import run_module

from rtnt.config import REPO_DIR, validate_config
from rtnt.data.splits import Region
from rtnt.errors import ConfigError, ModelJsonError
from rtnt.export.envelope_gain import fit_envelope_gain
from rtnt.metrics.esr import esr
from rtnt.native import NativeModel, native_available
from rtnt.runtime import load_reference
from rtnt.runtime.envelope_gain import FORMAT, EnvelopeGain, EnvelopeGainSpec, NamEnvelopeGainModel, envelopes_db

pytestmark = pytest.mark.skipif(not native_available(), reason="rtnt._native is not built (pip install -e .)")

SR = 48000
CORPUS = REPO_DIR / "native" / "fuzz" / "corpus"
NAM = json.loads((CORPUS / "nam_wavenet_a1.nam").read_text())  # a tiny A1-form WaveNet
WEIGHTS = (-2.0, -0.15, -0.1)


def chain(weights: tuple[float, float, float] = WEIGHTS, **stage: Any) -> dict[str, Any]:
    spec = {"attack_ms": 1.0, "release_ms": 30.0, "level_ms": 10.0, "floor_db": -80.0, "max_gain_db": 12.0}
    return {"rtnt_format": FORMAT, "nam": NAM, "envelope_gain": {**spec, **stage, "weights": list(weights)}}


def guitar_like(n: int, seed: int = 0) -> np.ndarray:
    """Decaying plucks of filtered noise at several levels: attacks, releases and silence."""
    rng = np.random.default_rng(seed)
    t = np.arange(n) / SR
    x = np.zeros(n)
    for start in range(0, n, SR // 5):
        env = np.exp(-(t[: n - start]) * rng.uniform(3, 20)) * rng.uniform(0.01, 0.8)
        x[start:] += env * np.sin(2 * np.pi * rng.uniform(80, 600) * t[: n - start])
    return x.astype(np.float32)


def native(doc: dict[str, Any], tmp_path: Path, prewarm: bool = True) -> NativeModel:
    path = tmp_path / "chain.json"
    path.write_text(json.dumps(doc))
    model = NativeModel.from_file(path, prewarm=prewarm)
    model.prepare(4096)
    return model


@pytest.mark.parametrize("prewarm", [False, True])
def test_native_matches_the_reference(tmp_path: Path, prewarm: bool) -> None:
    x = guitar_like(SR)
    model = native(chain(), tmp_path, prewarm)
    model.reset()
    reference = NamEnvelopeGainModel.from_dict(chain(), prewarm=prewarm)
    y_native, y_reference = np.asarray(model.process(x)), reference.process(x)
    assert np.max(np.abs(y_native - y_reference)) <= 1e-5 * max(1.0, float(np.max(np.abs(y_reference))))
    gain = y_reference / np.where(NamModelOutput.of(x, prewarm) == 0, 1, NamModelOutput.of(x, prewarm))
    assert np.ptp(gain[SR // 10 :]) > 0.1  # the stage changes the gain over time: the test sees it work


class NamModelOutput:
    """The network alone, as the chain runs it."""

    @staticmethod
    def of(x: np.ndarray, prewarm: bool) -> np.ndarray:
        from rtnt.runtime.nam_reference import NamModel

        net = NamModel.from_dict(copy.deepcopy(NAM), prewarm=False)
        if prewarm:
            net.process(np.zeros(net.receptive_field, dtype=np.float32))
        return net.process(x)


def test_any_partition_and_two_instances_give_the_same_samples(tmp_path: Path) -> None:
    x = guitar_like(SR // 2, seed=1)
    a, b = native(chain(), tmp_path), native(chain(), tmp_path)
    a.reset()
    whole = np.asarray(a.process(x))
    for block in (1, 7, 64, 4096):
        a.reset()
        assert np.array_equal(np.asarray(a.process_blocks(x, block)), whole), block
    a.reset()
    b.reset()
    halves = [np.asarray(m.process(x[i : i + 1000])) for i in range(0, len(x), 1000) for m in (a, b)]
    assert np.array_equal(np.concatenate(halves[0::2]), whole) and np.array_equal(np.concatenate(halves[1::2]), whole)


def test_unity_constant_and_clamped_gains(tmp_path: Path) -> None:
    x = guitar_like(SR // 4, seed=2)
    net = NamModelOutput.of(x, prewarm=True)
    for weights, db in (((0.0, 0.0, 0.0), 0.0), ((6.0, 0.0, 0.0), 6.0), ((50.0, 0.0, 0.0), 12.0)):
        model = native(chain(weights), tmp_path)
        model.reset()
        y = np.asarray(model.process(x))
        np.testing.assert_allclose(y, net * 10 ** (db / 20), rtol=2e-6, atol=1e-6)  # float32 network vs float64


def test_the_peak_follower_rises_with_attack_and_falls_with_release() -> None:
    spec = EnvelopeGainSpec(attack_ms=2.0, release_ms=50.0, level_ms=10.0, floor_db=-120.0)
    step = np.concatenate([np.full(480, 0.5), np.zeros(4800)])
    peak_db, level_db = envelopes_db(step, spec, SR)
    rise, fall = math.exp(-1000 / (2.0 * SR)), math.exp(-1000 / (50.0 * SR))
    n = np.arange(480)
    np.testing.assert_allclose(10 ** (peak_db[:480] / 20), 0.5 * (1 - rise ** (n + 1)), rtol=1e-9)
    top = 0.5 * (1 - rise**480)
    np.testing.assert_allclose(10 ** (peak_db[480:] / 20), top * fall ** (np.arange(4800) + 1), rtol=1e-9)
    keep = math.exp(-1000 / (10.0 * SR))
    np.testing.assert_allclose(10 ** (level_db[:480] / 10), 0.25 * (1 - keep ** (n + 1)), rtol=1e-9)


def test_the_fit_recovers_a_known_stage() -> None:
    y_model = guitar_like(3 * SR, seed=3).astype(np.float64)
    truth = EnvelopeGainSpec(release_ms=300.0, weights=(-0.8, -0.05, -0.04))
    y_target = EnvelopeGain(truth, SR).process(y_model)
    fitted = fit_envelope_gain(y_model, y_target, Region("val", SR, 3 * SR), EnvelopeGainSpec(release_ms=300.0), SR)
    np.testing.assert_allclose(fitted.weights, truth.weights, atol=2e-3)
    y_fit = EnvelopeGain(fitted, SR).process(y_model)
    assert esr(y_target[SR:], y_fit[SR:]) < 1e-6


def test_receptive_field_covers_the_stage_s_settling(tmp_path: Path) -> None:
    model = native(chain(), tmp_path)
    reference = NamEnvelopeGainModel.from_dict(chain())
    settling = math.ceil(10 * 30.0 * SR / 1000)  # 10 of the longest time constant (release, 30 ms)
    assert model.receptive_field == reference.receptive_field == reference.net.receptive_field + settling
    assert type(load_reference(CORPUS / "nam_envelope_gain.json")) is NamEnvelopeGainModel


def _without(key: str) -> dict[str, Any]:
    doc = chain()
    del doc["envelope_gain"][key]
    return doc


def _with(**stage: Any) -> dict[str, Any]:
    doc = chain()
    doc["envelope_gain"].update(stage)
    return doc


def _nam_without_rate() -> dict[str, Any]:
    doc = chain()
    doc["nam"] = {k: v for k, v in NAM.items() if k != "sample_rate"}
    return doc


MALFORMED = {
    "no stage": ({k: v for k, v in chain().items() if k != "envelope_gain"}, "'envelope_gain' is missing"),
    "unknown member": (_with(ratio=4), "unknown member 'ratio'"),
    "missing release": (_without("release_ms"), "envelope_gain.release_ms"),
    "zero release": (_with(release_ms=0), "envelope_gain.release_ms"),
    "string attack": (_with(attack_ms="1"), "envelope_gain.attack_ms"),
    "floor above -20 dB": (_with(floor_db=0), "envelope_gain.floor_db"),
    "two weights": (_with(weights=[1, 2]), "array of 3 numbers"),
    "huge weight": (_with(weights=[0, 1e9, 0]), "weights[1]"),
    "no network": ({k: v for k, v in chain().items() if k != "nam"}, "'nam'"),
    "network without sample rate": (_nam_without_rate(), "sample_rate"),
}


@pytest.mark.parametrize("case", MALFORMED)
def test_malformed_files_are_refused_in_one_line_by_both_runtimes(tmp_path: Path, case: str) -> None:
    doc, words = MALFORMED[case]
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(doc))
    for load in (NativeModel.from_file, NamEnvelopeGainModel.from_file):
        with pytest.raises(ModelJsonError) as err:
            load(path)
        assert words in str(err.value) and "\n" not in str(err.value), (load, str(err.value))


def test_a_knob_conditioned_network_is_refused(tmp_path: Path) -> None:
    doc = chain()
    doc["nam"] = json.loads((CORPUS / "nam_knobs.nam").read_text())
    path = tmp_path / "knobs.json"
    path.write_text(json.dumps(doc))
    for load in (NativeModel.from_file, NamEnvelopeGainModel.from_file):
        with pytest.raises(ModelJsonError, match="mono, unconditioned"):
            load(path)


@pytest.mark.parametrize(
    ("overrides", "words"),
    [
        (["preset.envelope_gain.release_ms=0"], "preset.envelope_gain.release_ms"),
        (["preset.envelope_gain.max_gain_db=60"], "preset.envelope_gain.max_gain_db"),
        (["preset.envelope_gain.fit_region=test"], "preset.envelope_gain.fit_region"),
    ],
)
def test_config_refuses_a_bad_stage(hydra_conf: None, overrides: list[str], words: str) -> None:
    cfg = compose("config", overrides=["preset=wavenet_a1_standard_envelope", *overrides])
    with pytest.raises(ConfigError, match=words):
        validate_config(cfg)


def test_config_refuses_a_stage_on_a_knob_model(hydra_conf: None) -> None:
    cfg = compose(
        "config", overrides=["preset=wavenet_a1_nano", "preset.envelope_gain.enabled=true", "capture=parametric_amp"]
    )
    cfg.conditioning.method = "concat"
    with pytest.raises(ConfigError, match="envelope_gain"):
        validate_config(cfg)


def test_the_envelope_preset_is_a1_standard_with_the_stage(hydra_conf: None) -> None:
    with_stage = compose("config", overrides=["preset=wavenet_a1_standard_envelope"]).preset
    plain = compose("config", overrides=["preset=wavenet_a1_standard"]).preset
    assert with_stage.layer_arrays == plain.layer_arrays and with_stage.head_scale == plain.head_scale
    assert with_stage.envelope_gain.enabled and not plain.envelope_gain.enabled


@pytest.fixture(scope="module")
def staged_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, str]:
    """A smoke training run of the nano WaveNet with a short-memory envelope gain: (cwd, tracking uri, run id)."""
    cwd = tmp_path_factory.mktemp("envelope_run")
    uri = f"sqlite:///{cwd / 'mlflow.db'}"
    stage = [f"preset.envelope_gain.{k}" for k in ("enabled=true", "release_ms=50", "level_ms=20")]
    proc = run_module("rtnt.cli.train", cwd, uri, "train=smoke", "preset=wavenet_a1_nano", *stage, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return cwd, uri, proc.stdout.split("MLflow run:")[1].split()[0]


@pytest.mark.slow
def test_training_exports_and_validates_the_staged_file(staged_run: tuple[Path, str, str]) -> None:
    _, uri, run_id = staged_run
    client = mlflow.MlflowClient(uri)
    run = client.get_run(run_id)
    m = run.data.metrics
    assert m["parity_error"] < 1e-4 and m["native_validation"] == 1 and np.isfinite(m["native_rtf_worst"])
    assert np.isfinite(m["nam_esr"]) and np.isfinite(m["nam_esr_val"])
    assert {"model.json", "model.nam"} <= {a.path for a in client.list_artifacts(run_id)}
    out = Path(run.data.tags["rtnt.output_dir"])
    staged, nam = json.loads((out / "model.json").read_text()), json.loads((out / "model.nam").read_text())
    assert staged["rtnt_format"] == FORMAT and staged["nam"]["weights"] == nam["weights"]
    assert staged["metadata"]["training"]["test_esr"] == pytest.approx(m["esr"])
    assert nam["metadata"]["training"]["test_esr"] == pytest.approx(m["nam_esr"])  # the .nam states its own
    reference = NamEnvelopeGainModel.from_file(out / "model.json")
    assert reference.stage.spec.weights != (0.0, 0.0, 0.0)  # fitted


@pytest.mark.slow
def test_evaluate_and_bench_run_the_staged_file(staged_run: tuple[Path, str, str]) -> None:
    cwd, uri, run_id = staged_run
    model = Path(mlflow.MlflowClient(uri).get_run(run_id).data.tags["rtnt.output_dir"]) / "model.json"
    fast = ("validate.bench_seconds=0.25", "validate.bench_block_sizes=[1,128]")
    proc = run_module("rtnt.cli.evaluate", cwd, uri, str(model), "capture=demo", *fast)
    assert proc.returncode == 0, proc.stderr[-3000:]
    evaluated = mlflow.MlflowClient(uri).get_run(proc.stdout.split("MLflow run:")[1].split()[0])
    assert evaluated.data.tags["family"] == "nam-envelope-gain"
    assert evaluated.data.metrics["native_validation"] == 1 and evaluated.data.metrics["parity_error"] < 1e-4
    bench = run_module("rtnt.cli.bench", cwd, uri, str(model), "--seconds", "0.3", "--blocks", "1,64", "--json")
    assert bench.returncode == 0, bench.stderr[-3000:]
    assert "envelope gain" in bench.stdout
