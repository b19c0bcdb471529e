"""From a job's return value to what Optuna is told: objectives, constraints, failures with reasons."""

from __future__ import annotations

import math

import pytest

from rtnt.errors import ConfigError
from rtnt.sweep.contract import CONTRACT_METRICS, JobResult
from rtnt.sweep.outcome import Objective, describe_exception, outcome_from_return, parse_objectives

OBJECTIVES = parse_objectives(
    [{"metric": "esr", "direction": "minimize"}, {"metric": "native_rtf_worst", "direction": "maximize"}]
)
CONSTRAINTS = ["parity", "rtf_headroom"]


def contract(constraints: dict[str, float] | None = None, **metrics: float) -> JobResult:
    base = {**dict.fromkeys(CONTRACT_METRICS, 1.0), "esr": 0.02, "native_rtf_worst": 40.0, "asr_mean_db": -30.0}
    if constraints is None:
        constraints = {"parity": -1e-4, "rtf_headroom": -36.0, "esr": -0.01}
    return JobResult("r1", "model.json", {**base, **metrics}, constraints, gate_ready=True)


def test_complete_feasible_trial() -> None:
    out = outcome_from_return(contract(), OBJECTIVES, CONSTRAINTS)
    assert out.values == [0.02, 40.0]
    assert out.constraints == {"parity": -1e-4, "rtf_headroom": -36.0}
    assert out.feasible and not out.failed
    assert out.run_id == "r1"
    assert out.metrics["asr_mean_db"] == -30.0


def test_violated_constraint_is_complete_but_infeasible() -> None:
    result = contract({"parity": -1e-4, "rtf_headroom": 2.5})
    out = outcome_from_return(result, OBJECTIVES, CONSTRAINTS)
    assert not out.failed and not out.feasible


def test_infinite_constraint_is_an_honest_violation() -> None:
    result = contract({"parity": -1e-4, "rtf_headroom": math.inf})
    out = outcome_from_return(result, OBJECTIVES, CONSTRAINTS)
    assert not out.failed and not out.feasible


@pytest.mark.parametrize(
    ("result", "reason"),
    [
        (None, "not a JobResult"),
        ({"metrics": {"esr": 0.1}, "constraints": {}}, "not a JobResult"),
        (contract(esr=math.nan), "objective esr is nan"),
        (contract(native_rtf_worst=math.inf), "objective native_rtf_worst"),
        (contract({"parity": 0.0}), "no constraint 'rtf_headroom'"),
        (contract({"parity": math.nan, "rtf_headroom": 0}), "constraint parity"),
    ],
)
def test_unusable_results_fail_with_a_reason(result: object, reason: str) -> None:
    out = outcome_from_return(result, OBJECTIVES, CONSTRAINTS)
    assert out.failed and not out.feasible
    assert reason in (out.fail_reason or "")


def test_failed_trial_keeps_finite_metrics_only() -> None:
    out = outcome_from_return(contract(esr=math.nan), OBJECTIVES, CONSTRAINTS)
    assert out.metrics["esr"] is None
    assert out.metrics["native_rtf_worst"] == 40.0


def test_objectives_are_validated() -> None:
    with pytest.raises(ConfigError, match="minimize or maximize"):
        Objective("esr", "down")
    with pytest.raises(ConfigError, match="empty"):
        parse_objectives([])
    with pytest.raises(ConfigError, match="twice"):
        parse_objectives([{"metric": "esr"}, {"metric": "esr", "direction": "maximize"}])


def test_exception_description_is_one_bounded_line() -> None:
    text = describe_exception(RuntimeError("first line\nsecond line\n" + "x" * 5000))
    assert text.startswith("RuntimeError: first line second line")
    assert "\n" not in text and len(text) <= 2000


def test_fail_reasons_and_text_carry_no_passwords() -> None:
    from rtnt.sweep.outcome import describe_exception, failed_outcome
    from rtnt.tracking.redact import redact_text

    url = "postgresql+psycopg2://user:s3cr%40t@db.example:5432/optuna"
    assert redact_text(f"storage {url} and http://a:b@h/x") == (
        "storage postgresql+psycopg2://user:***@db.example:5432/optuna and http://a:***@h/x"
    )
    assert redact_text("sqlite:////tmp/x.db http://host:5000/path") == "sqlite:////tmp/x.db http://host:5000/path"
    assert "s3cr" not in describe_exception(RuntimeError(f"could not connect to {url}"))
    assert "s3cr" not in (failed_outcome(f"bad {url}").fail_reason or "")


def test_a_job_result_holds_every_contract_metric() -> None:
    with pytest.raises(ValueError, match="missing params, macs_per_sample"):
        JobResult("r1", "model.json", {"esr": 0.1}, {}, gate_ready=False)


def test_an_objective_no_job_returns_is_refused_at_parse_time() -> None:
    with pytest.raises(ConfigError, match="does not return"):
        parse_objectives([{"metric": "esr_on_the_moon"}])


def test_the_machine_a_job_measured_its_speed_on_is_kept() -> None:
    base = contract()
    tags = {"machine.cpu": "AMD EPYC 7B13", "machine.cores": "2", "machine.isa": "avx2"}
    result = JobResult(base.run_id, base.model_path, base.metrics, base.constraints, gate_ready=True, machine=tags)
    assert outcome_from_return(result, OBJECTIVES, CONSTRAINTS).machine == tags
    assert outcome_from_return(base, OBJECTIVES, CONSTRAINTS).machine == {}
