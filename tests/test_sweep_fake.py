"""The rtnt_optuna sweeper end to end on the fake app (real config tree and MLflow, fake training):
parent and child runs, constraints, the Pareto report, resume, failures, max_failure_rate, joblib,
and plugin discovery from the installed package."""

from __future__ import annotations

import importlib.metadata
import os
import subprocess
import sys
from pathlib import Path

import mlflow
import optuna
import pandas as pd
import pytest
from sweep_support import SweepSetup, progress_lines

CONSTRAINTS = {"parity", "native_validation", "rtf_headroom"}
REPORT = ["pareto_front.csv", "pareto_front.md", "pareto_front.png", "esr_vs_asr.png", "trials.csv"]


@pytest.fixture(scope="module")
def resumed(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """A 3-trial sweep whose trial 0 violates a constraint, then the same study resumed for 2 more."""
    setup = SweepSetup(tmp_path_factory.mktemp("sweep"))
    first = setup.run_fake("s1", 3, "++sweep.fake.infeasible_on=[0]", name="first")
    assert first.returncode == 0, first.stderr[-3000:]
    study_after_first = [(t.number, t.state) for t in setup.study("s1").trials]
    second = setup.run_fake("s1", 2, name="second")
    assert second.returncode == 0, second.stderr[-3000:]
    return {"setup": setup, "first": first, "second": second, "after_first": study_after_first}


def test_first_sweep_runs_three_complete_trials(resumed: dict) -> None:
    assert resumed["after_first"] == [(n, optuna.trial.TrialState.COMPLETE) for n in range(3)]
    lines = progress_lines(resumed["first"].stdout)
    assert [line.split(":")[0] for line in lines] == [f"[rtnt_optuna] trial {n}" for n in range(3)]
    assert all("esr=" in line and "feasible=" in line and "pareto=" in line for line in lines)
    assert "feasible=no (violates rtf_headroom)" in lines[0]


def test_constraints_are_recorded_and_infeasible_trials_never_reach_the_front(resumed: dict) -> None:
    study = resumed["setup"].study("s1")
    for trial in study.trials:
        assert set(trial.constraints) == CONSTRAINTS
    assert study.trials[0].constraints["rtf_headroom"] > 0
    front = {t.number for t in study.best_trials}
    assert front and 0 not in front
    assert all(all(v <= 0 for v in study.trials[n].constraints.values()) for n in front)


def test_parent_run_has_nested_trial_runs_with_tags(resumed: dict) -> None:
    setup: SweepSetup = resumed["setup"]
    parents = setup.parents("s1")
    assert len(parents) == 2
    first = parents.iloc[0]
    assert first["status"] == "FINISHED"
    assert first["tags.sweep"] == "dilations_smoothing"
    children = setup.children(first["run_id"])
    assert sorted(children["tags.trial"].astype(int)) == [0, 1, 2]
    assert set(children["status"]) == {"FINISHED"}
    assert (children["tags.sweep.study"] == "s1").all()
    assert children["tags.sweep.rerun"].str.startswith("rtnt-train sweep=dilations_smoothing").all()
    assert children["tags.param.preset.channels"].notna().all()
    assert children["metrics.esr"].notna().all()
    study = setup.study("s1")
    for _, child in children.iterrows():
        trial = study.trials[int(child["tags.trial"])]
        assert trial.user_attrs["run_id"] == child["run_id"]
        assert child["tags.sweep.feasible"] == str(all(v <= 0 for v in trial.constraints.values())).lower()


def test_pareto_report_is_logged_on_the_parent(resumed: dict, tmp_path: Path) -> None:
    setup: SweepSetup = resumed["setup"]
    parent_id = setup.parents("s1").iloc[0]["run_id"]
    client = mlflow.MlflowClient(setup.tracking_uri)
    logged = {a.path for a in client.list_artifacts(parent_id, "sweep")}
    assert {f"sweep/{name}" for name in REPORT} <= logged
    local = client.download_artifacts(parent_id, "sweep/pareto_front.csv", str(tmp_path))
    front = pd.read_csv(local)
    assert 0 not in set(front["trial"]) and front["feasible"].all()
    assert front["overrides"].str.contains("preset.dilations=").all()
    assert (
        "| trial | esr | asr_mean_db | native_rtf_worst |"
        in (setup.root / "first" / "sweep_report" / "pareto_front.md").read_text()
    )


def test_resume_continues_the_numbering(resumed: dict) -> None:
    setup: SweepSetup = resumed["setup"]
    study = setup.study("s1")
    assert [t.number for t in study.trials] == [0, 1, 2, 3, 4]
    assert all(t.state == optuna.trial.TrialState.COMPLETE for t in study.trials)
    second_parent = setup.parents("s1").iloc[1]["run_id"]
    assert sorted(setup.children(second_parent)["tags.trial"].astype(int)) == [3, 4]
    assert "(3 trials so far)" in resumed["second"].stdout
    assert sorted(p.name.split("_")[0] for p in (setup.root / "second").glob("*_wavenet*")) == ["3", "4"]


def test_failing_trials_are_recorded_and_the_sweep_goes_on(tmp_path: Path) -> None:
    setup = SweepSetup(tmp_path)
    proc = setup.run_fake(
        "f1", 4, "++sweep.fake.raise_on=[1]", "++sweep.fake.nan_on=[2]", "preset.channels=8", "train.batch_size=2,4"
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    study = setup.study("f1")
    states = [t.state for t in study.trials]
    assert states == [
        optuna.trial.TrialState.COMPLETE,
        optuna.trial.TrialState.FAIL,
        optuna.trial.TrialState.FAIL,
        optuna.trial.TrialState.COMPLETE,
    ]
    assert "RuntimeError: fake failure of trial 1" in study.trials[1].user_attrs["fail_reason"]
    assert "objective esr is nan" in study.trials[2].user_attrs["fail_reason"]
    lines = progress_lines(proc.stdout)
    assert "FAIL (RuntimeError: fake failure of trial 1)" in lines[1]
    # a value fixed on the command line is not searched; a command-line sweep joins the space
    assert all("preset.channels" not in t.params and t.params["train.batch_size"] in (2, 4) for t in study.trials)
    children = setup.children(setup.parents("f1").iloc[0]["run_id"]).set_index("tags.trial")
    assert children.loc["1", "status"] == "FAILED"
    assert "fake failure" in children.loc["1", "tags.sweep.fail_reason"]
    assert children.loc["2", "tags.sweep.state"] == "FAIL"


def test_max_failure_rate_stops_a_broken_sweep(tmp_path: Path) -> None:
    setup = SweepSetup(tmp_path)
    proc = setup.run_fake("b1", 3, "++sweep.fake.raise_on=[0,1,2]", "hydra.sweeper.max_failure_rate=0.3")
    assert proc.returncode != 0
    assert "stopped: 1 of 1 trials failed, more than max_failure_rate=0.3 of n_trials=3" in proc.stdout + proc.stderr
    study = setup.study("b1")
    assert [t.state for t in study.trials] == [optuna.trial.TrialState.FAIL]
    parent = setup.parents("b1").iloc[0]
    assert parent["status"] == "FAILED"
    assert "max_failure_rate" in parent["tags.rtnt.end_reason"]


def test_joblib_launcher_runs_a_batch_in_parallel(tmp_path: Path) -> None:
    setup = SweepSetup(tmp_path)
    proc = setup.run_fake(
        "j1", 2, "hydra/launcher=joblib", "hydra.launcher.n_jobs=2", "hydra.sweeper.n_jobs=2", timeout=400
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    study = setup.study("j1")
    assert [t.state for t in study.trials] == [optuna.trial.TrialState.COMPLETE] * 2
    children = setup.children(setup.parents("j1").iloc[0]["run_id"])
    assert sorted(children["tags.trial"].astype(int)) == [0, 1]
    assert len(set(children["tags.rtnt.pid"])) == 2  # two worker processes


def test_hydra_discovers_the_plugin_from_the_installed_package(tmp_path: Path) -> None:
    try:
        importlib.metadata.distribution("rtnt")
    except importlib.metadata.PackageNotFoundError:
        pytest.skip("rtnt is not installed (pip install -e .)")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    code = (
        "from hydra.core.plugins import Plugins\n"
        "from hydra.plugins.launcher import Launcher\n"
        "from hydra.plugins.sweeper import Sweeper\n"
        "from hydra.core.config_store import ConfigStore\n"
        "p = Plugins.instance()\n"
        "print([c.__module__ + '.' + c.__name__ for c in p.discover(Sweeper) + p.discover(Launcher)])\n"
        "print(ConfigStore.instance().list('hydra/sweeper'))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    assert "hydra_plugins.rtnt_optuna_sweeper.sweeper.RtntOptunaSweeper" in proc.stdout
    assert "hydra_plugins.hydra_joblib_launcher.joblib_launcher.JoblibLauncher" in proc.stdout
    assert "rtnt_optuna.yaml" in proc.stdout


def test_optuna_dashboard_opens_the_journal(resumed: dict) -> None:
    """`optuna-dashboard <journal file>` serves the study, its 5 trials and their constraints."""
    import json
    from wsgiref.util import setup_testing_defaults

    dashboard = pytest.importorskip("optuna_dashboard", reason="optuna-dashboard is the optional [dashboard] extra")
    app = dashboard.wsgi(str(resumed["setup"].journal))

    def get(path: str) -> dict:
        environ: dict = {"PATH_INFO": path}
        setup_testing_defaults(environ)
        environ["wsgi.errors"] = sys.stderr
        status: list[str] = []
        body = b"".join(app(environ, lambda s, headers, exc_info=None: status.append(s)))
        assert status == ["200 OK"], body[:500]
        return json.loads(body)

    summaries = get("/api/studies")["study_summaries"]
    (study,) = [s for s in summaries if s["study_name"] == "s1"]
    detail = get(f"/api/studies/{study['study_id']}")
    assert len(detail["trials"]) == 5
    assert "constraints" in json.dumps(detail["trials"][0])
