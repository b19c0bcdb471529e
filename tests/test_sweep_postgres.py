"""Two sweep workers share one Optuna study in a real PostgreSQL server started by the test:
no trial is lost or duplicated, and each trial has exactly one nested MLflow run."""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import mlflow
import optuna
import pytest
from sweep_support import FAKE_APP, SweepSetup

pytestmark = pytest.mark.postgres

N_PER_WORKER = 3


def _server_bin() -> Path | None:
    """The folder holding initdb and pg_ctl: on PATH, else the newest /usr/lib/postgresql/*/bin."""
    initdb = shutil.which("initdb")
    if initdb and shutil.which("pg_ctl"):
        return Path(os.path.realpath(initdb)).parent
    found = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"),
        key=lambda p: int(p.split("/")[4]) if p.split("/")[4].isdigit() else 0,
    )
    return Path(found[-1]).parent if found else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def postgres() -> Iterator[str]:
    """A throwaway PostgreSQL server on a free port; yields the URL of its `postgres` database.

    initdb refuses to run as root, so as root the server runs as the `postgres` system user.
    """
    bindir = _server_bin()
    if bindir is None:
        pytest.skip("no PostgreSQL server binaries (initdb, pg_ctl); .ci/run installs them with apt-get as root")
    as_user: list[str] = []
    root = Path(tempfile.mkdtemp(prefix="rtnt-pg-", dir="/tmp"))
    if os.geteuid() == 0:
        import pwd

        try:
            account = pwd.getpwnam("postgres")
        except KeyError:
            shutil.rmtree(root)
            pytest.skip("running as root and there is no 'postgres' user to run the server as")
        os.chown(root, account.pw_uid, account.pw_gid)
        as_user = ["runuser", "-u", "postgres", "--"]
    data, port = root / "data", _free_port()
    subprocess.run(
        [*as_user, str(bindir / "initdb"), "-D", str(data), "-U", "postgres", "-A", "trust", "-E", "UTF8"],
        check=True,
        capture_output=True,
    )
    options = f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c max_connections=50"
    subprocess.run(
        [
            *as_user,
            str(bindir / "pg_ctl"),
            "-D",
            str(data),
            "-o",
            options,
            "-l",
            str(root / "server.log"),
            "-w",
            "start",
        ],
        check=True,
        capture_output=True,
    )
    try:
        # psycopg2 (the test extra) explicitly: recent SQLAlchemy maps bare postgresql:// to psycopg 3.
        yield f"postgresql+psycopg2://postgres@127.0.0.1:{port}"
    finally:
        subprocess.run(
            [*as_user, str(bindir / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"], capture_output=True
        )
        shutil.rmtree(root, ignore_errors=True)


def _create_databases(server: str, *names: str) -> None:
    import psycopg2

    conn = psycopg2.connect(server.replace("+psycopg2", "") + "/postgres")
    conn.autocommit = True
    with conn.cursor() as cur:
        for name in names:
            cur.execute(f"CREATE DATABASE {name}")
    conn.close()


def test_two_workers_share_one_study_without_losing_or_duplicating_trials(postgres: str, tmp_path: Path) -> None:
    _create_databases(postgres, "optuna", "mlflow")
    storage = f"{postgres}/optuna"
    tracking_uri = f"{postgres}/mlflow"
    # The team's tracking store exists before the workers start (as a tracking server's would).
    mlflow.set_tracking_uri(tracking_uri)
    mlflow.MlflowClient(tracking_uri).create_experiment("rtnt", artifact_location=(tmp_path / "artifacts").as_uri())

    setup = SweepSetup(tmp_path)
    workers = []
    for name in ("worker_a", "worker_b"):
        cmd = setup.command(
            [sys.executable, str(FAKE_APP)],
            "shared",
            N_PER_WORKER,
            "++sweep.fake.sleep_s=0.5",
            f"tracking.uri={tracking_uri}",
            storage=storage,
            name=name,
        )
        log = open(tmp_path / f"{name}.log", "w")
        workers.append((subprocess.Popen(cmd, cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT, text=True), log))
    for proc, log in workers:
        proc.wait(timeout=600)
        log.close()
    for (proc, _), name in zip(workers, ("worker_a", "worker_b")):
        assert proc.returncode == 0, (tmp_path / f"{name}.log").read_text()[-3000:]

    study = optuna.load_study(study_name="shared", storage=storage)
    numbers = [t.number for t in study.trials]
    assert sorted(numbers) == list(range(2 * N_PER_WORKER))
    assert all(t.state == optuna.trial.TrialState.COMPLETE for t in study.trials)
    by_worker: dict[str, list[int]] = {}
    for t in study.trials:
        by_worker.setdefault(t.user_attrs["worker"], []).append(t.number)
    assert sorted(len(v) for v in by_worker.values()) == [N_PER_WORKER, N_PER_WORKER]

    parents = setup.parents("shared", tracking_uri)
    assert len(parents) == 2
    trial_runs = []
    for parent_id in parents["run_id"]:
        children = setup.children(parent_id, tracking_uri)
        assert len(children) == N_PER_WORKER
        trial_runs += list(children["tags.trial"].astype(int))
    assert sorted(trial_runs) == list(range(2 * N_PER_WORKER))
    assert {t.user_attrs["run_id"] for t in study.trials} == {
        rid for pid in parents["run_id"] for rid in setup.children(pid, tracking_uri)["run_id"]
    }
