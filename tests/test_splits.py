"""Contiguous splits and fully-conditioned segments."""

from __future__ import annotations

import numpy as np
import pytest

from rtnt.data.splits import Region, cut_segments, region_with_history, segment_starts, split_by_time
from rtnt.errors import ConfigError


def test_split_is_contiguous_and_ordered() -> None:
    s = split_by_time(1000, 0.1, 0.2, receptive_field=5)
    assert (s.train.start, s.train.stop, s.val.start, s.val.stop, s.test.start, s.test.stop) == (
        0,
        700,
        700,
        800,
        800,
        1000,
    )


def test_split_refuses_a_capture_shorter_than_the_receptive_field() -> None:
    with pytest.raises(ConfigError, match="too short"):
        split_by_time(100, 0.1, 0.1, receptive_field=200)


def test_segments_carry_full_history_and_stay_in_region() -> None:
    x = np.arange(1000, dtype=np.float32)
    region = Region("train", 0, 600)
    starts = segment_starts(region, receptive_field=11, segment_length=50)
    assert starts[0] == 10 and starts[-1] + 50 <= 600
    xs, ys = cut_segments(x, x, starts, receptive_field=11, segment_length=50)
    assert xs.shape == (len(starts), 60, 1)
    # each segment begins receptive_field - 1 samples before its scored part
    np.testing.assert_array_equal(xs[:, 0, 0], starts - 10)


def test_random_tiling_changes_between_draws_but_stays_valid() -> None:
    region = Region("train", 0, 10_000)
    rng = np.random.default_rng(0)
    draws = [segment_starts(region, 101, 300, rng) for _ in range(5)]
    assert len({int(d[0]) for d in draws}) > 1
    for d in draws:
        assert d.min() >= 100 and d.max() + 300 <= 10_000


def test_region_with_history_pads_before_time_zero() -> None:
    x = np.arange(1, 11, dtype=np.float32)
    out = region_with_history(x, Region("val", 2, 5), receptive_field=4)
    np.testing.assert_array_equal(out, [0, 1, 2, 3, 4, 5])


def test_region_with_too_little_audio_for_a_segment_is_an_error() -> None:
    with pytest.raises(ConfigError, match="lower train.segment_seconds"):
        segment_starts(Region("train", 0, 100), receptive_field=50, segment_length=80)
