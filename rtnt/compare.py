"""Compare rtnt runs logged in MLflow: one table (Markdown, CSV) and plots, from any tracking URI.

`load_runs` reads runs with `mlflow.search_runs` into pandas; `comparison_table` keeps the latest
finished run of each configuration and puts the rtnt metrics in columns with fixed names;
`write_comparison` writes `comparison.md`, `comparison.csv` and the plots into a folder.

A configuration is identified by its run name `<preset>@<capture>#<hash of overrides>`, so re-running
an experiment replaces its rows in the table instead of adding duplicates. The Hydra overrides that
differ between the compared runs (for example `preset.smoothing_alpha`) become columns of their own.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from rtnt import plots
from rtnt.errors import RtntError, exception_summary
from rtnt.sweep.tracking import PARENT_ROLE_TAG
from rtnt.tracking.redact import redact_text


class CompareError(RtntError):
    """The runs to compare cannot be read or selected as asked."""


@dataclass(frozen=True)
class MetricSpec:
    """One rtnt run metric: its MLflow key, what it measures and which direction is better."""

    key: str
    definition: str
    better: str  # "lower", "higher" or "context"
    fmt: str  # format spec for tables


METRICS: tuple[MetricSpec, ...] = (
    MetricSpec(
        "esr", "error-to-signal ratio Σ(y−ŷ)²/Σy² on the test split, rendered by the exported JSON", "lower", ".4g"
    ),
    MetricSpec("esr_val", "the same on the validation split", "lower", ".4g"),
    MetricSpec("esr_preemph", "test ESR after first-order pre-emphasis 1 − 0.85 z⁻¹ of both signals", "lower", ".4g"),
    MetricSpec("asr_mean_db", "aliasing-to-signal ratio over the sine probes, 10·log10 of the mean", "lower", ".1f"),
    MetricSpec(
        "parity_error", "max abs difference, Keras vs the exported JSON in the reference runtime", "lower", ".2g"
    ),
    MetricSpec(
        "native_parity_error", "max abs difference, Keras vs the native runtime over all block sizes", "lower", ".2g"
    ),
    MetricSpec(
        "native_rtf_worst",
        "worst native real-time factor over block sizes (99th-percentile block time)",
        "higher",
        ".1f",
    ),
    MetricSpec("native_rtf_b128", "mean native real-time factor at block size 128", "higher", ".1f"),
    MetricSpec("params", "trainable and non-trainable parameters", "lower", ".0f"),
    MetricSpec("macs_per_sample", "multiply-accumulates per output sample when streaming", "lower", ".0f"),
    MetricSpec("receptive_field_ms", "input history each output sample depends on, ms", "context", ".1f"),
    MetricSpec("gate.ready", "1 when every export-gate criterion passes", "higher", ".0f"),
    MetricSpec("epochs_completed", "epochs trained (cumulative for continued runs)", "context", ".1f"),
    MetricSpec("train.steps", "optimizer steps (cumulative for continued runs)", "context", ".0f"),
    MetricSpec("train.samples_per_s", "scored training samples per second of wall time", "context", ".0f"),
    MetricSpec("time.train_s", "wall time of the training stage, s", "context", ".0f"),
)
METRIC_KEYS: tuple[str, ...] = tuple(m.key for m in METRICS)
TAG_COLUMNS: tuple[str, ...] = ("preset", "capture", "family", "experiment", "sweep")
# Override keys never shown as varying columns: already columns, or bookkeeping.
IGNORED_OVERRIDE_KEYS: frozenset[str] = frozenset({"preset", "capture", "experiment"})
IGNORED_OVERRIDE_PREFIXES: tuple[str, ...] = ("hydra", "tracking")
LOSS_KEYS: tuple[str, str] = ("train_loss", "val_loss")
MISSING = "—"


@contextmanager
def _using_tracking_uri(tracking_uri: str) -> Iterator[None]:
    """Point the `mlflow` module API at `tracking_uri` for the duration, then restore the previous URI."""
    import mlflow

    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(tracking_uri)
    try:
        yield
    finally:
        mlflow.set_tracking_uri(previous)


def load_runs(tracking_uri: str, experiment: str | None = None, filter_string: str | None = None) -> pd.DataFrame:
    """All runs of `experiment` (every experiment when None) matching an MLflow filter,
    as `mlflow.search_runs` returns them.

    Raises CompareError for an unknown experiment or an invalid filter (the CLI checks that the store exists).
    The frame may be empty; `comparison_table` decides what is comparable.
    """
    import mlflow
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri)
    try:
        if experiment is not None:
            exp = client.get_experiment_by_name(experiment)
            if exp is None:
                known = sorted(e.name for e in client.search_experiments())
                raise CompareError(
                    f"experiment {experiment!r} not found in {redact_text(tracking_uri)}; "
                    f"known experiments: {', '.join(known) or 'none'}"
                )
            experiment_ids = [exp.experiment_id]
        else:
            experiment_ids = [e.experiment_id for e in client.search_experiments()]
        if not experiment_ids:
            return pd.DataFrame()
        with _using_tracking_uri(tracking_uri):
            frame = mlflow.search_runs(experiment_ids=experiment_ids, filter_string=filter_string or "")
    except MlflowException as exc:
        what = f"filter {filter_string!r}" if filter_string else f"tracking store {redact_text(tracking_uri)}"
        raise CompareError(redact_text(f"cannot read runs ({what}): {exception_summary(exc)}")) from None
    assert isinstance(frame, pd.DataFrame)
    return frame


def parse_overrides(text: str) -> dict[str, str]:
    """`key=value` pairs of the `overrides` tag (space-separated Hydra overrides), keys without `+`/`~`."""
    out: dict[str, str] = {}
    for token in str(text).split():
        if "=" not in token:
            continue
        key, value = token.split("=", 1)
        out[key.lstrip("+~")] = value
    return out


def _column(df: pd.DataFrame, name: str, default: object = math.nan) -> pd.Series:
    return df[name] if name in df.columns else pd.Series([default] * len(df), index=df.index, dtype=object)


def varying_override_keys(overrides: Sequence[Mapping[str, str]]) -> list[str]:
    """Override keys whose value differs between runs (preset, capture, experiment and hydra/tracking keys excluded)."""
    keys = sorted({k for o in overrides for k in o})
    out = []
    for key in keys:
        if key in IGNORED_OVERRIDE_KEYS or key.startswith(IGNORED_OVERRIDE_PREFIXES):
            continue
        if len({o.get(key, MISSING) for o in overrides}) > 1:
            out.append(key)
    return out


def _sort_key(column: pd.Series) -> pd.Series:
    """Numbers sort as numbers when every value of a column is one, else as text."""
    numeric = pd.to_numeric(column, errors="coerce")
    return numeric if numeric.notna().all() else column.astype(str)


def comparison_table(df: pd.DataFrame) -> pd.DataFrame:
    """One row per configuration (latest finished run of each run name within an experiment).

    Optuna sweep parent runs (tag `rtnt.sweep.role = parent`) are left out: their trials are the runs.

    Columns: `run`, the tags `preset capture family experiment sweep`, one column per varying Hydra
    override, every metric of `METRICS` (NaN where a run did not log it), `wall_s` (run wall time)
    and `run_id`. Rows are sorted by experiment, capture, the varying overrides (numerically when
    they are numbers) and ESR: a study reads in the order of its parameter, a comparison by rank.
    """
    if df.empty or "status" not in df.columns:
        return pd.DataFrame(columns=["run", *TAG_COLUMNS, *METRIC_KEYS, "wall_s", "run_id"])
    is_parent = _column(df, f"tags.{PARENT_ROLE_TAG}", "").fillna("").astype(str) == "parent"
    runs = df[(df["status"] == "FINISHED") & ~is_parent].copy()
    runs["_name"] = _column(runs, "tags.mlflow.runName", "").fillna("").astype(str)
    runs["_experiment"] = _column(runs, "tags.experiment", MISSING).fillna(MISSING).astype(str)
    runs = runs.sort_values("start_time").drop_duplicates(subset=["_experiment", "_name"], keep="last")

    overrides = [parse_overrides(t) for t in _column(runs, "tags.overrides", "").fillna("")]
    varying = varying_override_keys(overrides)

    table = pd.DataFrame(index=runs.index)
    table["run"] = runs["_name"]
    for tag in TAG_COLUMNS:
        table[tag] = _column(runs, f"tags.{tag}", MISSING).fillna(MISSING).astype(str)
    for key in varying:
        table[key] = [o.get(key, MISSING) for o in overrides]
    for key in METRIC_KEYS:
        table[key] = pd.to_numeric(_column(runs, f"metrics.{key}"), errors="coerce").astype(float)
    wall = pd.to_datetime(runs["end_time"]) - pd.to_datetime(runs["start_time"])
    table["wall_s"] = wall.dt.total_seconds().astype(float)
    table["run_id"] = runs["run_id"].astype(str)
    table = table.sort_values(
        ["experiment", "capture", *varying, "esr"], key=_sort_key, na_position="last"
    ).reset_index(drop=True)
    return table


def override_columns(table: pd.DataFrame) -> list[str]:
    """The varying-override columns of a comparison table (those between the tags and the metrics)."""
    fixed = {"run", *TAG_COLUMNS, *METRIC_KEYS, "wall_s", "run_id"}
    return [c for c in table.columns if c not in fixed]


def config_labels(table: pd.DataFrame) -> pd.Series:
    """A short label per row: the preset, plus the varying overrides
    (e.g. `wavenet_tcn_balanced smoothing_alpha=1.5`)."""
    extra = override_columns(table)

    def label(row: pd.Series) -> str:
        parts = [f"{key.rsplit('.', 1)[-1]}={row[key]}" for key in extra]
        return " ".join([str(row["preset"]), *parts])

    return table.apply(label, axis=1) if len(table) else pd.Series([], dtype=str)


def best_per_capture(table: pd.DataFrame, metric: str = "esr") -> pd.DataFrame:
    """The row with the lowest `metric` for each experiment and capture."""
    ranked = table.dropna(subset=[metric])
    if ranked.empty:
        return ranked
    idx = ranked.groupby(["experiment", "capture"])[metric].idxmin()
    return ranked.loc[idx.values]


def _format_value(value: object, fmt: str) -> str:
    if isinstance(value, (float, np.floating)):
        return MISSING if not math.isfinite(float(value)) else format(float(value), fmt)
    return str(value)


def markdown_table(table: pd.DataFrame, columns: Sequence[str]) -> str:
    """A GitHub Markdown table of `columns`, metrics formatted by their `MetricSpec`."""
    fmts = {m.key: m.fmt for m in METRICS} | {"wall_s": ".0f"}
    header = "| " + " | ".join(columns) + " |"
    rule = "|" + "|".join("---" for _ in columns) + "|"
    rows = [
        "| " + " | ".join(_format_value(row[c], fmts.get(c, "")) for c in columns) + " |" for _, row in table.iterrows()
    ]
    return "\n".join([header, rule, *rows])


def _legend_markdown() -> str:
    lines = ["| metric | definition | better |", "|---|---|---|"]
    lines += [f"| `{m.key}` | {m.definition} | {m.better} |" for m in METRICS]
    lines.append("| `wall_s` | wall time of the whole run (train, export, validation), s | context |")
    return "\n".join(lines)


def load_loss_histories(tracking_uri: str, run_ids: Sequence[str]) -> dict[str, pd.DataFrame]:
    """Per-validation `train_loss`, `val_loss` and training wall time of each run (columns `step`, `train_loss`,
    `val_loss`, `elapsed_s`; runs from before step-based training have epochs as steps and no wall time)."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri)
    out: dict[str, pd.DataFrame] = {}
    for run_id in run_ids:
        series = {}
        for key, column in (*((k, k) for k in LOSS_KEYS), ("train.elapsed_s", "elapsed_s")):
            history = client.get_metric_history(run_id, key)
            series[column] = pd.Series({m.step: m.value for m in history}, dtype=float)
        frame = pd.DataFrame(series).sort_index()
        frame.index.name = "step"
        out[run_id] = frame.reset_index()
    return out


