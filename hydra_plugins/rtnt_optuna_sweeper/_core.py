"""The rtnt Optuna sweeper's engine: ask a batch, launch it through Hydra's launcher, tell Optuna the results.

(The leading underscore keeps Hydra's plugin scanner from importing this module at every start;
`sweeper.RtntOptunaSweeper` imports it when a sweep actually runs.)

Each trial's parameters become ordinary Hydra overrides (`rtnt.sweep.space`), so a trial re-runs by
hand as `rtnt-train <overrides>`. Each job returns the task-function contract (docs/architecture.md);
its objectives are told to Optuna and its gate constraints set with `Trial.set_constraint`, so
`Study.best_trials` (the Pareto front) only ever holds feasible trials. Failed jobs are told as FAIL
with their reason and the sweep goes on until more than `max_failure_rate` of `n_trials` failed.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import socket
import sys
import threading
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import ChoiceSweep, IntervalSweep, Override, RangeSweep
from hydra.plugins.launcher import Launcher
from hydra.types import HydraContext
from omegaconf import DictConfig, OmegaConf

from rtnt.errors import ConfigError, RtntError
from rtnt.sweep.outcome import (
    Objective,
    TrialOutcome,
    describe_exception,
    failed_outcome,
    outcome_from_return,
    parse_objectives,
)
from rtnt.sweep.space import SearchSpace, format_value
from rtnt.sweep.trial import bookkeeping_overrides
from rtnt.tracking.redact import redact_files, redact_text

if TYPE_CHECKING:
    import optuna

    from rtnt.sweep.report import SweepReport
    from rtnt.sweep.tracking import ParentRun


SAMPLERS = ("tpe", "nsgaii", "random")
STORAGE_ATTEMPTS = 5
REPORT_SUBDIR = "sweep_report"


class SweepAborted(RtntError):
    """The sweep stopped because too many of its trials failed."""


@dataclass
class PendingTrial:
    """A trial asked from Optuna and not yet told: its sampled point and full job overrides."""

    trial: optuna.trial.Trial
    overrides: list[str]  # re-run overrides: fixed command-line ones plus the sampled ones
    job_overrides: list[str]  # what the job gets: the above plus the sweep bookkeeping keys


def split_arguments(arguments: Sequence[str]) -> tuple[list[str], dict[str, Any]]:
    """Command-line overrides: (fixed ones, search-space specs from sweep syntax like `a=1,2` or `interval(..)`)."""
    fixed: list[str] = []
    specs: dict[str, Any] = {}
    for override in OverridesParser.create().parse_overrides(list(arguments)):
        if not override.is_sweep_override():
            fixed.append(override.input_line or "")
            continue
        specs[override.get_key_element()] = _sweep_spec(override)
    return fixed, specs


def _sweep_spec(override: Override) -> Any:
    value = override.value()
    if isinstance(value, ChoiceSweep):
        choices = list(value.list)
        if all(v is None or isinstance(v, (bool, int, float, str)) for v in choices):
            return {"choices": choices}
        return {"choices": {format_value(v): v for v in choices}}
    if isinstance(value, IntervalSweep):
        return {"type": "float", "low": float(value.start), "high": float(value.end), "log": "log" in value.tags}
    if isinstance(value, RangeSweep):
        values = list(override.sweep_iterator())
        if all(isinstance(v, int) for v in values) and len(values) > 1:
            return {"type": "int", "low": values[0], "high": values[-1], "step": values[1] - values[0]}
        return {"choices": values}
    raise ConfigError(
        f"override {override.input_line} uses a sweep the rtnt_optuna sweeper cannot search (use a,b,c, choice(), "
        "range() or interval(), or put it in hydra.sweeper.search_space)"
    )


def make_sampler(name: str, seed: int | None, kwargs: Mapping[str, Any]) -> optuna.samplers.BaseSampler:
    """The configured Optuna sampler."""
    import optuna

    if name == "tpe":
        return optuna.samplers.TPESampler(seed=seed, **kwargs)
    if name == "nsgaii":
        return optuna.samplers.NSGAIISampler(seed=seed, **kwargs)
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed, **kwargs)
    raise ConfigError(f"hydra.sweeper.sampler.name={name!r} is invalid: must be one of {', '.join(SAMPLERS)}")


@dataclass(frozen=True)
class HeartbeatSettings:
    """Optuna's heartbeat for an RDB storage: a running trial's worker records a heartbeat every `interval`
    seconds; a RUNNING trial without one for `grace_period` seconds (None: 2 x `interval`) is stale."""

    interval: int
    grace_period: int | None
    max_retry: int


class RequeueStaleTrial:
    """The storage's heartbeat-stale callback: Optuna's `RetryHeartbeatStaleTrialCallback` (a WAITING copy of
    the failed trial with the same parameters, at most `max_retry` copies per original), and one progress line."""

    def __init__(self, max_retry: int, progress: Callable[[str], None]) -> None:
        import optuna

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            self.retry = optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=max_retry)
        self.max_retry = max_retry
        self.progress = progress

    def __call__(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        earlier = len(trial.system_attrs.get("retry_history", []))  # retries that came before this trial
        self.retry(study, trial)
        fate = (
            f"re-queued with the same parameters (retry {earlier + 1} of {self.max_retry})"
            if earlier < self.max_retry
            else f"not re-queued: it was retried max_retry={self.max_retry} times"
        )
        self.progress(f"trial {trial.number}: its worker stopped sending heartbeats (killed?): FAIL, {fate}")


class HeartbeatSender:
    """Records a heartbeat for each trial id every `interval` seconds in a daemon thread, while in a `with` block.

    The sweeper process beats for the trials it launched: it is alive exactly as long as it can still tell
    them (a job that dies on its own is told FAIL by the launcher's result)."""

    def __init__(self, storage: optuna.storages.RDBStorage, trial_ids: Sequence[int], interval: int) -> None:
        self.storage, self.trial_ids, self.interval = storage, list(trial_ids), interval
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._beat, name="rtnt-heartbeat", daemon=True)

    def _beat(self) -> None:
        while not self.stop.wait(self.interval):
            for trial_id in self.trial_ids:
                try:
                    self.storage.record_heartbeat(trial_id)
                except Exception as exc:  # noqa: BLE001 - a missed beat is retried at the next interval
                    print(f"[rtnt_optuna] heartbeat of trial id {trial_id} failed: {exc}", file=sys.stderr)

    def __enter__(self) -> HeartbeatSender:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join()


