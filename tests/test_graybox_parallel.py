"""Gray-box `parallel` blocks through the stack: config checks and geometry (receptive span = longest branch, cost =
sum), Keras layer names, Keras vs exported JSON parity in the reference runtime (1e-4 max abs) and the native runtime
(1e-5 vs the reference, identical output at every block size 1..4096), the identity branch, nested and malformed
blocks and files (one-line errors in both loaders), the cabinet FIR lookup, the checkpoint round trip, and the
reworked graybox/ts9 preset (its documented figures and an end-to-end smoke run)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from omegaconf import OmegaConf

from rtnt.config import CONF_DIR, RtntConfig, load_preset, preset_config, validate_config
from rtnt.errors import ConfigError, ExportError, ModelJsonError
from rtnt.native import NativeModel, native_available

needs_native = pytest.mark.skipif(not native_available(), reason="rtnt._native is not built (pip install -e .)")
BLOCKS = (1, 7, 63, 64, 65, 128, 1000, 4096)
PEQ = {
    "type": "peq",
    "sections": [
        {"kind": "highpass", "freq_hz": 120.0, "q": 0.707},
        {"kind": "peaking", "freq_hz": 720.0, "q": 0.8, "gain_db": 6.0},
    ],
}
CLIP = {"type": "waveshaper", "drive_db": 18.0, "bias": 0.1, "gain_db": -6.0}
CHAINS: dict[str, list[dict[str, Any]]] = {
    "dry_plus_clipped": [{"type": "parallel", "branches": [[], [PEQ, CLIP]]}, {"type": "gain", "gain_db": -3.0}],
    "three_branches_fir_mlp": [
        {"type": "gain", "gain_db": 3.0},
        {
            "type": "parallel",
            "branches": [
                [{"type": "gain", "gain_db": -6.0}],
                [{"type": "fir", "taps": 600}],
                [{"type": "mlp", "hidden": [4]}],
            ],
        },
        {"type": "dc_blocker", "pole": 0.995},
    ],
    "nested_with_conv_stack": [
        {
            "type": "parallel",
            "branches": [
                [{"type": "parallel", "branches": [[], [CLIP, {"type": "fir", "taps": 24}]]}, PEQ],
                [{"type": "conv_stack", "channels": 3, "dilations": [1, 2]}],
            ],
        }
    ],
}


def _x(n: int = 12000, seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).uniform(-0.8, 0.8, n).astype(np.float32)


def _preset(blocks: list[dict[str, Any]]):
    return preset_config({"name": "t", "arch": "graybox", "blocks": blocks})


def _model(blocks: list[dict[str, Any]]):
    from rtnt.model.build import build_model

    model = build_model(_preset(blocks))
    rng = np.random.default_rng(5)
    for layer in model.layers:  # FIRs off their identity start, so parity tests real taps
        if type(layer).__name__ == "FIR":
            layer.kernel.assign(rng.standard_normal(layer.taps).astype(np.float32) * 0.05)
    return model


def _document(model) -> dict:
    from rtnt.export.graybox import export_graybox

    return json.loads(json.dumps(export_graybox(model)))


def _validate(blocks: list[dict[str, Any]]) -> None:
    cfg = OmegaConf.structured(RtntConfig)
    cfg.capture.input, cfg.capture.target = "in.wav", "out.wav"
    cfg.preset = _preset(blocks)
    validate_config(cfg)


def test_layer_names_are_stable_and_the_sum_is_an_add_layer() -> None:
    model = _model(CHAINS["nested_with_conv_stack"])
    names = {layer.name for layer in model.layers}
    assert {"b0_parallel", "b0_parallel_br0_b0_parallel", "b0_parallel_br0_b0_parallel_br1_b0_waveshaper"} <= names
    assert {
        "b0_parallel_br0_b1_peq",
        "b0_parallel_br1_b0_conv_stack_conv1",
        "b0_parallel_br1_b0_conv_stack_out",
    } <= names
    assert type(model.get_layer("b0_parallel")).__name__ == "Add"


def test_receptive_span_is_the_longest_branch_and_cost_the_sum() -> None:
    from rtnt.model.geometry import receptive_field
    from rtnt.model.summary import model_summary

    blocks = CHAINS["three_branches_fir_mlp"]
    s = model_summary(_model(blocks))
    assert s.receptive_field_samples == receptive_field(_preset(blocks)) == 1 + 599 + 2048  # fir | dc warm-up
    assert s.macs_per_sample == 1 + (1 + 600 + (4 + 4)) + 2
    nested = CHAINS["nested_with_conv_stack"]  # max(max(0, 23) + 2048, 2 + 4)
    assert model_summary(_model(nested)).receptive_field_samples == receptive_field(_preset(nested)) == 1 + 23 + 2048


@pytest.mark.parametrize("chain", sorted(CHAINS))
def test_keras_and_the_exported_file_agree_in_the_reference_at_every_block_size(chain: str) -> None:
    from rtnt.runtime.reference import ReferenceModel
    from rtnt.validate.parity import keras_predict

    model = _model(CHAINS[chain])
    doc = _document(model)
    assert doc["layers"][0 if chain != "three_branches_fir_mlp" else 1]["type"] == "parallel"
    x = _x()
    ref = ReferenceModel.from_json(doc)
    whole = ref.process(x)
    assert np.max(np.abs(keras_predict(model, x) - whole)) < 1e-4
    for block in (1, 77, 512):
        ref.reset()
        parts = np.concatenate([ref.process(x[i : i + block]) for i in range(0, len(x), block)])
        assert np.max(np.abs(parts - whole)) < 1e-6


def test_the_exported_parallel_layer_holds_its_branches() -> None:
    doc = _document(_model(CHAINS["nested_with_conv_stack"]))
    (par,) = doc["layers"]
    assert par["weights"] == [] and len(par["branches"]) == 2
    inner, peq = par["branches"][0]
    assert inner["type"] == "parallel" and inner["branches"][0] == []
    assert [b["type"] for b in inner["branches"][1]] == ["waveshaper", "conv1d"] and peq["type"] == "biquad"
    assert isinstance(peq["weights"][0][0][0], float)  # doubles, as at the top level
    assert [b["type"] for b in par["branches"][1]] == ["conv1d", "conv1d", "conv1d"]


def test_the_identity_branch_passes_the_input_through() -> None:
    from rtnt.runtime.reference import ReferenceModel

    model = _model([{"type": "parallel", "branches": [[], [], [{"type": "gain", "gain_db": -6.0}]]}])
    x = _x(2000)
    y = ReferenceModel.from_json(_document(model)).process(x)
    g = np.float32(10 ** (-6.0 / 20))
    np.testing.assert_allclose(y, x + x + g * x, atol=1e-6)


@needs_native
@pytest.mark.parametrize("chain", sorted(CHAINS))
def test_native_runs_a_parallel_chain_like_the_reference_at_every_block_size(chain: str) -> None:
    from rtnt.runtime.reference import ReferenceModel

    doc = _document(_model(CHAINS[chain]))
    x = _x()
    native = NativeModel.from_json_text(json.dumps(doc))
    native.prepare(4096)
    whole = native.process(x)
    assert np.max(np.abs(whole - ReferenceModel.from_json(doc).process(x))) < 1e-5
    for block in BLOCKS:
        native.reset()
        np.testing.assert_array_equal(native.process_blocks(x, block), whole, err_msg=f"block {block}")


@pytest.mark.parametrize(
    ("blocks", "key", "fragment"),
    [
        ([{"type": "parallel"}], "preset.blocks.0.branches", "at least one branch"),
        ([{"type": "parallel", "branches": [{"type": "gain"}]}], "preset.blocks.0.branches.0", "must be a list"),
        ([{"type": "parallel", "branches": [[], [{"type": "reverb"}]]}], "preset.blocks.0.branches.1.0.type", "one of"),
        (
            [{"type": "parallel", "branches": [[{"type": "gain", "volume": 1}]]}],
            "preset.blocks.0.branches.0.0",
            "not a",
        ),
        ([{"type": "parallel", "branches": [[{"type": "fir", "taps": 0}]]}], "preset.blocks.0.branches.0.0.taps", ">="),
        (
            [{"type": "gain"}, {"type": "parallel", "branches": [[{"type": "parallel", "branches": []}]]}],
            "preset.blocks.1.branches.0.0.branches",
            "at least one branch",
        ),
    ],
)
def test_bad_parallel_blocks_are_refused_in_one_line(blocks: list, key: str, fragment: str) -> None:
    with pytest.raises(ConfigError, match=key.replace(".", r"\.") + "=") as info:
        _validate(blocks)
    assert fragment in str(info.value) and "\n" not in str(info.value)


def test_parallel_blocks_nest_at_most_eight_deep() -> None:
    from rtnt.config_graybox import MAX_PARALLEL_DEPTH

    block: dict[str, Any] = {"type": "gain"}
    for _ in range(MAX_PARALLEL_DEPTH):
        block = {"type": "parallel", "branches": [[block]]}
    _validate([block])
    with pytest.raises(ConfigError, match="nest at most 8 deep"):
        _validate([{"type": "parallel", "branches": [[block]]}])


def _file(change) -> dict:
    mono = {"activation": "", "shape": [None, None, 1]}
    doc = {
        "rtnt_format": "graybox-1",
        "in_shape": [None, None, 1],
        "layers": [
            {
                "type": "parallel",
                **mono,
                "weights": [],
                "branches": [[], [{"type": "gain", **mono, "weights": [[0.5]]}]],
            }
        ],
    }
    change(doc["layers"][0])
    return doc


MALFORMED = {
    "no_branches": (lambda p: p.update(branches=[]), "branches", "branches"),
    "branches_missing": (lambda p: p.pop("branches"), "branches", "'branches'"),
    "branch_not_a_list": (lambda p: p["branches"].__setitem__(1, {"type": "gain"}), "branches[1]", "branches[1]"),
    "unknown_nested_layer": (
        lambda p: p["branches"][1][0].update(type="reverb"),
        "branch 1 layer 0 (reverb): unsupported layer type",
        "branches[1][0] (reverb): unknown layer type",
    ),
    "branch_not_mono": (
        lambda p: p["branches"][1].__setitem__(
            0, {"type": "dense", "activation": "", "shape": [None, None, 2], "weights": [[[1.0, 2.0]], [0.0, 0.0]]}
        ),
        "ends in 2 channels",
        "ends in 2 channels",
    ),
    "weights_not_empty": (lambda p: p.update(weights=[[1.0]]), "'weights'", "'weights' holds 1 arrays"),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_parallel_files_are_refused_in_one_line_by_the_reference(case: str) -> None:
    from rtnt.runtime.reference import ReferenceModel

    change, fragment, _ = MALFORMED[case]
    with pytest.raises(ModelJsonError) as info:
        ReferenceModel.from_json(_file(change))
    assert fragment in str(info.value) and "(parallel)" in str(info.value) and "\n" not in str(info.value)


@needs_native
@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_parallel_files_are_refused_in_one_line_natively(case: str) -> None:
    change, _, fragment = MALFORMED[case]
    with pytest.raises(ModelJsonError) as info:
        NativeModel.from_json_text(json.dumps(_file(change)), source="p.json")
    message = str(info.value)
    assert message.startswith("p.json: layers[0] (parallel)") and fragment in message and "\n" not in message


@needs_native
def test_natively_a_parallel_layer_needs_the_graybox_format() -> None:
    doc = _file(lambda p: None)
    doc.pop("rtnt_format")
    with pytest.raises(ModelJsonError, match=r"layers\[0\] \(parallel\): is a gray-box layer type"):
        NativeModel.from_json_text(json.dumps(doc))


def test_the_cabinet_is_the_final_top_level_fir_never_a_branch_fir(tmp_path: Path) -> None:
    from rtnt.export import export_model
    from rtnt.export.ir import final_fir
    from rtnt.export.lv2 import has_cabinet

    branch_fir = {"type": "parallel", "branches": [[], [{"type": "fir", "taps": 100}]]}
    only_nested = export_model(_model([branch_fir]), tmp_path / "a")
    with pytest.raises(ExportError, match="only inside parallel blocks") as info:
        final_fir(json.loads(only_nested.read_text()), "a")
    assert "\n" not in str(info.value) and not has_cabinet(only_nested)
    model = _model([branch_fir, {"type": "fir", "taps": 300}])
    both = export_model(model, tmp_path / "b")
    np.testing.assert_array_equal(
        final_fir(json.loads(both.read_text()), "b"), model.get_layer("b1_fir").kernel.numpy()
    )
    assert has_cabinet(both)


def test_a_checkpoint_with_a_parallel_block_reloads(tmp_path: Path) -> None:
    import keras

    model = _model(CHAINS["nested_with_conv_stack"])
    model.save(tmp_path / "m.keras")
    again = keras.models.load_model(tmp_path / "m.keras", compile=False)
    x = _x(3000)[None, :, None]
    np.testing.assert_array_equal(np.asarray(again(x)), np.asarray(model(x)))
    assert _document(again) == _document(model)


def test_ts9_is_the_tube_screamer_topology_with_its_documented_figures() -> None:
    """README's gray-box table: graybox/ts9 has 21 parameters, 31 MAC/sample, 128.0 ms of history."""
    from rtnt.model.build import build_model
    from rtnt.model.summary import model_summary

    preset = load_preset(CONF_DIR / "preset" / "graybox" / "ts9.yaml")
    s = model_summary(preset)
    assert (s.params, s.macs_per_sample, s.receptive_field_samples) == (21, 31, 1 + 3 * 2048) and s.params < 500
    layers = _document(build_model(preset))["layers"]
    assert [layer["type"] for layer in layers] == ["parallel", "biquad", "biquad", "gain"]
    clean, clipped = layers[0]["branches"]
    assert [b["type"] for b in clean] == ["gain"] and [b["type"] for b in clipped] == ["biquad", "waveshaper"]


