"""Training throughput benchmark: scored training samples per second of every preset, graph mode against
XLA, and the share of a real budgeted fit's wall time spent outside the optimizer step.

    python scripts/bench_training.py                       # all presets, writes docs/benchmarks/training.md
    python scripts/bench_training.py --presets wavenet_tcn_balanced --steps 5 --out /tmp/t.md

Run it alone on an idle machine: it measures wall time. The report states the load average.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")

import numpy as np  # noqa: E402
from hydra import compose, initialize_config_dir  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
NAM_SAMPLES_PER_S = 94_000  # NAM 0.13, A1 standard, torch CPU, this machine (issue #13)
DEFAULT_PRESETS = [
    "wavenet_tcn_edge",
    "wavenet_tcn_balanced",
    "wavenet_tcn_quality",
    "wavenet_tcn_a2_prelu",
    "wavenet_a1_nano",
    "wavenet_a1_feather",
    "wavenet_a1_lite",
    "wavenet_a1_standard",
    "wavenet_a2_full",
]


def compose_config(overrides: list[str]):  # noqa: ANN201  (DictConfig)
    from rtnt.config import register_configs, register_resolvers

    register_configs()
    register_resolvers()
    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        return compose(config_name="config", overrides=overrides)


def step_throughput(preset: str, jit: bool, steps: int) -> dict[str, float]:
    """Scored samples/s of `train_on_batch` at the default batch and segment (after one warm-up step)."""
    import keras

    from rtnt.constants import SAMPLE_RATE
    from rtnt.model.build import build_model
    from rtnt.model.summary import model_summary
    from rtnt.train.fit import compile_model, set_jit_compile

    cfg = compose_config([f"preset={preset}"])
    t = cfg.train
    keras.utils.set_random_seed(0)
    model = build_model(cfg.preset)
    rf = model_summary(model).receptive_field_samples
    compile_model(model, t.learning_rate, rf - 1, t.pre_emphasis, t.stft_weight, t.dc_weight, t.clipnorm)
    set_jit_compile(model, jit)
    seg = int(round(t.segment_seconds * SAMPLE_RATE))
    rng = np.random.default_rng(0)
    x = (0.3 * rng.standard_normal((t.batch_size, rf - 1 + seg, 1))).astype(np.float32)
    y = np.tanh(3 * x)
    start = time.perf_counter()
    model.train_on_batch(x, y)
    first = time.perf_counter() - start
    start = time.perf_counter()
    for _ in range(steps):
        model.train_on_batch(x, y)
    per_step = (time.perf_counter() - start) / steps
    return {"first_step_s": first, "step_s": per_step, "samples_per_s": t.batch_size * seg / per_step}


def fit_overhead(preset: str, seconds: float) -> dict[str, float]:
    """A real budgeted fit on the embedded demo capture with the default cadence: samples/s over the whole
    wall time and the share of it outside the optimizer step (validation, checkpoints, data)."""
    import tempfile

    import keras

    from rtnt.capture.prepare import prepare_capture
    from rtnt.data.splits import region_with_history, split_by_time
    from rtnt.model.build import build_model
    from rtnt.model.summary import model_summary
    from rtnt.train.fit import Budget, Cadence, SegmentSampler, TrainingState, compile_model, fit
    from rtnt.train.session import learning_rate_schedule

    cfg = compose_config([f"preset={preset}", "capture=demo"])
    t = cfg.train
    cap = prepare_capture(cfg.capture)
    keras.utils.set_random_seed(0)
    model = build_model(cfg.preset)
    rf = model_summary(model).receptive_field_samples
    compile_model(model, t.learning_rate, rf - 1, t.pre_emphasis, t.stft_weight, t.dc_weight, t.clipnorm)
    splits = split_by_time(len(cap.x), t.val_fraction, t.test_fraction, rf)
    sampler = SegmentSampler(cap.x, cap.y, splits.train, rf, int(round(t.segment_seconds * 48_000)), t.batch_size, 0)
    val = (region_with_history(cap.x, splits.val, rf), region_with_history(cap.y, splits.val, rf))
    budget = Budget(seconds=seconds)
    with tempfile.TemporaryDirectory() as tmp:
        result = fit(
            model,
            sampler,
            val,
            budget=budget,
            schedule=learning_rate_schedule(t, budget, 1),
            cadence=Cadence(t.validate_every_steps, t.validate_every_s or 30.0),
            patience=0,
            checkpoint_dir=Path(tmp),
            state=TrainingState(),
            jit_compile=t.jit_compile,
        )
    return {
        "samples_per_s": result.samples_per_s,
        "overhead_share": result.overhead_share,
        "first_step_share": result.first_step_seconds / result.wall_seconds,
        "validations": float(len(result.history)),
        "steps": float(result.steps_this_session),
        "jit": float(result.jit_compile),
    }


def report(rows: list[dict], overhead: dict[str, float], overhead_preset: str, seconds: float, load: str) -> str:
    cfg = compose_config([])
    t = cfg.train
    lines = [
        "# Training throughput",
        "",
        f"`python scripts/bench_training.py` on {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"TensorFlow CPU. Load average before the run: {load}. Batch {t.batch_size} × {t.segment_seconds} s segments "
        "(the default recipe) plus each model's receptive field as history; samples/s counts scored output samples "
        "of `train_on_batch`, after one warm-up step.",
        "",
        f"Peer: NAM 0.13 (PyTorch, CPU) trains A1 standard at about {NAM_SAMPLES_PER_S / 1e3:.0f}k samples/s "
        "on this machine.",
        "",
        "| preset | graph samples/s | XLA samples/s | XLA / graph | XLA / NAM A1 | first XLA step (trace + compile) |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| `{r['preset']}` | {r['graph']['samples_per_s'] / 1e3:.0f}k | {r['xla']['samples_per_s'] / 1e3:.0f}k | "
            f"{r['xla']['samples_per_s'] / r['graph']['samples_per_s']:.2f} | "
            f"{r['xla']['samples_per_s'] / NAM_SAMPLES_PER_S:.2f} | "
            f"{r['xla']['first_step_s']:.1f} s |"
        )
    lines += [
        "",
        f"## A real fit: wall time outside the optimizer step ({overhead_preset}, {seconds:.0f} s budget, "
        "demo capture)",
        "",
        f"{overhead['steps']:.0f} steps, {overhead['validations']:.0f} validations with checkpoints, "
        f"XLA {'on' if overhead['jit'] else 'off'}: "
        f"**{overhead['samples_per_s'] / 1e3:.0f}k samples/s over the whole wall time**, "
        f"**{100 * overhead['overhead_share']:.1f} %** of it outside the optimizer step (validation, checkpoints, "
        f"batch gathering, progress), and {100 * overhead['first_step_share']:.1f} % in the first step (tracing and "
        "XLA compilation, once per run).",
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--presets", nargs="*", default=None)
    ap.add_argument("--steps", type=int, default=10, help="timed steps per preset and mode")
    ap.add_argument("--fit-seconds", type=float, default=90.0)
    ap.add_argument("--fit-preset", default="wavenet_tcn_balanced")
    ap.add_argument("--out", type=Path, default=REPO / "docs" / "benchmarks" / "training.md")
    args = ap.parse_args()
    load = ", ".join(f"{v:.2f}" for v in os.getloadavg())
    available = {p.stem for p in (REPO / "conf" / "preset").glob("*.yaml")}
    presets = [p for p in (args.presets or DEFAULT_PRESETS) if p in available]
    rows = []
    for preset in presets:
        row = {
            "preset": preset,
            "graph": step_throughput(preset, False, args.steps),
            "xla": step_throughput(preset, True, args.steps),
        }
        print(
            f"{preset}: graph {row['graph']['samples_per_s'] / 1e3:.0f}k, "
            f"XLA {row['xla']['samples_per_s'] / 1e3:.0f}k samples/s",
            flush=True,
        )
        rows.append(row)
    overhead = fit_overhead(args.fit_preset, args.fit_seconds)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(report(rows, overhead, args.fit_preset, args.fit_seconds, load))
    print(f"wrote {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
