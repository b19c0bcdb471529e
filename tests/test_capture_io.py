"""Capture loading: every bad input is refused with a one-line message saying what, where and how to fix."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from rtnt.capture.io import load_capture_pair
from rtnt.errors import CaptureError

SR = 48000


def _tone(seconds: float = 1.0, amp: float = 0.5, sr: int = SR, channels: int = 1) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    a = (amp * np.sin(2 * np.pi * 220 * t)).astype(np.float32)
    return a if channels == 1 else np.stack([a] * channels, axis=1)


def _write(path: Path, data: np.ndarray, sr: int = SR, **kw) -> Path:
    sf.write(str(path), data, sr, **kw)
    return path


@pytest.fixture
def good(tmp_path: Path) -> tuple[Path, Path]:
    return _write(tmp_path / "in.wav", _tone()), _write(tmp_path / "out.wav", _tone(amp=0.3))


def _fails(match: str, *args, **kw) -> str:
    with pytest.raises(CaptureError, match=match) as info:
        load_capture_pair(*args, **kw)
    msg = str(info.value)
    assert "\n" not in msg
    return msg


@pytest.mark.parametrize("fmt", ["wav", "flac", "aiff"])
def test_loads_each_format_as_float32_mono(tmp_path: Path, fmt: str) -> None:
    i = _write(tmp_path / f"in.{fmt}", _tone(), subtype="PCM_24")
    t = _write(tmp_path / f"out.{fmt}", _tone(amp=0.25), subtype="PCM_24")
    pair = load_capture_pair(i, t)
    assert pair.x.dtype == np.float32 and pair.x.ndim == 1 and len(pair.x) == len(pair.y) == SR
    assert pair.sample_rate == SR and pair.warnings == []


def test_missing_file(good: tuple[Path, Path], tmp_path: Path) -> None:
    msg = _fails("target file not found", good[0], tmp_path / "nope.wav")
    assert "nope.wav" in msg and "capture.target=" in msg


def test_unreadable_file(good: tuple[Path, Path], tmp_path: Path) -> None:
    bad = tmp_path / "notes.wav"
    bad.write_text("not audio")
    msg = _fails("cannot read input file", bad, good[1])
    assert "notes.wav" in msg and "WAV, FLAC or AIFF" in msg


def test_stereo_needs_a_channel(tmp_path: Path, good: tuple[Path, Path]) -> None:
    st = _write(tmp_path / "st.wav", _tone(channels=2))
    msg = _fails("has 2 channels", st, good[1])
    assert "capture.channel=N (0..1)" in msg
    pair = load_capture_pair(st, _write(tmp_path / "st2.wav", _tone(channels=2)), channel=1)
    assert pair.x.ndim == 1


def test_channel_out_of_range(tmp_path: Path) -> None:
    st = _write(tmp_path / "st.wav", _tone(channels=2))
    _fails(r"capture.channel=3 is out of range .* use 0..1", st, st, channel=3)


def test_sample_rate_mismatch(tmp_path: Path) -> None:
    i = _write(tmp_path / "in.wav", _tone(sr=44100), sr=44100)
    t = _write(tmp_path / "out.wav", _tone())
    msg = _fails("is 44100 Hz but target .* is 48000 Hz", i, t)
    assert "capture.resample=true" in msg


def test_rate_other_than_48k_and_resampling(tmp_path: Path) -> None:
    i = _write(tmp_path / "in.wav", _tone(sr=44100), sr=44100)
    t = _write(tmp_path / "out.wav", _tone(sr=44100, amp=0.2), sr=44100)
    _fails("are 44100 Hz but rtnt needs 48000 Hz .* capture.resample=true", i, t)
    pair = load_capture_pair(i, t, resample=True)
    assert pair.sample_rate == SR and abs(len(pair.x) - SR) <= 1
    assert any("resampled input" in w for w in pair.warnings)


def test_length_mismatch_beyond_tolerance(tmp_path: Path) -> None:
    i = _write(tmp_path / "in.wav", _tone(1.0))
    t = _write(tmp_path / "out.wav", _tone(2.0))
    msg = _fails(r"target .* is 1.000 s longer than input", i, t)
    assert "capture.length_tolerance_s" in msg


def test_longer_target_within_tolerance_is_trimmed(tmp_path: Path) -> None:
    i = _write(tmp_path / "in.wav", _tone(1.0))
    t = _write(tmp_path / "out.wav", _tone(1.2))
    pair = load_capture_pair(i, t)
    assert len(pair.x) == len(pair.y) == SR
    assert any("trimmed the target" in w for w in pair.warnings)


def test_nan_and_inf(tmp_path: Path, good: tuple[Path, Path]) -> None:
    a = _tone()
    a[SR // 2] = np.nan
    bad = _write(tmp_path / "nan.wav", a, subtype="FLOAT")
    _fails(r"contains NaN or Inf samples \(first at 0.500 s\); re-export", good[0], bad)
    a[SR // 2] = np.inf
    bad = _write(tmp_path / "inf.wav", a, subtype="FLOAT")
    _fails("contains NaN or Inf", bad, good[1])


def test_silent_file(tmp_path: Path, good: tuple[Path, Path]) -> None:
    silent = _write(tmp_path / "silent.wav", np.zeros(SR, np.float32))
    msg = _fails("is silent", good[0], silent)
    assert "silent.wav" in msg


def test_clipping_warns(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    i = _write(tmp_path / "in.wav", _tone())
    t = _write(tmp_path / "out.wav", np.clip(_tone(amp=2.0), -1, 1))
    pair = load_capture_pair(i, t)
    assert any("clips" in w and "less gain" in w for w in pair.warnings)
    assert any("clips" in r.message for r in caplog.records)