def make_storage(
    storage: str | None,
    journal_file: str,
    heartbeat: HeartbeatSettings | None = None,
    on_stale: Callable[[optuna.Study, optuna.trial.FrozenTrial], None] | None = None,
) -> tuple[optuna.storages.BaseStorage, str]:
    """The Optuna storage and its URL/path as `optuna-dashboard` takes it.

    A URL with `://` is an RDB storage (retried a few times: concurrent workers may race to create
    its tables), with `heartbeat` and its stale-trial callback `on_stale` when given; anything else
    is a journal file path (default `journal_file`), created with its folder (journal storages have
    no heartbeat).
    """
    import optuna
    import sqlalchemy.exc

    if storage and "://" in storage:
        beat: dict[str, Any] = {}
        if heartbeat is not None:
            beat = {
                "heartbeat_interval": heartbeat.interval,
                "grace_period": heartbeat.grace_period,
                "heartbeat_stale_trial_callback": on_stale,
            }
        for attempt in range(1, STORAGE_ATTEMPTS + 1):
            try:
                with warnings.catch_warnings():  # the heartbeat arguments are "experimental": chosen knowingly
                    warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                    return optuna.storages.RDBStorage(storage, **beat), storage
            except ImportError as exc:  # Optuna wraps the driver's ModuleNotFoundError
                missing = getattr(exc.__cause__, "name", None) or exc.name or "?"
                extra = " (pip install 'rtnt[postgres]')" if "psycopg" in missing else ""
                raise ConfigError(
                    f"hydra.sweeper.storage needs the database driver {missing!r}, which is not installed{extra}"
                ) from None
            except sqlalchemy.exc.DBAPIError as exc:
                if attempt == STORAGE_ATTEMPTS:
                    raise ConfigError(
                        redact_text(
                            f"cannot open hydra.sweeper.storage={storage}: {describe_exception(exc.orig or exc)}"
                        )
                    ) from None
                time.sleep(0.5 * attempt)
    path = Path(storage or journal_file).expanduser().resolve()
    path.parent.mkdir(parents=True, exist_ok=True)
    backend = optuna.storages.journal.JournalFileBackend(str(path))
    return optuna.storages.JournalStorage(backend), str(path)


