"""How a sweep job learns that it is a trial: bookkeeping keys in the free-form `sweep` config field.

The sweeper adds `++sweep.parent_run_id=...`, `++sweep.trial=N` and `++sweep.study=...` to each job's
overrides; the job (rtnt/pipeline.py) calls `trial_run_context(cfg.sweep)` to nest its MLflow run
under the sweep's parent run with `trial` and `sweep.study` tags. These keys are not part of a
trial's re-run overrides: a hand re-run is an ordinary top-level run.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rtnt.sweep.space import format_override

PARENT_RUN_ID_KEY = "parent_run_id"
TRIAL_KEY = "trial"
STUDY_KEY = "study"
BOOKKEEPING_KEYS = (PARENT_RUN_ID_KEY, TRIAL_KEY, STUDY_KEY)


def bookkeeping_overrides(parent_run_id: str | None, trial_number: int, study_name: str) -> list[str]:
    """The overrides that tell a job its trial number, study and (when tracked) parent run."""
    overrides = [f"++sweep.{TRIAL_KEY}={trial_number}", "++" + format_override(f"sweep.{STUDY_KEY}", study_name)]
    if parent_run_id:
        overrides.append(f"++sweep.{PARENT_RUN_ID_KEY}={parent_run_id}")
    return overrides


def is_bookkeeping_override(override: str) -> bool:
    """True for the overrides `bookkeeping_overrides` adds (so they can be left out of a re-run)."""
    key = override.split("=", 1)[0].lstrip("+~")
    return key in {f"sweep.{k}" for k in BOOKKEEPING_KEYS}


def trial_run_context(sweep: Mapping[str, Any] | None) -> tuple[str | None, dict[str, str]]:
    """The parent MLflow run id (None outside a tracked sweep) and the trial's tags, from `cfg.sweep`."""
    if not sweep:
        return None, {}
    tags: dict[str, str] = {}
    if sweep.get(TRIAL_KEY) is not None:
        tags[TRIAL_KEY] = str(sweep[TRIAL_KEY])
    if sweep.get(STUDY_KEY):
        tags[f"sweep.{STUDY_KEY}"] = str(sweep[STUDY_KEY])
    parent = sweep.get(PARENT_RUN_ID_KEY)
    return (str(parent) if parent else None), tags
