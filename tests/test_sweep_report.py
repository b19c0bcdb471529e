"""The Pareto report compares speed as absolute RTF on one machine, and as the machine-relative
native_efficiency_b128 when the trials ran on different machines."""

from __future__ import annotations

from pathlib import Path

import optuna
import pandas as pd
import pytest

from rtnt.sweep.outcome import parse_objectives
from rtnt.sweep.report import EFFICIENCY_METRIC, RTF_METRIC, write_report

OBJECTIVES = parse_objectives(
    [{"metric": "esr", "direction": "minimize"}, {"metric": "native_rtf_worst", "direction": "maximize"}]
)
FAST_CPU, SLOW_CPU = "AMD EPYC 9654 96-Core Processor", "Intel(R) Xeon(R) CPU E5-2680 v2 @ 2.80GHz"


def _study(trials: list[tuple[float, float, float, str, float]]) -> optuna.Study:
    """One complete feasible trial per (esr, rtf, efficiency, cpu, sgemm), as the sweeper records them."""
    study = optuna.create_study(directions=["minimize", "maximize"])
    for esr, rtf, efficiency, cpu, sgemm in trials:
        metrics = {"esr": esr, RTF_METRIC: rtf, EFFICIENCY_METRIC: efficiency, "native_sgemm_gmacs": sgemm}
        study.add_trial(
            optuna.trial.create_trial(
                values=[esr, rtf],
                user_attrs={"metrics": metrics, "machine": {"machine.cpu": cpu}},
                constraints={"rtf_headroom": -1.0},
            )
        )
    return study


# Trial 1 is slow in absolute terms only because its machine is slow: relative to that machine's sgemm
# it is the most efficient model, and at the same ESR as trial 0 it dominates it once speed is machine-relative.
TRIALS = [
    (0.02, 40.0, 0.30, FAST_CPU, 60.0),
    (0.02, 12.0, 0.55, SLOW_CPU, 15.0),
    (0.05, 80.0, 0.60, FAST_CPU, 60.0),
]


def test_report_over_two_machines_compares_machine_relative_efficiency(tmp_path: Path) -> None:
    report = write_report(_study(TRIALS), OBJECTIVES, tmp_path, min_trials_for_importance=99)
    assert report.speed is not None and report.speed.metric == EFFICIENCY_METRIC
    assert report.speed.machines == sorted([FAST_CPU, SLOW_CPU])
    assert report.pareto_trials == [1, 2]  # absolute RTF would keep 0 and 2 and drop 1
    text = (tmp_path / "pareto_front.md").read_text()
    assert f"Speed: {EFFICIENCY_METRIC}, because the trials ran on 2 CPU models" in text
    assert f"maximize {EFFICIENCY_METRIC}" in text
    front = pd.read_csv(tmp_path / "pareto_front.csv")
    assert list(front["trial"]) == [1, 2] and set(front["machine.cpu"]) == {FAST_CPU, SLOW_CPU}


def test_report_on_one_machine_compares_absolute_rtf(tmp_path: Path) -> None:
    same = [(esr, rtf, eff, FAST_CPU, sgemm) for esr, rtf, eff, _, sgemm in TRIALS[:1] + TRIALS[2:]]
    same.insert(1, (0.02, 12.0, 0.55, FAST_CPU, 55.0))
    report = write_report(_study(same), OBJECTIVES, tmp_path, min_trials_for_importance=99)
    assert report.speed is not None and report.speed.metric == RTF_METRIC
    assert report.pareto_trials == [0, 2]  # Optuna's own front
    assert (
        f"Speed: {RTF_METRIC}, because every complete trial ran on {FAST_CPU}"
        in (tmp_path / "pareto_front.md").read_text()
    )


@pytest.mark.parametrize("sgemm, expected", [(25.0, EFFICIENCY_METRIC), (50.0, RTF_METRIC)])
def test_one_cpu_name_with_a_far_slower_sgemm_counts_as_another_machine(
    tmp_path: Path, sgemm: float, expected: str
) -> None:
    trials = [(0.02, 40.0, 0.3, FAST_CPU, 60.0), (0.03, 30.0, 0.4, FAST_CPU, sgemm)]
    report = write_report(_study(trials), OBJECTIVES, tmp_path, min_trials_for_importance=99)
    assert report.speed is not None and report.speed.metric == expected
