"""Per-block cost over replays, and the machine's own timing jitter (rtnt.validate.jitter)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from rtnt.native import native_available
from rtnt.validate.jitter import clock_pauses, constant_work_stability, relative_block_cost, stability

needs_native = pytest.mark.skipif(not native_available(), reason="rtnt._native is not built (pip install -e .)")


def test_stability_is_mean_over_p99() -> None:
    times = np.full(1000, 1e-4)
    assert stability(times) == pytest.approx(1.0)
    times[:20] = 3e-4  # 2% of blocks take three times as long
    assert stability(times) == pytest.approx(np.mean(times) / 3e-4)


def _replays(seed: int, count: int = 5, blocks: int = 2000) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [np.full(blocks, 1e-4) * (1 + 0.01 * rng.random(blocks)) for _ in range(count)]


def test_interruptions_that_move_between_replays_are_removed() -> None:
    rng = np.random.default_rng(0)
    replays = _replays(0)
    for t in replays:
        t[rng.choice(len(t), 100, replace=False)] += 5e-4  # 5% of blocks hit by a pause, new ones each replay
    assert all(stability(r) < 0.5 for r in replays)
    assert stability(relative_block_cost(replays)) > 0.95


def test_slow_stretches_of_the_machine_are_removed() -> None:
    replays = _replays(1)
    for k, t in enumerate(replays):
        t[300 * k : 300 * k + 600] *= 2.0  # the whole machine twice as slow for 30% of each replay
    assert all(stability(r) < 0.7 for r in replays)
    assert stability(relative_block_cost(replays)) > 0.95


def test_a_slow_block_that_recurs_in_every_replay_is_kept() -> None:
    replays = _replays(2)
    for t in replays:
        t[::50] *= 2.0  # every 50th block does twice the work, in every replay: a runtime pause
    cost = relative_block_cost(replays)
    assert stability(cost) < 0.55
    assert np.all(cost[::50] > 1.9)


def test_relative_block_cost_needs_equal_replays() -> None:
    with pytest.raises(ValueError, match="equal-length"):
        relative_block_cost([np.ones(3), np.ones(4)])
    with pytest.raises(ValueError, match="non-empty"):
        relative_block_cost([])


@needs_native
def test_clock_pauses_summary() -> None:
    pauses = clock_pauses(seconds=0.05, threshold=1e-6)
    assert set(pauses) == {"per_second", "share_lost", "median_us", "p99_us", "max_us", "median_spacing_ms"}
    assert 0.0 <= pauses["share_lost"] < 1.0
    assert pauses["max_us"] >= pauses["p99_us"] >= pauses["median_us"] >= 0.0


@needs_native
def test_constant_work_calls_are_timed() -> None:
    from rtnt.native import constant_work

    times = constant_work(20e-6, 300)
    assert times.shape == (300,) and np.all(times > 0)
    # Usually near 1; above 1 when one stall of the machine beyond the 99th percentile outweighs the rest (a
    # preemption of 2 ms among 300 calls of 20 us), which other work on a 2-core machine can cause at any time.
    assert 0.0 < constant_work_stability(20e-6, 300) < math.inf
    with pytest.raises(ValueError, match="call_seconds"):
        constant_work(0.0, 10)
