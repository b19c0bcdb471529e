"""Multi-objective sweeps: search-space expansion, trial bookkeeping for MLflow and the sweep report.

The Hydra sweeper plugin lives in `hydra_plugins/rtnt_optuna_sweeper/`; this package holds the parts
that do not depend on Hydra's plugin machinery, so they are importable and testable on their own.
Nothing here imports TensorFlow; Optuna, MLflow and matplotlib are imported where they are used.
"""
