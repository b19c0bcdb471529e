"""rtnt's Hydra sweeper backed by Optuna 5 (ask/tell), registered as `hydra/sweeper: rtnt_optuna`.

`hydra_plugins` is a namespace package shared with other Hydra plugins (no `__init__.py` there);
Hydra imports every module below it when it scans for plugins, so the modules here import Optuna,
MLflow and matplotlib only inside the functions that use them.
"""
