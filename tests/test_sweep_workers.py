"""Sweep workers as a team: a worker killed with SIGKILL has its trial failed by Optuna's heartbeat and
re-queued; several sweeper processes on one study keep every slot busy (a slow trial holds up nobody);
the submitit launcher runs a sweep's jobs as separate processes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import mlflow
import optuna
import pytest
from sweep_support import FAKE_APP, SweepSetup, create_databases

FAKE = [sys.executable, str(FAKE_APP)]
HEARTBEAT = ("hydra.sweeper.heartbeat_interval=1", "hydra.sweeper.grace_period=2", "hydra.sweeper.max_retry=1")


def _start(setup: SweepSetup, name: str, study: str, n_trials: int, *overrides: str, storage: str) -> subprocess.Popen:
    log = open(setup.root / f"{name}.log", "w")
    cmd = setup.command(FAKE, study, n_trials, *overrides, storage=storage, name=name)
    return subprocess.Popen(cmd, cwd=setup.root, stdout=log, stderr=subprocess.STDOUT, text=True)


def _finish(setup: SweepSetup, proc: subprocess.Popen, name: str, timeout: float = 300) -> str:
    proc.wait(timeout=timeout)
    log = (setup.root / f"{name}.log").read_text()
    assert proc.returncode == 0, log[-3000:]
    return log


def _wait_for(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.3)


def _trials(study: str, storage: str) -> list[optuna.trial.FrozenTrial]:
    try:
        return optuna.load_study(study_name=study, storage=storage).trials
    except KeyError:  # the study does not exist yet
        return []


def test_a_killed_worker_s_trial_is_failed_by_the_heartbeat_and_its_retry_completes(tmp_path: Path) -> None:
    setup = SweepSetup(tmp_path)
    storage = f"sqlite:///{tmp_path / 'optuna.db'}"
    doomed = _start(setup, "doomed", "hb", 1, *HEARTBEAT, "++sweep.fake.sleep_s=120", storage=storage)
    try:  # the trial is asked and has its first heartbeat once its re-run command is recorded
        _wait_for(lambda: any("rerun" in t.user_attrs for t in _trials("hb", storage)), 180, "a RUNNING trial")
        os.kill(doomed.pid, signal.SIGKILL)
        doomed.wait(timeout=30)
    finally:
        if doomed.poll() is None:
            doomed.kill()
    (killed,) = _trials("hb", storage)
    assert killed.state == optuna.trial.TrialState.RUNNING  # what a dead worker leaves behind
    time.sleep(2.5)  # past the grace period (the next worker's start-up alone usually takes longer)

    rescuer = _start(setup, "rescuer", "hb", 1, *HEARTBEAT, storage=storage)
    log = _finish(setup, rescuer, "rescuer")
    dead, retry = _trials("hb", storage)
    assert dead.state == optuna.trial.TrialState.FAIL
    assert retry.state == optuna.trial.TrialState.COMPLETE, retry.user_attrs.get("fail_reason")
    assert optuna.storages.RetryHeartbeatStaleTrialCallback.retried_trial_number(retry) == dead.number
    assert retry.params == dead.params
    assert "trial 0: its worker stopped sending heartbeats (killed?): FAIL, re-queued" in log
    assert retry.user_attrs["worker"].endswith(f":{rescuer.pid}")


@pytest.mark.postgres
def test_several_sweeper_processes_keep_working_while_one_trial_is_slow(postgres: str, tmp_path: Path) -> None:
    """The asynchronous pattern: each process asks Optuna for its next trial as soon as its own finishes, and a
    live worker's long trial is never taken for a dead one's."""
    create_databases(postgres, "async_optuna")
    storage = f"{postgres}/async_optuna"
    setup = SweepSetup(tmp_path)
    # The tracking store exists before the workers start (two processes creating its tables would race).
    mlflow.MlflowClient(setup.tracking_uri).create_experiment("rtnt", artifact_location=(tmp_path / "art").as_uri())
    # With a 2 s grace period, the slow trial (20 s) stays alive only through the heartbeats its sweeper sends
    # while it runs: the fast worker checks for stale trials before each of its asks.
    slow = _start(setup, "slow", "async", 1, *HEARTBEAT, "++sweep.fake.sleep_s=20", storage=storage)
    fast = _start(setup, "fast", "async", 3, *HEARTBEAT, storage=storage)
    _finish(setup, fast, "fast")
    _finish(setup, slow, "slow")

    trials = _trials("async", storage)
    assert [t.state for t in trials] == [optuna.trial.TrialState.COMPLETE] * 4
    by_worker: dict[str, list[optuna.trial.FrozenTrial]] = {}
    for t in trials:
        by_worker.setdefault(t.user_attrs["worker"], []).append(t)
    (slow_trial,) = by_worker[f"{os.uname().nodename}:{slow.pid}"]
    fast_trials = by_worker[f"{os.uname().nodename}:{fast.pid}"]
    assert len(fast_trials) == 3
    during = [
        t
        for t in fast_trials
        if slow_trial.datetime_start < t.datetime_start and t.datetime_complete < slow_trial.datetime_complete
    ]
    assert len(during) >= 2, [(t.number, t.datetime_start, t.datetime_complete) for t in trials]


def test_a_job_process_the_launcher_loses_fails_its_batch_and_the_sweep_goes_on(tmp_path: Path) -> None:
    setup = SweepSetup(tmp_path)
    proc = setup.run_fake(
        "lost",
        2,
        "hydra/launcher=joblib",
        "hydra.launcher.n_jobs=2",
        "hydra.sweeper.n_jobs=2",
        "hydra.sweeper.max_failure_rate=1.0",
        "++sweep.fake.kill_on=[1]",
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    trials = setup.study("lost").trials
    assert [t.state for t in trials] == [optuna.trial.TrialState.FAIL] * 2
    assert all(t.user_attrs["fail_reason"].startswith("the launcher lost the job: ") for t in trials)
    assert list(setup.parents("lost")["status"]) == ["FINISHED"]


@pytest.mark.parametrize("name", ["submitit_local", "submitit_slurm"])
def test_shipped_launcher_configs_have_exactly_the_plugin_s_fields(name: str) -> None:
    """conf/hydra/launcher/<name>.yaml takes the place of the plugin's own config: same fields, same target."""
    from hydra_plugins.hydra_submitit_launcher.config import LocalQueueConf, SlurmQueueConf
    from omegaconf import OmegaConf

    from rtnt.config import CONF_DIR

    shipped = OmegaConf.load(CONF_DIR / "hydra" / "launcher" / f"{name}.yaml")
    plugin = OmegaConf.structured(LocalQueueConf if name == "submitit_local" else SlurmQueueConf)
    assert set(shipped.keys()) == set(plugin.keys())
    assert shipped._target_ == plugin._target_


