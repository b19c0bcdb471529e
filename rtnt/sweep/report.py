"""The sweep report: trial and Pareto-front tables (CSV + Markdown), plots and parameter importances.

Everything is computed from the Optuna study, so a report can be rebuilt at any time from the
storage (`write_report(optuna.load_study(...), ...)`). The Pareto front is Optuna's
`Study.best_trials`, which in a constrained study only ever contains feasible trials.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from rtnt.sweep.outcome import Objective
from rtnt.sweep.space import format_value

if TYPE_CHECKING:
    import optuna

log = logging.getLogger(__name__)

ESR_METRIC = "esr"
ASR_METRIC = "asr_mean_db"
RTF_METRIC = "native_rtf_worst"


@dataclass
class SweepReport:
    """Files written by `write_report` and the numbers a progress line or a test wants."""

    directory: Path
    n_complete: int
    n_failed: int
    pareto_trials: list[int]
    files: list[Path] = field(default_factory=list)
    importance_note: str = ""


def trials_frame(study: optuna.Study, objectives: Sequence[Objective]) -> pd.DataFrame:
    """One row per finished trial: number, state, feasibility, objectives, constraints, params, run,
    re-run overrides."""
    import optuna

    rows = []
    for t in study.get_trials(deepcopy=False):
        if t.state not in (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.FAIL):
            continue
        row: dict[str, Any] = {"trial": t.number, "state": t.state.name}
        complete = t.state == optuna.trial.TrialState.COMPLETE
        row["feasible"] = complete and all(v <= 0.0 for v in t.constraints.values())
        for i, obj in enumerate(objectives):
            row[obj.metric] = t.values[i] if complete and t.values is not None else math.nan
        metrics = t.user_attrs.get("metrics") or {}
        for name in (ESR_METRIC, ASR_METRIC, RTF_METRIC):
            if name not in row:
                value = metrics.get(name)
                row[name] = float(value) if value is not None else math.nan
        for name, value in sorted(t.constraints.items()):
            row[f"constraint.{name}"] = value
        for name, value in t.params.items():
            row[f"param.{name}"] = value
        for key, value in (t.user_attrs.get("values") or {}).items():
            if isinstance(value, list):  # expanded schedules, e.g. the dilations a family generated
                row[f"value.{key}"] = format_value(value)
        row["run_id"] = t.user_attrs.get("run_id", "")
        row["fail_reason"] = t.user_attrs.get("fail_reason", "")
        row["overrides"] = " ".join(t.user_attrs.get("overrides", []))
        rows.append(row)
    return pd.DataFrame(rows)


def markdown_table(frame: pd.DataFrame) -> str:
    """A GitHub Markdown table; floats with 4 significant digits, `|` escaped."""

    def cell(value: Any) -> str:
        if isinstance(value, float):
            return "" if math.isnan(value) else f"{value:.4g}"
        return str(value).replace("|", "\\|")

    header = "| " + " | ".join(map(str, frame.columns)) + " |"
    rule = "|" + "|".join("---" for _ in frame.columns) + "|"
    body = ["| " + " | ".join(cell(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join([header, rule, *body]) + "\n"


def _scale(ax: Any, axis: str, metric: str, values: pd.Series) -> None:
    finite = values[values.notna()]
    if metric.startswith(ESR_METRIC) and len(finite) and (finite > 0).all():
        (ax.set_xscale if axis == "x" else ax.set_yscale)("log")


def plot_pareto_front(frame: pd.DataFrame, pareto: Sequence[int], objectives: Sequence[Objective], path: Path) -> Path:
    """Every pair of objectives: Pareto-front trials, other feasible trials, infeasible trials."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    done = frame[frame["state"] == "COMPLETE"] if len(frame) else frame
    pairs = [(a, b) for i, a in enumerate(objectives) for b in objectives[i + 1 :]] or [(objectives[0], None)]
    fig, axes = plt.subplots(1, len(pairs), figsize=(5 * len(pairs), 4.2), squeeze=False)
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
            _scale(ax, "x", x_obj.metric, done[x_obj.metric])
            if y_obj is not None:
                _scale(ax, "y", y_obj.metric, done[y_obj.metric])
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle("Pareto front (labels: trial numbers)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_esr_vs_asr(frame: pd.DataFrame, pareto: Sequence[int], path: Path) -> Path | None:
    """ESR against ASR for every complete trial, coloured by worst-case native RTF; Pareto trials ringed.

    Returns None when no trial reported both ESR and ASR.
    """
    if not len(frame) or ESR_METRIC not in frame or ASR_METRIC not in frame:
        return None
    done = frame[(frame["state"] == "COMPLETE") & frame[ESR_METRIC].notna() & frame[ASR_METRIC].notna()]
    if not len(done):
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    rtf = done[RTF_METRIC] if RTF_METRIC in done else pd.Series(math.nan, index=done.index)
    has_rtf = rtf.notna()
    if has_rtf.any():
        points = ax.scatter(done[ESR_METRIC][has_rtf], done[ASR_METRIC][has_rtf], c=rtf[has_rtf], cmap="viridis", s=40)
        fig.colorbar(points, ax=ax, label="worst-case native RTF")
    if (~has_rtf).any():
        ax.scatter(
            done[ESR_METRIC][~has_rtf], done[ASR_METRIC][~has_rtf], color="0.6", marker="s", s=30, label="no native RTF"
        )
    infeasible = done[~done["feasible"]]
    if len(infeasible):
        ax.scatter(infeasible[ESR_METRIC], infeasible[ASR_METRIC], color="k", marker="x", s=30, label="infeasible")
    front = done[done["trial"].isin(pareto)]
    if len(front):
        ax.scatter(
            front[ESR_METRIC],
            front[ASR_METRIC],
            facecolors="none",
            edgecolors="tab:red",
            s=160,
            linewidths=1.5,
            label="Pareto front",
        )
    _scale(ax, "x", ESR_METRIC, done[ESR_METRIC])
    ax.set_xlabel("ESR (test split)")
    ax.set_ylabel("mean ASR (dB)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def param_importances(
    study: optuna.Study, objectives: Sequence[Objective], min_trials: int
) -> tuple[pd.DataFrame | None, str]:
    """fANOVA importance of each parameter for each objective over the complete trials.

    Returns (table, note): the table is None when there are fewer than `min_trials` complete trials
    or Optuna cannot compute importances (the note says why). Conditional parameters (those of the
    dilation family) only count when every complete trial has them, as Optuna requires.
    """
    import optuna

    complete = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    if len(complete) < min_trials:
        return None, f"parameter importances need at least {min_trials} complete trials (have {len(complete)})"
    columns: dict[str, dict[str, float]] = {}
    for i, obj in enumerate(objectives):
        try:
            scores = optuna.importance.get_param_importances(
                study,
                evaluator=optuna.importance.FanovaImportanceEvaluator(seed=0),
                target=lambda t, i=i: t.values[i],
            )
        except (RuntimeError, ValueError) as exc:
            return None, f"Optuna could not compute parameter importances: {exc}"
        columns[obj.metric] = dict(scores)
    table = pd.DataFrame(columns).fillna(0.0)
    table.index.name = "param"
    return table.reset_index(), f"fANOVA importances over {len(complete)} complete trials"


def _plot_importances(table: pd.DataFrame, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    metrics = [c for c in table.columns if c != "param"]
    fig, ax = plt.subplots(figsize=(7, 0.5 * len(table) + 1.5))
    height = 0.8 / len(metrics)
    for j, metric in enumerate(metrics):
        ax.barh([k + j * height for k in range(len(table))], table[metric], height=height, label=metric)
    ax.set_yticks([k + 0.4 - height / 2 for k in range(len(table))], table["param"])
    ax.set_xlabel("importance (fANOVA)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def write_report(
    study: optuna.Study, objectives: Sequence[Objective], out_dir: Path, min_trials_for_importance: int
) -> SweepReport:
    """Write trials.csv, pareto_front.{csv,md,png}, esr_vs_asr.png and, with enough trials, param_importances.*"""
    out_dir.mkdir(parents=True, exist_ok=True)
    frame = trials_frame(study, objectives)
    pareto = sorted(t.number for t in study.best_trials) if len(frame) and (frame["state"] == "COMPLETE").any() else []
    files: list[Path] = []
    trials_csv = out_dir / "trials.csv"
    frame.to_csv(trials_csv, index=False)
    files.append(trials_csv)

    front = frame[frame["trial"].isin(pareto)] if len(frame) else frame
    front_csv = out_dir / "pareto_front.csv"
    front.to_csv(front_csv, index=False)
    md_columns = ["trial", *[o.metric for o in objectives]]
    md_columns += [c for c in front.columns if c.startswith(("param.", "value.", "constraint."))] + ["run_id"]
    md_columns = list(dict.fromkeys(c for c in md_columns if c in front.columns))
    directions = ", ".join(f"{o.direction} {o.metric}" for o in objectives)
    front_md = out_dir / "pareto_front.md"
    front_md.write_text(
        f"# Pareto front of study `{study.study_name}`\n\n"
        f"Objectives: {directions}. {len(pareto)} Pareto-optimal feasible trials out of "
        f"{int((frame['state'] == 'COMPLETE').sum()) if len(frame) else 0} complete "
        f"({int(frame['feasible'].sum()) if len(frame) else 0} feasible), "
        f"{int((frame['state'] == 'FAIL').sum()) if len(frame) else 0} failed. "
        "Constraints are satisfied when <= 0. Re-run a trial with `rtnt-train <overrides>` from pareto_front.csv.\n\n"
        + (markdown_table(front[md_columns]) if len(front) else "No feasible complete trial yet.\n")
    )
    files += [front_csv, front_md]
    if len(frame) and (frame["state"] == "COMPLETE").any():
        files.append(plot_pareto_front(frame, pareto, objectives, out_dir / "pareto_front.png"))
        esr_asr = plot_esr_vs_asr(frame, pareto, out_dir / "esr_vs_asr.png")
        if esr_asr is not None:
            files.append(esr_asr)

    table, note = param_importances(study, objectives, min_trials_for_importance)
    if table is not None:
        csv_path = out_dir / "param_importances.csv"
        table.to_csv(csv_path, index=False)
        md_path = out_dir / "param_importances.md"
        md_path.write_text(f"# Parameter importances\n\n{note}.\n\n{markdown_table(table)}")
        files += [csv_path, md_path, _plot_importances(table, out_dir / "param_importances.png")]
    else:
        log.info(note)
    n_complete = int((frame["state"] == "COMPLETE").sum()) if len(frame) else 0
    n_failed = int((frame["state"] == "FAIL").sum()) if len(frame) else 0
    return SweepReport(out_dir, n_complete, n_failed, pareto, files, note)
