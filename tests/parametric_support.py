"""A tiny synthetic capture set for tests: a known knob-dependent nonlinearity (tanh drive rising with the knob)
rendered from one dry signal at a few settings."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import soundfile as sf

SR = 48000
DELAY = 5  # samples the synthetic device delays its output
KNOB_VALUES = (0.1, 0.5, 0.9)


def device(x: np.ndarray, gain: float) -> np.ndarray:
    """A known knob-dependent nonlinearity: tanh drive rising with the knob, delayed by DELAY samples."""
    drive = 1.0 + 6.0 * gain
    y = np.tanh(drive * x) / np.tanh(drive) * 0.5
    return np.concatenate([np.zeros(DELAY), y[:-DELAY]]).astype(np.float32)


def dry_signal(seconds: float, seed: int = 0) -> np.ndarray:
    """Plucks: decaying noise bursts, loud enough to drive the nonlinearity."""
    rng = np.random.default_rng(seed)
    n = int(seconds * SR)
    x = np.zeros(n, dtype=np.float32)
    for start in range(0, n, SR // 4):
        length = min(SR // 4, n - start)
        env = np.exp(-np.arange(length) / (0.06 * SR))
        x[start : start + length] = rng.uniform(0.2, 0.8) * env * rng.standard_normal(length)
    return np.clip(x, -0.95, 0.95)


def write_set(folder: Path, seconds: float = 3.0, values=KNOB_VALUES) -> tuple[Path, list[Path]]:
    """A synthetic capture set in `folder`: input.wav and one target per knob value."""
    x = dry_signal(seconds)
    sf.write(folder / "input.wav", x, SR, subtype="FLOAT")
    targets = []
    for v in values:
        path = folder / f"gain_{v}.wav"
        sf.write(path, device(x, v), SR, subtype="FLOAT")
        targets.append(path)
    return folder / "input.wav", targets


def capture_set_args(tmp: Path) -> list[str]:
    """The overrides of `capture=files_parametric` on `write_set(tmp)` (written if missing), with small ASR probes."""
    inp, targets = write_set(tmp)
    listed = ",".join(f"{{target:'{t}',knobs:{{gain:{v}}}}}" for t, v in zip(targets, KNOB_VALUES))
    return [
        "capture=files_parametric",
        f"capture.input={inp}",
        "capture.knobs=[{name:gain,minimum:0,maximum:1}]",
        f"capture.targets=[{listed}]",
        "capture.min_seconds=1",
        "validate.asr.midi_notes=[52,76]",
        "validate.asr.levels_dbfs=[-12]",
    ]


def smoke_parametric_run(tmp: Path, *overrides: str) -> dict:
    """`rtnt-train train=smoke capture=files_parametric` on `write_set(tmp)` with `overrides` (conditioning, preset,
    holdout), in a subprocess tracked in tmp/mlflow.db; the run's uri, id, folder and stdout. Graph mode and a short
    benchmark keep it fast: XLA and the benchmark's precision are tested elsewhere."""
    uri = f"sqlite:///{tmp / 'mlflow.db'}"
    fast = ["train.jit_compile=false", "validate.bench_seconds=0.25", "validate.bench_block_sizes=[1,128]"]
    args = ["train=smoke", *fast, *capture_set_args(tmp), *overrides, f"hydra.run.dir={tmp / 'run'}"]
    proc = subprocess.run(
        [sys.executable, "-m", "rtnt.cli.train", *args],
        cwd=tmp,
        env={**os.environ, "MLFLOW_TRACKING_URI": uri},
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    run_id = proc.stdout.split("MLflow run:")[1].split()[0]
    return {"uri": uri, "run_id": run_id, "out": tmp / "run", "stdout": proc.stdout}