@dataclass(frozen=True)
class SweepSettings:
    """The validated `hydra.sweeper` settings (see config.RtntOptunaSweeperConf for their meaning)."""

    study_name: str | None
    storage: str | None
    journal_file: str
    heartbeat: HeartbeatSettings | None  # None: off
    n_trials: int
    n_jobs: int
    objectives: list[Objective]
    constraint_names: list[str]
    max_failure_rate: float
    sampler: dict[str, Any]
    search_space: dict[str, Any]
    min_trials_for_importance: int
    tracking: bool

    @classmethod
    def from_config(cls, values: Mapping[str, Any]) -> SweepSettings:
        """Validate the sweeper's config values (plain containers or OmegaConf nodes)."""

        def plain(node: Any) -> Any:
            return OmegaConf.to_container(node, resolve=True) if OmegaConf.is_config(node) else node

        n_trials, n_jobs = int(values["n_trials"]), int(values["n_jobs"])
        max_failure_rate = float(values["max_failure_rate"])
        if n_trials < 1:
            raise ConfigError(f"hydra.sweeper.n_trials={n_trials} is invalid: must be >= 1")
        if n_jobs < 1:
            raise ConfigError(f"hydra.sweeper.n_jobs={n_jobs} is invalid: must be >= 1")
        if not 0.0 <= max_failure_rate <= 1.0:
            raise ConfigError(f"hydra.sweeper.max_failure_rate={max_failure_rate} is invalid: must be in [0, 1]")
        heartbeat = None
        if values.get("heartbeat_interval") is not None:
            interval, grace = int(values["heartbeat_interval"]), values.get("grace_period")
            max_retry = int(values.get("max_retry", 0))
            if interval < 1 or (grace is not None and int(grace) < 1) or max_retry < 0:
                raise ConfigError(
                    f"hydra.sweeper.heartbeat_interval={interval}, grace_period={grace}, max_retry={max_retry} "
                    "are invalid: whole seconds >= 1 (grace_period may be null: 2 x heartbeat_interval), "
                    "max_retry >= 0"
                )
            heartbeat = HeartbeatSettings(interval, None if grace is None else int(grace), max_retry)
        sampler = plain(values["sampler"]) or {}
        if str(sampler.get("name", "tpe")) not in SAMPLERS:
            raise ConfigError(
                f"hydra.sweeper.sampler.name={sampler.get('name')!r} is invalid: must be one of {', '.join(SAMPLERS)}"
            )
        return cls(
            study_name=values["study_name"],
            storage=values["storage"],
            journal_file=str(values["journal_file"]),
            heartbeat=heartbeat,
            n_trials=n_trials,
            n_jobs=n_jobs,
            objectives=parse_objectives(plain(values["objectives"])),
            constraint_names=[str(c) for c in plain(values["constraints"])],
            max_failure_rate=max_failure_rate,
            sampler=sampler,
            search_space=plain(values["search_space"]) or {},
            min_trials_for_importance=int(values["min_trials_for_importance"]),
            tracking=bool(values["tracking"]),
        )


