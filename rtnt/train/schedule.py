"""Learning-rate schedules defined over the training budget's progress p ∈ [0, 1].

Because the schedule is a function of progress, not of a step count, a short budget still ends at
a low learning rate, and a wall-clock budget needs no step estimate.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class LearningRateSchedule:
    """Learning rate at progress p.

    `cosine`: linear warm-up from 0 to `peak` over the first `warmup` of the budget, then half a
    cosine down to `peak * floor` at p = 1 (Loshchilov & Hutter, "SGDR", 2017; warm-up as in Goyal
    et al., 2017). `exponential`: `peak * decay ** (p * epochs)`, the per-epoch decay of earlier rtnt
    and NAM's trainer, continuous in p.
    """

    kind: str = "cosine"
    peak: float = 4e-3
    warmup: float = 0.02
    floor: float = 0.02
    decay: float = 0.98
    epochs: float = 1.0  # epochs in the whole budget (exponential only)

    def __call__(self, p: float) -> float:
        p = min(1.0, max(0.0, p))
        if self.kind == "exponential":
            return self.peak * self.decay ** (p * self.epochs)
        if p < self.warmup:
            return self.peak * max(p / self.warmup, 1e-3)
        t = (p - self.warmup) / max(1e-12, 1.0 - self.warmup)
        return self.peak * (self.floor + (1.0 - self.floor) * 0.5 * (1.0 + math.cos(math.pi * t)))
