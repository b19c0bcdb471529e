"""Experiment configs (conf/experiment/*.yaml): each composes, every point of its sweep grid passes
`validate_config` under `train=smoke`, each has its README, and one runs end to end."""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import DictConfig

from rtnt.compare import comparison_table, load_runs, write_comparison
from rtnt.config import REPO_DIR, register_configs, register_resolvers, validate_config

CONF_DIR = REPO_DIR / "conf"
EXPERIMENTS = sorted(p.stem for p in (CONF_DIR / "experiment").glob("*.yaml"))
# Experiments that select an Optuna sweep search a space instead of a basic-sweeper grid.
OPTUNA_EXPERIMENTS = sorted(
    p.stem for p in (CONF_DIR / "experiment").glob("*.yaml") if "override /sweep:" in p.read_text()
)
GRID_EXPERIMENTS = [name for name in EXPERIMENTS if name not in OPTUNA_EXPERIMENTS]


@pytest.fixture(scope="module")
def hydra_conf() -> Iterator[None]:
    """Hydra's compose API initialised on the repository's conf/."""
    register_configs()
    register_resolvers()
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        yield
    GlobalHydra.instance().clear()


def sweep_grid(cfg: DictConfig) -> list[list[str]]:
    """Every job's overrides of the basic sweeper's `hydra.sweeper.params` grid (cartesian product)."""
    axes = [[f"{key}={value}" for value in str(values).split(",")] for key, values in cfg.hydra.sweeper.params.items()]
    return [list(job) for job in itertools.product(*axes)]


def test_the_three_experiments_exist() -> None:
    assert {"architecture_comparison", "smoothing_study", "capture_length"} <= set(EXPERIMENTS)


@pytest.mark.parametrize("name", GRID_EXPERIMENTS)
def test_experiment_composes_and_names_its_runs(hydra_conf: None, name: str) -> None:
    cfg = compose("config", overrides=[f"+experiment={name}"], return_hydra_config=True)
    assert cfg.experiment_name == name
    assert cfg.tracking.experiment == name
    assert cfg.hydra.sweeper.params, "an experiment sweeps something"
    assert cfg.train.max_seconds == 0, "the experiment trains on whole captures (train=smoke crops them)"


@pytest.mark.parametrize("name", OPTUNA_EXPERIMENTS)
def test_optuna_experiment_composes_with_a_search_space(hydra_conf: None, name: str) -> None:
    cfg = compose("config", overrides=[f"+experiment={name}"], return_hydra_config=True)
    assert cfg.experiment_name == name and cfg.tracking.experiment == name
    assert cfg.hydra.sweeper.search_space and cfg.hydra.sweeper.n_trials >= 30
    smoke = compose("config", overrides=[f"+experiment={name}", "train=smoke"])
    validate_config(smoke)
    assert smoke.train.epochs == 2


@pytest.mark.parametrize("name", GRID_EXPERIMENTS)
def test_every_grid_point_validates_under_smoke(hydra_conf: None, name: str) -> None:
    base = compose("config", overrides=[f"+experiment={name}"], return_hydra_config=True)
    jobs = sweep_grid(base)
    assert len(jobs) >= 3
    for job in jobs:
        cfg = compose("config", overrides=[f"+experiment={name}", "train=smoke", *job])
        validate_config(cfg)
        if not any(o.startswith("train=") for o in job):  # a grid over training recipes sets its own
            assert cfg.train.epochs == 2, "train=smoke on the command line wins over the experiment's budget"
        assert cfg.experiment_name == name


def test_grids_are_the_ones_the_issue_asks_for(hydra_conf: None) -> None:
    def grid(name: str) -> list[tuple[str, ...]]:
        jobs = sweep_grid(compose("config", overrides=[f"+experiment={name}"], return_hydra_config=True))
        out = []
        for job in jobs:
            cfg = compose("config", overrides=[f"+experiment={name}", *job])
            out.append(
                (cfg.preset.name, cfg.capture.name, str(cfg.preset.smoothing_alpha), str(cfg.train.max_train_seconds))
            )
        return out

    arch = grid("architecture_comparison")
    assert len(arch) == 18
    assert {c for _, c, _, _ in arch} == {"crunch_amp", "ts9_pedal", "highgain_amp"}
    presets = {p for p, _, _, _ in arch}
    assert {"wavenet_tcn_balanced", "wavenet_tcn_quality", "wavenet_tcn_edge", "wavenet_tcn_a2_prelu"} <= presets
    assert len([p for p in presets if p.startswith("legacy_")]) == 2
    assert [(c, a) for _, c, a, _ in grid("smoothing_study")] == [
        ("highgain_amp", a) for a in ("1.0", "1.5", "2.0", "3.0")
    ]
    assert [s for _, _, _, s in grid("capture_length")] == ["15.0", "30.0", "48.0"]


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_readme_states_question_command_and_budget(hydra_conf: None, name: str) -> None:
    readme = REPO_DIR / "experiments" / name / "README.md"
    assert readme.exists(), f"{readme} is missing"
    text = readme.read_text()
    assert f"rtnt-train -m +experiment={name}" in text
    assert f"rtnt-compare --experiment {name}" in text
    assert "## Question" in text and "## Budget" in text
    base = compose("config", overrides=[f"+experiment={name}"], return_hydra_config=True)
    jobs = sweep_grid(base) if name in GRID_EXPERIMENTS else [[]]
    for job in jobs:
        t = compose("config", overrides=[f"+experiment={name}", *job]).train
        budget = (
            f"{t.minutes:g} minutes" if t.minutes > 0 else f"{t.steps} steps" if t.steps > 0 else f"{t.epochs} epochs"
        )
        assert budget in text, f"the README states the budget of every run ({budget})"


@pytest.mark.slow
def test_smoothing_study_runs_end_to_end_under_smoke(tmp_path: Path) -> None:
    """Two points of the smoothing grid on the embedded demo capture, then rtnt-compare on the result."""
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "rtnt.cli.train",
            "-m",
            "+experiment=smoothing_study",
            "train=smoke",
            "capture=demo",
            "preset.smoothing_alpha=1.0,3.0",
            f"hydra.sweep.dir={tmp_path / 'multirun'}",
        ],
        cwd=tmp_path,
        env={**os.environ, "MLFLOW_TRACKING_URI": uri},
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    runs = load_runs(uri, experiment="smoothing_study")
    assert list(runs["status"]) == ["FINISHED", "FINISHED"]
    assert set(runs["tags.experiment"]) == {"smoothing_study"}
    table = comparison_table(runs)
    assert sorted(table["preset.smoothing_alpha"]) == ["1.0", "3.0"]
    assert table[["esr", "asr_mean_db", "params", "epochs_completed"]].notna().all().all()
    written = write_comparison(runs, tmp_path / "report", title="smoothing smoke")
    assert {p.name for p in written} >= {"comparison.md", "comparison.csv", "esr_vs_asr.png", "esr_per_capture.png"}
