"""Where a run's test-region error comes from: per-second ESR, what explains it, and whether the model can fit it.

    python scripts/probe_test_region.py explain RUN_DIR [--fit train|all]
    python scripts/probe_test_region.py finetune RUN_DIR --region all|train [--steps 400] [--lr 5e-4]

RUN_DIR is a training run's output folder (config.yaml, model.nam, model.keras). The capture, its regions
and the receptive field come from the run's own config, so the regions are the ones the run was scored on.

`explain` renders the exported model.nam natively over the whole capture and prints (1) the ESR of every
second of the validation and test regions, (2) the test ESR after adding a linear filter of the model's
output (lags up to 1 s, least squares on the train region: a reverb or cabinet tail beyond the receptive
field), and (3) after a per-window gain predicted from level envelopes of the input and of the model's
output (one-pole, 0.1-30 s, least squares on the train region: level-dependent state such as sag). With
`--fit all` both are fitted on the whole capture, the test region included: an in-sample upper bound on
what a tail or level history could explain, whether or not the train region shows it. (4) The same gain from
a compressor's kind of state: a peak follower of the model's output (attack 1 ms, release 0.3 s, the values
set before looking) beside its 0.1 s level; then a scan of attack, release and level time constants, which
picks on the test region and so is a sensitivity, not a result.

`finetune` continues training model.keras for --steps batches of the run's segment length and batch size,
drawn from the whole capture (`all`: the test region included, so the test figures become in-sample) or from
the train region alone (`train`: the control with the same extra steps), and prints the test ESR and the
test seconds' ESR every 100 steps. If `all` cannot fit the worst seconds either, the receptive field and
model class are the limit, not the data the model was shown.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import scipy.linalg
import scipy.signal
from omegaconf import OmegaConf

from rtnt.capture.prepare import prepare_capture
from rtnt.config import register_resolvers
from rtnt.data.splits import Region, split_by_time
from rtnt.metrics.esr import esr
from rtnt.model import receptive_field
from rtnt.native import NativeModel


def load_run(run: Path):
    """The run's config, its prepared capture and its regions."""
    register_resolvers()
    cfg = OmegaConf.load(run / "config.yaml")
    cap = prepare_capture(cfg.capture)
    splits = split_by_time(len(cap.x), cfg.train.val_fraction, cfg.train.test_fraction, receptive_field(cfg.preset))
    return cfg, cap, splits


def per_second(y: np.ndarray, y_hat: np.ndarray, start: int, stop: int, sr: int) -> str:
    """'second:ESR' for every whole or partial second in [start, stop)."""
    cells = []
    for a in range(start - start % sr, stop, sr):
        lo, hi = max(a, start), min(a + sr, stop)
        cells.append(f"{a // sr}:{esr(y[lo:hi], y_hat[lo:hi]):.4f}")
    return " ".join(cells)


def linear_tail(src: np.ndarray, residual: np.ndarray, fit: Region, taps: int) -> np.ndarray:
    """The least-squares FIR (taps lags of src) that predicts residual on the fit region, applied everywhere."""
    s, r = src[fit.start : fit.stop], residual[fit.start : fit.stop]
    n_fft = 1 << int(np.ceil(np.log2(2 * len(s))))
    spec_s, spec_r = np.fft.rfft(s, n_fft), np.fft.rfft(r, n_fft)
    autocorr = np.fft.irfft(spec_s * np.conj(spec_s), n_fft)[:taps]
    crosscorr = np.fft.irfft(spec_r * np.conj(spec_s), n_fft)[:taps]
    h = scipy.linalg.solve_toeplitz(autocorr, crosscorr)
    return scipy.signal.fftconvolve(src, h)[: len(src)]


def envelope_db(x: np.ndarray, seconds: float, sr: int) -> np.ndarray:
    """Power envelope in dB: a one-pole smoother of x^2 with time constant `seconds`."""
    a = np.exp(-1.0 / (seconds * sr))
    return 10 * np.log10(scipy.signal.lfilter([1 - a], [1, -a], x**2) + 1e-12)


