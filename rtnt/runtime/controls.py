"""The controls (knobs) of a conditioned model: the `controls` key of an RTNeural JSON model file.

A model conditioned by concatenation (`conditioning=concat`) has `in_shape [.., 1 + K]`: input channel 0
is the audio sample and channels 1..K are the K control values at that sample, in the order of the
top-level `controls` list, in the capture set's own units. Each entry is
`{"name": str, "minimum": float, "maximum": float, "default": float}`; absent or `[]` means K = 0.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from rtnt.errors import ModelJsonError, RtntError

CONTROLS_KEY = "controls"
_FIELDS = ("name", "minimum", "maximum", "default")


@dataclass(frozen=True)
class ControlSpec:
    """One control of a conditioned model: its name, its range (the lowest and highest training value) and
    its default (the middle training value). Construction checks the values and raises ModelJsonError."""

    name: str
    minimum: float
    maximum: float
    default: float

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.strip():
            raise ModelJsonError(f"control name {self.name!r} must be a non-empty string; name the knob")
        for field in _FIELDS[1:]:
            value = getattr(self, field)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise ModelJsonError(f"control '{self.name}': {field} {value!r} must be a finite number")
            object.__setattr__(self, field, float(value))
        if not self.minimum < self.maximum:
            raise ModelJsonError(
                f"control '{self.name}': minimum {self.minimum:g} must be below maximum {self.maximum:g}"
            )
        if not self.minimum <= self.default <= self.maximum:
            raise ModelJsonError(
                f"control '{self.name}': default {self.default:g} is outside [{self.minimum:g}, {self.maximum:g}]"
            )

    def to_json(self) -> dict[str, Any]:
        """The JSON object of this control, as written in a model file's `controls` list."""
        return {"name": self.name, "minimum": self.minimum, "maximum": self.maximum, "default": self.default}

    @classmethod
    def from_json(cls, data: Any, where: str = "control") -> ControlSpec:
        """The control of one `controls` entry; a malformed entry raises ModelJsonError naming `where`."""
        if not isinstance(data, Mapping):
            raise ModelJsonError(f"{where} must be an object with {', '.join(_FIELDS)}, got {type(data).__name__}")
        missing = [f for f in _FIELDS if f not in data]
        unknown = sorted(set(data) - set(_FIELDS))
        if missing or unknown:
            problem = f"lacks {', '.join(missing)}" if missing else f"has unknown key(s) {', '.join(unknown)}"
            raise ModelJsonError(f"{where} {problem}; a control has exactly {', '.join(_FIELDS)}")
        try:
            return cls(data["name"], data["minimum"], data["maximum"], data["default"])
        except ModelJsonError as exc:
            raise ModelJsonError(f"{where}: {exc}") from None


def parse_controls(
    data: Mapping[str, Any], in_size: Any, source: str, size_field: str = "'in_shape' ends in"
) -> list[ControlSpec]:
    """The controls of a parsed model document, checked against its input size (1 + K; `size_field` names that
    field in errors) and for unique names; problems raise ModelJsonError naming `source`."""
    raw = data.get(CONTROLS_KEY, [])
    if not isinstance(raw, Sequence) or isinstance(raw, str):
        raise ModelJsonError(f"{source}: '{CONTROLS_KEY}' must be a list of controls, got {type(raw).__name__}")
    controls = [ControlSpec.from_json(c, f"{source}: {CONTROLS_KEY}[{i}]") for i, c in enumerate(raw)]
    names = [c.name for c in controls]
    if len(set(names)) != len(names):
        raise ModelJsonError(f"{source}: control names {names} repeat; every control needs its own name")
    if in_size != 1 + len(controls):
        raise ModelJsonError(
            f"{source}: {size_field} {in_size!r} but the model lists {len(controls)} control(s); "
            f"a conditioned model's input is 1 audio channel + 1 per control ({1 + len(controls)})"
        )
    return controls


def default_controls(controls: Sequence[ControlSpec]) -> np.ndarray | None:
    """Every control at its default, as one float32 row (K,) for `process`; None for an unconditioned model."""
    return np.array([c.default for c in controls], dtype=np.float32) if controls else None


def control_block(controls: Any, n: int, k: int, source: str) -> np.ndarray:
    """The per-sample controls of `n` samples as a float32 (n, k) array. `controls` may be None (only
    when k == 0), one row of k values (held for every sample) or an (n, k) array; else RtntError."""
    if controls is None:
        if k:
            raise RtntError(f"{source}: the model takes {k} control(s); pass controls of shape ({n}, {k}) or ({k},)")
        return np.zeros((n, 0), dtype=np.float32)
    c = np.asarray(controls, dtype=np.float32)
    if c.shape == (k,):
        c = np.broadcast_to(c, (n, k))
    if c.shape != (n, k):
        raise RtntError(f"{source}: controls have shape {c.shape}, expected ({n}, {k}) (one row per sample) or ({k},)")
    if not np.all(np.isfinite(c)):
        raise RtntError(f"{source}: controls hold NaN or Inf; pass finite knob values")
    return c


def sweep_controls(controls: Sequence[ControlSpec], n: int, cycles: float = 2.0) -> np.ndarray | None:
    """Per-sample values (n, K) float32 that sweep every control over its whole range, `cycles` times in n
    samples (a raised cosine from the minimum, the controls out of phase), for checks and benchmarks of a
    conditioned model; None for an unconditioned one."""
    if not controls:
        return None
    lo = np.array([c.minimum for c in controls])
    hi = np.array([c.maximum for c in controls])
    phase = 2 * np.pi * cycles * np.arange(n)[:, None] / max(n, 1) + np.arange(len(controls))[None, :]
    return (lo + (hi - lo) * (0.5 - 0.5 * np.cos(phase))).astype(np.float32)
