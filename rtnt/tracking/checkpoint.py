"""Finding the checkpoint a run continues from (`continue_from`): a `.keras` file, or a run in the tracking store."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import mlflow

from rtnt.errors import ConfigError
from rtnt.tracking.uri import fetch_run

if TYPE_CHECKING:
    from rtnt.train.session import Checkpoint


def resolve_checkpoint(continue_from: str, tracking_uri: str | None = None) -> Checkpoint:
    """Find the checkpoint to continue from: a `.keras` path, or an MLflow run id.

    For a run id, the run's own output folder (tag `rtnt.output_dir`) is used when it still holds
    `checkpoints/last.keras` (so a killed run continues from its last completed epoch); otherwise
    the checkpoint artifact the run logged when it finished.
    """
    from rtnt.train.fit import LAST_CHECKPOINT, TrainingState
    from rtnt.train.session import RUN_FILE, Checkpoint

    path = Path(continue_from).expanduser()
    parent = ""
    if path.suffix != ".keras":
        client = mlflow.tracking.MlflowClient(tracking_uri)
        run = fetch_run(
            client,
            continue_from,
            mlflow.get_tracking_uri(),
            "continue_from takes a .keras checkpoint path or a run id of this store",
            ConfigError,
        )
        parent = continue_from
        local = Path(run.data.tags.get("rtnt.output_dir", "/nonexistent")) / "checkpoints" / LAST_CHECKPOINT
        if local.exists():
            path = local
        else:
            path = Path(client.download_artifacts(continue_from, f"checkpoint/{LAST_CHECKPOINT}"))
    if not path.exists():
        raise ConfigError(f"continue_from checkpoint {path} does not exist; pass an existing .keras file or a run id")
    run_file = path.parent / RUN_FILE
    if not parent and run_file.exists():
        parent = str(json.loads(run_file.read_text()).get("run_id", ""))
    return Checkpoint(path=path, state=TrainingState.load(path.parent), parent_run_id=parent)
