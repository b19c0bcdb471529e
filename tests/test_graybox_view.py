"""The gray-box pictures (rtnt.export.graybox_view, issue #16 Deliver 5): EQ responses match scipy.signal.freqz of
the file's coefficients and the RBJ parameters they were made from, nonlinearity curves match the reference
runtime and the waveshaper formula, the parameter table reads the file, and `rtnt-export graybox-view` writes
them for a file or errs in one line."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import scipy.signal

from rtnt.cli.export import main as export_main
from rtnt.constants import SAMPLE_RATE
from rtnt.errors import ExportError
from rtnt.export.graybox_view import biquad_response, frequency_grid, graybox_view, write_graybox_view
from rtnt.model.graybox.rbj import rbj_coefficients

SECTIONS = [
    {"kind": "low_shelf", "freq_hz": 150.0, "q": 0.7, "gain_db": 5.0},
    {"kind": "peaking", "freq_hz": 1200.0, "q": 2.0, "gain_db": -6.0},
    {"kind": "lowpass", "freq_hz": 7000.0, "q": 0.8, "gain_db": 0.0},
]


def _coefficients() -> np.ndarray:
    rows = [rbj_coefficients(s["kind"], s["freq_hz"], s["q"], s["gain_db"], SAMPLE_RATE, np) for s in SECTIONS]
    return np.array(rows)


def _document() -> dict:
    rng = np.random.default_rng(3)
    mlp = [
        {"type": "dense", "activation": "tanh", "shape": [None, None, 6],
         "weights": [rng.standard_normal((1, 6)).tolist(), rng.standard_normal(6).tolist()]},
        {"type": "dense", "activation": "", "shape": [None, None, 1],
         "weights": [rng.standard_normal((6, 1)).tolist(), [0.1]]},
    ]  # fmt: skip
    return {
        "rtnt_format": "graybox-1",
        "in_shape": [None, None, 1],
        "layers": [
            {"type": "biquad", "activation": "", "shape": [None, None, 1], "sections": 3, "parameters": SECTIONS,
             "weights": [_coefficients().tolist()]},
            {"type": "waveshaper", "activation": "", "shape": [None, None, 1], "weights": [[4.0, 0.2, 0.5]]},
            {"type": "gain", "activation": "", "shape": [None, None, 1], "weights": [[2.0]]},
            *mlp,
            {"type": "biquad", "activation": "", "shape": [None, None, 1], "sections": 1,
             "parameters": [{"kind": "dc_blocker", "pole": 0.995}], "weights": [[[1.0, -1.0, 0.0, -0.995, 0.0]]]},
        ],
    }  # fmt: skip


def test_eq_response_matches_scipy_freqz_of_each_section_and_their_product() -> None:
    f = frequency_grid()
    assert f[0] == pytest.approx(20.0) and f[-1] == pytest.approx(24000.0)
    total, per_section = biquad_response(_coefficients(), f)

    def db(h: np.ndarray) -> np.ndarray:  # floored at -240 dB (the low-pass's zero at Nyquist)
        return 20 * np.log10(np.maximum(np.abs(h), 1e-12))

    product = np.ones(len(f), dtype=complex)
    for j, c in enumerate(_coefficients()):
        _, h = scipy.signal.freqz(c[:3], [1.0, c[3], c[4]], worN=f, fs=SAMPLE_RATE)
        np.testing.assert_allclose(per_section[j], db(h), atol=1e-9)
        product *= h
    np.testing.assert_allclose(total, db(product), atol=1e-9)
    # the RBJ figures read: the peaking section is -6 dB at its centre, the shelf +5 dB far below its corner
    _, h_peak = scipy.signal.freqz(_coefficients()[1][:3], [1, *_coefficients()[1][3:]], worN=[1200.0], fs=SAMPLE_RATE)
    assert 20 * np.log10(abs(h_peak[0])) == pytest.approx(-6.0, abs=1e-9)
    assert per_section[0][0] == pytest.approx(5.0, abs=0.1)


def test_curves_are_the_reference_runtimes_and_the_waveshaper_formula() -> None:
    from rtnt.runtime.reference import ReferenceModel

    doc = _document()
    view = graybox_view(doc)
    assert [(c.kind, c.first, c.last) for c in view.curves] == [("waveshaper", 1, 1), ("mlp", 3, 4)]
    assert [e.layer for e in view.eqs] == [0, 5]
    ws, mlp = view.curves
    assert ws.x[0] == pytest.approx(-1.5) and ws.x[-1] == pytest.approx(1.5)
    expected = 0.5 * (np.tanh(4.0 * ws.x.astype(np.float64) + 0.2) - np.tanh(0.2))
    np.testing.assert_allclose(ws.y, expected, atol=1e-6)
    mlp_only = ReferenceModel.from_json({"in_shape": [None, None, 1], "layers": doc["layers"][3:5]})
    np.testing.assert_array_equal(mlp.y, mlp_only.process(mlp.x))
    w = doc["layers"][3]["weights"], doc["layers"][4]["weights"]
    by_hand = np.tanh(mlp.x[:, None] @ np.array(w[0][0]) + np.array(w[0][1])) @ np.array(w[1][0]) + w[1][1]
    np.testing.assert_allclose(mlp.y, by_hand[:, 0], atol=1e-5)


def test_parameter_table_reads_the_file() -> None:
    rows = graybox_view(_document()).parameters
    assert [(r["block"], r["kind"]) for r in rows] == [
        ("biquad", "low_shelf"), ("biquad", "peaking"), ("biquad", "lowpass"), ("waveshaper", "tanh"),
        ("gain", "linear"), ("biquad", "dc_blocker"),
    ]  # fmt: skip
    assert rows[1]["freq_hz"] == 1200.0 and rows[1]["q"] == 2.0 and rows[1]["gain_db"] == -6.0
    assert rows[2]["gain_db"] == ""  # a low-pass has no gain
    assert rows[3]["drive_db"] == pytest.approx(20 * math.log10(4.0)) and rows[3]["bias"] == pytest.approx(0.2)
    assert rows[3]["gain_db"] == pytest.approx(20 * math.log10(0.5))
    assert rows[4]["gain_db"] == pytest.approx(20 * math.log10(2.0)) and rows[5]["pole"] == 0.995


def test_write_and_cli_make_the_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    paths = write_graybox_view(graybox_view(_document()), tmp_path / "a")
    assert sorted(p.name for p in paths) == ["eq_response.png", "nonlinearity.png", "parameters.csv", "parameters.md"]
    assert all(p.stat().st_size > 0 for p in paths)
    model = tmp_path / "model.json"
    model.write_text(json.dumps(_document()))
    assert export_main(["graybox-view", str(model), "--out", str(tmp_path / "b")]) == 0
    assert (tmp_path / "b" / "eq_response.png").is_file() and "parameters.md" in capsys.readouterr().out
    header = (tmp_path / "b" / "parameters.csv").read_text().splitlines()[0]
    assert header == "layer,block,section,kind,freq_hz,q,gain_db,pole,drive_db,bias"


def test_a_wrong_file_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    plain = tmp_path / "plain.json"
    plain.write_text(json.dumps({"in_shape": [None, None, 1], "layers": [{"type": "dense", "shape": [None, None, 1]}]}))
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    for path, words in ((plain, "not rtnt gray-box JSON"), (broken, "cannot read its model JSON")):
        assert export_main(["graybox-view", str(path), "--out", str(tmp_path / "o")]) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("error: ") and words in err and "\n" not in err
    with pytest.raises(ExportError, match="neither a model.json file nor an MLflow run id"):
        from rtnt.export.graybox_view import export_graybox_view

        export_graybox_view(str(tmp_path / "missing.json"), tmp_path / "o")


def test_branch_layers_and_an_oversampled_nonlinearity_are_drawn(tmp_path: Path) -> None:
    """graybox/ts9 with preset.oversampling=2: the PEQ and the waveshaper inside the parallel block's clipped branch
    get a response and a curve named by JSON path, the curve is the waveshaper's static function (the filters are
    left out), and the table lists the branch's gain and waveshaper."""
    from rtnt.config import CONF_DIR, load_preset
    from rtnt.export.graybox import export_graybox
    from rtnt.model.build import build_model

    preset = load_preset(CONF_DIR / "preset" / "graybox" / "ts9.yaml")
    preset.oversampling = 2
    doc = json.loads(json.dumps(export_graybox(build_model(preset))))
    view = graybox_view(doc)
    assert [eq.layer for eq in view.eqs] == ["0.branches.1.0", 1, 2]
    (curve,) = view.curves
    assert (curve.first, curve.kind) == ("0.branches.1.1", "waveshaper")
    ws = doc["layers"][0]["branches"][1][1]
    assert ws["oversampling"]["factor"] == 2
    drive, bias, gain = ws["weights"][0]
    expected = gain * (np.tanh(drive * curve.x + bias) - np.tanh(bias))
    assert np.max(np.abs(curve.y - expected)) < 1e-5
    assert {"0.branches.0.0", "0.branches.1.1"} <= {row["layer"] for row in view.parameters}
    assert {p.name for p in write_graybox_view(view, tmp_path)} >= {"eq_response.png", "nonlinearity.png"}
