"""Structured config of the rtnt Optuna sweeper, stored as `hydra/sweeper: rtnt_optuna`."""

from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING


@dataclass
class ObjectiveConf:
    """One objective: a metric of the job's returned `metrics` and its direction."""

    metric: str = MISSING
    direction: str = "minimize"  # minimize | maximize


@dataclass
class SamplerConf:
    """The Optuna sampler: tpe | nsgaii | random, its seed and extra constructor arguments."""

    name: str = "tpe"
    seed: Optional[int] = None
    kwargs: Dict[str, Any] = field(default_factory=dict)


@dataclass
class RtntOptunaSweeperConf:
    _target_: str = "hydra_plugins.rtnt_optuna_sweeper.sweeper.RtntOptunaSweeper"
    # Study: the same name in the same storage resumes it (trial numbers continue). null makes a
    # fresh study named <sweep.name>-<date>-<time>, printed at the start of the sweep.
    study_name: Optional[str] = None
    # An Optuna storage URL (sqlite:///..., postgresql://..., mysql://...) or a journal file path;
    # null uses journal_file.
    storage: Optional[str] = None
    journal_file: str = "outputs/optuna/optuna_journal.log"  # relative to the working directory
    # Dead workers (RDB storages only: sqlite:///, postgresql+psycopg2://): while a trial runs, its sweeper
    # process records a heartbeat every heartbeat_interval seconds; a RUNNING trial without one for
    # grace_period seconds (null: 2 x heartbeat_interval) is failed by the next worker that asks for a trial
    # and re-queued with the same parameters, at most max_retry times. null heartbeat_interval turns it off.
    heartbeat_interval: Optional[int] = 60
    grace_period: Optional[int] = None
    max_retry: int = 2
    n_trials: int = 20  # trials this process runs (several processes may share one study)
    n_jobs: int = 1  # trials asked and launched together (set the launcher's parallelism to match)
    objectives: List[ObjectiveConf] = field(
        default_factory=lambda: [
            ObjectiveConf(metric="esr", direction="minimize"),
            ObjectiveConf(metric="asr_mean_db", direction="minimize"),
            ObjectiveConf(metric="native_rtf_worst", direction="maximize"),
        ]
    )
    # Names in the job's returned `constraints` (<= 0 satisfied) told to Optuna as constraints.
    constraints: List[str] = field(default_factory=lambda: ["parity", "native_validation", "rtf_headroom"])
    # Stop once more than this fraction of n_trials has failed.
    max_failure_rate: float = 0.5
    sampler: SamplerConf = field(default_factory=SamplerConf)
    # Config key -> spec; see rtnt/sweep/space.py and conf/sweep/*.yaml.
    search_space: Dict[str, Any] = field(default_factory=dict)
    min_trials_for_importance: int = 8
    tracking: bool = True  # parent MLflow run with nested trial runs and the report


ConfigStore.instance().store(group="hydra/sweeper", name="rtnt_optuna", node=RtntOptunaSweeperConf, provider="rtnt")
