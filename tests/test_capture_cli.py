"""`rtnt-capture`: --json prints one JSON object; user errors print one `error:` line and exit 2."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import soundfile as sf

from rtnt.capture.reamp import is_reamp_signal
from rtnt.cli.capture import main
from rtnt.config import PACKAGE_DIR, REPO_DIR

DEMO_IN, DEMO_OUT = PACKAGE_DIR / "demo" / "input.flac", PACKAGE_DIR / "demo" / "target.flac"


def _excerpt(tmp_path: Path) -> tuple[Path, Path]:
    paths = []
    for src in (DEMO_IN, DEMO_OUT):
        a, sr = sf.read(str(src), dtype="float32")
        paths.append(tmp_path / src.name.replace(".flac", ".wav"))
        sf.write(str(paths[-1]), a[: 6 * sr], sr, subtype="FLOAT")
    return paths[0], paths[1]


def test_inspect_json(tmp_path: Path) -> None:
    i, t = _excerpt(tmp_path)
    out = tmp_path / "rep"
    proc = subprocess.run(
        [sys.executable, "-m", "rtnt.cli.capture", "inspect", str(i), str(t), "--json", "--out", str(out)],
        capture_output=True,
        text=True,
        cwd=REPO_DIR,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)  # exactly one JSON object
    for key in ("latency_samples", "confidence", "polarity", "window_agreement", "candidates"):
        assert key in data
    assert isinstance(data["latency_samples"], int) and data["polarity"] in (1, -1)
    assert all(isinstance(o, int) and 0 <= s <= 1 for o, s in data["candidates"])
    assert json.loads((out / "report.json").read_text())["latency_samples"] == data["latency_samples"]
    assert (out / "latency_response.png").exists() and (out / "levels.png").exists()


def test_inspect_known_latency_and_table(tmp_path: Path, capsys) -> None:
    i, t = _excerpt(tmp_path)
    assert main(["inspect", str(i), str(t), "--latency", "7", "--out", str(tmp_path / "r")]) == 0
    assert "7 samples" in capsys.readouterr().out


def test_errors_are_one_line_exit_2(tmp_path: Path) -> None:
    i, _ = _excerpt(tmp_path)
    proc = subprocess.run(
        [sys.executable, "-m", "rtnt.cli.capture", "inspect", str(i), str(tmp_path / "missing.wav")],
        capture_output=True,
        text=True,
        cwd=REPO_DIR,
        check=False,
    )
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: target file not found") and proc.stderr.count("\n") == 1
    assert "Traceback" not in proc.stderr


def test_negative_latency_is_reported(tmp_path: Path, capsys) -> None:
    i, t = _excerpt(tmp_path)
    x, sr = sf.read(str(i), dtype="float32")
    ahead = tmp_path / "ahead.wav"
    sf.write(str(ahead), np.concatenate([x[20:], np.zeros(20, np.float32)]), sr, subtype="FLOAT")
    assert main(["inspect", str(i), str(ahead), "--json", "--out", str(tmp_path / "r")]) == 2
    assert "error: the target leads the input by 20 samples" in capsys.readouterr().err


def test_reamp_signal(tmp_path: Path, capsys) -> None:
    i, _ = _excerpt(tmp_path)
    out = tmp_path / "reamp.wav"
    assert main(["reamp-signal", str(i), str(out)]) == 0
    x, sr = sf.read(str(out), dtype="float32")
    assert is_reamp_signal(x, sr) and len(x) > 6 * sr
    assert main(["reamp-signal", str(i), str(tmp_path / "reamp.mp3")]) == 2
    assert "must be a .wav file" in capsys.readouterr().err


def test_rtnt_train_refuses_a_short_capture_before_tensorflow(tmp_path: Path, tracking_uri: str) -> None:
    a, sr = sf.read(str(DEMO_IN), dtype="float32")
    b, _ = sf.read(str(DEMO_OUT), dtype="float32")
    sf.write(str(tmp_path / "in.wav"), a[sr : 2 * sr], sr, subtype="FLOAT")
    sf.write(str(tmp_path / "out.wav"), b[sr : 2 * sr], sr, subtype="FLOAT")
    probe = (
        "import sys\nfrom rtnt.cli.train import main\n"
        f"sys.argv = ['rtnt-train', 'capture=files', 'capture.input={tmp_path / 'in.wav'}', "
        f"'capture.target={tmp_path / 'out.wav'}', 'train=smoke']\n"
        "try:\n    main()\nexcept SystemExit as exc:\n"
        "    print('EXIT', exc.code, 'TF_LOADED', 'tensorflow' in sys.modules)\n"
    )
    proc = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("error: ")]
    assert len(errors) == 1 and "is 1.00 s long, shorter than capture.min_seconds=3" in errors[0], proc.stderr[-2000:]
    assert "TF_LOADED False" in proc.stdout, proc.stdout
