"""Train NAM's own A1 standard WaveNet on an rtnt capture, on rtnt's train/validation regions, for a fixed wall time.

The peer run of experiments/fidelity_budget: NAM (neural-amp-modeler, PyTorch) trains on the same aligned
samples that rtnt trains on, stops at the same wall-clock budget, validates on rtnt's validation region and
never sees rtnt's test region. Its exported `model.nam` is then measured by `rtnt-evaluate` exactly as
rtnt's own runs are (ESR per split on the exported file, ASR, native benchmark):

    # once, in a venv of its own (NAM is not an rtnt dependency):
    python -m venv ../namenv && ../namenv/bin/pip install torch==2.13.0 neural-amp-modeler==0.13.0
    .venv/bin/python scripts/train_nam_peer.py regions crunch_amp > regions.json      # rtnt's regions
    ../namenv/bin/python scripts/train_nam_peer.py train regions.json outputs/nam_peer/crunch_amp --minutes 20
    rtnt-evaluate outputs/nam_peer/crunch_amp/model.nam capture=crunch_amp

`regions` runs in rtnt's environment and prints the capture's files, latency and rtnt's region bounds
(input sample indices); `train` runs in NAM's environment and imports nothing from rtnt.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

# NAM's A1 standard (nam/train/core.py in NAM 0.12 and earlier; rtnt's conf/preset/wavenet_a1_standard.yaml).
A1_DILATIONS = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512]


def a1_standard_config() -> dict:
    """NAM's model config of A1 standard with its default loss, optimiser and schedule."""

    def array(input_size: int, channels: int, head: int, bias: bool) -> dict:
        return {
            "input_size": input_size,
            "condition_size": 1,
            "channels": channels,
            "kernel_size": 3,
            "dilations": A1_DILATIONS,
            "activation": "Tanh",
            "gated": False,
            "head": {"out_channels": head, "kernel_size": 1, "bias": bias},
        }

    return {
        "net": {
            "name": "WaveNet",
            "config": {"layers_configs": [array(1, 16, 8, False), array(16, 8, 1, True)], "head_scale": 0.02},
        },
        "loss": {"val_loss": "esr"},
        "optimizer": {"lr": 0.004},
        "lr_scheduler": {"class": "ExponentialLR", "kwargs": {"gamma": 0.993}},
    }


def print_regions(capture: str) -> None:
    """rtnt's view of `capture`: files, latency and the train/val/test bounds in input samples."""
    from hydra import compose, initialize_config_dir

    from rtnt.capture.prepare import prepare_capture
    from rtnt.config import CONF_DIR, register_configs, register_resolvers
    from rtnt.data.splits import split_by_time

    register_configs()
    register_resolvers()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose(config_name="config", overrides=[f"capture={capture}"])
    prepared = prepare_capture(cfg.capture)
    start = prepared.trim_start
    s = split_by_time(len(prepared.x), cfg.train.val_fraction, cfg.train.test_fraction, 1)
    regions = {
        "x_path": str(Path(cfg.capture.input).resolve()),
        "y_path": str(Path(cfg.capture.target).resolve()),
        "latency": prepared.latency,
        "polarity": prepared.polarity,
        "sample_rate": prepared.sample_rate,
        "train": [start + s.train.start, start + s.train.stop],
        "val": [start + s.val.start, start + s.val.stop],
        "test": [start + s.test.start, start + s.test.stop],
    }
    json.dump(regions, sys.stdout, indent=1)
    print()


def train(regions_path: Path, outdir: Path, minutes: float, batch_size: int, seed: int) -> None:
    """NAM's full trainer (nam.train.full.main) on the regions, stopped by Lightning's max_time."""
    import soundfile as sf
    import torch
    from nam.train.full import main as nam_full

    r = json.loads(regions_path.read_text())
    outdir.mkdir(parents=True, exist_ok=True)
    wavs = {}
    for key in ("x_path", "y_path"):  # NAM reads WAV files
        audio, sr = sf.read(r[key], dtype="float32")
        if key == "y_path":
            audio = audio * r["polarity"]  # rtnt follows the input's polarity; NAM gets the same target
        wavs[key] = str(outdir / f"{key[0]}.wav")
        sf.write(wavs[key], audio, sr, subtype="FLOAT")
    torch.manual_seed(seed)
    data = {
        "train": {"start_samples": r["train"][0], "stop_samples": r["train"][1], "ny": 8192},
        "validation": {
            "start_samples": r["val"][0],
            "stop_samples": r["val"][1],
            "ny": None,
            "require_input_pre_silence": None,
        },
        "common": {**wavs, "delay": r["latency"], "allow_unequal_lengths": True},
    }
    learning = {
        "train_dataloader": {"batch_size": batch_size, "shuffle": True, "drop_last": True, "num_workers": 0},
        "val_dataloader": {},
        "trainer": {"accelerator": "cpu", "devices": 1, "max_epochs": 100_000, "max_time": _hms(minutes)},
    }
    nam_full(data, a1_standard_config(), learning, outdir, no_show=True, make_plots=False)


def _hms(minutes: float) -> str:
    s = int(round(minutes * 60))
    return f"00:{s // 3600:02d}:{s % 3600 // 60:02d}:{s % 60:02d}"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="command", required=True)
    reg = sub.add_parser("regions", help="print rtnt's regions of a capture (run in rtnt's environment)")
    reg.add_argument("capture")
    tr = sub.add_parser("train", help="train NAM A1 standard on them (run in NAM's environment)")
    tr.add_argument("regions", type=Path)
    tr.add_argument("outdir", type=Path)
    tr.add_argument("--minutes", type=float, default=20.0)
    tr.add_argument("--batch-size", type=int, default=16)
    tr.add_argument("--seed", type=int, default=0)
    a = p.parse_args()
    if a.command == "regions":
        print_regions(a.capture)
    else:
        train(a.regions, a.outdir, a.minutes, a.batch_size, a.seed)


if __name__ == "__main__":
    main()