def peak_envelope_db(x: np.ndarray, attack_s: float, release_s: float, sr: int) -> np.ndarray:
    """A compressor's peak follower in dB: per 1 ms hop the largest |x|, followed by a one-pole smoother that
    rises with time constant attack_s and falls with release_s; each hop's value is held over the next hop's
    samples, so the follower is causal."""
    hop = sr // 1000
    hops = len(x) // hop
    peaks = np.abs(x[: hops * hop]).reshape(hops, hop).max(axis=1)
    rise, fall = np.exp(-1.0 / (attack_s * 1000)), np.exp(-1.0 / (release_s * 1000))
    env, state = np.empty(hops), 0.0
    for i, v in enumerate(peaks):
        k = rise if v > state else fall
        state = k * state + (1 - k) * v
        env[i] = state
    held = np.repeat(np.concatenate([[0.0], env[:-1]]), hop)
    held = np.concatenate([held, np.full(len(x) - len(held), env[-1])])
    return 20 * np.log10(held + 1e-9)


def envelope_gain(
    y: np.ndarray, y_hat: np.ndarray, features: list[np.ndarray], fit: Region, sr: int, per_sample: bool = False
) -> np.ndarray:
    """y_hat times a gain log-linear in the features (weighted least squares of each 1/8 s window's gain on the
    features at its start, over the fit region's windows after the first second, where the envelopes are still
    rising from silence, by target energy): held per window, or with `per_sample` the same law evaluated at every
    sample (a causal real-time gain stage)."""
    w = sr // 8
    starts = np.arange(0, len(y) - w + 1, w)
    energy = np.array([np.mean(y[a : a + w] ** 2) for a in starts])
    keep = energy > 10 ** (-4.5)
    log_gain = np.zeros(len(starts))
    log_gain[keep] = [
        np.log(np.dot(y[a : a + w], y_hat[a : a + w]) / np.dot(y_hat[a : a + w], y_hat[a : a + w]))
        for a in starts[keep]
    ]
    design = np.column_stack([np.ones(len(starts))] + [f[starts] for f in features])
    train = keep & (starts >= fit.start + sr) & (starts + w <= fit.stop)
    weight = np.sqrt(energy[train])[:, None]
    coef, *_ = np.linalg.lstsq(design[train] * weight, log_gain[train] * weight[:, 0], rcond=None)
    if per_sample:
        return y_hat * np.exp(np.column_stack([np.ones(len(y))] + features) @ coef)
    out = y_hat.copy()
    for a, g in zip(starts, design @ coef):
        out[a : a + w] *= np.exp(g)
    return out


