"""Timing stability: the per-block cost of a model apart from the machine's own interruptions.

A block's wall time is its cost plus whatever the machine does meanwhile: interrupts and host
pauses that stop the thread for tens of microseconds, and stretches of seconds in which the whole
machine runs slower (other work on the host). The runtime does the same work for block i of a
signal whenever the signal is replayed from `reset()`. So each block's time is first taken
relative to the median of the blocks around it in the same replay, which removes slow stretches,
and then the minimum over replays is kept, which removes interruptions: one would have to hit
block i in every replay to survive. A model whose blocks differ in cost (periodic work, a pause, a
slow ring position) keeps that difference in every replay, and so in the result.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
from scipy.ndimage import median_filter

from rtnt.native import clock_gaps, constant_work

DETREND_BLOCKS = 51


def stability(times: np.ndarray) -> float:
    """Mean over 99th-percentile of block times: RTF p99 / RTF mean (1 = every block costs the same; above 1 only
    where a rare stall beyond the 99th percentile outweighs all the other blocks)."""
    return float(np.mean(times) / np.percentile(times, 99))


def relative_block_cost(replays: Sequence[np.ndarray], window: int = DETREND_BLOCKS) -> np.ndarray:
    """Each block's cost relative to its neighbourhood: its time over the median time of the `window`
    blocks around it in the same replay, minimum over replays of the same signal from reset.

    All replays must time the same blocks (same length).
    """
    lengths = {len(r) for r in replays}
    if len(lengths) != 1 or not replays:
        raise ValueError(f"replays must be a non-empty list of equal-length timings, got lengths {sorted(lengths)}")
    relative = [np.asarray(r) / median_filter(np.asarray(r), size=window, mode="reflect") for r in replays]
    return np.min(np.stack(relative), axis=0)


def clock_pauses(seconds: float = 2.0, threshold: float = 2e-6) -> dict[str, float]:
    """How often and how long this thread is stopped while it spins on the clock for `seconds`.

    Keys: `per_second` (pauses longer than `threshold`), `share_lost` (fraction of wall time),
    `median_us`, `p99_us`, `max_us` (pause lengths) and `median_spacing_ms` (time from one pause
    to the next; a fixed spacing is a periodic interrupt).
    """
    at, length = clock_gaps(seconds, threshold)
    if len(length) == 0:
        return {
            "per_second": 0.0,
            "share_lost": 0.0,
            "median_us": 0.0,
            "p99_us": 0.0,
            "max_us": 0.0,
            "median_spacing_ms": float("nan"),
        }
    spacing = np.diff(at)
    return {
        "per_second": len(length) / seconds,
        "share_lost": float(length.sum() / seconds),
        "median_us": float(np.median(length) * 1e6),
        "p99_us": float(np.percentile(length, 99) * 1e6),
        "max_us": float(length.max() * 1e6),
        "median_spacing_ms": float(np.median(spacing) * 1e3) if len(spacing) else float("nan"),
    }


def constant_work_stability(call_seconds: float, calls: int) -> float:
    """`stability` of a fixed loop taking about `call_seconds` per call, over `calls` calls: the best
    that any code with that block time can show on this machine."""
    return stability(constant_work(call_seconds, calls))
