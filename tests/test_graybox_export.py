"""Gray-box export (rtnt.export.graybox) and its reference runtime (rtnt.runtime.graybox): Keras vs exported JSON
parity per block and per shipped chain (1e-4 max abs, the pipeline's tolerance), block-size invariance of the
reference (1e-6), the JSON layer types, config errors, native validation in the pipeline, and `rtnt-export ir`."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from omegaconf import OmegaConf

from rtnt.config import CONF_DIR, RtntConfig, load_preset, preset_config, validate_config
from rtnt.errors import ConfigError, ExportError

TOL = 1e-4
CHAINS = sorted(p.stem for p in (CONF_DIR / "preset" / "graybox").glob("*.yaml"))
ONE_BLOCK = {
    "gain": {"type": "gain", "gain_db": -4.0},
    "dc_blocker": {"type": "dc_blocker", "pole": 0.99},
    "peq": {
        "type": "peq",
        "sections": [
            {"kind": "low_shelf", "freq_hz": 150.0, "q": 0.7, "gain_db": 5.0},
            {"kind": "peaking", "freq_hz": 1200.0, "q": 2.0, "gain_db": -6.0},
            {"kind": "lowpass", "freq_hz": 7000.0, "q": 0.8},
        ],
    },
    "fir_long": {"type": "fir", "taps": 700},
    "fir_short": {"type": "fir", "taps": 24},
    "waveshaper": {"type": "waveshaper", "drive_db": 20.0, "bias": 0.3, "gain_db": -6.0},
    "mlp": {"type": "mlp", "hidden": [8, 8]},
    "conv_stack": {"type": "conv_stack", "channels": 4, "dilations": [1, 2, 4]},
}


def _x(n: int = 24000, seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).uniform(-0.8, 0.8, n).astype(np.float32)


def _model(blocks: list[dict]):
    from rtnt.model.build import build_model

    model = build_model(preset_config({"name": "t", "arch": "graybox", "blocks": blocks}))
    rng = np.random.default_rng(5)
    for layer in model.layers:  # move the FIRs off their identity start so parity tests real taps
        if type(layer).__name__ == "FIR":
            layer.kernel.assign(rng.standard_normal(layer.taps).astype(np.float32) * 0.05)
    return model


def _parity(model) -> tuple[float, dict]:
    from rtnt.export.graybox import export_graybox
    from rtnt.runtime.reference import ReferenceModel
    from rtnt.validate.parity import keras_predict

    doc = json.loads(json.dumps(export_graybox(model)))
    x = _x()
    y_ref = ReferenceModel.from_json(doc).process(x)
    return float(np.max(np.abs(keras_predict(model, x) - y_ref))), doc


@pytest.mark.parametrize("name", sorted(ONE_BLOCK))
def test_every_block_exports_with_parity(name: str) -> None:
    error, doc = _parity(_model([ONE_BLOCK[name]]))
    assert error < TOL
    types = [layer["type"] for layer in doc["layers"]]
    expected = {
        "gain": ["gain"],
        "dc_blocker": ["biquad"],
        "peq": ["biquad"],
        "fir_long": ["fir"],
        "fir_short": ["conv1d"],
        "waveshaper": ["waveshaper"],
        "mlp": ["dense", "dense", "dense"],
        "conv_stack": ["conv1d"] * 4,
    }[name]
    assert types == expected and doc["rtnt_format"] == "graybox-1"


@pytest.mark.parametrize("chain", CHAINS)
def test_every_shipped_chain_exports_with_parity_and_streams_block_invariantly(chain: str) -> None:
    from rtnt.model.build import build_model
    from rtnt.runtime.reference import ReferenceModel

    model = build_model(load_preset(CONF_DIR / "preset" / "graybox" / f"{chain}.yaml"))
    error, doc = _parity(model)
    assert error < TOL
    ref, x = ReferenceModel.from_json(doc), _x(5000, seed=2)
    whole = ref.process(x)
    for block in (1, 77, 512):
        ref.reset()
        parts = np.concatenate([ref.process(x[i : i + block]) for i in range(0, len(x), block)])
        assert np.max(np.abs(parts - whole)) < 1e-6


def test_ts9_is_a_small_pedal() -> None:
    from rtnt.model.summary import model_summary

    assert model_summary(load_preset(CONF_DIR / "preset" / "graybox" / "ts9.yaml")).params < 500


def test_the_exported_biquad_keeps_the_players_parameters() -> None:
    _, doc = _parity(_model([ONE_BLOCK["peq"]]))
    params = doc["layers"][0]["parameters"]
    assert [p["kind"] for p in params] == ["low_shelf", "peaking", "lowpass"]
    assert params[1]["freq_hz"] == pytest.approx(1200.0, rel=1e-5) and params[1]["gain_db"] == pytest.approx(-6.0)


@pytest.mark.parametrize(
    ("block", "key"),
    [
        ({"type": "reverb"}, "preset.blocks.0.type"),
        ({"type": "peq", "sections": [{"kind": "notch", "freq_hz": 100.0}]}, "preset.blocks.0.sections.0.kind"),
        ({"type": "peq", "sections": [{"freq_hz": 30000.0}]}, "preset.blocks.0.sections.0.freq_hz"),
        ({"type": "dc_blocker", "pole": 1.0}, "preset.blocks.0.pole"),
        ({"type": "fir", "taps": 0}, "preset.blocks.0.taps"),
        ({"type": "conv_stack", "trainable": False}, "preset.blocks.0.trainable"),
    ],
)
def test_bad_blocks_are_refused_in_one_line(block: dict, key: str) -> None:
    cfg = OmegaConf.structured(RtntConfig)
    cfg.capture.input, cfg.capture.target = "in.wav", "out.wav"
    cfg.preset = preset_config({"name": "t", "arch": "graybox", "blocks": [block]})
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")) as info:
        validate_config(cfg)
    assert "\n" not in str(info.value)


def test_a_graybox_file_renders_natively_and_is_native_validated(tmp_path: Path) -> None:
    from rtnt.export import export_model
    from rtnt.native import native_available
    from rtnt.runtime.reference import ReferenceModel
    from rtnt.validate.evidence import Renderer, native_check, native_evidence

    if not native_available():
        pytest.skip("rtnt._native is not built")
    path = export_model(_model([ONE_BLOCK["peq"], ONE_BLOCK["waveshaper"], ONE_BLOCK["fir_long"]]), tmp_path)
    renderer = Renderer(path, prefer_native=True)
    assert renderer.native
    x = _x(4000)
    expected = ReferenceModel.from_json(path).process(x)
    assert np.max(np.abs(renderer(x) - expected)) < 1e-5
    validate = {"native": True, "validation_block_sizes": [1, 64, 4096], "bench_block_sizes": [1], "bench_seconds": 0.1}
    cfg = OmegaConf.create({"validate": validate, "gate": {"native_tolerance": 1e-5}})
    evidence = native_evidence(cfg, renderer, [native_check(cfg, renderer, x, expected)])
    assert evidence.status == "measured" and evidence.metrics()["native_validation"] == 1.0
    wrong = native_evidence(cfg, renderer, [native_check(cfg, renderer, x, expected + 1e-2)])  # the check can fail
    assert wrong.metrics()["native_validation"] == 0.0


@pytest.mark.slow
def test_rtnt_evaluate_measures_a_graybox_file(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    import mlflow

    from rtnt.export import export_model

    path = export_model(_model([ONE_BLOCK["gain"], ONE_BLOCK["fir_long"]]), tmp_path)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    fast_bench = ["validate.bench_seconds=0.25", "validate.bench_block_sizes=[1,128]"]
    proc = subprocess.run(
        [sys.executable, "-m", "rtnt.cli.evaluate", str(path), "capture=demo", *fast_bench],
        cwd=tmp_path,
        env={**os.environ, "MLFLOW_TRACKING_URI": uri},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    run = mlflow.MlflowClient(uri).get_run(proc.stdout.split("MLflow run:")[1].split()[0])
    assert run.data.tags["family"] == "graybox" and run.data.metrics["native_validation"] == 1
    assert np.isfinite(run.data.metrics["native_rtf_worst"])


def test_export_ir_writes_the_final_fir_as_a_48k_float_wav(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from rtnt.cli.export import main
    from rtnt.export import export_model

    model = _model([ONE_BLOCK["fir_long"], ONE_BLOCK["waveshaper"], {"type": "fir", "taps": 2048}])
    path = export_model(model, tmp_path)
    assert main(["ir", str(path), "--out", str(tmp_path / "cab.wav")]) == 0
    taps = np.asarray(model.get_layer("b2_fir").kernel.numpy())
    wav, sr = sf.read(tmp_path / "cab.wav", dtype="float32")
    assert sr == 48000 and sf.info(tmp_path / "cab.wav").subtype == "FLOAT"
    np.testing.assert_array_equal(wav, taps)  # the final FIR, not the first
    impulse = np.zeros(3000, np.float32)
    impulse[0] = 1.0
    np.testing.assert_allclose(np.convolve(impulse, wav)[: taps.size], taps, atol=1e-7)


def test_export_ir_refuses_a_model_without_fir_in_one_line(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from rtnt.cli.export import main
    from rtnt.export import export_model
    from rtnt.export.ir import final_fir

    path = export_model(_model([ONE_BLOCK["gain"]]), tmp_path)
    assert main(["ir", str(path), "--out", str(tmp_path / "cab.wav")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "no FIR block" in err and err.count("\n") == 1
    assert not (tmp_path / "cab.wav").exists()
    with pytest.raises(ExportError):
        final_fir({"layers": [{"type": "conv1d"}]}, "x")


def test_cabinet_spectra_recover_the_ir_that_coloured_the_target() -> None:
    """A target made by convolving noise with a known IR has, over 100 Hz-10 kHz, the IR's response as its
    long-term spectrum (within 1.5 dB), and the dry input through the IR equals the target."""
    from scipy.signal import firwin, lfilter

    from rtnt.export.ir import cabinet_spectra

    ir = firwin(255, [150.0, 4000.0], pass_zero=False, fs=48000).astype(np.float32)
    dry = np.random.default_rng(3).standard_normal(48000 * 30).astype(np.float32)
    target = lfilter(ir, [1.0], dry)
    s = cabinet_spectra(ir, target, dry)
    band = (s.freqs_hz >= 100) & (s.freqs_hz <= 10000) & (s.ir_db > -30)
    assert np.max(np.abs(s.target_db[band] - s.ir_db[band])) < 1.5
    np.testing.assert_allclose(s.dry_through_ir_db, s.target_db, atol=0.05)


def test_export_ir_against_a_capture_draws_the_response_or_refuses_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    from rtnt.cli.export import main
    from rtnt.export import export_model

    path = export_model(_model([ONE_BLOCK["waveshaper"], {"type": "fir", "taps": 256}]), tmp_path)
    noise = np.random.default_rng(4).standard_normal(48000).astype(np.float32) * 0.1
    sf.write(tmp_path / "target.wav", noise, 48000)
    sf.write(tmp_path / "slow.wav", noise, 44100)
    assert main(["ir", str(path), "--out", str(tmp_path / "cab.wav"), "--against", str(tmp_path / "target.wav")]) == 0
    assert (tmp_path / "cab.png").stat().st_size > 10_000
    assert main(["ir", str(path), "--out", str(tmp_path / "c2.wav"), "--against", str(tmp_path / "slow.wav")]) == 2
    err = capsys.readouterr().err.splitlines()[-1]
    assert err.startswith("error: --against") and "44100 Hz" in err
    (tmp_path / "notes.txt").write_text("not audio")
    for bad, expected in (("missing.wav", "(--against=PATH)"), ("notes.txt", "export it as WAV, FLAC or AIFF")):
        assert main(["ir", str(path), "--out", str(tmp_path / "c3.wav"), "--against", str(tmp_path / bad)]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("error: ") and "--against" in err[0] and expected in err[0]


def test_a_graybox_file_describes_itself_like_every_export(tmp_path: Path) -> None:
    """The gray-box JSON gets the same top-level `metadata` object as RTNeural JSON and `.nam` (#18), its loudness
    measured in the reference runtime; the layers are what the export without metadata writes."""
    from rtnt.export import export_model
    from rtnt.export.graybox import export_graybox
    from rtnt.export.metadata import ModelMetadata, loudness_input, output_levels
    from rtnt.runtime.reference import ReferenceModel

    model = _model([ONE_BLOCK["peq"], ONE_BLOCK["waveshaper"], ONE_BLOCK["fir_long"]])
    path = export_model(model, tmp_path, ModelMetadata(name="pedal", gear_type="pedal", run_id="r1"))
    doc = json.loads(path.read_text())
    meta = doc.pop("metadata")
    assert doc == json.loads(json.dumps(export_graybox(model)))
    assert meta["gear_type"] == "pedal" and meta["rtnt"]["run_id"] == "r1"
    rms_db, _ = output_levels(ReferenceModel.from_json(doc).process(loudness_input()))
    assert meta["loudness"] == pytest.approx(rms_db, abs=1e-3)
