"""Capture report and preparation: fields present and sane, hygiene warnings, latency resolution, alignment."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from omegaconf import OmegaConf

from rtnt.capture.io import CapturePair, load_capture_pair
from rtnt.capture.prepare import align, prepare_capture
from rtnt.capture.report import inspect_capture, repeated_passage
from rtnt.config import PACKAGE_DIR, CaptureConfig
from rtnt.errors import CaptureError
from rtnt.plots import capture_plots

SR = 48000
DEMO_IN, DEMO_OUT = PACKAGE_DIR / "demo" / "input.flac", PACKAGE_DIR / "demo" / "target.flac"


@pytest.fixture(scope="module")
def demo() -> CapturePair:
    pair = load_capture_pair(DEMO_IN, DEMO_OUT)
    n = 10 * SR
    return CapturePair(pair.x[:n], pair.y[:n], SR, pair.input_path, pair.target_path, [])


def _cfg(**kw) -> CaptureConfig:
    return OmegaConf.merge(OmegaConf.structured(CaptureConfig), {"input": str(DEMO_IN), "target": str(DEMO_OUT), **kw})


def test_report_fields_are_present_and_sane(demo: CapturePair, tmp_path: Path) -> None:
    r = inspect_capture(demo)
    d = json.loads(json.dumps(r.to_dict()))
    for key in (
        "latency_samples",
        "latency_ms",
        "confidence",
        "polarity",
        "window_agreement",
        "candidates",
        "window_estimates",
        "input_levels",
        "target_levels",
        "noise_floor_dbfs",
        "silence_fraction",
        "low_information_fraction",
        "preamble_present",
        "replicate_esr",
        "warnings",
        "recommendations",
    ):
        assert key in d
    assert 0 <= d["latency_samples"] < 100 and d["polarity"] in (1, -1)
    assert 0.8 <= d["confidence"] <= 1 and 0 <= d["window_agreement"] <= 1
    assert all(len(c) == 2 for c in d["candidates"]) and d["candidates"][0][0] == d["latency_samples"]
    assert -30 < d["input_levels"]["peak_dbfs"] <= 0 and d["input_levels"]["rms_dbfs"] < d["input_levels"]["peak_dbfs"]
    assert -120 < d["noise_floor_dbfs"] < -40
    assert 0 <= d["silence_fraction"] <= d["low_information_fraction"] <= 1
    assert d["preamble_present"] is True and d["reamp_signal"] is False
    assert d["duration_s"] == pytest.approx(10.0) and d["sample_rate"] == SR
    assert r.to_table().row_count > 8
    names = sorted(p.name for p in capture_plots(r, tmp_path))
    assert names == ["latency_response.png", "levels.png", "window_estimates.png"]
    assert all((tmp_path / n).stat().st_size > 1000 for n in names)


def test_known_latency_and_nudge(demo: CapturePair) -> None:
    auto = inspect_capture(demo).latency_samples
    nudged = inspect_capture(demo, latency_nudge=-2)
    assert (nudged.latency_samples, nudged.latency_source) == (auto - 2, "auto+nudge")
    late = inspect_capture(demo, latency=auto + 10)
    assert late.latency_source == "known" and late.latency_samples == auto + 10
    assert any("non-causal" in w for w in late.warnings)
    with pytest.raises(CaptureError, match="latency -1 is negative"):
        inspect_capture(demo, latency=-1)


def test_cold_and_long_silence() -> None:
    rng = np.random.default_rng(0)
    x = np.zeros(12 * SR, np.float32)
    x[SR : 3 * SR] = 0.003 * rng.standard_normal(2 * SR)  # peak near -36 dBFS
    y = np.tanh(50 * x) * 0.5
    y = (y + 0.05 * rng.standard_normal(len(y))).astype(np.float32)  # noise swamps the response
    r = inspect_capture(CapturePair(x, y, SR, "in.wav", "out.wav", []), latency=0)
    text = " ".join(r.warnings)
    assert "input is too cold" in text and "silence" in text
    assert r.longest_silence_s > 8
    assert r.low_information_fraction > 0.5


def test_low_confidence_recommends_known_latency(demo: CapturePair) -> None:
    """Noise at twice the target's level: the windows disagree."""
    rng = np.random.default_rng(1)
    y = demo.y + 2.0 * np.std(demo.y) * rng.standard_normal(len(demo.y)).astype(np.float32)
    r = inspect_capture(CapturePair(demo.x, y, SR, "in", "out", []))
    assert r.estimate.confidence < 0.5
    assert any("capture.latency=N" in s for s in r.recommendations)
    assert inspect_capture(demo).recommendations == []


