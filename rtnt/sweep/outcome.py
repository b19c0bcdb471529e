"""From a job's return value (a `rtnt.sweep.contract.JobResult`) to what Optuna is told about its trial.

A job that raised, returned something else, or produced a non-finite objective or constraint is a
failed trial with a one-line reason; the sweep carries on.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from rtnt.errors import ConfigError
from rtnt.sweep.contract import JobResult, check_objective_metric
from rtnt.tracking.redact import redact_text

DIRECTIONS = ("minimize", "maximize")
REASON_LIMIT = 2000


@dataclass(frozen=True)
class Objective:
    """A metric of the contract's `metrics` and whether Optuna minimises or maximises it."""

    metric: str
    direction: str = "minimize"

    def __post_init__(self) -> None:
        if not self.metric:
            raise ConfigError(
                "hydra.sweeper.objectives has an entry without a metric; give metric: <name of a returned metric>"
            )
        check_objective_metric(self.metric)
        if self.direction not in DIRECTIONS:
            raise ConfigError(
                f"hydra.sweeper.objectives direction={self.direction!r} for {self.metric} is invalid: "
                "must be minimize or maximize; fix conf/sweep/ or the command line"
            )


def parse_objectives(spec: Sequence[Mapping[str, Any]]) -> list[Objective]:
    """`[{metric: esr, direction: minimize}, ...]` to Objectives; at least one, no duplicates."""
    objectives = [Objective(str(o.get("metric", "")), str(o.get("direction", "minimize"))) for o in spec]
    if not objectives:
        raise ConfigError("hydra.sweeper.objectives is empty; give at least one {metric: ..., direction: ...}")
    names = [o.metric for o in objectives]
    if len(set(names)) != len(names):
        raise ConfigError(f"hydra.sweeper.objectives names a metric twice ({names}); list each metric once")
    return objectives


@dataclass(frozen=True)
class TrialOutcome:
    """What one job produced: objective values (None when failed), constraints, metrics, reason."""

    values: list[float] | None
    constraints: dict[str, float] = field(default_factory=dict)
    metrics: dict[str, float | None] = field(default_factory=dict)
    run_id: str | None = None
    fail_reason: str | None = None
    machine: dict[str, str] = field(default_factory=dict)  # where the job measured its speed

    @property
    def failed(self) -> bool:
        return self.values is None

    @property
    def feasible(self) -> bool:
        """All constraints satisfied (<= 0); False for a failed trial."""
        return not self.failed and all(v <= 0.0 for v in self.constraints.values())


def _finite_or_none(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def describe_exception(exc: BaseException) -> str:
    """`Type: first lines of the message`, bounded, for the trial's `fail_reason`."""
    text = redact_text(" ".join(line.strip() for line in str(exc).splitlines() if line.strip()))
    return f"{type(exc).__name__}: {text}"[:REASON_LIMIT] if text else type(exc).__name__


def failed_outcome(reason: str, run_id: str | None = None, metrics: Mapping[str, Any] | None = None) -> TrialOutcome:
    """A failed trial with its reason."""
    kept = {str(k): _finite_or_none(v) for k, v in (metrics or {}).items()}
    return TrialOutcome(values=None, metrics=kept, run_id=run_id, fail_reason=redact_text(reason)[:REASON_LIMIT])


def outcome_from_return(result: Any, objectives: Sequence[Objective], constraint_names: Sequence[str]) -> TrialOutcome:
    """Read objectives and constraints from a job's return value; fail the trial on anything missing or non-finite."""
    if not isinstance(result, JobResult):
        return failed_outcome(f"job returned {type(result).__name__}, not a JobResult (rtnt's task-function contract)")
    metrics = result.metrics
    run_id = result.run_id or None
    values: list[float] = []
    for objective in objectives:  # every objective is a contract metric, which a JobResult always holds
        value = _finite_or_none(metrics[objective.metric])
        if value is None:
            return failed_outcome(
                f"objective {objective.metric} is {metrics[objective.metric]!r} (NaN or not finite)", run_id, metrics
            )
        values.append(value)
    returned = result.constraints
    constraints: dict[str, float] = {}
    for name in constraint_names:
        if name not in returned:
            return failed_outcome(
                f"job returned no constraint '{name}' (it returned: {', '.join(sorted(map(str, returned))) or 'none'})",
                run_id,
                metrics,
            )
        try:
            bound = float(returned[name])
        except (TypeError, ValueError):
            bound = math.nan
        if math.isnan(bound):  # +-inf are honest verdicts (violated / satisfied); NaN is not
            return failed_outcome(f"constraint {name} is {returned[name]!r} (not a number)", run_id, metrics)
        constraints[name] = bound
    kept = {str(k): _finite_or_none(v) for k, v in metrics.items()}
    machine = {str(k): str(v) for k, v in result.machine.items()}
    return TrialOutcome(values=values, constraints=constraints, metrics=kept, run_id=run_id, machine=machine)
