"""The sweep's parent MLflow run, driven through `MlflowClient` (never the fluent active-run stack).

The basic launcher runs jobs in the sweeper's own process, and each job starts its own fluent run
nested under the parent (rtnt/pipeline.py via `rtnt.sweep.trial.trial_run_context`); keeping the
parent off the fluent stack keeps the two from interfering.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from rtnt.tracking.run import PARAM_BATCH, PARAM_VALUE_LIMIT, ensure_experiment, git_commit
from rtnt.tracking.uri import resolve_artifact_location

PARENT_ROLE_TAG = "rtnt.sweep.role"
TAG_VALUE_LIMIT = 5000


@dataclass
class ParentRun:
    """The sweep's parent run: tags, params, per-trial tags on children, report artifacts, end state."""

    tracking_uri: str
    run_id: str
    experiment_id: str

    @classmethod
    def start(
        cls,
        tracking_uri: str,
        experiment: str,
        artifact_root: str,
        run_name: str,
        tags: Mapping[str, str],
        params: Mapping[str, str],
    ) -> ParentRun:
        """Create the parent run (RUNNING) with `tags`, the host/pid tags rtnt uses for orphans, and `params`."""
        from mlflow.entities import Param
        from mlflow.tracking import MlflowClient

        client = MlflowClient(tracking_uri)
        experiment_id = ensure_experiment(client, experiment, resolve_artifact_location(tracking_uri, artifact_root))
        all_tags = {
            **{k: str(v)[:TAG_VALUE_LIMIT] for k, v in tags.items()},
            PARENT_ROLE_TAG: "parent",
            "git_commit": git_commit(),
            "rtnt.pid": str(os.getpid()),
            "rtnt.host": socket.gethostname(),
        }
        run = client.create_run(experiment_id, tags=all_tags, run_name=run_name)
        items = [Param(k, str(v)[:PARAM_VALUE_LIMIT]) for k, v in params.items()]
        for i in range(0, len(items), PARAM_BATCH):
            client.log_batch(run.info.run_id, params=items[i : i + PARAM_BATCH])
        return cls(tracking_uri, run.info.run_id, experiment_id)

    def find_child(self, trial_number: int) -> str | None:
        """The run id of this sweep's child run for trial `trial_number`, if the job created one."""
        from mlflow.tracking import MlflowClient

        runs = MlflowClient(self.tracking_uri).search_runs(
            [self.experiment_id],
            filter_string=f"tags.`mlflow.parentRunId` = '{self.run_id}' and tags.trial = '{trial_number}'",
            max_results=1,
        )
        return runs[0].info.run_id if runs else None

    def tag_child(self, run_id: str, tags: Mapping[str, str]) -> None:
        """Set the sweeper's tags (params, feasibility, re-run overrides) on a child run."""
        from mlflow.entities import RunTag
        from mlflow.tracking import MlflowClient

        items = [RunTag(k, str(v)[:TAG_VALUE_LIMIT]) for k, v in tags.items()]
        client = MlflowClient(self.tracking_uri)
        for i in range(0, len(items), PARAM_BATCH):
            client.log_batch(run_id, tags=items[i : i + PARAM_BATCH])

    def set_tags(self, tags: Mapping[str, str]) -> None:
        """Set tags on the parent run."""
        self.tag_child(self.run_id, tags)

    def log_artifacts(self, files: Iterable[Path], artifact_path: str) -> None:
        """Upload report files under `artifact_path` of the parent run."""
        from mlflow.tracking import MlflowClient

        client = MlflowClient(self.tracking_uri)
        for path in files:
            client.log_artifact(self.run_id, str(path), artifact_path)

    def end(self, status: str, reason: str = "") -> None:
        """End the parent run as FINISHED, FAILED or KILLED (with `rtnt.end_reason` when given)."""
        from mlflow.tracking import MlflowClient

        client = MlflowClient(self.tracking_uri)
        if reason:
            client.set_tag(self.run_id, "rtnt.end_reason", reason[:TAG_VALUE_LIMIT])
        client.set_terminated(self.run_id, status=status)
