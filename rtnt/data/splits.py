"""Contiguous train/validation/test regions and fully-conditioned training segments."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rtnt.errors import ConfigError


@dataclass(frozen=True)
class Region:
    """Samples [start, stop) of a capture. `history` samples before `start` feed the receptive field."""

    name: str
    start: int
    stop: int

    @property
    def length(self) -> int:
        return self.stop - self.start


@dataclass(frozen=True)
class Splits:
    train: Region
    val: Region
    test: Region


def split_by_time(n_samples: int, val_fraction: float, test_fraction: float, receptive_field: int) -> Splits:
    """Split a capture into contiguous regions [train | validation | test] by time.

    Validation and test targets are never trained on. Their first samples are predicted from the
    preceding region's input as history (see `region_with_history`), as a streaming model would.
    A capture set's settings are renders of one input of one length: the regions are taken per setting,
    at the same times, so every setting is trained, validated and tested on the same passages of the
    performance and the settings' ESRs compare like with like (a held-out setting is scored on its test region).
    """
    n_test = int(round(n_samples * test_fraction))
    n_val = int(round(n_samples * val_fraction))
    n_train = n_samples - n_val - n_test
    if min(n_test, n_val) < 1 or n_train < receptive_field:
        raise ConfigError(
            f"capture of {n_samples} samples is too short for train.val_fraction={val_fraction}, "
            f"train.test_fraction={test_fraction} and a receptive field of {receptive_field} samples; "
            "use a longer capture or a preset with a smaller receptive field"
        )
    return Splits(
        train=Region("train", 0, n_train),
        val=Region("val", n_train, n_train + n_val),
        test=Region("test", n_train + n_val, n_samples),
    )


def region_with_history(signal: np.ndarray, region: Region, receptive_field: int) -> np.ndarray:
    """The region's samples preceded by up to `receptive_field - 1` samples of real history (zeros before t=0).

    Time is the last axis: a capture set's targets (settings, samples) give each setting's region."""
    hist = receptive_field - 1
    lo = region.start - hist
    pad = max(0, -lo)
    out = signal[..., max(lo, 0) : region.stop]
    if not pad:
        return out.copy()
    return np.concatenate([np.zeros((*signal.shape[:-1], pad), dtype=signal.dtype), out], axis=-1)


def segment_starts(
    region: Region, receptive_field: int, segment_length: int, rng: np.random.Generator | None = None
) -> np.ndarray:
    """Start samples of the scored part of training segments that tile a region.

    Every start leaves `receptive_field - 1` samples of history before it. With `rng`, the tiling is
    shifted by a random offset (a new draw each epoch gives new segment boundaries).
    """
    hist = receptive_field - 1
    first = max(region.start, hist)
    if rng is not None:
        first += int(rng.integers(0, segment_length))
    starts = np.arange(first, region.stop - segment_length + 1, segment_length)
    if len(starts) == 0 and rng is not None:
        return segment_starts(region, receptive_field, segment_length)
    if len(starts) == 0:
        raise ConfigError(
            f"the {region.name} region ({region.length} samples) holds no training segment of "
            f"{segment_length} samples after a {hist}-sample history; lower train.segment_seconds or use more audio"
        )
    return starts


def cut_segments(
    x: np.ndarray, y: np.ndarray, starts: np.ndarray, receptive_field: int, segment_length: int
) -> tuple[np.ndarray, np.ndarray]:
    """Cut segments whose every scored output sample has its full receptive field.

    Returns inputs and targets of shape (n, receptive_field - 1 + segment_length, 1). Only the last
    `segment_length` target samples of each segment are scored by the loss (`rtnt.train.losses`);
    the first `receptive_field - 1` are history.
    """
    idx = starts[:, None] + np.arange(-(receptive_field - 1), segment_length)[None, :]
    return x[idx][..., None].astype(np.float32), y[idx][..., None].astype(np.float32)
