"""The step-based training loop: wall-clock and step budgets, the schedule over the budget, XLA against
graph mode, continuation of a budgeted run, and the progress display in both modes."""

from __future__ import annotations

import io
import json
import math
import time
from pathlib import Path

import keras
import numpy as np
import pytest

from rtnt.config import preset_config
from rtnt.data.splits import Region
from rtnt.errors import RtntError
from rtnt.model.build import build_model
from rtnt.model.summary import model_summary
from rtnt.train.fit import (
    BEST_CHECKPOINT,
    LAST_CHECKPOINT,
    Budget,
    Cadence,
    SegmentSampler,
    TrainingState,
    Validation,
    compile_model,
    fit,
    set_jit_compile,
)
from rtnt.train.progress import TrainingProgress, format_duration
from rtnt.train.schedule import LearningRateSchedule

SR = 48_000


def tiny_model() -> keras.Model:
    preset = preset_config({"name": "tiny", "channels": 4, "kernel_sizes": [3], "dilations": [1, 2, 4]})
    keras.utils.set_random_seed(0)
    model = build_model(preset)
    compile_model(model, 4e-3, model_summary(model).receptive_field_samples - 1, 0.0)
    return model


def signals(seconds: float = 2.0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    x = (0.5 * rng.standard_normal(int(seconds * SR))).astype(np.float32)
    return x, np.tanh(2 * x).astype(np.float32)


def run_fit(model: keras.Model, tmp: Path, budget: Budget, state: TrainingState | None = None, **kw) -> object:
    x, y = signals()
    rf = model_summary(model).receptive_field_samples
    sampler = SegmentSampler(x, y, Region("train", 0, int(1.5 * SR)), rf, 960, 4, seed=0)
    val = (x[int(1.5 * SR) - rf + 1 :], y[int(1.5 * SR) - rf + 1 :])
    return fit(
        model,
        sampler,
        val,
        budget=budget,
        schedule=kw.pop("schedule", LearningRateSchedule(peak=4e-3)),
        cadence=kw.pop("cadence", Cadence(steps=5)),
        patience=0,
        checkpoint_dir=tmp / "ckpt",
        state=state or TrainingState(steps_per_epoch=5),
        jit_compile=kw.pop("jit_compile", False),
        **kw,
    )


def test_schedule_warms_up_then_decays_to_its_floor_over_the_budget() -> None:
    s = LearningRateSchedule(kind="cosine", peak=1e-2, warmup=0.1, floor=0.05)
    assert s(0.05) == pytest.approx(5e-3)
    assert s(0.1) == pytest.approx(1e-2)
    assert s(1.0) == pytest.approx(5e-4)
    values = [s(p) for p in np.linspace(0.1, 1.0, 50)]
    assert all(a >= b for a, b in zip(values, values[1:]))
    e = LearningRateSchedule(kind="exponential", peak=1e-2, decay=0.9, epochs=10)
    assert e(1.0) == pytest.approx(1e-2 * 0.9**10)


def test_budget_progress_is_the_larger_share_and_an_empty_budget_is_refused() -> None:
    b = Budget(steps=100, seconds=60)
    assert b.progress(50, 10) == pytest.approx(0.5)
    assert b.progress(10, 45) == pytest.approx(0.75)
    assert b.progress(500, 0) == 1.0
    with pytest.raises(RtntError, match="train.minutes"):
        Budget()


def test_sampler_draws_full_context_segments_inside_the_region_into_reused_buffers() -> None:
    x = np.arange(10_000, dtype=np.float32)
    s = SegmentSampler(x, -x, Region("train", 1000, 5000), receptive_field=65, segment_length=100, batch_size=8, seed=1)
    bx, by = s.draw()
    assert bx.shape == (8, 164, 1)
    assert np.all(bx[:, 64, 0] >= 1000) and np.all(bx[:, -1, 0] < 5000)  # scored samples inside the region
    assert np.all(np.diff(bx[..., 0], axis=1) == 1) and np.array_equal(by, -bx)
    again, _ = s.draw()
    assert again is bx  # the same buffer, refilled


def test_step_budget_runs_exactly_its_steps_and_follows_the_schedule(tmp_path: Path) -> None:
    seen: list[Validation] = []
    result = run_fit(tiny_model(), tmp_path, Budget(steps=12), on_validation=seen.append)
    assert result.state.steps_completed == 12 and result.steps_this_session == 12
    assert [v.step for v in seen] == [5, 10, 12]
    assert seen[-1].learning_rate == pytest.approx(LearningRateSchedule(peak=4e-3)(11 / 12), rel=1e-4)
    assert json.loads((tmp_path / "ckpt" / "state.json").read_text())["steps_completed"] == 12


def test_wall_clock_budget_stops_within_a_small_margin_and_keeps_valid_checkpoints(tmp_path: Path) -> None:
    model = tiny_model()
    run_fit(model, tmp_path / "warm", Budget(steps=1))  # trace the step outside the timed budget
    step_times: list[float] = []
    start = time.perf_counter()
    result = run_fit(
        model,
        tmp_path,
        Budget(seconds=4.0),
        cadence=Cadence(seconds=1.0),
        on_step=lambda step, loss: step_times.append(time.perf_counter()),
    )
    wall = time.perf_counter() - start
    assert step_times[-1] - start < 4.0 + 0.5, "no step starts after the budget (a tiny step takes milliseconds)"
    assert 4.0 <= wall < 4.0 + 5.0, wall  # the final validation and checkpoint come after the budget
    assert result.state.steps_completed > 5 and len(result.history) >= 3
    loaded = keras.models.load_model(tmp_path / "ckpt" / LAST_CHECKPOINT)
    assert (tmp_path / "ckpt" / BEST_CHECKPOINT).exists()
    x = signals()[0][:4000]
    assert np.all(np.isfinite(loaded.predict_on_batch(x[None, :, None])))
    assert result.history[-1].seconds <= wall


def test_model_ends_with_its_best_validation_weights(tmp_path: Path) -> None:
    model = tiny_model()
    result = run_fit(model, tmp_path, Budget(steps=15))
    best = min(v.val_esr for v in result.history)
    assert result.state.best_val_esr == pytest.approx(best)
    from rtnt.train.fit import validation_esr

    x, y = signals()
    rf = model_summary(model).receptive_field_samples
    val = (x[int(1.5 * SR) - rf + 1 :], y[int(1.5 * SR) - rf + 1 :])
    assert validation_esr(model, val, rf - 1) == pytest.approx(best, rel=1e-5)


def test_continued_budget_resumes_the_schedule_and_counts_steps_cumulatively(tmp_path: Path) -> None:
    model = tiny_model()
    first = run_fit(model, tmp_path, Budget(steps=10))
    state = TrainingState.load(tmp_path / "ckpt")
    assert state.steps_completed == 10 and state.progress == pytest.approx(1.0)
    state.progress = 0.5  # as if the first run had been stopped half-way through its budget
    loaded = keras.models.load_model(tmp_path / "ckpt" / LAST_CHECKPOINT)
    seen: list[Validation] = []
    second = run_fit(loaded, tmp_path, Budget(steps=4), state=state, on_validation=seen.append)
    assert second.state.steps_completed == 14 and [v.step for v in seen] == [14]
    schedule = LearningRateSchedule(peak=4e-3)
    assert seen[-1].learning_rate == pytest.approx(schedule(0.5 + 0.5 * 3 / 4), rel=1e-4)
    assert second.state.samples_seen == first.state.samples_seen + 4 * 4 * 960


def test_xla_and_graph_mode_give_the_same_loss_on_a_fixed_batch() -> None:
    x, y = signals(0.5)
    model = tiny_model()
    rf = model_summary(model).receptive_field_samples
    batch = SegmentSampler(x, y, Region("train", 0, x.size), rf, 2000, 4, seed=3).draw()
    weights = model.get_weights()
    losses = {}
    for jit in (False, True):
        model.set_weights(weights)
        set_jit_compile(model, jit)
        assert model.train_function is None, "the step is traced anew for each mode"
        losses[jit] = float(model.train_on_batch(*batch))  # the loss before the update
        assert model.jit_compile is jit
    assert losses[True] == pytest.approx(losses[False], rel=1e-5)


def test_interrupted_fit_saves_its_last_checkpoint(tmp_path: Path) -> None:
    def interrupt(step: int, loss: float) -> None:
        if step == 7:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_fit(tiny_model(), tmp_path, Budget(steps=100), on_step=interrupt)
    state = TrainingState.load(tmp_path / "ckpt")
    assert state.steps_completed == 7 and 0 < state.progress < 0.1
    assert (tmp_path / "ckpt" / LAST_CHECKPOINT).exists()


def point(step: int, val: float) -> Validation:
    return Validation(step=step, seconds=3.0, train_esr=0.5, val_esr=val, learning_rate=1e-3, samples_per_s=123_000)


def test_progress_prints_one_plain_line_per_validation_when_not_a_terminal() -> None:
    out = io.StringIO()
    with TrainingProgress(Budget(seconds=60), stream=out) as p:
        p.on_step(1, 0.9)
        p.on_validation(point(10, 0.25))
        p.on_validation(point(20, 0.125))
    lines = out.getvalue().splitlines()
    assert len(lines) == 2
    assert (
        lines[1].startswith("step 20")
        and "val ESR 0.125" in lines[1]
        and ("remaining 1:00" in lines[1] or "remaining 0:59" in lines[1])
    )
    assert "123k samples/s" in lines[1]


def test_progress_live_display_renders_step_remaining_time_and_esr() -> None:
    out = io.StringIO()
    with TrainingProgress(Budget(steps=100), stream=out, live=True) as p:
        p.on_step(5, 0.5)
        p.on_validation(point(5, 0.0625))
    text = out.getvalue()
    for word in ("step", "remaining", "val ESR", "0.0625", "123k"):
        assert word in text, text


def test_format_duration() -> None:
    assert format_duration(65) == "1:05"
    assert format_duration(3725) == "1:02:05"
    assert format_duration(math.nan) == "--"


def test_signals_during_training_are_deferred_to_the_step_boundary() -> None:
    import os
    import signal

    from rtnt.train.fit import DeferredStop

    before = signal.getsignal(signal.SIGINT)
    with DeferredStop() as stop:
        os.kill(os.getpid(), signal.SIGINT)  # lands "inside a step": nothing is raised here
        assert stop.signum == signal.SIGINT
        with pytest.raises(KeyboardInterrupt):
            stop.raise_if_requested()
        with pytest.raises(KeyboardInterrupt):  # a second Ctrl-C interrupts at once
            os.kill(os.getpid(), signal.SIGINT)
    assert signal.getsignal(signal.SIGINT) is before
    with DeferredStop() as stop:
        os.kill(os.getpid(), signal.SIGTERM)
        with pytest.raises(SystemExit) as info:
            stop.raise_if_requested()
        assert info.value.code == 128 + signal.SIGTERM