@pytest.mark.slow
def test_a_ts9_smoke_run_trains_exports_and_validates_natively(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    import mlflow

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    command = [sys.executable, "-m", "rtnt.cli.train", "train=smoke", "preset=graybox/ts9", "capture=demo"]
    env = {**os.environ, "MLFLOW_TRACKING_URI": uri}
    proc = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    run = mlflow.MlflowClient(uri).get_run(proc.stdout.split("MLflow run:")[1].split()[0])
    assert run.info.status == "FINISHED" and run.data.tags["family"] == "graybox"
    assert run.data.metrics["parity_error"] < 1e-4 and run.data.params.get("preset.name", "graybox_ts9")
    assert run.data.metrics["params"] == 21
    if native_available():
        assert run.data.metrics["native_validation"] == 1.0
    doc = json.loads((Path(run.data.tags["rtnt.output_dir"]) / "model.json").read_text())
    assert doc["layers"][0]["type"] == "parallel"


def test_oversampling_reaches_the_nonlinearities_inside_branches() -> None:
    """preset.oversampling=2 with a waveshaper in a branch and an MLP in a nested one: each runs between its own
    filter pair in Keras (`<prefix>b<i>_up` / `_down`), the `oversampling` object sits on the first layer of the run in
    the branch's layer list, the history adds one filter pair's span per nonlinearity along the longest branch, and
    Keras vs reference (1e-4) vs native (1e-5, identical at every block size) agree."""
    from rtnt.config_graybox import oversampling_span
    from rtnt.model.build import build_model
    from rtnt.model.geometry import receptive_field
    from rtnt.model.summary import model_summary
    from rtnt.runtime.reference import ReferenceModel
    from rtnt.validate.parity import keras_predict

    blocks = [
        {"type": "parallel", "branches": [[{"type": "gain", "gain_db": -3.0}], [PEQ, CLIP]]},
        {"type": "parallel", "branches": [[], [{"type": "parallel", "branches": [[{"type": "mlp", "hidden": [4]}]]}]]},
        {"type": "gain", "gain_db": -3.0},
    ]
    preset = preset_config({"name": "t", "arch": "graybox", "oversampling": 2, "blocks": blocks})
    model = build_model(preset)
    names = {layer.name for layer in model.layers}
    assert {"b0_parallel_br1_b1_up", "b0_parallel_br1_b1_waveshaper", "b0_parallel_br1_b1_down"} <= names
    assert "b1_parallel_br1_b0_parallel_br0_b0_up" in names
    span = oversampling_span(2)
    rf = 1 + (2048 + span) + span  # PEQ warm-up + waveshaper's pair in branch 1 of b0; the MLP's pair in b1
    assert model_summary(model).receptive_field_samples == receptive_field(preset) == rf
    doc = _document(model)
    clipped = doc["layers"][0]["branches"][1]
    assert [b["type"] for b in clipped] == ["biquad", "waveshaper"] and "oversampling" not in clipped[0]
    assert clipped[1]["oversampling"]["factor"] == 2 and clipped[1]["oversampling"]["layers"] == 1
    (mlp,) = doc["layers"][1]["branches"][1][0]["branches"]
    assert mlp[0]["oversampling"]["layers"] == 2 and "oversampling" not in mlp[1]
    x = _x()
    ref = ReferenceModel.from_json(doc).process(x)
    assert np.max(np.abs(keras_predict(model, x) - ref)) < 1e-4
    off = ReferenceModel.from_json(_document(_model(blocks))).process(x)
    assert np.max(np.abs(off - ref)) > 1e-3  # the filters are really in the branch's path
    if native_available():
        native = NativeModel.from_json_text(json.dumps(doc))
        native.prepare(4096)
        whole = native.process(x)
        assert np.max(np.abs(whole - ref)) < 1e-5
        for block in BLOCKS:
            native.reset()
            np.testing.assert_array_equal(native.process_blocks(x, block), whole, err_msg=f"block {block}")


def test_an_oversampled_run_may_not_leave_its_branch() -> None:
    """A branch's `oversampling.layers` counts within the branch's layer list: a run longer than it is refused."""
    from rtnt.runtime.reference import ReferenceModel

    blocks = [{"type": "parallel", "branches": [[], [CLIP]]}]
    doc = _document(_oversampled_model(blocks))
    doc["layers"][0]["branches"][1][0]["oversampling"]["layers"] = 2
    with pytest.raises(ModelJsonError, match="oversampling.layers"):
        ReferenceModel.from_json(doc)
    if native_available():
        with pytest.raises(Exception, match="oversampling.layers"):
            NativeModel.from_json_text(json.dumps(doc))


def _oversampled_model(blocks: list[dict[str, Any]]):
    from rtnt.model.build import build_model

    return build_model(preset_config({"name": "t", "arch": "graybox", "oversampling": 2, "blocks": blocks}))


def test_the_oversampling_variant_script_puts_the_filters_where_the_exporter_does() -> None:
    """scripts/graybox_oversampling_variant.py on a 2x file: to 1x removes every `oversampling` object (branches
    included), and back to 2x gives the exporter's file again, so ASR with and without oversampling can be compared
    on one set of learned parameters."""
    import copy
    import importlib.util

    from rtnt.model.build import build_model

    script = CONF_DIR.parent / "scripts" / "graybox_oversampling_variant.py"
    spec = importlib.util.spec_from_file_location("variant", script)
    variant = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(variant)
    blocks = [
        {"type": "parallel", "branches": [[{"type": "gain", "gain_db": -3.0}], [PEQ, CLIP]]},
        {"type": "gain", "gain_db": 6.0},
        {"type": "mlp", "hidden": [4, 4]},
    ]
    doc = _document(build_model(preset_config({"name": "t", "arch": "graybox", "oversampling": 2, "blocks": blocks})))
    plain = copy.deepcopy(doc)
    variant.with_oversampling(plain["layers"], 1)
    assert "oversampling" not in json.dumps(plain)
    again = copy.deepcopy(plain)
    variant.with_oversampling(again["layers"], 2)
    assert again == doc
