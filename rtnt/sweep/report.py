"""The sweep report: trial and Pareto-front tables (CSV + Markdown), plots and parameter importances.

Everything is computed from the Optuna study, so a report can be rebuilt at any time from the
storage (`write_report(optuna.load_study(...), ...)`). The Pareto front is Optuna's
`Study.best_trials`, which in a constrained study only ever contains feasible trials, unless the trials
measured their speed on different machines: then absolute RTF does not compare, and the front is taken
over the feasible trials with the machine-relative `native_efficiency_b128` in place of `native_rtf_worst`
(`speed_basis`); the report says which it used and why.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from rtnt import plots
from rtnt.sweep.outcome import Objective
from rtnt.sweep.space import format_value

if TYPE_CHECKING:
    import optuna

log = logging.getLogger(__name__)

ESR_METRIC = "esr"
ASR_METRIC = "asr_mean_db"
RTF_METRIC = "native_rtf_worst"
EFFICIENCY_METRIC = "native_efficiency_b128"
SGEMM_METRIC = "native_sgemm_gmacs"
CPU_TAG = "machine.cpu"
SGEMM_SPREAD = 1.5
"""Trials whose machines' single-thread sgemm rates differ by more than this factor count as different machines
even under one CPU name (another clock, throttling, a different cloud host): a few tens of percent is the noise
of one shared VM."""


@dataclass(frozen=True)
class SpeedBasis:
    """The speed figure the Pareto front compares (`native_rtf_worst` or `native_efficiency_b128`) and why."""

    metric: str
    reason: str
    machines: list[str]


@dataclass
class SweepReport:
    """Files written by `write_report` and the numbers a progress line or a test wants."""

    directory: Path
    n_complete: int
    n_failed: int
    pareto_trials: list[int]
    files: list[Path] = field(default_factory=list)
    importance_note: str = ""
    speed: SpeedBasis | None = None


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
        for name in (ESR_METRIC, ASR_METRIC, RTF_METRIC, EFFICIENCY_METRIC, SGEMM_METRIC):
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
        row[CPU_TAG] = (t.user_attrs.get("machine") or {}).get(CPU_TAG, "unknown")
        row["run_id"] = t.user_attrs.get("run_id", "")
        row["fail_reason"] = t.user_attrs.get("fail_reason", "")
        row["overrides"] = " ".join(t.user_attrs.get("overrides", []))
        rows.append(row)
    return pd.DataFrame(rows)


def speed_basis(frame: pd.DataFrame) -> SpeedBasis:
    """`native_efficiency_b128` when the complete trials ran on more than one CPU model (`machine.cpu`, `unknown`
    for trials that did not record it) or their sgemm rates differ by more than `SGEMM_SPREAD`; else
    `native_rtf_worst`."""
    done = frame[frame["state"] == "COMPLETE"] if len(frame) else frame
    machines = sorted(set(done[CPU_TAG])) if len(done) else []
    sgemm = done[SGEMM_METRIC].dropna() if len(done) else pd.Series(dtype=float)
    spread = float(sgemm.max() / sgemm.min()) if len(sgemm) and sgemm.min() > 0 else 1.0
    relative = f"{EFFICIENCY_METRIC} (achieved MAC rate at block 128 / that machine's single-thread sgemm MAC rate)"
    if len(machines) > 1:
        return SpeedBasis(
            EFFICIENCY_METRIC,
            f"the trials ran on {len(machines)} CPU models ({'; '.join(machines)}), whose absolute RTFs do not "
            f"compare, so speed is compared as {relative}",
            machines,
        )
    if spread > SGEMM_SPREAD:
        return SpeedBasis(
            EFFICIENCY_METRIC,
            f"the trials' machines differ {spread:.2f}x in single-thread sgemm speed (more than {SGEMM_SPREAD}x), "
            f"so speed is compared as {relative}",
            machines,
        )
    where = machines[0] if machines else "one machine"
    return SpeedBasis(
        RTF_METRIC,
        f"every complete trial ran on {where} (sgemm rates within {spread:.2f}x), so absolute {RTF_METRIC} compares",
        machines,
    )


def non_dominated(frame: pd.DataFrame, objectives: Sequence[Objective]) -> list[int]:
    """Trial numbers of the feasible complete rows that no other such row dominates (Pareto optimality under the
    objectives' directions); rows with a missing objective value take no part."""
    rows = frame[(frame["state"] == "COMPLETE") & frame["feasible"]] if len(frame) else frame
    rows = rows.dropna(subset=[o.metric for o in objectives]) if len(rows) else rows
    signs = [1.0 if o.direction == "minimize" else -1.0 for o in objectives]
    points = [
        (int(r["trial"]), [s * float(r[o.metric]) for s, o in zip(signs, objectives)]) for _, r in rows.iterrows()
    ]

    def dominates(a: list[float], b: list[float]) -> bool:
        return all(x <= y for x, y in zip(a, b)) and any(x < y for x, y in zip(a, b))

    return sorted(n for n, p in points if not any(dominates(q, p) for _, q in points))


def compared_objectives(objectives: Sequence[Objective], speed: SpeedBasis) -> list[Objective]:
    """The objectives the report ranks: `native_rtf_worst` replaced by `speed.metric` (maximised)."""
    return [Objective(speed.metric, "maximize") if o.metric == RTF_METRIC else o for o in objectives]


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


def write_report(
    study: optuna.Study, objectives: Sequence[Objective], out_dir: Path, min_trials_for_importance: int
) -> SweepReport:
    """Write trials.csv, pareto_front.{csv,md,png}, esr_vs_asr.png and, with enough trials, param_importances.*"""
    out_dir.mkdir(parents=True, exist_ok=True)
    frame = trials_frame(study, objectives)
    speed = speed_basis(frame)
    ranked = compared_objectives(objectives, speed)
    if not len(frame) or not (frame["state"] == "COMPLETE").any():
        pareto: list[int] = []
    elif ranked != list(objectives):
        pareto = non_dominated(frame, ranked)
    else:
        pareto = sorted(t.number for t in study.best_trials)
    files: list[Path] = []
    trials_csv = out_dir / "trials.csv"
    frame.to_csv(trials_csv, index=False)
    files.append(trials_csv)

    front = frame[frame["trial"].isin(pareto)] if len(frame) else frame
    front_csv = out_dir / "pareto_front.csv"
    front.to_csv(front_csv, index=False)
    md_columns = ["trial", *[o.metric for o in ranked], *[o.metric for o in objectives], CPU_TAG]
    md_columns += [c for c in front.columns if c.startswith(("param.", "value.", "constraint."))] + ["run_id"]
    md_columns = list(dict.fromkeys(c for c in md_columns if c in front.columns))
    speed_note = (
        f"Speed: {speed.metric}, because {speed.reason}. "
        if RTF_METRIC in {o.metric for o in objectives}
        else f"Machines: {'; '.join(speed.machines) or 'none yet'}. "
    )
    directions = ", ".join(f"{o.direction} {o.metric}" for o in ranked)
    front_md = out_dir / "pareto_front.md"
    front_md.write_text(
        f"# Pareto front of study `{study.study_name}`\n\n"
        f"Objectives: {directions}. {len(pareto)} Pareto-optimal feasible trials out of "
        f"{int((frame['state'] == 'COMPLETE').sum()) if len(frame) else 0} complete "
        f"({int(frame['feasible'].sum()) if len(frame) else 0} feasible), "
        f"{int((frame['state'] == 'FAIL').sum()) if len(frame) else 0} failed. "
        + speed_note
        + "Constraints are satisfied when <= 0. Re-run a trial with `rtnt-train <overrides>` from pareto_front.csv.\n\n"
        + (markdown_table(front[md_columns]) if len(front) else "No feasible complete trial yet.\n")
    )
    files += [front_csv, front_md]
    if len(frame) and (frame["state"] == "COMPLETE").any():
        files.append(plots.pareto_front(frame, pareto, ranked, out_dir / "pareto_front.png"))
        esr_asr = plots.trials_esr_vs_asr(frame, pareto, out_dir / "esr_vs_asr.png")
        if esr_asr is not None:
            files.append(esr_asr)

    table, note = param_importances(study, objectives, min_trials_for_importance)
    if table is not None:
        csv_path = out_dir / "param_importances.csv"
        table.to_csv(csv_path, index=False)
        md_path = out_dir / "param_importances.md"
        md_path.write_text(f"# Parameter importances\n\n{note}.\n\n{markdown_table(table)}")
        files += [csv_path, md_path, plots.param_importances(table, out_dir / "param_importances.png")]
    else:
        log.info(note)
    n_complete = int((frame["state"] == "COMPLETE").sum()) if len(frame) else 0
    n_failed = int((frame["state"] == "FAIL").sum()) if len(frame) else 0
    return SweepReport(out_dir, n_complete, n_failed, pareto, files, note, speed)
