"""Export gate logic: each criterion alone, review states, constraint signs and the report."""

import json
import math
from dataclasses import replace

import pytest

from rtnt.config import GateConfig
from rtnt.gate import CRITERIA, GateEvidence, evaluate_gate, gate_from_dict

T = GateConfig()  # parity/native 1e-4, RTF >= 4, ESR <= 0.03, ASR <= -30 dB

GOOD = GateEvidence(
    parity_error=2e-6,
    native_parity_error=3e-6,
    native_validation=True,
    native_rtf_worst=12.0,
    esr=0.01,
    asr_mean_db=-32.0,
    review="pending",
    native_available=True,
)

# one failing change per criterion, and a fragment of the reason it must give
FAILURES = {
    "parity": (dict(parity_error=5e-3), "differs from Keras"),
    "native_validation": (dict(native_validation=False), "native validation failed"),
    "rtf_headroom": (dict(native_rtf_worst=2.5), "below the 4x headroom"),
    "esr": (dict(esr=0.2), "above the limit 0.03"),
    "asr": (dict(asr_mean_db=-18.0), "above the limit -30 dB"),
    "review": (dict(review="rejected"), "listening review rejected"),
}


def test_all_good_is_ready_pending_review():
    result = evaluate_gate(GOOD, T)
    assert result.ready and result.failed == []
    assert "pending listening review" in result.summary
    assert [c.name for c in result.criteria] == list(CRITERIA)
    assert all(v <= 0 for v in result.constraints.values())
    assert result.mlflow_tags() == {"gate.ready": "true", "gate.failed": "none", "review": "pending"}


@pytest.mark.parametrize("name", list(FAILURES))
def test_each_criterion_failing_alone(name):
    change, reason = FAILURES[name]
    result = evaluate_gate(replace(GOOD, **change), T)
    assert not result.ready
    assert result.failed == [name]
    criterion = next(c for c in result.criteria if c.name == name)
    assert not criterion.passed and reason in criterion.reason
    assert result.constraints[name] > 0
    assert all(v <= 0 for k, v in result.constraints.items() if k != name)
    assert result.mlflow_tags()["gate.failed"] == name and result.mlflow_tags()["gate.ready"] == "false"
    assert result.mlflow_metrics()["gate.ready"] == 0.0 and result.mlflow_metrics()[f"gate.{name}.passed"] == 0.0


def test_native_error_above_tolerance_fails_native_validation():
    result = evaluate_gate(replace(GOOD, native_parity_error=1e-3), T)
    assert result.failed == ["native_validation"]
    assert result.constraints["native_validation"] == pytest.approx(1e-3 - 1e-4)


def test_native_unavailable_fails_native_and_rtf():
    result = evaluate_gate(
        replace(GOOD, native_available=False, native_parity_error=math.nan, native_rtf_worst=math.nan), T
    )
    assert result.failed == ["native_validation", "rtf_headroom"]
    assert all("unavailable" in c.reason for c in result.criteria if not c.passed)
    assert not any(math.isnan(v) for v in result.constraints.values())


def test_non_finite_evidence_fails_with_a_non_nan_constraint():
    result = evaluate_gate(replace(GOOD, esr=math.nan, asr_mean_db=math.nan), T)
    assert result.failed == ["esr", "asr"]
    assert result.constraints["esr"] == math.inf and result.constraints["asr"] == math.inf


def test_review_states():
    approved = evaluate_gate(replace(GOOD, review="approved"), T)
    assert approved.ready and "approved" in approved.summary and approved.constraints["review"] == 0
    assert evaluate_gate(GOOD, T).constraints["review"] == 0
    rejected = evaluate_gate(replace(GOOD, review="rejected"), T)
    assert not rejected.ready and rejected.constraints["review"] == 1
    with pytest.raises(ValueError):
        replace(GOOD, review="maybe")


def test_constraint_values_are_tolerance_style():
    c = evaluate_gate(GOOD, T).constraints
    assert c["parity"] == pytest.approx(2e-6 - 1e-4)
    assert c["native_validation"] == pytest.approx(3e-6 - 1e-4)
    assert c["rtf_headroom"] == pytest.approx(4.0 - 12.0)
    assert c["esr"] == pytest.approx(0.01 - 0.03)
    assert c["asr"] == pytest.approx(-32.0 + 30.0)


def test_markdown_report_names_every_criterion(tmp_path):
    result = evaluate_gate(replace(GOOD, esr=0.2), T)
    md = result.to_markdown(["../asr/asr_per_probe.png", "../preview/residual_spectrum.png"])
    assert md.startswith("# Export gate: NOT READY: failed esr")
    for c in result.criteria:
        assert f"| {c.name} |" in md and c.reason in md
    assert "**FAIL**" in md and "![asr_per_probe](../asr/asr_per_probe.png)" in md
    (tmp_path / "report.md").write_text(md)
    assert (tmp_path / "report.md").stat().st_size > 0


def test_dict_round_trip_re_evaluates_with_a_new_review():
    result = evaluate_gate(GOOD, T)
    record = json.loads(json.dumps(result.to_dict()))
    assert record["ready"] and record["thresholds"]["esr_max"] == 0.03
    again = gate_from_dict(record)
    assert again.to_dict() == result.to_dict()
    rejected = gate_from_dict(record, review="rejected")
    assert rejected.failed == ["review"]
