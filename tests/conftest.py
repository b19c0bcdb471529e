"""Shared fixtures: Hydra's compose API on conf/, an isolated MLflow store per test, the location of ../shared, one
trained `.nam` run and a throwaway PostgreSQL server."""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from hydra import initialize_config_dir
from hydra.core.global_hydra import GlobalHydra

from rtnt.config import CONF_DIR, register_configs, register_resolvers, shared_dir

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


@pytest.fixture
def hydra_conf() -> Iterator[None]:
    """Hydra's compose API initialised on the repository's conf/ (rtnt's schemas and resolvers registered)."""
    register_configs()
    register_resolvers()
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        yield
    GlobalHydra.instance().clear()


@pytest.fixture
def tracking_uri(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh sqlite MLflow store under tmp_path, exported as MLFLOW_TRACKING_URI."""
    uri = f"sqlite:///{tmp_path / 'mlruns' / 'mlflow.db'}"
    (tmp_path / "mlruns").mkdir()
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    return uri


@pytest.fixture
def shared() -> Path:
    """../shared, or skip when this checkout has none beside it."""
    path = shared_dir()
    if not (path / "captures" / "manifest.json").exists():
        pytest.skip(f"shared material not found at {path}")
    return path


@dataclass(frozen=True)
class TrainedRun:
    tracking_uri: str
    run_id: str
    stdout: str


@pytest.fixture(scope="session")
def nam_smoke_run(tmp_path_factory: pytest.TempPathFactory) -> TrainedRun:
    """`rtnt-train train=smoke preset=wavenet_a1_nano` in its own store: a finished run that exported model.nam
    (shared by the tests that need a trained .nam run, to train it once)."""
    cwd = tmp_path_factory.mktemp("nam_run")
    uri = f"sqlite:///{cwd / 'mlflow.db'}"
    proc = subprocess.run(
        [sys.executable, "-m", "rtnt.cli.train", "train=smoke", "preset=wavenet_a1_nano"],
        cwd=cwd,
        env={**os.environ, "MLFLOW_TRACKING_URI": uri},
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return TrainedRun(uri, proc.stdout.split("MLflow run:")[1].split()[0], proc.stdout)


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
