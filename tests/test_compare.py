"""rtnt-compare: the table, the plots and the one-line errors, on a temporary MLflow store.

The store is filled through the MLflow API with runs that carry the tags, names and metrics that
`rtnt-train` logs (see rtnt/pipeline.py), so these tests do not train anything.
"""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import mlflow
import pandas as pd
import pytest
from mlflow.entities import Metric, Param, RunTag
from mlflow.tracking import MlflowClient

from rtnt.cli.compare import main
from rtnt.compare import METRIC_KEYS, comparison_table, load_runs, parse_overrides, write_comparison
from rtnt.sweep.tracking import PARENT_ROLE_TAG
from rtnt.tracking.run import run_name

PRESETS = ("wavenet_tcn_balanced", "wavenet_tcn_edge")
CAPTURES = ("crunch_amp", "highgain_amp")
EXPERIMENT = "toy_comparison"
FINAL_METRICS = (
    "esr",
    "esr_val",
    "esr_preemph",
    "asr_mean_db",
    "parity_error",
    "native_parity_error",
    "native_rtf_worst",
    "params",
    "macs_per_sample",
    "receptive_field_ms",
    "gate.ready",
    "epochs_completed",
    "time.train_s",
)


def _log_run(
    client: MlflowClient,
    experiment_id: str,
    preset: str,
    capture: str,
    overrides: list[str],
    esr: float,
    status: str = "FINISHED",
    experiment_tag: str = EXPERIMENT,
) -> str:
    """One run named and tagged like rtnt-train's, with final metrics and a 3-epoch loss history."""
    tags = {
        "mlflow.runName": run_name(preset, capture, overrides),
        "preset": preset,
        "capture": capture,
        "family": "wavenet",
        "sweep": "none",
        "experiment": experiment_tag,
        "git_commit": "0" * 40,
        "overrides": " ".join(overrides),
    }
    run = client.create_run(experiment_id, tags=tags, run_name=tags["mlflow.runName"])
    values = dict.fromkeys(FINAL_METRICS, 1.0) | {
        "esr": esr,
        "esr_val": esr * 1.1,
        "esr_preemph": esr * 2,
        "asr_mean_db": -30 - 10 * esr,
        "native_rtf_worst": 50.0 if preset.endswith("edge") else 12.0,
        "params": 1234.0,
        "gate.ready": 0.0,
        "epochs_completed": 3.0,
    }
    metrics = [Metric(k, v, 0, 0) for k, v in values.items()]
    metrics += [
        Metric(key, esr * (4 - e) * scale, 0, e)
        for e in (1, 2, 3)
        for key, scale in (("train_loss", 1.0), ("val_loss", 1.2))
    ]
    client.log_batch(
        run.info.run_id, metrics=metrics, params=[Param("preset.name", preset)], tags=[RunTag("rtnt.pid", "1")]
    )
    client.set_terminated(run.info.run_id, status=status)
    return run.info.run_id


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A store with 2 presets × 2 captures in `toy_comparison` (one configuration run twice), a failed
    run, an Optuna sweep parent run, and a smoothing sweep of 2 alphas in another experiment. Shared by the
    module's tests (read only)."""
    tracking_uri = f"sqlite:///{tmp_path_factory.mktemp('store') / 'mlflow.db'}"
    client = MlflowClient(tracking_uri)
    exp = client.create_experiment(EXPERIMENT)
    for i, preset in enumerate(PRESETS):
        for j, capture in enumerate(CAPTURES):
            overrides = [f"preset={preset}", f"capture={capture}", f"+experiment={EXPERIMENT}"]
            _log_run(client, exp, preset, capture, overrides, esr=0.01 * (1 + i + 2 * j))
    rerun = [f"preset={PRESETS[0]}", f"capture={CAPTURES[0]}", f"+experiment={EXPERIMENT}"]
    _log_run(client, exp, PRESETS[0], CAPTURES[0], rerun, esr=0.005)  # the latest run of a configuration wins
    _log_run(client, exp, PRESETS[1], "ts9_pedal", ["preset=x"], esr=0.5, status="FAILED")
    parent = client.create_run(exp, tags={PARENT_ROLE_TAG: "parent"}, run_name="sweep-parent")
    client.log_metric(parent.info.run_id, "esr", 0.001)
    client.set_terminated(parent.info.run_id)
    other = client.create_experiment("toy_smoothing")
    for alpha in ("3", "1", "10"):
        overrides = [f"preset.smoothing_alpha={alpha}", "capture=highgain_amp", "+experiment=toy_smoothing"]
        _log_run(
            client, other, PRESETS[0], "highgain_amp", overrides, esr=0.1 / float(alpha), experiment_tag="toy_smoothing"
        )
    return tracking_uri


def test_parse_overrides_strips_prefixes() -> None:
    assert parse_overrides("+experiment=a preset.smoothing_alpha=1.5 ~x=1 junk") == {
        "experiment": "a",
        "preset.smoothing_alpha": "1.5",
        "x": "1",
    }


