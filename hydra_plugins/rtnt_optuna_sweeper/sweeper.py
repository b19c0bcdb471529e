"""The `rtnt_optuna` Hydra sweeper: multi-objective, constrained Optuna 5 search over rtnt-train jobs.

Hydra's plugin scanner executes this module at every start, outside the normal import system, so
it stays small (no postponed annotations, no Optuna/MLflow imports); the engine is in `_core.py`.
"""

from typing import Any, List, Optional

from hydra.core.plugins import Plugins
from hydra.plugins.launcher import Launcher
from hydra.plugins.sweeper import Sweeper
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig


class RtntOptunaSweeper(Sweeper):
    """Asks Optuna for batches of trials, launches them through Hydra's launcher, tells the results."""

    def __init__(self, **settings: Any) -> None:
        from hydra_plugins.rtnt_optuna_sweeper._core import SweepSettings

        self.settings = SweepSettings.from_config(settings)
        self.config: Optional[DictConfig] = None
        self.hydra_context: Optional[HydraContext] = None
        self.launcher: Optional[Launcher] = None

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig) -> None:
        """Keep the composed config and instantiate the configured launcher (basic, joblib, ...)."""
        self.config = config
        self.hydra_context = hydra_context
        self.launcher = Plugins.instance().instantiate_launcher(
            hydra_context=hydra_context, task_function=task_function, config=config
        )

    def sweep(self, arguments: List[str]) -> Any:
        """Run the sweep; return its `rtnt.sweep.report.SweepReport`."""
        from hydra_plugins.rtnt_optuna_sweeper._core import SweepRunner

        assert self.config is not None and self.hydra_context is not None and self.launcher is not None
        return SweepRunner(self.settings, self.config, self.hydra_context, self.launcher).run(arguments)