def write_comparison(
    runs: pd.DataFrame,
    out_dir: Path,
    *,
    title: str = "rtnt comparison",
    selection: str = "",
    loss_histories: Mapping[str, pd.DataFrame] | None = None,
) -> list[Path]:
    """Write `comparison.md`, `comparison.csv` and the plots of `comparison_table(runs)` into `out_dir`.

    `selection` describes how the runs were chosen (printed under the title). Loss curves are drawn
    when `loss_histories` (from `load_loss_histories`) is given. Returns the written paths, Markdown first.
    Raises CompareError when no finished run is left to compare.
    """
    table = comparison_table(runs)
    if table.empty:
        raise CompareError(f"no finished runs to compare ({selection or 'all runs'}); check --experiment and --filter")
    out_dir.mkdir(parents=True, exist_ok=True)
    csv_path = out_dir / "comparison.csv"
    table.to_csv(csv_path, index=False)
    labels = config_labels(table)
    rtf_label = "native RTF, worst block size (× real time) — higher is better"
    asr_label = "ASR mean (dB) — lower is better"
    drawn = [
        plots.esr_against(
            table,
            labels,
            "native_rtf_worst",
            rtf_label,
            out_dir / "esr_vs_rtf.png",
            log_x=True,
            title="Accuracy vs native speed",
        ),
        plots.esr_against(
            table,
            labels,
            "asr_mean_db",
            asr_label,
            out_dir / "esr_vs_asr.png",
            log_x=False,
            title="Accuracy vs aliasing",
        ),
        plots.esr_per_capture(table, labels, out_dir / "esr_per_capture.png"),
    ]
    if loss_histories is not None:
        drawn.append(plots.loss_curves(table, labels, loss_histories, out_dir / "loss_curves.png"))
    written_plots = [p for p in drawn if p is not None]

    md_path = out_dir / "comparison.md"
    md_path.write_text(_comparison_markdown(table, runs, title, selection, written_plots))
    return [md_path, csv_path, *written_plots]


