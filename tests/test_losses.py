"""The training loss: ESR on fully-conditioned samples, and its optional multi-resolution STFT and DC terms."""

from __future__ import annotations

import numpy as np
import pytest

from rtnt.metrics.stft import mrstft_distance
from rtnt.train.losses import STFT_SIZES, FullyConditionedESR, mrstft_loss


def pair(seed: int = 0, n: int = 8192) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.standard_normal((2, n)).astype(np.float32)
    return y, (y + 0.1 * rng.standard_normal((2, n))).astype(np.float32)


def test_training_stft_term_is_the_metric_definition() -> None:
    y, p = pair()
    expected = [mrstft_distance(y[i], p[i], 48_000, STFT_SIZES) for i in range(2)]
    assert np.asarray(mrstft_loss(y, p)) == pytest.approx(expected, rel=1e-4)


def test_loss_skips_history_and_adds_weighted_terms() -> None:
    y, p = pair()
    history = 100
    esr_only = float(FullyConditionedESR(history)(y[..., None], p[..., None]))
    yt, pt = y[:, history:], p[:, history:]
    assert esr_only == pytest.approx(np.sum((yt - pt) ** 2) / np.sum(yt**2), rel=1e-4)
    p_shift = p.copy()
    p_shift[:, :history] += 5.0  # the history samples are context, never scored
    assert float(FullyConditionedESR(history)(y[..., None], p_shift[..., None])) == pytest.approx(esr_only, rel=1e-6)
    with_stft = float(FullyConditionedESR(history, stft_weight=0.5)(y[..., None], p[..., None]))
    assert with_stft == pytest.approx(esr_only + 0.5 * float(np.mean(mrstft_loss(yt, pt))), rel=1e-4)
    dc = float(FullyConditionedESR(history, dc_weight=1.0)(y[..., None], (p + 0.2)[..., None]))
    assert dc > float(FullyConditionedESR(history)(y[..., None], (p + 0.2)[..., None]))


def test_level_balance_moves_from_batch_esr_to_mean_segment_esr() -> None:
    y, p = pair(n=2048)  # segment ESRs 0.01
    noise = p[1] - y[1]
    y[1] *= 0.2  # a segment 14 dB down with 9 times the relative error: the batch ESR hardly sees it
    p[1] = y[1] + 0.2 * 3.0 * noise
    err, energy = np.sum((y - p) ** 2, axis=1), np.sum(y**2, axis=1)
    batch = float(FullyConditionedESR(0)(y[..., None], p[..., None]))
    assert batch == pytest.approx(err.sum() / energy.sum(), rel=1e-4)
    per_segment = float(FullyConditionedESR(0, level_balance=1.0)(y[..., None], p[..., None]))
    assert per_segment == pytest.approx(np.mean(err / energy), rel=1e-4)
    half = float(FullyConditionedESR(0, level_balance=0.5)(y[..., None], p[..., None]))
    assert half == pytest.approx(np.mean(err / np.sqrt(energy.mean() * energy)), rel=1e-4)
    assert batch < half < per_segment
    y[1] *= 0.01  # now 54 dB down: its energy counts from the floor, 20 dB below the batch mean
    p[1] = y[1] + 0.01 * 0.2 * 3.0 * noise
    err, energy = np.sum((y - p) ** 2, axis=1), np.sum(y**2, axis=1)
    floored = np.maximum(energy, 0.01 * energy.mean())
    per_segment = float(FullyConditionedESR(0, level_balance=1.0)(y[..., None], p[..., None]))
    assert per_segment == pytest.approx(np.mean(err / floored), rel=1e-4)


def test_loss_round_trips_through_its_config() -> None:
    loss = FullyConditionedESR(10, pre_emphasis=0.85, stft_weight=0.2, dc_weight=0.1, level_balance=0.5)
    again = FullyConditionedESR.from_config(loss.get_config())
    assert (again.history, again.pre_emphasis, again.stft_weight, again.dc_weight) == (10, 0.85, 0.2, 0.1)
    assert again.level_balance == 0.5
