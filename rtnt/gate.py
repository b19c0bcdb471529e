"""The multi-objective export gate: is an exported RTNeural JSON ready for a user?

ready = parity passes AND native validation passes AND worst-case native RTF >= headroom
AND preview ESR <= threshold AND mean ASR (dB) <= threshold AND the listening review is not
rejected. A pending review passes but is reported as "pending listening review". Every
criterion also yields a constraint value (<= 0 satisfied, > 0 violated, never NaN) for Optuna.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Literal, Protocol

Review = Literal["pending", "approved", "rejected"]
REVIEWS: tuple[str, ...] = ("pending", "approved", "rejected")
CRITERIA: tuple[str, ...] = ("parity", "native_validation", "rtf_headroom", "esr", "asr", "review")
THRESHOLD_KEYS: tuple[str, ...] = ("parity_tolerance", "native_tolerance", "rtf_headroom", "esr_max", "asr_mean_db_max")


class GateThresholds(Protocol):
    """Anything shaped like rtnt.config.GateConfig (the dataclass or its DictConfig)."""

    parity_tolerance: float
    native_tolerance: float
    rtf_headroom: float
    esr_max: float
    asr_mean_db_max: float


@dataclass
class GateEvidence:
    """Measured evidence of one run.

    parity_error: max abs, exported JSON in the reference runtime vs Keras.
    native_parity_error: max abs, native runtime vs Keras (nan when native did not run).
    native_validation: the native validation (block partitions, conformance) passed.
    native_rtf_worst: worst-case native real-time factor over block sizes (nan when not run).
    esr: preview ESR (the validation split). asr_mean_db: 10 log10 of the mean linear ASR.
    """

    parity_error: float
    native_parity_error: float
    native_validation: bool
    native_rtf_worst: float
    esr: float
    asr_mean_db: float
    review: Review = "pending"
    native_available: bool = True

    def __post_init__(self) -> None:
        for name in ("parity_error", "native_parity_error", "native_rtf_worst", "esr", "asr_mean_db"):
            setattr(self, name, float(getattr(self, name)))
        self.native_validation = bool(self.native_validation)
        self.native_available = bool(self.native_available)
        if self.review not in REVIEWS:
            raise ValueError(f"review must be one of {', '.join(REVIEWS)}, not {self.review!r}")


@dataclass(frozen=True)
class Criterion:
    """One gate criterion: measured value, threshold, verdict and a one-line reason."""

    name: str
    value: float | str
    threshold: float | str
    passed: bool
    reason: str


def _finite(v: float) -> bool:
    return isinstance(v, (int, float)) and math.isfinite(v)


def _violation(v: float) -> float:
    """A constraint value that is never NaN: a non-finite measurement counts as infinitely violated."""
    return float(v) if not math.isnan(v) else math.inf


def _fmt(v: float | str) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)


def _thresholds_dict(t: GateThresholds) -> dict[str, float]:
    return {k: float(getattr(t, k)) for k in THRESHOLD_KEYS}


@dataclass
class GateResult:
    """Verdict, per-criterion detail, Optuna constraints and the inputs that produced them."""

    evidence: GateEvidence
    thresholds: dict[str, float]
    criteria: list[Criterion]
    constraints: dict[str, float]

    @property
    def failed(self) -> list[str]:
        return [c.name for c in self.criteria if not c.passed]

    @property
    def ready(self) -> bool:
        return not self.failed

    @property
    def summary(self) -> str:
        """One line: READY, READY (pending listening review), or NOT READY with the failures."""
        if not self.ready:
            return f"NOT READY: failed {', '.join(self.failed)}"
        if self.evidence.review == "pending":
            return "READY (pending listening review)"
        return "READY (listening review approved)"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready record with evidence and thresholds, from which `gate_from_dict` re-evaluates."""
        return {
            "ready": self.ready,
            "failed": self.failed,
            "summary": self.summary,
            "evidence": asdict(self.evidence),
            "thresholds": dict(self.thresholds),
            "criteria": [asdict(c) for c in self.criteria],
            "constraints": dict(self.constraints),
        }

    def mlflow_tags(self) -> dict[str, str]:
        """Tags gate.ready ("true"/"false"), gate.failed (comma list or "none") and review."""
        return {
            "gate.ready": "true" if self.ready else "false",
            "gate.failed": ",".join(self.failed) or "none",
            "review": self.evidence.review,
        }

    def mlflow_metrics(self) -> dict[str, float]:
        """gate.ready (1/0), gate.<criterion>.passed (1/0) and gate.<criterion>.constraint."""
        out = {"gate.ready": 1.0 if self.ready else 0.0}
        for c in self.criteria:
            out[f"gate.{c.name}.passed"] = 1.0 if c.passed else 0.0
            out[f"gate.{c.name}.constraint"] = self.constraints[c.name]
        return out

    def to_markdown(self, plots: Sequence[str | Path] = ()) -> str:
        """Human-readable report naming every criterion; `plots` are linked as given
        (pass paths relative to where the report is stored)."""
        ev = self.evidence
        lines = [
            f"# Export gate: {self.summary}",
            "",
            "| criterion | value | threshold | result | reason |",
            "|---|---|---|---|---|",
        ]
        for c in self.criteria:
            verdict = "pass" if c.passed else "**FAIL**"
            lines.append(f"| {c.name} | {_fmt(c.value)} | {_fmt(c.threshold)} | {verdict} | {c.reason} |")
        lines += [
            "",
            f"- native runtime available: {'yes' if ev.native_available else 'no'}",
            f"- listening review: {ev.review}"
            + (
                " — record it with `rtnt-review RUN_ID approved|rejected [--note TEXT]`"
                if ev.review == "pending"
                else ""
            ),
            "- constraints for the sweep (<= 0 satisfied): "
            + ", ".join(f"{k} = {v:.4g}" for k, v in self.constraints.items()),
        ]
        if plots:
            lines += ["", "## Plots", ""]
            lines += [f"![{Path(p).stem}]({Path(p).as_posix()})" for p in plots]
        return "\n".join(lines) + "\n"


