"""Time one training step of a parametric EQ (4 biquads) two ways and write docs/benchmarks/graybox_peq.md.

    python scripts/bench_graybox_peq.py [--out docs/benchmarks/graybox_peq.md] [--repeats 5]

A step is the forward pass and the gradient of a squared error with respect to the 4 x 5 biquad coefficients,
for a batch of 16 segments of 8192 samples, in TensorFlow on this CPU:
- frequency sampling (`rtnt.model.graybox.dsp.filter_biquads`: real FFT at 16384 points, product of the
  sections' responses, inverse FFT), what the gray-box ParametricEQ layer trains with;
- the exact recursion (transposed direct form II, one `tf.scan` step per sample through all sections), what the
  runtimes run, in graph mode and XLA-compiled.
Each figure is the median of `--repeats` timed steps after two warm-up steps. The machine's 1-minute load
average is recorded with the figures: on a shared machine re-run it idle.
"""

from __future__ import annotations

import argparse
import os
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import tensorflow as tf

from rtnt.model.graybox.dsp import filter_biquads
from rtnt.model.graybox.rbj import rbj_coefficients

BATCH, SEGMENT = 16, 8192
SECTIONS = (("low_shelf", 120.0, 0.7, 3.0), ("peaking", 720.0, 1.2, 6.0), ("peaking", 2500.0, 2.0, -4.0),
            ("high_shelf", 6000.0, 0.7, -6.0))  # fmt: skip


def recursion(x: tf.Tensor, coefficients: tf.Tensor) -> tf.Tensor:
    """x (batch, time, 1) through the cascade sample by sample (transposed direct form II, zero state)."""
    sections = coefficients.shape[0]

    def step(carry: tuple[tf.Tensor, tf.Tensor], xt: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        state, v, new = carry[0], xt, []
        for s in range(sections):
            b0, b1, b2, a1, a2 = tf.unstack(coefficients[s])
            y = b0 * v + state[s, 0]
            new.append(tf.stack([b1 * v - a1 * y + state[s, 1], b2 * v - a2 * y]))
            v = y
        return tf.stack(new), v

    batch = tf.shape(x)[0]
    init = (tf.zeros((sections, 2, batch)), tf.zeros((batch,)))
    _, ys = tf.scan(step, tf.transpose(x[:, :, 0]), initializer=init)
    return tf.transpose(ys)[:, :, None]


def time_step(filter_fn, x: np.ndarray, y: np.ndarray, c0: np.ndarray, repeats: int, jit: bool) -> float:
    """Median seconds of one forward + gradient step."""
    c = tf.Variable(c0)

    @tf.function(jit_compile=jit)
    def train_step(xb: tf.Tensor, yb: tf.Tensor) -> tf.Tensor:
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(tf.square(filter_fn(xb, c) - yb))
        return tape.gradient(loss, c)

    times = []
    for i in range(repeats + 2):
        start = time.perf_counter()
        train_step(x, y).numpy()
        if i >= 2:
            times.append(time.perf_counter() - start)
    return float(np.median(times))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path, default=Path("docs/benchmarks/graybox_peq.md"))
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    x = rng.standard_normal((BATCH, SEGMENT, 1)).astype(np.float32) * 0.3
    c0 = np.array([rbj_coefficients(k, f, q, g, 48000.0, np) for k, f, q, g in SECTIONS], dtype=np.float32)
    y = np.asarray(filter_biquads(tf.constant(x), tf.constant(c0 * 0.98)))
    load = os.getloadavg()[0]
    rows = [
        ("frequency sampling (FFT 16384), graph", time_step(filter_biquads, x, y, c0, args.repeats, False)),
        ("frequency sampling (FFT 16384), XLA", time_step(filter_biquads, x, y, c0, args.repeats, True)),
        ("exact recursion (tf.scan), graph", time_step(recursion, x, y, c0, max(1, args.repeats // 2), False)),
        ("exact recursion (tf.scan), XLA", time_step(recursion, x, y, c0, max(1, args.repeats // 2), True)),
    ]
    lines = [
        "# Parametric EQ training step: frequency sampling vs exact recursion",
        "",
        f"Measured {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC by `scripts/bench_graybox_peq.py` on "
        f"{os.cpu_count()} CPU cores, TensorFlow {tf.__version__}, 1-minute load average {load:.2f} "
        "(a shared machine: other work ran beside it, so read the ratio, not the absolute times).",
        "",
        f"One step = forward + gradient of a squared error w.r.t. 4 biquads' coefficients, batch {BATCH} x "
        f"{SEGMENT} samples; median of timed steps after two warm-up steps.",
        "",
        "| method | seconds per step |",
        "|---|---|",
        *(f"| {name} | {sec:.4f} |" for name, sec in rows),
        "",
    ]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
