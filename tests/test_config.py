"""rtnt-train refuses bad configurations with one line, before TensorFlow is imported."""

from __future__ import annotations

import subprocess
import sys

import pytest

PROBE = """
import sys
from rtnt.cli.train import main
sys.argv = ["rtnt-train", *{args!r}]
try:
    main()
except SystemExit as exc:
    print("EXIT", exc.code, "TF_LOADED", "tensorflow" in sys.modules)
"""


def run_train_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", PROBE.format(args=list(args))], capture_output=True, text=True, timeout=120
    )


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["preset=nope"], "unknown config choice 'preset/nope' (available: wavenet_a1_feather, wavenet_a1_lite"),
        (["train.epoch=3"], "config key 'train.epoch' does not exist"),
        (["train.epochs=-1"], "config train.epochs=-1 is invalid: must be >= 0"),
        (["preset.kernel_sizes=[0]"], "every kernel size must be >= 1"),
        (["train.epochs=abc"], "config key 'train.epochs' has a value of the wrong type"),
        (["capture=files"], "config capture.input is not set; pass it on the command line (capture.input=...)"),
        (["capture.latency=1.5"], "capture.latency=1.5 is invalid: must be auto or a whole number of samples"),
        (["-m", "preset=wavenet_tcn_balanced,nope"], "unknown config choice 'preset/nope'"),
        (["preset.dilations=[1,2]", "preset.kernel_sizes=[3,3,3]"], "give one kernel size or one per layer (2)"),
        (["train.minutes=-1"], "config train.minutes=-1.0 is invalid: must be >= 0"),
        (["train.schedule=linear"], "config train.schedule='linear' is invalid: must be one of cosine, exponential"),
        (["train.lr_floor=2"], "config train.lr_floor=2.0 is invalid: must be in [0, 1]"),
        (["+foo=bar"], "'+foo=bar' adds a key that rtnt does not read; with + add only a config group"),
        (["++train.nope=1"], "'++train.nope=1' adds a key that rtnt does not read"),
        (["preset=wavenet_a1_standard", "preset.channels=3"], "config key 'preset.channels' does not exist"),
        (["export.gate.esr_max=0.1"], "the export group was split into validate and gate; use gate.esr_max=..."),
        (["export.bench_seconds=1"], "use validate.bench_seconds=..."),
        (["train.device=tpu"], "config train.device='tpu' is invalid: must be one of auto, cpu, gpu"),
        (["capture.gear.type=guitar"], "config capture.gear.type='guitar' is invalid: must be one of amp, pedal,"),
        (["capture.gear.tone_type=metal"], "capture.gear.tone_type='metal' is invalid: must be one of clean,"),
    ],
)
def test_bad_config_is_one_line_before_tensorflow(args: list[str], expected: str) -> None:
    proc = run_train_cli(*args)
    err_lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert err_lines == [err_lines[0]] and err_lines[0].startswith("error: "), proc.stderr
    assert expected in err_lines[0]
    assert "EXIT 2 TF_LOADED False" in proc.stdout


@pytest.mark.parametrize("flag", ["--cfg", "-c"])
def test_cfg_job_prints_the_composed_config(flag: str) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "rtnt.cli.train", flag, "job", "train=demo"], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    assert "minutes: 4" in proc.stdout and "preset:" in proc.stdout