def test_table_has_one_row_per_configuration_and_every_metric(store: str) -> None:
    table = comparison_table(load_runs(store, experiment=EXPERIMENT))
    assert len(table) == 4  # one configuration run twice; the failed run and the sweep parent are left out
    for column in ("run", "preset", "capture", "family", "experiment", "sweep", *METRIC_KEYS, "wall_s", "run_id"):
        assert column in table.columns, column
    assert set(zip(table["preset"], table["capture"])) == {(p, c) for p in PRESETS for c in CAPTURES}
    rerun = table[(table["preset"] == PRESETS[0]) & (table["capture"] == CAPTURES[0])]
    assert rerun["esr"].item() == pytest.approx(0.005)
    assert table["run"].str.fullmatch(r"[\w.]+@[\w.]+#[0-9a-f]{8}").all()
    assert (table["wall_s"] >= 0).all()
    # Sorted by capture, then ESR.
    assert list(table["capture"]) == sorted(table["capture"])


def test_varying_override_becomes_a_column(store: str) -> None:
    table = comparison_table(load_runs(store, experiment="toy_smoothing"))
    assert list(table["preset.smoothing_alpha"]) == ["1", "3", "10"]  # numeric order, not ESR or text order
    assert "capture=" not in " ".join(table.columns)


def test_filter_selects_runs_across_experiments(store: str) -> None:
    table = comparison_table(load_runs(store, filter_string="tags.capture = 'highgain_amp'"))
    assert set(table["capture"]) == {"highgain_amp"}
    assert set(table["experiment"]) == {EXPERIMENT, "toy_smoothing"}
    assert len(table) == 5


def test_write_comparison_writes_table_and_plots(store: str, tmp_path: Path) -> None:
    out = tmp_path / "report"
    written = write_comparison(load_runs(store, experiment=EXPERIMENT), out, title="toy")
    names = sorted(p.name for p in written)
    assert names == ["comparison.csv", "comparison.md", "esr_per_capture.png", "esr_vs_asr.png", "esr_vs_rtf.png"]
    for path in written:
        assert path.parent == out and path.stat().st_size > 0
    csv = pd.read_csv(out / "comparison.csv")
    assert len(csv) == 4 and "native_rtf_worst" in csv.columns
    md = (out / "comparison.md").read_text()
    assert md.startswith("# toy")
    assert "| preset | capture | esr |" in md
    assert "![esr_vs_rtf](esr_vs_rtf.png)" in md
    assert "## Lowest ESR per capture" in md
    assert md.count("\n| wavenet_tcn_") == 4  # one table row per configuration
    assert md.count("\n| crunch_amp | wavenet_tcn_balanced |") == 1  # lowest ESR on crunch_amp
    assert "0.005" in md


def test_cli_writes_loss_curves(store: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "cli"
    main(["--tracking-uri", store, "--experiment", "toy_smoothing", "--loss-curves", "--out", str(out)])
    printed = capsys.readouterr().out.split()
    assert str(out / "loss_curves.png") in printed
    assert (out / "loss_curves.png").stat().st_size > 0
    assert "| preset | capture | preset.smoothing_alpha | esr |" in (out / "comparison.md").read_text()


def test_cli_uses_mlflow_tracking_uri_from_environment(
    store: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", store)
    main(["--experiment", EXPERIMENT, "--out", str(tmp_path / "env")])
    assert len(pd.read_csv(tmp_path / "env" / "comparison.csv")) == 4


def test_load_runs_leaves_the_global_tracking_uri_alone(store: str) -> None:
    before = mlflow.get_tracking_uri()
    load_runs(store, experiment=EXPERIMENT)
    assert mlflow.get_tracking_uri() == before


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--experiment", "nope"], "error: experiment 'nope' not found in sqlite:///"),
        (["--experiment", EXPERIMENT, "--filter", "tags.capture = 'nowhere'"], "error: no finished runs to compare"),
        (["--filter", "tags.capture === 'x'"], "error: cannot read runs (filter \"tags.capture === 'x'\")"),
    ],
)
def test_cli_errors_are_one_line_exit_2(
    store: str, tmp_path: Path, args: list[str], expected: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([*args, "--tracking-uri", store, "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and err.startswith(expected), err
    assert not (tmp_path / "x").exists()


def test_unreachable_server_is_one_line_without_its_password(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    assert main(["--tracking-uri", "http://user:secret@127.0.0.1:1", "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: cannot read runs (tracking store http://user:***@127.0.0.1:1)"), err
    assert "secret" not in err and "\n" not in err


def test_cli_refuses_a_missing_sqlite_store_without_creating_it(tmp_path: Path) -> None:
    db = tmp_path / "typo.db"
    proc = subprocess.run(
        [sys.executable, "-m", "rtnt.cli.compare", "--tracking-uri", f"sqlite:///{db}", "--out", str(tmp_path / "o")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().startswith("error: tracking store sqlite:///") and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    assert not db.exists()


def test_empty_metrics_are_nan_not_errors(tracking_uri: str) -> None:
    client = MlflowClient(tracking_uri)
    exp = client.create_experiment("bare")
    run = client.create_run(exp, run_name="bare_run")
    client.log_metric(run.info.run_id, "esr", 0.1)
    client.set_terminated(run.info.run_id)
    table = comparison_table(load_runs(tracking_uri, experiment="bare"))
    assert len(table) == 1 and table["preset"].item() == "—"
    assert math.isnan(table["native_rtf_worst"].item())
