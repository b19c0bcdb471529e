"""Every legacy fixture trains a few smoke steps, exports, and passes reference and native parity."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from rtnt.config import REPO_DIR, load_preset, preset_family
from rtnt.data.splits import Region, cut_segments, segment_starts
from rtnt.native import native_available
from rtnt.validate.native_check import validate_native
from rtnt.validate.parity import keras_predict, parity_error

FIXTURES = sorted(p.stem for p in (REPO_DIR / "conf" / "preset" / "legacy").glob("*.yaml"))
SR = 48000


def _smoke_capture() -> tuple[np.ndarray, np.ndarray]:
    import soundfile as sf

    x, _ = sf.read(REPO_DIR / "rtnt" / "demo" / "input.flac", dtype="float32", frames=2 * SR)
    y, _ = sf.read(REPO_DIR / "rtnt" / "demo" / "target.flac", dtype="float32", frames=2 * SR)
    return x, np.roll(y, -12)  # the demo's latency is 12 samples


@pytest.mark.parametrize("name", FIXTURES)
def test_fixture_trains_exports_and_matches_natively(name: str, tmp_path: Path) -> None:
    import keras

    from rtnt.export.rtneural import save_rtneural
    from rtnt.model.build import build_model
    from rtnt.model.summary import model_summary
    from rtnt.train.fit import compile_model

    preset = load_preset(REPO_DIR / f"conf/preset/legacy/{name}.yaml")
    assert (
        preset_family(preset) == "legacy"
        and "not a recommendation" in (REPO_DIR / f"conf/preset/legacy/{name}.yaml").read_text()
    )
    keras.utils.set_random_seed(0)
    model = build_model(preset)
    rf = model_summary(model).receptive_field_samples
    compile_model(model, 4e-3, rf - 1, 0.0)
    x, y = _smoke_capture()
    starts = segment_starts(Region("train", 0, len(x)), rf, 2400)[:8]
    xs, ys = cut_segments(x, y, starts, rf, 2400)
    before = [w.copy() for w in model.get_weights()]
    history = model.fit(xs, ys, batch_size=4, epochs=2, verbose=0)
    assert np.isfinite(history.history["loss"]).all()
    assert any(not np.array_equal(a, b) for a, b in zip(before, model.get_weights())), "training changed nothing"

    json_path = save_rtneural(model, tmp_path / "model.json")
    probe = x[: SR // 4]
    y_keras = keras_predict(model, probe)
    assert parity_error(json_path, probe, y_keras) < 1e-4
    if not native_available():
        pytest.skip("native runtime not built")
    check = validate_native(json_path, probe, y_keras, block_sizes=(1, 64, 77))
    assert check.passed and check.max_error < 1e-4
