"""The task-function contract: what one `rtnt-train` job returns to the sweeper.

`JobResult` is checked when it is built: a job cannot return without every metric a sweep may name as an
objective, so an objective that no job returns is caught at the sweep's start (`check_objective_metric`),
not as every trial failing.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

from rtnt.errors import ConfigError

SIZE_METRICS = ("params", "macs_per_sample", "receptive_field", "receptive_field_ms")
"""Of the model as built (`rtnt.model.summary`)."""
EXPORT_METRICS = ("esr", "esr_val", "esr_preemph", "parity_error", "asr_mean", "asr_max", "asr_mean_db", "asr_max_db")
"""Measured on the exported file: ESR on the test (`esr`) and validation split, Keras-to-file parity, aliasing."""
NATIVE_METRICS = (
    "native_parity_error",
    "native_validation",
    "native_rtf_worst",
    "native_efficiency_b128",
    "native_cost_stability_worst",
)
"""Measured in the native runtime; NaN where it did not run (the gate then fails the run). `native_rtf_worst` is
the machine's real-time factor; `native_efficiency_b128` (achieved MAC rate at block 128 / the machine's
single-thread sgemm MAC rate) is the machine-relative speed that compares across hosts."""
CONTRACT_METRICS = SIZE_METRICS + EXPORT_METRICS + NATIVE_METRICS
"""Every metric a job returns, so every metric a sweep may optimise."""


@dataclass(frozen=True)
class JobResult:
    """One job's result: its MLflow run, the exported file, metrics (at least `CONTRACT_METRICS`), the gate's
    constraints (<= 0 satisfied, one per gate criterion), the gate's verdict, the job's Hydra overrides and the
    machine its speed was measured on (`rtnt.tracking.machine.machine_tags`)."""

    run_id: str
    model_path: str
    metrics: Mapping[str, float]
    constraints: Mapping[str, float]
    gate_ready: bool
    overrides: list[str] = field(default_factory=list)
    machine: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        missing = [m for m in CONTRACT_METRICS if m not in self.metrics]
        if missing:
            raise ValueError(f"a job result needs every contract metric; missing {', '.join(missing)}")


def with_native_placeholders(metrics: Mapping[str, float]) -> dict[str, float]:
    """`metrics` with NaN for each native metric that was not measured (native runtime unavailable or off)."""
    return {**{m: math.nan for m in NATIVE_METRICS}, **metrics}


def check_objective_metric(metric: str) -> None:
    """Raise a one-line ConfigError unless `metric` is one that every job returns."""
    if metric not in CONTRACT_METRICS:
        raise ConfigError(
            f"hydra.sweeper.objectives names metric {metric!r}, which rtnt-train does not return; "
            f"use one of {', '.join(CONTRACT_METRICS)}"
        )