def _comparison_markdown(
    table: pd.DataFrame, runs: pd.DataFrame, title: str, selection: str, figures: Sequence[Path]
) -> str:
    shown = [
        "preset",
        "capture",
        *override_columns(table),
        "esr",
        "esr_val",
        "esr_preemph",
        "asr_mean_db",
        "native_rtf_worst",
        "native_rtf_b128",
        "params",
        "macs_per_sample",
        "receptive_field_ms",
        "parity_error",
        "native_parity_error",
        "gate.ready",
        "epochs_completed",
        "time.train_s",
        "wall_s",
    ]
    finished = int((runs["status"] == "FINISHED").sum()) if "status" in runs.columns else 0
    best = best_per_capture(table)
    lines = [
        f"# {title}",
        "",
        f"Generated by `rtnt-compare` from {len(runs)} MLflow runs ({finished} finished)"
        + (f", selected by {selection}" if selection else "")
        + f"; the latest finished run of each of the {len(table)} configurations is shown.",
        "",
        markdown_table(table, shown),
        "",
    ]
    if not best.empty:
        lines += [
            "## Lowest ESR per capture",
            "",
            markdown_table(
                best, ["capture", "preset", *override_columns(table), "esr", "asr_mean_db", "native_rtf_worst"]
            ),
            "",
        ]
    lines += ["## Plots", ""] + [f"![{p.stem}]({p.name})" for p in figures] + [""]
    lines += ["## Metrics", "", _legend_markdown(), ""]
    return "\n".join(lines)
