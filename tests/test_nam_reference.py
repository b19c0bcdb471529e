"""The numpy .nam reference runtime against NAM Core's own outputs (../shared/conformance/nam), and its
refusals of malformed files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from rtnt.config import shared_dir
from rtnt.errors import NamFileError
from rtnt.runtime.nam_reference import NamModel

CONFORMANCE = shared_dir() / "conformance" / "nam"
needs_vectors = pytest.mark.skipif(
    not (CONFORMANCE / "vectors" / "index.json").exists(), reason="../shared/conformance/nam not present"
)
MODELS = (
    "wavenet_a1_standard",
    "wavenet",
    "A2_full_extracted",
    "A2_lite_extracted",
    "wavenet_a2_max",
    "wavenet_condition_dsp",
)
# The guitar input (2 s) only for the small models; the sweep and the impulse for all (keeps the test to seconds).
SHORT_INPUTS = ("logsweep_20_20k_0p5s_m6dbfs", "impulse_1_then_0p25s_zeros")


def _entries() -> list[dict]:
    if not (CONFORMANCE / "vectors" / "index.json").exists():
        return []
    entries = json.loads((CONFORMANCE / "vectors" / "index.json").read_text())["entries"]
    return [
        e
        for e in entries
        if e["model_id"] in MODELS
        and e["variant"] in ("b64", "b64_noprewarm")
        and (e["input"] in SHORT_INPUTS or e["model_id"] in ("wavenet", "wavenet_condition_dsp", "A2_lite_extracted"))
    ]


def _f32(path: str) -> np.ndarray:
    return np.fromfile(CONFORMANCE / path, dtype="<f4")


@needs_vectors
@pytest.mark.parametrize("entry", _entries(), ids=lambda e: f"{e['model_id']}-{e['input']}-{e['variant']}")
def test_matches_nam_core(entry: dict) -> None:
    """README tolerance: 5e-5 absolute, or 1e-4 of the output peak where that is larger."""
    model = NamModel.from_file(CONFORMANCE / entry["model_file"], prewarm=entry["prewarm_on_reset"])
    assert model.receptive_field == entry["prewarm_samples"]
    y = model.process(_f32(entry["input_file"]))
    expected = _f32(entry["output_file"])
    assert np.max(np.abs(y - expected)) <= max(5e-5, 1e-4 * entry["output_peak"])


@needs_vectors
def test_prewarm_changes_only_the_first_receptive_field() -> None:
    """NAM Core's prewarm starts the model settled on silence; with it off the histories start at zero."""
    x = _f32("vectors/inputs/logsweep_20_20k_0p5s_m6dbfs.f32")
    warm = NamModel.from_file(CONFORMANCE / "models/wavenet.nam").process(x)
    cold_model = NamModel.from_file(CONFORMANCE / "models/wavenet.nam", prewarm=False)
    cold = cold_model.process(x)
    rf = cold_model.receptive_field
    assert np.max(np.abs(warm[:rf] - cold[:rf])) > 1e-4
    np.testing.assert_allclose(warm[rf:], cold[rf:], atol=1e-6)


@needs_vectors
def test_state_carries_across_calls_and_reset_restarts() -> None:
    x = _f32("vectors/inputs/logsweep_20_20k_0p5s_m6dbfs.f32")[:5000]
    model = NamModel.from_file(CONFORMANCE / "models/A2_lite_extracted.nam")
    whole = model.process(x)
    model.reset()
    parts = np.concatenate([model.process(x[:1]), model.process(x[1:777]), model.process(x[777:])])
    np.testing.assert_allclose(parts, whole, atol=1e-7)


@needs_vectors
@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda d: d.update(weights=d["weights"][:-5]), "the weight list ends while reading"),
        (lambda d: d.update(weights=d["weights"] + [0.0]), "1 weights left over after the model"),
        (lambda d: d.update(version="0.4.9"), ".nam version 0.4.9 is not one NAM Core loads"),
        (lambda d: d.update(version="0.8.0"), ".nam version 0.8.0 is not one NAM Core loads"),
        (lambda d: d.update(version="1.0"), "'version' must be a string MAJOR.MINOR.PATCH"),
        (lambda d: d.update(architecture="LSTM"), "architecture 'LSTM' is not supported"),
        (lambda d: d["config"]["layers"][0].update(activation="Gelu"), "activation 'Gelu' is not one NAM Core knows"),
        (lambda d: d["config"]["layers"][0].pop("channels"), "layer array 0: missing or malformed field"),
        (lambda d: d["config"].pop("head_scale"), "config has no head_scale"),
    ],
)
def test_malformed_files_raise_one_line(tmp_path: Path, edit, message: str) -> None:
    data = json.loads((CONFORMANCE / "models" / "wavenet.nam").read_text())
    edit(data)
    path = tmp_path / "bad.nam"
    path.write_text(json.dumps(data))
    with pytest.raises(NamFileError) as info:
        NamModel.from_file(path)
    assert message in str(info.value) and "\n" not in str(info.value)


def test_unreadable_file_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(NamFileError, match="cannot read model file"):
        NamModel.from_file(tmp_path / "missing.nam")
    (tmp_path / "broken.nam").write_text("{")
    with pytest.raises(NamFileError, match="is not valid JSON"):
        NamModel.from_file(tmp_path / "broken.nam")
