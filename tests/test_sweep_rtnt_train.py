"""The real thing, small: `rtnt-train -m sweep=dilations_smoothing train=smoke` on the demo capture,
two trials of tiny models, then resumed for one more."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import mlflow
import optuna
import pytest
from sweep_support import SweepSetup, progress_lines

from rtnt.sweep.contract import CONTRACT_METRICS
from rtnt.tracking.machine import machine_tags

pytestmark = pytest.mark.slow

# gate.rtf_headroom: the trials are feasible however loaded the test machine is (its p99 RTF is not what these
# tests check), so the Pareto front that --rerun-pareto re-benchmarks is never empty.
TINY = ("preset.channels=8", "preset.kernel_sizes=[3]", "validate.bench_seconds=0.5", "gate.rtf_headroom=0.01")


@pytest.fixture(scope="module")
def real_sweep(tmp_path_factory: pytest.TempPathFactory) -> dict:
    setup = SweepSetup(tmp_path_factory.mktemp("real_sweep"))
    app = [sys.executable, "-m", "rtnt.cli.train"]
    first = subprocess.run(
        setup.command(app, "real", 2, *TINY, name="first"), cwd=setup.root, capture_output=True, text=True, timeout=900
    )
    assert first.returncode == 0, first.stdout[-2000:] + first.stderr[-3000:]
    second = subprocess.run(
        setup.command(app, "real", 1, *TINY, name="second"), cwd=setup.root, capture_output=True, text=True, timeout=900
    )
    assert second.returncode == 0, second.stdout[-2000:] + second.stderr[-3000:]
    return {"setup": setup, "first": first, "second": second}


def test_real_trials_are_told_with_objectives_and_gate_constraints(real_sweep: dict) -> None:
    study = real_sweep["setup"].study("real")
    assert [t.number for t in study.trials] == [0, 1, 2]
    for trial in study.trials:
        assert trial.state == optuna.trial.TrialState.COMPLETE, trial.user_attrs.get("fail_reason")
        assert len(trial.values) == 3
        assert set(trial.constraints) == {"parity", "native_validation", "rtf_headroom"}
        assert trial.user_attrs["metrics"]["parity_error"] is not None
        returned = trial.user_attrs["metrics"]  # what the real pipeline's JobResult held
        assert set(CONTRACT_METRICS) <= set(returned)
        assert all(returned[m] is not None for m in CONTRACT_METRICS), returned
        assert trial.user_attrs["machine"] == machine_tags()  # the machine its speed was measured on (#18)
    assert len(progress_lines(real_sweep["first"].stdout)) == 2
    assert {t.number for t in study.best_trials} <= {
        t.number for t in study.trials if all(v <= 0 for v in t.constraints.values())
    }


def test_real_trials_are_nested_rtnt_train_runs_with_the_sampled_config(real_sweep: dict) -> None:
    setup: SweepSetup = real_sweep["setup"]
    parents = setup.parents("real")
    assert list(parents["status"]) == ["FINISHED", "FINISHED"]
    children = setup.children(parents.iloc[0]["run_id"])
    assert sorted(children["tags.trial"].astype(int)) == [0, 1]
    assert set(children["status"]) == {"FINISHED"}
    assert (children["tags.sweep"] == "dilations_smoothing").all()
    for column in ("metrics.esr", "metrics.asr_mean_db", "metrics.native_rtf_worst", "metrics.gate.ready"):
        assert children[column].notna().all(), column
    study = setup.study("real")
    for _, child in children.iterrows():
        values = study.trials[int(child["tags.trial"])].user_attrs["values"]
        assert ast.literal_eval(child["params.preset.dilations"]) == values["preset.dilations"]
        assert float(child["params.preset.smoothing_alpha"]) == pytest.approx(values["preset.smoothing_alpha"])
    resumed = setup.children(parents.iloc[1]["run_id"])
    assert list(resumed["tags.trial"]) == ["2"]


def test_real_sweep_logs_the_pareto_report(real_sweep: dict, tmp_path: Path) -> None:
    setup: SweepSetup = real_sweep["setup"]
    parent_id = setup.parents("real").iloc[1]["run_id"]
    logged = {a.path for a in mlflow.MlflowClient(setup.tracking_uri).list_artifacts(parent_id, "sweep")}
    assert {"sweep/pareto_front.csv", "sweep/pareto_front.md", "sweep/trials.csv"} <= logged


def _rerun(setup: SweepSetup, run_id: str, out: Path) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "rtnt.cli.bench", "--rerun-pareto", run_id, "--tracking-uri", setup.tracking_uri]
    cmd += ["--out", str(out), "--seconds", "0.3", "--json"]
    return subprocess.run(cmd, cwd=setup.root, capture_output=True, text=True, timeout=600)


def test_rerun_pareto_benchmarks_the_front_s_model_files_on_this_machine(real_sweep: dict, tmp_path: Path) -> None:
    from rtnt.tracking.machine import cpu_model

    setup: SweepSetup = real_sweep["setup"]
    parent = setup.parents("real").iloc[1]
    front = ast.literal_eval(parent["tags.sweep.pareto_trials"])
    assert front, "the tiny sweep has no feasible trial to re-benchmark"
    proc = _rerun(setup, parent["run_id"], tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    table = json.loads(proc.stdout)
    assert table["cpu"] == cpu_model() and table["sgemm_gmacs"] > 0
    assert sorted(row["trial"] for row in table["trials"]) == sorted(front)
    for row in table["trials"]:
        assert row["rtf_worst"] > 0 and 0 < row["efficiency_b128"] < 10, row
        assert row["recorded_cpu"] == cpu_model() and row["recorded_rtf_worst"] > 0
    assert [r["rtf_worst"] for r in table["trials"]] == sorted((r["rtf_worst"] for r in table["trials"]), reverse=True)
    logged = {
        a.path for a in mlflow.MlflowClient(setup.tracking_uri).list_artifacts(parent["run_id"], "sweep/rerun_pareto")
    }
    assert logged == {"sweep/rerun_pareto/pareto_rerun.csv", "sweep/rerun_pareto/pareto_rerun.md"}


def test_rerun_pareto_of_a_trial_run_is_a_one_line_error(real_sweep: dict, tmp_path: Path) -> None:
    setup: SweepSetup = real_sweep["setup"]
    child = setup.children(setup.parents("real").iloc[0]["run_id"]).iloc[0]["run_id"]
    proc = _rerun(setup, child, tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: ") and "is not a sweep's parent run" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