def test_replicate_esr_of_a_repeated_passage(demo: CapturePair) -> None:
    n = 4 * SR
    x = np.concatenate([demo.x, demo.x[:n]])
    y_repeat = demo.y[:n] + 1e-3 * np.random.default_rng(2).standard_normal(n).astype(np.float32)
    y = np.concatenate([demo.y, y_repeat])
    assert repeated_passage(x, SR) == (0, len(demo.x), n)
    r = inspect_capture(CapturePair(x, y, SR, "in", "out", []))
    expected = np.sum((y_repeat - demo.y[:n]) ** 2) / np.sum(demo.y[:n].astype(np.float64) ** 2)
    assert r.replicate_esr == pytest.approx(expected, rel=0.2)
    assert r.replicate_passage["length_s"] == pytest.approx(4.0, abs=0.01)
    assert inspect_capture(demo).replicate_esr is None


def test_align_makes_the_pair_causal() -> None:
    x = np.arange(10, dtype=np.float32)
    y = np.concatenate([np.zeros(3, np.float32), x[:7]])
    xa, ya = align(x, y, 3)
    assert np.array_equal(xa, ya) and len(xa) == 7


def test_prepare_capture_on_the_demo() -> None:
    p = prepare_capture(_cfg(latency="auto"))
    assert len(p.x) == len(p.y) and p.sample_rate == SR and p.polarity == 1
    assert p.latency == p.report.latency_samples
    assert p.x.dtype == np.float32
    known = prepare_capture(_cfg(latency=20, trim_silence=False))
    assert known.latency == 20 and len(known.x) == 20 * SR - 20


def test_prepare_reports_where_the_trimmed_capture_starts(tmp_path: Path, demo: CapturePair) -> None:
    import soundfile as sf

    lead = 12_345  # samples of silence before the performance
    quiet = np.zeros(lead, np.float32)
    sf.write(str(tmp_path / "in.wav"), np.concatenate([quiet, demo.x]), SR, subtype="FLOAT")
    sf.write(str(tmp_path / "out.wav"), np.concatenate([quiet, demo.y]), SR, subtype="FLOAT")
    p = prepare_capture(_cfg(input=str(tmp_path / "in.wav"), target=str(tmp_path / "out.wav"), latency=0))
    assert 0 < p.trim_start <= lead
    assert np.array_equal(p.x, np.concatenate([quiet, demo.x])[p.trim_start : p.trim_start + len(p.x)])
    assert prepare_capture(_cfg(latency=20, trim_silence=False)).trim_start == 0


def test_prepare_flips_an_inverted_target(tmp_path: Path, demo: CapturePair) -> None:
    import soundfile as sf

    sf.write(str(tmp_path / "in.wav"), demo.x, SR, subtype="FLOAT")
    sf.write(str(tmp_path / "out.wav"), -demo.y, SR, subtype="FLOAT")
    p = prepare_capture(_cfg(input=str(tmp_path / "in.wav"), target=str(tmp_path / "out.wav")))
    assert p.polarity == -1 and any("inverted the target's polarity" in w for w in p.warnings)
    ref = prepare_capture(_cfg(input=str(tmp_path / "in.wav"), target=str(tmp_path / "in.wav"), latency=0))
    assert ref.polarity == 1
    _, y = align(demo.x, demo.y, p.latency)
    assert np.allclose(p.y, y[: len(p.y)], atol=1e-6) or len(p.y) < len(y)


def test_latency_outside_the_window_is_refused_with_candidates(tmp_path: Path, demo: CapturePair) -> None:
    import soundfile as sf

    late = np.concatenate([np.zeros(5000, np.float32), demo.y])[: len(demo.x)]
    sf.write(str(tmp_path / "in.wav"), demo.x, SR, subtype="FLOAT")
    sf.write(str(tmp_path / "late.wav"), late, SR, subtype="FLOAT")
    cfg = _cfg(input=str(tmp_path / "in.wav"), target=str(tmp_path / "late.wav"))
    with pytest.raises(CaptureError) as info:
        prepare_capture(cfg)
    message = str(info.value)
    assert "the automatic latency estimate is unreliable" in message and "best candidates" in message
    assert "capture.latency=N" in message and "capture.max_latency_ms" in message and "\n" not in message
    wide = prepare_capture(_cfg(input=cfg.input, target=cfg.target, max_latency_ms=150.0))
    assert abs(wide.latency - (5000 + prepare_capture(_cfg()).latency)) <= 1 and wide.polarity == 1


def test_a_capture_too_short_to_split_is_refused(tmp_path: Path, demo: CapturePair) -> None:
    import soundfile as sf

    n = SR // 2
    sf.write(str(tmp_path / "in.wav"), demo.x[SR : SR + n], SR, subtype="FLOAT")
    sf.write(str(tmp_path / "out.wav"), demo.y[SR : SR + n], SR, subtype="FLOAT")
    with pytest.raises(CaptureError, match=r"is 0\.50 s long, shorter than capture\.min_seconds=3"):
        prepare_capture(_cfg(input=str(tmp_path / "in.wav"), target=str(tmp_path / "out.wav"), latency=0))