@pytest.mark.postgres
def test_submitit_local_launcher_runs_a_shared_study_with_two_workers(postgres: str, tmp_path: Path) -> None:
    create_databases(postgres, "submitit_optuna")
    storage = f"{postgres}/submitit_optuna"
    setup = SweepSetup(tmp_path)
    cmd = setup.command(
        FAKE,
        "submitit",
        4,
        "hydra/launcher=submitit_local",
        "hydra.sweeper.n_jobs=2",
        "hydra.launcher.timeout_min=5",
        "++sweep.fake.sleep_s=4",  # long enough for the two jobs of a batch to overlap whatever their start-up
        storage=storage,
    )
    proc = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]

    trials = _trials("submitit", storage)
    assert [t.number for t in trials] == [0, 1, 2, 3]
    assert all(t.state == optuna.trial.TrialState.COMPLETE for t in trials), [t.user_attrs for t in trials]
    # Each job ran in its own submitit process (not the sweeper's, whose pid is the trials' worker attribute),
    # and the two jobs of a batch ran at the same time.
    jobs = {}
    for log in (tmp_path / "sweep" / ".submitit").glob("*/*_log.out"):
        fields = dict(f.split("=", 1) for f in log.read_text().split("rtnt-fake-job ")[1].split()[:3])
        start, end = map(float, fields["slept"].split(":"))
        jobs[int(fields["trial"])] = (fields["pid"], start, end)
    assert sorted(jobs) == [0, 1, 2, 3], jobs
    sweeper_pid = trials[0].user_attrs["worker"].rsplit(":", 1)[1]
    assert len({pid for pid, _, _ in jobs.values()} - {sweeper_pid}) == 4
    for a, b in ((0, 1), (2, 3)):
        assert jobs[a][1] < jobs[b][2] and jobs[b][1] < jobs[a][2], f"jobs {a} and {b} did not overlap: {jobs}"
    runs = setup.parents("submitit")
    assert list(runs["status"]) == ["FINISHED"]
    assert sorted(setup.children(runs.iloc[0]["run_id"])["tags.trial"].astype(int)) == [0, 1, 2, 3]