def explain(run: Path, fit_region: str) -> None:
    cfg, cap, splits = load_run(run)
    sr, y, test = cap.sample_rate, cap.y.astype(np.float64), splits.test
    model = NativeModel.from_file(str(run / "model.nam"))
    model.prepare(4096)
    model.reset()
    y_hat = np.asarray(model.process(cap.x.astype(np.float32)), dtype=np.float64)

    def test_esr(pred: np.ndarray) -> float:
        return esr(y[test.start :], pred[test.start :])

    def val_esr(pred: np.ndarray) -> float:
        return esr(y[splits.val.start : splits.val.stop], pred[splits.val.start : splits.val.stop])

    print(f"{cfg.capture.name}, {cfg.preset.name}: test ESR {test_esr(y_hat):.5f}, validation {val_esr(y_hat):.5f}")
    print("validation seconds:", per_second(y, y_hat, splits.val.start, splits.val.stop, sr))
    print("test seconds:      ", per_second(y, y_hat, test.start, test.stop, sr))
    fit = Region("all", 0, len(y)) if fit_region == "all" else splits.train
    x = cap.x.astype(np.float64)
    print(f"fitted on the {fit_region} region")
    for name, src in (("model output", y_hat), ("input", x)):
        for taps in (4096, 12000, 24000, 48000):
            pred = y_hat + linear_tail(src, y - y_hat, fit, taps)
            print(f"+ linear filter of the {name}, {taps} taps: test ESR {test_esr(pred):.5f}")
    for label, sources in (("input", [x]), ("model output", [y_hat]), ("input and model output", [x, y_hat])):
        for seconds in ((0.1,), (0.3,), (1.0,), (3.0,), (10.0,), (0.1, 1.0), (0.1, 0.3, 1.0, 3.0, 10.0, 30.0)):
            feats = [envelope_db(s, t, sr) for s in sources for t in seconds]
            pred = envelope_gain(y, y_hat, feats, fit, sr)
            print(
                f"+ gain from {label} envelopes {seconds} s: test ESR {test_esr(pred):.5f}, "
                f"test seconds {per_second(y, pred, test.start, test.stop, sr)}"
            )
    for attack, release, level in [(0.001, 0.3, 0.1)] + [
        (a, r, v) for a in (0.001, 0.01) for r in (0.1, 0.2, 0.3, 0.5, 1.0, 3.0) for v in (0.05, 0.1)
    ]:
        feats = [peak_envelope_db(y_hat, attack, release, sr), envelope_db(y_hat, level, sr)]
        pred = envelope_gain(y, y_hat, feats, fit, sr)
        smooth = envelope_gain(y, y_hat, feats, fit, sr, per_sample=True)
        print(
            f"+ gain from the model output's peak follower (attack {attack} s, release {release} s) and its "
            f"{level} s level: test ESR {test_esr(pred):.5f} per window, {test_esr(smooth):.5f} per sample "
            f"(validation {val_esr(smooth):.5f}), test seconds {per_second(y, smooth, test.start, test.stop, sr)}"
        )


def finetune(run: Path, region: str, steps: int, lr: float) -> None:
    import keras

    import rtnt.model.build  # noqa: F401  (registers rtnt's layers for load_model)
    from rtnt.train.fit import SegmentSampler
    from rtnt.train.losses import FullyConditionedESR

    cfg, cap, splits = load_run(run)
    rf, sr = receptive_field(cfg.preset), cap.sample_rate
    x, y = cap.x.astype(np.float32), cap.y.astype(np.float32)
    model = keras.models.load_model(run / "model.keras", compile=False)
    test = splits.test

    def report(label: str) -> None:
        pred = np.asarray(model.predict_on_batch(x[None, :, None]), dtype=np.float64).reshape(-1)
        print(
            f"{label}: test ESR {esr(y[test.start :], pred[test.start :]):.5f}, "
            f"seconds {per_second(y, pred, test.start, test.stop, sr)}",
            flush=True,
        )

    report("before")
    drawn = Region("all", 0, len(x)) if region == "all" else splits.train
    segment = int(round(cfg.train.segment_seconds * sr))
    sampler = SegmentSampler(x, y, drawn, rf, segment, cfg.train.batch_size, seed=1)
    model.compile(optimizer=keras.optimizers.Adam(lr), loss=FullyConditionedESR(history=rf - 1), jit_compile=True)
    for step in range(1, steps + 1):
        model.train_on_batch(*sampler.draw())
        if step % 100 == 0:
            report(f"{region}, step {step}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="command", required=True)
    ex = sub.add_parser("explain")
    ex.add_argument("run", type=Path)
    ex.add_argument("--fit", choices=("train", "all"), default="train")
    ft = sub.add_parser("finetune")
    ft.add_argument("run", type=Path)
    ft.add_argument("--region", choices=("all", "train"), required=True)
    ft.add_argument("--steps", type=int, default=400)
    ft.add_argument("--lr", type=float, default=5e-4)
    args = ap.parse_args()
    if args.command == "explain":
        explain(args.run, args.fit)
    else:
        finetune(args.run, args.region, args.steps, args.lr)


if __name__ == "__main__":
    main()