class SweepRunner:
    """One sweep: this process's `n_trials` trials of a (possibly shared) Optuna study."""

    def __init__(
        self, settings: SweepSettings, config: DictConfig, hydra_context: HydraContext, launcher: Launcher
    ) -> None:
        self.settings = settings
        self.n_trials = settings.n_trials
        self.n_jobs = settings.n_jobs
        self.objectives = settings.objectives
        self.constraint_names = settings.constraint_names
        self.max_failure_rate = settings.max_failure_rate
        self.config = config
        self.hydra_context = hydra_context
        self.launcher = launcher
        self.progress_path: Path | None = None  # <sweep dir>/sweep_progress.log once the sweep starts
        self.storage: optuna.storages.RDBStorage | None = None  # set when the storage has a heartbeat

    # --- the sweep -----------------------------------------------------------------------------

    def run(self, arguments: list[str]) -> SweepReport:
        """Run `n_trials` trials in batches of `n_jobs`; return the final report."""
        import optuna

        from rtnt.sweep.report import write_report

        fixed, cli_specs = split_arguments(arguments)
        space_spec = dict(self.settings.search_space)
        for override in fixed:  # a value fixed on the command line is not searched
            key = override.split("=", 1)[0].lstrip("+~")
            if space_spec.pop(key, None) is not None:
                self._progress(f"{key} is fixed on the command line: not searched")
        space_spec.update(cli_specs)
        space = SearchSpace.from_config(space_spec)

        sweep_name = str(OmegaConf.select(self.config, "sweep.name", default=None) or "rtnt")
        study_name = self.settings.study_name or f"{sweep_name}-{time.strftime('%Y%m%d-%H%M%S')}"
        sweep_dir = Path(str(self.config.hydra.sweep.dir))
        sweep_dir.mkdir(parents=True, exist_ok=True)
        self.progress_path = sweep_dir / "sweep_progress.log"
        heartbeat = self.settings.heartbeat
        on_stale = RequeueStaleTrial(heartbeat.max_retry, self._progress) if heartbeat else None
        storage, storage_url = make_storage(self.settings.storage, self.settings.journal_file, heartbeat, on_stale)
        self.storage = storage if heartbeat and isinstance(storage, optuna.storages.RDBStorage) else None
        study = self._open_study(study_name, storage, space_spec)
        OmegaConf.save(self.config, sweep_dir / "multirun.yaml")
        parent = (
            self._start_parent(sweep_name, study_name, storage_url, sweep_dir, space_spec)
            if self.settings.tracking
            else None
        )
        self._progress(
            f"study {study_name} ({len(study.trials)} trials so far) in {storage_url}; "
            f"resume with hydra.sweeper.study_name={study_name}; live view: optuna-dashboard {storage_url}"
        )

        def lookup(key: str) -> Any:
            value = OmegaConf.select(self.config, key, default=None)
            return OmegaConf.to_container(value, resolve=True) if OmegaConf.is_config(value) else value

        pending: list[PendingTrial] = []  # asked and not yet told
        finished = failed = 0
        status, reason = "FINISHED", ""
        try:
            while finished < self.n_trials:
                for _ in range(min(self.n_jobs, self.n_trials - finished)):
                    pending.append(self._ask(study, space, fixed, lookup, study_name, parent))
                for item, outcome in self._run_batch(list(pending)):
                    self._tell(study, item, outcome, parent)
                    pending.remove(item)
                    finished += 1
                    failed += outcome.failed
                    self._report_trial(study, item, outcome, finished, failed)
                if failed > self.max_failure_rate * self.n_trials:
                    raise SweepAborted(
                        f"sweep {study_name} stopped: {failed} of {finished} trials failed, more than "
                        f"max_failure_rate={self.max_failure_rate} of n_trials={self.n_trials}; "
                        "see each trial's fail_reason "
                        f"in {self.progress_path} or optuna-dashboard {storage_url}"
                    )
        except BaseException as exc:
            status = "KILLED" if isinstance(exc, (KeyboardInterrupt, SystemExit)) else "FAILED"
            reason = describe_exception(exc)
            for item in pending:  # asked but never told: do not leave them RUNNING in the storage
                item.trial.set_user_attr("fail_reason", f"sweep stopped before the trial finished: {reason}")
                study.tell(item.trial, state=optuna.trial.TrialState.FAIL)
            raise
        finally:
            report = write_report(
                study, self.objectives, sweep_dir / REPORT_SUBDIR, self.settings.min_trials_for_importance
            )
            self._progress(
                f"study {study_name}: {report.n_complete} complete, {report.n_failed} failed, Pareto front "
                f"{report.pareto_trials}; report in {report.directory}"
                + (f"; speed compared as {report.speed.metric}" if report.speed else "")
            )
            if parent is not None:
                parent.log_artifacts(report.files, "sweep")
                parent.set_tags(
                    {
                        "sweep.pareto_size": str(len(report.pareto_trials)),
                        "sweep.pareto_trials": str(report.pareto_trials),
                        "sweep.speed_metric": report.speed.metric if report.speed else "",
                    }
                )
                parent.end(status, reason)
        return report

    # --- steps ---------------------------------------------------------------------------------

    def _open_study(
        self, study_name: str, storage: optuna.storages.BaseStorage, space_spec: Mapping[str, Any]
    ) -> optuna.Study:
        import json

        import optuna

        directions = [o.direction for o in self.objectives]
        spec = self.settings.sampler
        with warnings.catch_warnings():  # e.g. TPE's constant_liar is "experimental": chosen knowingly
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            sampler = make_sampler(str(spec.get("name", "tpe")), spec.get("seed"), spec.get("kwargs") or {})
        study = optuna.create_study(
            study_name=study_name, storage=storage, sampler=sampler, directions=directions, load_if_exists=True
        )
        existing = [d.name.lower() for d in study.directions]
        names = [o.metric for o in self.objectives]
        stored_names = study.metric_names
        if existing != directions or (stored_names is not None and list(stored_names) != names):
            raise ConfigError(
                f"study {study_name} already exists with objectives {stored_names or '?'} ({existing}), not {names} "
                f"({directions}); pick another hydra.sweeper.study_name or the same objectives"
            )
        if stored_names is None:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                study.set_metric_names(names)
            study.set_user_attr("constraints", self.constraint_names)
            study.set_user_attr("search_space", json.loads(json.dumps(space_spec, default=str)))
        return study

    def _start_parent(
        self, sweep_name: str, study_name: str, storage_url: str, sweep_dir: Path, space_spec: Mapping[str, Any]
    ) -> ParentRun:
        import json

        from rtnt.sweep.tracking import ParentRun
        from rtnt.tracking.uri import resolve_tracking_uri

        tracking_uri = resolve_tracking_uri(str(OmegaConf.select(self.config, "tracking.uri", default="") or ""))
        experiment = str(OmegaConf.select(self.config, "tracking.experiment", default="rtnt") or "rtnt")
        artifact_root = str(OmegaConf.select(self.config, "tracking.artifact_root", default="") or "")
        params = {
            "n_trials": str(self.n_trials),
            "n_jobs": str(self.n_jobs),
            "objectives": ", ".join(f"{o.direction} {o.metric}" for o in self.objectives),
            "constraints": ", ".join(self.constraint_names) or "none",
            "max_failure_rate": str(self.max_failure_rate),
            "sampler": json.dumps(self.settings.sampler, default=str),
            "search_space": json.dumps(space_spec, default=str),
        }
        tags = {
            "sweep": sweep_name,
            "study": study_name,
            "optuna.storage": redact_text(storage_url),
            "sweep.dir": str(sweep_dir.resolve()),
            "sweep.worker": f"{socket.gethostname()}:{os.getpid()}",
        }
        return ParentRun.start(tracking_uri, experiment, artifact_root, f"sweep {study_name}", tags, params)

    def _ask(
        self,
        study: optuna.Study,
        space: SearchSpace,
        fixed: list[str],
        lookup: Callable[[str], Any],
        study_name: str,
        parent: ParentRun | None,
    ) -> PendingTrial:
        import optuna

        if self.storage is not None:  # fail (and re-queue) the trials of dead workers before asking
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                optuna.storages.fail_stale_trials(study)
        trial = study.ask()  # a re-queued (WAITING) trial first, with its parameters fixed
        if self.storage is not None:
            self.storage.record_heartbeat(trial._trial_id)
        try:
            point = space.suggest(trial, lookup)
        except BaseException as exc:  # a search-space error repeats for every trial: fail this one, stop
            trial.set_user_attr("fail_reason", describe_exception(exc))
            study.tell(trial, state=optuna.trial.TrialState.FAIL)
            raise
        overrides = [*fixed, *point.overrides]
        job_overrides = [
            *overrides,
            *bookkeeping_overrides(parent.run_id if parent else None, trial.number, study_name),
        ]
        trial.set_user_attr("overrides", overrides)
        trial.set_user_attr("values", point.values)
        trial.set_user_attr("rerun", shlex.join(["rtnt-train", *overrides]))
        trial.set_user_attr("worker", f"{socket.gethostname()}:{os.getpid()}")
        if parent is not None:
            trial.set_user_attr("mlflow_parent_run_id", parent.run_id)
        return PendingTrial(trial, overrides, job_overrides)

    def _run_batch(self, batch: list[PendingTrial]) -> list[tuple[PendingTrial, TrialOutcome]]:
        """Compose-check every job, launch the valid ones (consecutive trial numbers together, so
        `hydra.job.num` equals the trial number) and read each job's result."""
        outcomes: dict[int, TrialOutcome] = {}
        runnable: list[PendingTrial] = []
        for item in batch:
            try:
                self.hydra_context.config_loader.load_sweep_config(
                    master_config=self.config, sweep_overrides=item.job_overrides
                )
            except Exception as exc:  # noqa: BLE001 - any composition error fails only this trial
                outcomes[item.trial.number] = failed_outcome(f"config does not compose: {describe_exception(exc)}")
                continue
            runnable.append(item)
        runnable.sort(key=lambda p: p.trial.number)
        groups: list[list[PendingTrial]] = []
        for item in runnable:
            if groups and groups[-1][-1].trial.number + 1 == item.trial.number:
                groups[-1].append(item)
            else:
                groups.append([item])
        for group in groups:
            try:
                with self._heartbeats(group):
                    returns = self.launcher.launch(
                        [p.job_overrides for p in group], initial_job_idx=group[0].trial.number
                    )
            except Exception as exc:  # noqa: BLE001 - e.g. submitit: a job process killed, out of memory or time
                reason = f"the launcher lost the job: {describe_exception(exc)}"
                outcomes.update({p.trial.number: failed_outcome(reason) for p in group})
                continue
            finally:
                redact_files(list(Path(str(self.config.hydra.sweep.dir)).glob("multirun.yaml")))  # the launcher's
            for item, ret in zip(group, returns):
                try:
                    value = ret.return_value
                except Exception as exc:  # noqa: BLE001 - a job's own error fails only its trial
                    outcomes[item.trial.number] = failed_outcome(describe_exception(exc))
                    continue
                outcomes[item.trial.number] = outcome_from_return(value, self.objectives, self.constraint_names)
                if ret.working_dir:
                    item.trial.set_user_attr("output_dir", str(ret.working_dir))
        return [(item, outcomes[item.trial.number]) for item in batch]

    def _heartbeats(self, group: Sequence[PendingTrial]) -> contextlib.AbstractContextManager[object]:
        """Heartbeats for the group's trials while they run (nothing when the storage has no heartbeat)."""
        if self.storage is None or self.settings.heartbeat is None:
            return contextlib.nullcontext()
        return HeartbeatSender(self.storage, [p.trial._trial_id for p in group], self.settings.heartbeat.interval)

    def _tell(self, study: optuna.Study, item: PendingTrial, outcome: TrialOutcome, parent: ParentRun | None) -> None:
        import optuna

        trial = item.trial
        trial.set_user_attr("metrics", outcome.metrics)
        if outcome.machine:
            trial.set_user_attr("machine", outcome.machine)
        run_id = outcome.run_id or (parent.find_child(trial.number) if parent is not None else None)
        if run_id:
            trial.set_user_attr("run_id", run_id)
        if outcome.failed:
            trial.set_user_attr("fail_reason", outcome.fail_reason or "unknown")
            study.tell(trial, state=optuna.trial.TrialState.FAIL)
        else:
            for name, value in outcome.constraints.items():
                trial.set_constraint(name, value)
            study.tell(trial, outcome.values)
        if parent is not None and run_id:
            tags = {f"param.{k}": str(v) for k, v in trial.params.items()}
            tags.update(
                {
                    "trial": str(trial.number),
                    "sweep.state": "FAIL" if outcome.failed else "COMPLETE",
                    "sweep.feasible": str(outcome.feasible).lower(),
                    "sweep.rerun": shlex.join(["rtnt-train", *item.overrides]),
                }
            )
            if outcome.fail_reason:
                tags["sweep.fail_reason"] = outcome.fail_reason
            parent.tag_child(run_id, tags)

    def _report_trial(
        self, study: optuna.Study, item: PendingTrial, outcome: TrialOutcome, finished: int, failed: int
    ) -> None:
        pareto = len(study.best_trials)
        if outcome.failed:
            result = f"FAIL ({outcome.fail_reason})"
        else:
            assert outcome.values is not None
            values = " ".join(f"{o.metric}={v:.4g}" for o, v in zip(self.objectives, outcome.values))
            result = f"{values} feasible={'yes' if outcome.feasible else 'no'}"
            if not outcome.feasible:
                violated = [k for k, v in outcome.constraints.items() if v > 0]
                result += f" (violates {', '.join(violated)})"
        self._progress(
            f"trial {item.trial.number}: {result} pareto={pareto} [{finished}/{self.n_trials} done, {failed} failed]"
        )

    def _progress(self, line: str) -> None:
        """One progress line on stdout and in <sweep dir>/sweep_progress.log."""
        text = redact_text(f"[rtnt_optuna] {line}")
        print(text, file=sys.stdout, flush=True)
        if self.progress_path is not None:
            with open(self.progress_path, "a", encoding="utf-8") as f:
                f.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')} {text}\n")