def _parity(ev: GateEvidence, t: dict[str, float]) -> tuple[Criterion, float]:
    tol, v = t["parity_tolerance"], ev.parity_error
    ok = _finite(v) and v <= tol
    reason = (
        f"exported JSON matches Keras within {tol:g} max abs"
        if ok
        else f"exported JSON differs from Keras by {v:.3g} max abs, above {tol:g}"
    )
    return Criterion("parity", v, tol, ok, reason), _violation(v - tol)


def _native(ev: GateEvidence, t: dict[str, float]) -> tuple[Criterion, float]:
    tol, v = t["native_tolerance"], ev.native_parity_error
    if not ev.native_available:
        return Criterion(
            "native_validation", "unavailable", tol, False, "native runtime unavailable; not validated"
        ), math.inf
    within = _finite(v) and v <= tol
    ok = within and ev.native_validation
    if ok:
        reason = f"native runtime validated, within {tol:g} max abs of Keras"
    elif not within:
        reason = f"native runtime differs from Keras by {v:.3g} max abs, above {tol:g}"
    else:
        reason = "native validation failed (block-size invariance or conformance)"
    constraint = _violation(v - tol)
    if not ev.native_validation:
        constraint = max(constraint, 0.0) + tol  # strictly positive even when the error is within tolerance
    return Criterion("native_validation", v, tol, ok, reason), constraint


def _rtf(ev: GateEvidence, t: dict[str, float]) -> tuple[Criterion, float]:
    need, v = t["rtf_headroom"], ev.native_rtf_worst
    if not ev.native_available:
        return Criterion(
            "rtf_headroom", "unavailable", need, False, "native runtime unavailable; RTF not measured"
        ), math.inf
    ok = _finite(v) and v >= need
    reason = (
        f"worst-case native RTF {v:.3g}x meets the {need:g}x headroom"
        if ok
        else f"worst-case native RTF {v:.3g}x is below the {need:g}x headroom"
    )
    return Criterion("rtf_headroom", v, need, ok, reason), _violation(need - v)


def _esr(ev: GateEvidence, t: dict[str, float]) -> tuple[Criterion, float]:
    limit, v = t["esr_max"], ev.esr
    ok = _finite(v) and v <= limit
    reason = f"preview ESR {v:.4g} {'within' if ok else 'above'} the limit {limit:g}"
    return Criterion("esr", v, limit, ok, reason), _violation(v - limit)


def _asr(ev: GateEvidence, t: dict[str, float]) -> tuple[Criterion, float]:
    limit, v = t["asr_mean_db_max"], ev.asr_mean_db
    ok = not math.isnan(v) and v <= limit
    reason = f"mean aliasing-to-signal ratio {v:.1f} dB {'within' if ok else 'above'} the limit {limit:g} dB"
    return Criterion("asr", v, limit, ok, reason), _violation(v - limit)


def _review(ev: GateEvidence) -> tuple[Criterion, float]:
    reasons = {
        "pending": "pending listening review",
        "approved": "listening review approved",
        "rejected": "listening review rejected",
    }
    ok = ev.review != "rejected"
    return Criterion("review", ev.review, "not rejected", ok, reasons[ev.review]), 0.0 if ok else 1.0


def evaluate_gate(evidence: GateEvidence, thresholds: GateThresholds) -> GateResult:
    """Evaluate every criterion of the export gate against `thresholds` (a GateConfig-like object)."""
    t = _thresholds_dict(thresholds)
    pairs = [
        _parity(evidence, t),
        _native(evidence, t),
        _rtf(evidence, t),
        _esr(evidence, t),
        _asr(evidence, t),
        _review(evidence),
    ]
    return GateResult(
        evidence=evidence,
        thresholds=t,
        criteria=[c for c, _ in pairs],
        constraints={c.name: float(v) for c, v in pairs},
    )


def gate_from_dict(record: dict[str, Any], review: Review | None = None) -> GateResult:
    """Re-evaluate a gate from its `to_dict` record, optionally with a new review decision."""
    names = {f.name for f in fields(GateEvidence)}
    evidence = GateEvidence(**{k: v for k, v in record["evidence"].items() if k in names})
    if review is not None:
        evidence = replace(evidence, review=review)
    return evaluate_gate(evidence, SimpleNamespace(**{k: record["thresholds"][k] for k in THRESHOLD_KEYS}))
