"""Every figure rtnt draws, in one style: matplotlib's object API (no pyplot state), grid at alpha 0.3, ESR on a
log axis, PNG at 110 dpi. Each function takes computed results and a path, writes the PNG and returns its path
(None where there is nothing to draw).

- a run: `training_curves`, `capture_plots`, `asr_plots`, `residual_spectrum`, `esr_vs_knob` (a capture set),
  `eq_responses` and `transfer_curves` (a gray-box file), `cabinet_response` (its IR against a capture);
- a comparison of runs (`rtnt-compare`): `esr_against`, `esr_per_capture`, `loss_curves`;
- a sweep report: `pareto_front`, `trials_esr_vs_asr`, `param_importances`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from matplotlib.figure import Figure

if TYPE_CHECKING:
    import pandas as pd

    from rtnt.capture.report import CaptureReport
    from rtnt.export.graybox_view import EqResponse, TransferCurve
    from rtnt.export.ir import CabinetSpectra
    from rtnt.metrics.asr import AsrReport
    from rtnt.sweep.outcome import Objective
    from rtnt.train.fit import Validation
    from rtnt.validate.evidence import SettingEvidence

DPI = 110
GRID_ALPHA = 0.3
ESR_AXIS = "ESR (test, exported model) — lower is better"


def _save(fig: Figure, path: Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=DPI)
    return path


def _grid(ax: Any) -> None:
    ax.grid(True, which="both", alpha=GRID_ALPHA)


def _colours(n: int) -> list[tuple[float, float, float, float]]:
    from matplotlib import colormaps

    cmap = colormaps["tab10" if n <= 10 else "tab20"]
    return [cmap(i % cmap.N) for i in range(n)]


# --- one run ---------------------------------------------------------------------------------------------------


def training_curves(history: Sequence[Validation], path: Path) -> Path:
    """Training and validation ESR against step and against training wall time."""
    steps = [v.step for v in history]
    minutes = [v.seconds / 60 for v in history]
    fig = Figure(figsize=(10, 3.5))
    axes = fig.subplots(1, 2)
    for ax, xs, label in ((axes[0], steps, "step"), (axes[1], minutes, "training wall time (min)")):
        ax.semilogy(xs, [v.train_esr for v in history], label="train ESR")
        ax.semilogy(xs, [v.val_esr for v in history], label="validation ESR")
        ax.set_xlabel(label)
        ax.set_ylabel("ESR")
        _grid(ax)
        ax.legend()
    return _save(fig, path)


def capture_plots(report: CaptureReport, out_dir: Path) -> list[Path]:
    """latency_response.png and window_estimates.png (when a latency was estimated) and levels.png."""
    from rtnt.capture.report import FLOOR_DB, FRAME_S, LOW_INFO_DB

    out = Path(out_dir)
    paths: list[Path] = []
    e = report.estimate
    if e is not None and e.response.size:
        fig = Figure(figsize=(9, 3.5))
        ax = fig.add_subplot()
        label = "blip response" if e.method == "blips" else "impulse response"
        ax.plot(e.response_lags, e.response, lw=1, label=label)
        for o, s in e.candidates:
            ax.axvline(o, color="0.6", ls=":", lw=1)
            ax.annotate(f"{o} ({s:.2f})", (o, 0), xytext=(2, 4), textcoords="offset points", fontsize=7)
        ax.axvline(report.latency_samples, color="C3", lw=1.5, label=f"chosen {report.latency_samples}")
        ax.set_xlabel("lag (samples)")
        ax.legend(loc="upper right", fontsize=8)
        ax.set_title("response of the target to the input, candidates dotted")
        paths.append(_save(fig, out / "latency_response.png"))

        fig = Figure(figsize=(6, 3))
        ax = fig.add_subplot()
        idx = [i for i, w in enumerate(e.window_estimates) if w is not None]
        ax.plot(idx, [e.window_estimates[i] for i in idx], "o")
        ax.axhline(report.latency_samples, color="C3", lw=1)
        ax.set_xlabel("window" if e.method != "blips" else "blip")
        ax.set_ylabel("latency (samples)")
        ax.set_title(f"window agreement {e.window_agreement:.2f}")
        paths.append(_save(fig, out / "window_estimates.png"))

    fig = Figure(figsize=(9, 3))
    ax = fig.add_subplot()
    t = np.arange(len(report.input_frames_db)) * FRAME_S
    ax.plot(t, report.input_frames_db, lw=0.6, label="input")
    ax.plot(t, report.target_frames_db, lw=0.6, label="target")
    ax.axhline(report.noise_floor_dbfs + LOW_INFO_DB, color="0.5", ls=":", lw=1, label="low-information level")
    ax.set_ylim(max(FLOOR_DB, min(report.noise_floor_dbfs, report.target_noise_floor_dbfs) - 10), 3)
    ax.set_xlabel("time (s)")
    ax.set_ylabel("dBFS (10 ms RMS)")
    ax.legend(loc="lower right", fontsize=8)
    paths.append(_save(fig, out / "levels.png"))
    return paths


def asr_plots(report: AsrReport, out_dir: Path) -> list[Path]:
    """asr_per_probe.png (ASR dB per pitch, one line per level) and asr_worst_spectrum.png (the worst probe's
    spectrum, harmonics marked)."""
    from rtnt.metrics.asr import harmonic_bins

    out = Path(out_dir)
    frame = report.to_frame()
    fig = Figure(figsize=(7, 4))
    ax = fig.add_subplot()
    for level, rows in frame.groupby("level_dbfs"):
        ax.plot(rows["midi"], rows["asr_db"], marker="o", label=f"{level:g} dBFS")
    ax.set_xlabel("MIDI note of the sine probe")
    ax.set_ylabel("ASR (dB)")
    ax.set_title(f"Aliasing-to-signal ratio per probe ({report.runtime})")
    _grid(ax)
    ax.legend(title="probe level")
    per_probe = _save(fig, out / "asr_per_probe.png")

    worst = report.worst
    spectrum_db = report.worst_spectrum_db
    freqs = np.arange(spectrum_db.size) * report.sample_rate / report.dft_length
    fig = Figure(figsize=(9, 4))
    ax = fig.add_subplot()
    ax.plot(freqs, spectrum_db, lw=0.6, color="0.3", label="output spectrum")
    bins = harmonic_bins(report.worst_f0_bin, report.dft_length)
    ax.plot(freqs[bins], spectrum_db[bins], "v", color="tab:red", ms=5, label="harmonics k·f0")
    finite = spectrum_db[1:][np.isfinite(spectrum_db[1:])]
    ax.set_ylim(max(float(finite.min()), -200.0) - 5 if finite.size else -205.0, 5)
    ax.set_xlim(0, report.sample_rate / 2)
    ax.set_xlabel("frequency (Hz)")
    ax.set_ylabel("power (dB re fundamental)")
    ax.set_title(
        f"Worst probe: MIDI {worst.midi} (f0 {worst.f0:.2f} Hz) at {worst.level_dbfs:g} dBFS, ASR {worst.asr_db:.1f} dB"
    )
    _grid(ax)
    ax.legend(loc="upper right")
    return [per_probe, _save(fig, out / "asr_worst_spectrum.png")]


def esr_vs_knob(settings: Sequence[SettingEvidence], knob: str, path: Path) -> Path | None:
    """Test ESR of the exported file against the (first) knob's value: trained settings as a line with dots,
    held-out settings as open squares; None when no setting has a target."""
    fig = Figure(figsize=(6, 3.8))
    ax = fig.add_subplot()
    drawn = False
    for role, style, label in (("train", "o-", "trained setting"), ("holdout", "s", "held-out setting")):
        points = sorted((s.knobs[0], s.splits.test.esr) for s in settings if s.role == role and s.splits)
        if points:
            xs, ys = zip(*points)
            ax.semilogy(xs, ys, style, label=label, markerfacecolor="none" if role == "holdout" else None)
            drawn = True
    if not drawn:
        return None
    ax.set_xlabel(knob)
    ax.set_ylabel(ESR_AXIS)
    ax.set_title(f"ESR against {knob}")
    _grid(ax)
    ax.legend()
    return _save(fig, path)


def residual_spectrum(y: np.ndarray, y_pred: np.ndarray, sample_rate: int, path: Path) -> Path:
    """Welch PSDs (Hann, 4096 samples) of target, prediction and residual (target - prediction)."""
    from scipy.signal import welch

    from rtnt.metrics.esr import esr

    y = np.asarray(y, dtype=np.float64)
    p = np.asarray(y_pred, dtype=np.float64)
    nper = min(4096, y.size)
    fig = Figure(figsize=(8, 4))
    ax = fig.add_subplot()
    for name, sig, style in (("target", y, "-"), ("prediction", p, "--"), ("residual", y - p, "-")):
        f, psd = welch(sig, fs=sample_rate, nperseg=nper)
        with np.errstate(divide="ignore"):
            ax.semilogx(f[1:], 10.0 * np.log10(psd[1:]), style, lw=0.9, label=name)
    ax.set_xlim(20, sample_rate / 2)
    ax.set_xlabel("frequency (Hz)")
    ax.set_ylabel("PSD (dB re full-scale² / Hz)")
    ax.set_title(f"Residual spectrum (ESR {esr(y, p):.4f})")
    _grid(ax)
    ax.legend()
    return _save(fig, path)


def cabinet_response(spectra: CabinetSpectra, path: Path) -> Path:
    """A cabinet IR's magnitude response over the target's long-term spectrum (and the dry input through the IR)."""
    fig = Figure(figsize=(8, 4))
    ax = fig.add_subplot()
    f = spectra.freqs_hz[1:]
    ax.semilogx(f, spectra.target_db[1:], lw=0.9, label="target, long-term spectrum")
    if spectra.dry_through_ir_db is not None:
        ax.semilogx(f, spectra.dry_through_ir_db[1:], lw=0.9, label="dry input through the IR alone")
    ax.semilogx(f, spectra.ir_db[1:], "k", lw=1.3, label="IR magnitude response")
    ax.set_xlim(20, f[-1])
    ax.set_ylim(-60, 25)
    ax.set_xlabel("frequency (Hz)")
    ax.set_ylabel("dB (0 = mean over 100 Hz-5 kHz)")
    ax.set_title("Cabinet IR against the capture")
    _grid(ax)
    ax.legend()
    return _save(fig, path)


def eq_responses(eqs: Sequence[EqResponse], path: Path) -> Path | None:
    """Magnitude response (dB against log frequency) of every biquad layer of a gray-box file, one panel each:
    the cascade as a thick line, each section thin and dashed, down to 60 dB below the peak; None when there is
    none."""
    if not eqs:
        return None
    fig = Figure(figsize=(8, 3.2 * len(eqs)))
    axes = fig.subplots(len(eqs), 1, squeeze=False)[:, 0]
    for ax, eq in zip(axes, eqs):
        for j, db in enumerate(eq.sections_db):
            p = eq.parameters[j] if j < len(eq.parameters) else {}
            ax.semilogx(eq.freq_hz, db, "--", lw=0.9, label=_section_label(j, p))
        ax.semilogx(eq.freq_hz, eq.total_db, "k-", lw=2.0, label="total")
        ax.set_xlim(eq.freq_hz[0], eq.freq_hz[-1])
        top = float(np.max(eq.total_db))  # show 60 dB below the peak: a low-pass's zero at Nyquist is -inf
        ax.set_ylim(max(float(np.min(eq.total_db)), top - 60.0) - 3.0, top + 3.0)
        ax.set_xlabel("frequency (Hz)")
        ax.set_ylabel("magnitude (dB)")
        ax.set_title(f"layer {eq.layer}: biquad cascade of {len(eq.sections_db)} section(s)")
        _grid(ax)
        ax.legend(fontsize="small", loc="best")
    return _save(fig, path)


def _section_label(j: int, p: Mapping[str, Any]) -> str:
    kind = p.get("kind", "section")
    if kind == "dc_blocker":
        return f"{j}: DC blocker, pole {p.get('pole', float('nan')):.5f}"
    if "freq_hz" not in p:
        return f"{j}: {kind}"
    gain = "" if kind in ("lowpass", "highpass") else f", {p.get('gain_db', 0.0):+.1f} dB"
    return f"{j}: {kind} {p['freq_hz']:.0f} Hz, Q {p.get('q', float('nan')):.2f}{gain}"


def transfer_curves(curves: Sequence[TransferCurve], path: Path) -> Path | None:
    """Output against input of every memoryless nonlinearity of a gray-box file, with the identity for
    reference; None when there is none."""
    if not curves:
        return None
    fig = Figure(figsize=(5.5 * len(curves), 4.2))
    axes = fig.subplots(1, len(curves), squeeze=False)[0]
    for ax, c in zip(axes, curves):
        ax.plot(c.x, c.x, ":", color="grey", label="identity")
        ax.plot(c.x, c.y, "-", lw=1.8, label=c.kind)
        layers = f"layer {c.first}" if c.first == c.last else f"layers {c.first}-{c.last}"
        ax.set_title(f"{c.kind} ({layers})")
        ax.set_xlabel("input")
        ax.set_ylabel("output")
        _grid(ax)
        ax.legend()
    return _save(fig, path)


# --- a comparison of runs --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _RunGroups:
    """The runs to draw, grouped: a colour per configuration label, and the captures in order."""

    data: pd.DataFrame
    labels: pd.Series
    captures: list[str]
    configs: list[str]
    colours: list[tuple[float, float, float, float]]

    def select(self, config: str, capture: str) -> pd.DataFrame:
        return self.data[(self.labels == config).values & (self.data["capture"] == capture).values]


def _run_groups(table: pd.DataFrame, labels: pd.Series, keep: np.ndarray) -> _RunGroups | None:
    """The rows of `table` where `keep` holds, grouped by label and capture; None when no row is kept."""
    data, labels = table[keep], labels[keep]
    if data.empty:
        return None
    configs = sorted(labels.unique())
    return _RunGroups(data, labels, sorted(data["capture"].unique()), configs, _colours(len(configs)))


def esr_against(
    table: pd.DataFrame, labels: pd.Series, x: str, x_label: str, path: Path, *, log_x: bool, title: str
) -> Path | None:
    """ESR (log) of each run against metric `x`; colour per configuration (`labels`, one per row), marker per
    capture. None when no run has both."""
    g = _run_groups(table, labels, table[["esr", x]].notna().all(axis=1).values)
    if g is None:
        return None
    markers = ["o", "s", "^", "D", "v", "P", "X", "*"]
    captures, configs, colours = g.captures, g.configs, g.colours
    fig = Figure(figsize=(7.5, 4.8))
    ax = fig.add_subplot()
    for ci, config in enumerate(configs):
        for mi, capture in enumerate(captures):
            sel = g.select(config, capture)
            if not sel.empty:
                ax.scatter(
                    sel[x],
                    sel["esr"],
                    color=colours[ci],
                    marker=markers[mi % len(markers)],
                    s=46,
                    edgecolors="black",
                    linewidths=0.5,
                )
    ax.set_yscale("log")
    if log_x:
        ax.set_xscale("log")
    ax.set_xlabel(x_label)
    ax.set_ylabel(ESR_AXIS)
    ax.set_title(title)
    _grid(ax)
    handles = [ax.scatter([], [], color=colours[i], marker="o", label=c) for i, c in enumerate(configs)]
    handles += [
        ax.scatter([], [], color="grey", marker=markers[i % len(markers)], label=c) for i, c in enumerate(captures)
    ]
    ax.legend(handles=handles, fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5), frameon=False)
    return _save(fig, path)


def esr_per_capture(table: pd.DataFrame, labels: pd.Series, path: Path) -> Path | None:
    """Grouped bars: one group per capture, one bar per configuration; None when no run has an ESR."""
    g = _run_groups(table, labels, table["esr"].notna().values)
    if g is None:
        return None
    captures, configs, colours = g.captures, g.configs, g.colours
    width = 0.8 / len(configs)
    fig = Figure(figsize=(max(6.0, 1.1 + 0.35 * len(configs) * len(captures)), 4.8))
    ax = fig.add_subplot()
    for ci, config in enumerate(configs):
        heights = []
        for capture in captures:
            sel = g.select(config, capture)
            heights.append(float(sel["esr"].iloc[0]) if len(sel) else math.nan)
        positions = np.arange(len(captures)) + (ci - (len(configs) - 1) / 2) * width
        ax.bar(positions, heights, width=width, color=colours[ci], label=config, edgecolor="black", linewidth=0.4)
    ax.set_xticks(np.arange(len(captures)), captures)
    ax.set_yscale("log")
    ax.set_ylabel(ESR_AXIS)
    ax.set_title("ESR per capture")
    ax.grid(True, axis="y", which="both", alpha=GRID_ALPHA)
    ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5), frameon=False)
    return _save(fig, path)


def loss_curves(
    table: pd.DataFrame, labels: pd.Series, histories: Mapping[str, pd.DataFrame], path: Path
) -> Path | None:
    """Overlaid loss curves against training wall time (or step, for runs without it), one panel per capture:
    validation ESR solid, training loss dashed. None when no run has a history."""
    keep = np.array([bool(run_id in histories and len(histories[run_id])) for run_id in table["run_id"]], dtype=bool)
    g = _run_groups(table, labels, keep)
    if g is None:
        return None
    captures, configs, colours = g.captures, g.configs, g.colours
    fig = Figure(figsize=(4.2 * len(captures) + 2.5, 4.2))
    axes = fig.subplots(1, len(captures), squeeze=False)[0]
    timed = all(histories[r]["elapsed_s"].notna().all() for r in g.data["run_id"])
    for ax, capture in zip(axes, captures):
        for ci, config in enumerate(configs):
            for run_id in g.select(config, capture)["run_id"]:
                h = histories[run_id]
                xs = h["elapsed_s"] / 60 if timed else h["step"]
                ax.plot(xs, h["val_loss"], color=colours[ci], linewidth=1.4)
                ax.plot(xs, h["train_loss"], color=colours[ci], linewidth=0.8, linestyle="--")
        ax.set_yscale("log")
        ax.set_xlabel("training wall time (min)" if timed else "step")
        ax.set_title(capture)
        _grid(ax)
    axes[0].set_ylabel("loss (ESR): validation solid, training dashed")
    handles = [axes[-1].plot([], [], color=colours[i], label=c)[0] for i, c in enumerate(configs)]
    axes[-1].legend(handles=handles, fontsize=7, loc="center left", bbox_to_anchor=(1.02, 0.5), frameon=False)
    return _save(fig, path)


# --- a sweep report --------------------------------------------------------------------------------------------


def _log_if_esr(ax: Any, axis: str, metric: str, values: pd.Series) -> None:
    finite = values[values.notna()]
    if metric.startswith("esr") and len(finite) and (finite > 0).all():
        (ax.set_xscale if axis == "x" else ax.set_yscale)("log")


def pareto_front(frame: pd.DataFrame, pareto: Sequence[int], objectives: Sequence[Objective], path: Path) -> Path:
    """Every pair of objectives: Pareto-front trials (labelled), other feasible trials, infeasible trials."""
    done = frame[frame["state"] == "COMPLETE"] if len(frame) else frame
    pairs = [(a, b) for i, a in enumerate(objectives) for b in objectives[i + 1 :]] or [(objectives[0], None)]
    fig = Figure(figsize=(5 * len(pairs), 4.2))
    axes = fig.subplots(1, len(pairs), squeeze=False)
    front = done[done["trial"].isin(pareto)] if len(done) else done
    for ax, (x_obj, y_obj) in zip(axes[0], pairs):
        groups = [
            (done[~done["feasible"]] if len(done) else done, "infeasible", dict(marker="x", color="0.6")),
            (
                done[done["feasible"] & ~done["trial"].isin(pareto)] if len(done) else done,
                "feasible",
                dict(marker="o", color="tab:blue", alpha=0.6),
            ),
            (front, "Pareto front", dict(marker="*", color="tab:red", s=140, zorder=3)),
        ]
        for part, label, style in groups:
            if len(part):
                y_values = part[y_obj.metric] if y_obj is not None else part["trial"]
                ax.scatter(part[x_obj.metric], y_values, label=f"{label} ({len(part)})", **style)
        for _, row in front.iterrows():
            y_value = row[y_obj.metric] if y_obj is not None else row["trial"]
            ax.annotate(
                str(int(row["trial"])),
                (row[x_obj.metric], y_value),
                textcoords="offset points",
                xytext=(4, 4),
                fontsize=8,
            )
        ax.set_xlabel(f"{x_obj.metric} ({x_obj.direction})")
        ax.set_ylabel(f"{y_obj.metric} ({y_obj.direction})" if y_obj is not None else "trial")
        if len(done):
            _log_if_esr(ax, "x", x_obj.metric, done[x_obj.metric])
            if y_obj is not None:
                _log_if_esr(ax, "y", y_obj.metric, done[y_obj.metric])
        _grid(ax)
        ax.legend(fontsize=8)
    fig.suptitle("Pareto front (labels: trial numbers)")
    return _save(fig, path)


def trials_esr_vs_asr(frame: pd.DataFrame, pareto: Sequence[int], path: Path) -> Path | None:
    """ESR against mean ASR for every complete trial, coloured by worst-case native RTF; Pareto trials ringed,
    infeasible ones crossed. None when no trial reported both ESR and ASR."""
    import pandas as pd

    esr, asr, rtf_key = "esr", "asr_mean_db", "native_rtf_worst"
    if not len(frame) or esr not in frame or asr not in frame:
        return None
    done = frame[(frame["state"] == "COMPLETE") & frame[esr].notna() & frame[asr].notna()]
    if not len(done):
        return None
    fig = Figure(figsize=(6.5, 4.5))
    ax = fig.add_subplot()
    rtf = done[rtf_key] if rtf_key in done else pd.Series(math.nan, index=done.index)
    has_rtf = rtf.notna()
    if has_rtf.any():
        points = ax.scatter(done[esr][has_rtf], done[asr][has_rtf], c=rtf[has_rtf], cmap="viridis", s=40)
        fig.colorbar(points, ax=ax, label="worst-case native RTF")
    if (~has_rtf).any():
        ax.scatter(done[esr][~has_rtf], done[asr][~has_rtf], color="0.6", marker="s", s=30, label="no native RTF")
    infeasible = done[~done["feasible"]]
    if len(infeasible):
        ax.scatter(infeasible[esr], infeasible[asr], color="k", marker="x", s=30, label="infeasible")
    front = done[done["trial"].isin(pareto)]
    if len(front):
        ax.scatter(
            front[esr], front[asr], facecolors="none", edgecolors="tab:red", s=160, linewidths=1.5, label="Pareto front"
        )
    _log_if_esr(ax, "x", esr, done[esr])
    ax.set_xlabel("ESR (test split)")
    ax.set_ylabel("mean ASR (dB)")
    _grid(ax)
    ax.legend(fontsize=8)
    return _save(fig, path)


def param_importances(table: pd.DataFrame, path: Path) -> Path:
    """Horizontal bars: fANOVA importance of each parameter, one bar per objective."""
    metrics = [c for c in table.columns if c != "param"]
    fig = Figure(figsize=(7, 0.5 * len(table) + 1.5))
    ax = fig.add_subplot()
    height = 0.8 / len(metrics)
    for j, metric in enumerate(metrics):
        ax.barh([k + j * height for k in range(len(table))], table[metric], height=height, label=metric)
    ax.set_yticks([k + 0.4 - height / 2 for k in range(len(table))], table["param"])
    ax.set_xlabel("importance (fANOVA)")
    ax.legend(fontsize=8)
    return _save(fig, path)
