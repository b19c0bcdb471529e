"""Step-based training loop: a budget in steps, epochs or wall-clock minutes, a learning-rate schedule
defined over that budget, validation and atomic checkpoints at a bounded cadence, XLA where it compiles.

One training step is one Adam update on a batch of fully-conditioned segments drawn at random from
the training region into preallocated buffers (fixed shapes: the step is traced once).
"""

from __future__ import annotations

import json
import logging
import math
import os
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import keras
import numpy as np

from rtnt.data.splits import Region, segment_starts
from rtnt.errors import RtntError
from rtnt.train.losses import FullyConditionedESR
from rtnt.train.schedule import LearningRateSchedule

log = logging.getLogger("rtnt")

LAST_CHECKPOINT = "last.keras"
BEST_CHECKPOINT = "best.keras"
STATE_FILE = "state.json"


class SegmentSampler:
    """Random fully-conditioned training segments of one region, gathered into reused buffers.

    Every draw picks `batch_size` scored windows of `segment_length` samples uniformly inside the
    region; each comes with `receptive_field - 1` samples of real history before it. For a capture set,
    `y` holds one target row per setting and `knobs` one row of knob values per setting: each segment
    also draws a setting, and its knob values are broadcast as constant input channels after the audio.
    """

    def __init__(
        self,
        x: np.ndarray,
        y: np.ndarray,
        region: Region,
        receptive_field: int,
        segment_length: int,
        batch_size: int,
        seed: int,
        knobs: np.ndarray | None = None,
    ):
        first = segment_starts(region, receptive_field, segment_length)[0]  # raises a clear error if none fits
        self.x = np.asarray(x, np.float32)
        self.y = np.atleast_2d(np.asarray(y, np.float32))  # (settings, samples)
        self.knobs = np.zeros((len(self.y), 0), np.float32) if knobs is None else np.asarray(knobs, np.float32)
        self.low, self.high = int(first), region.stop - segment_length  # inclusive start range
        self.offsets = np.arange(-(receptive_field - 1), segment_length)
        self.segment_length, self.batch_size = segment_length, batch_size
        self.rng = np.random.default_rng(seed)
        shape = (batch_size, len(self.offsets))
        self._idx = np.empty(shape, dtype=np.int64)
        self._bx = np.empty((*shape, 1 + self.knobs.shape[1]), dtype=np.float32)
        self._by = np.empty((*shape, 1), dtype=np.float32)

    @property
    def segments_per_pass(self) -> int:
        """How many non-overlapping segments tile the region (of every setting): the batches of one epoch, times
        batch_size."""
        return len(self.y) * max(1, (self.high - self.low) // self.segment_length + 1)

    def draw(self) -> tuple[np.ndarray, np.ndarray]:
        """One batch (inputs, targets), (batch, history + segment, 1 + knobs) and (..., 1); the buffers are reused."""
        starts = self.rng.integers(self.low, self.high + 1, size=self.batch_size)
        np.add(starts[:, None], self.offsets[None, :], out=self._idx)
        np.take(self.x, self._idx, out=self._bx[..., 0])
        if len(self.y) == 1:
            np.take(self.y[0], self._idx, out=self._by[..., 0])
            return self._bx, self._by
        setting = self.rng.integers(0, len(self.y), size=self.batch_size)
        np.add(self._idx, (setting * self.y.shape[1])[:, None], out=self._idx)  # indices into the flat targets
        np.take(self.y.reshape(-1), self._idx, out=self._by[..., 0])
        self._bx[..., 1:] = self.knobs[setting][:, None, :]
        return self._bx, self._by


@dataclass(frozen=True)
class Budget:
    """When training stops: after `steps` optimizer steps or `seconds` of wall time, whichever comes first
    (0 disables either). `progress` maps the time and steps spent to [0, 1] for the schedule."""

    steps: int = 0
    seconds: float = 0.0

    def __post_init__(self) -> None:
        if self.steps <= 0 and self.seconds <= 0:
            raise RtntError("training budget is empty: set train.minutes, train.steps or train.epochs above 0")

    def progress(self, steps: int, seconds: float) -> float:
        parts = [steps / self.steps if self.steps > 0 else 0.0, seconds / self.seconds if self.seconds > 0 else 0.0]
        return min(1.0, max(parts))


@dataclass
class TrainingState:
    """What a checkpoint folder's `state.json` records, cumulative over continued runs."""

    steps_completed: int = 0
    samples_seen: int = 0
    train_seconds: float = 0.0
    progress: float = 0.0  # schedule progress reached, in [0, 1]
    best_val_esr: float = math.inf
    last_val_esr: float = math.nan
    steps_per_epoch: int = 1

    @property
    def epochs_completed(self) -> float:
        return self.steps_completed / max(1, self.steps_per_epoch)

    def save(self, directory: Path) -> None:
        tmp = directory / f".{STATE_FILE}.tmp"
        tmp.write_text(json.dumps({**asdict(self), "epochs_completed": self.epochs_completed}))
        os.replace(tmp, directory / STATE_FILE)

    @classmethod
    def load(cls, directory: Path) -> TrainingState:
        """The state beside a checkpoint, or a fresh one. Older folders only know `epochs_completed`."""
        f = directory / STATE_FILE
        if not f.exists():
            return cls()
        raw = json.loads(f.read_text())
        known = {k: raw[k] for k in cls.__dataclass_fields__ if k in raw}
        state = cls(**known)
        if "steps_completed" not in raw and "epochs_completed" in raw:
            state.steps_completed = int(raw["epochs_completed"])  # one step per legacy epoch, for lineage only
        return state


@dataclass(frozen=True)
class Validation:
    """One validation point: where training stood, and the ESRs."""

    step: int
    seconds: float  # training wall time, cumulative over continued runs
    train_esr: float  # mean training loss since the previous validation
    val_esr: float
    learning_rate: float
    samples_per_s: float  # scored training samples per second of wall time since the previous validation


@dataclass
class FitResult:
    state: TrainingState
    history: list[Validation] = field(default_factory=list)
    stopped_early: bool = False
    step_seconds: float = 0.0  # wall time inside the optimizer step after the first, this session
    first_step_seconds: float = 0.0  # the first step, which traces (and with XLA compiles) the step function
    wall_seconds: float = 0.0  # wall time of the whole fit, this session (validation and checkpoints included)
    steps_this_session: int = 0
    samples_this_session: int = 0
    jit_compile: bool = False

    @property
    def samples_per_s(self) -> float:
        return self.samples_this_session / self.wall_seconds if self.wall_seconds > 0 else math.nan

    @property
    def overhead_share(self) -> float:
        """Share of wall time spent outside the optimizer step (validation, checkpoints, data, progress; the
        first step's tracing and compilation is counted apart, in `first_step_seconds`)."""
        inside = self.step_seconds + self.first_step_seconds
        return 1.0 - inside / self.wall_seconds if self.wall_seconds > 0 else math.nan


@dataclass(frozen=True)
class Cadence:
    """Validate (and checkpoint) every `steps` steps or every `seconds` of wall time, whichever first; 0 disables."""

    steps: int = 0
    seconds: float = 0.0

    def due(self, steps_since: int, seconds_since: float) -> bool:
        return (self.steps > 0 and steps_since >= self.steps) or (self.seconds > 0 and seconds_since >= self.seconds)


def compile_model(
    model: keras.Model,
    learning_rate: float,
    history: int,
    pre_emphasis: float,
    stft_weight: float = 0.0,
    dc_weight: float = 0.0,
    clipnorm: float = 0.0,
    level_balance: float = 0.0,
) -> None:
    """Compile with Adam (optionally clipping the global gradient norm) and the fully-conditioned ESR loss;
    the schedule sets the learning rate every step."""
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=learning_rate, global_clipnorm=clipnorm or None),
        loss=FullyConditionedESR(
            history=history,
            pre_emphasis=pre_emphasis,
            stft_weight=stft_weight,
            dc_weight=dc_weight,
            level_balance=level_balance,
        ),
    )


def set_jit_compile(model: keras.Model, jit: bool) -> None:
    """Switch a compiled model between XLA and graph mode; its train function is rebuilt on the next step
    (kept when the mode does not change, so a traced step is not traced again)."""
    if model.jit_compile == jit and model.train_function is not None:
        return
    model.jit_compile = jit
    model.train_function = None
    model.test_function = None
    model.predict_function = None


def first_step(model: keras.Model, batch: tuple[np.ndarray, np.ndarray], jit: bool) -> tuple[float, bool]:
    """Run the first training step with XLA when asked; if XLA cannot compile the model, fall back to
    graph mode with a warning. Returns the loss and whether XLA is in use."""
    set_jit_compile(model, jit)
    if not jit:
        return float(model.train_on_batch(*batch)), False
    try:
        return float(model.train_on_batch(*batch)), True
    except Exception as exc:  # XLA raises backend-specific errors for unsupported ops
        log.warning("XLA could not compile the training step (%s); training in graph mode", type(exc).__name__)
        set_jit_compile(model, False)
        return float(model.train_on_batch(*batch)), False


class Checkpointer:
    """Atomic `last.keras` + `state.json` at every validation, `best.keras` when validation ESR improves.
    A kill mid-save leaves the previous files intact."""

    def __init__(self, directory: Path):
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)

    def _save(self, model: keras.Model, name: str) -> None:
        tmp = self.directory / f".{name}.tmp.keras"
        model.save(tmp)
        os.replace(tmp, self.directory / name)

    def save(self, model: keras.Model, state: TrainingState, improved: bool) -> None:
        self._save(model, LAST_CHECKPOINT)
        if improved:
            self._save(model, BEST_CHECKPOINT)
        state.save(self.directory)


def validation_esr(model: keras.Model, val_xy: tuple[np.ndarray, np.ndarray], history: int) -> float:
    """ESR of the model's one-pass prediction on the validation region (its first `history` samples are context).

    `val_xy` is the input (samples,) and target (samples,) of one capture, or of a capture set the inputs
    (settings, samples, 1 + knobs) and targets (settings, samples): then the mean of the settings' ESRs."""
    xv, yv = val_xy
    inputs = xv[None, :, None] if xv.ndim == 1 else xv
    pred = np.asarray(model.predict_on_batch(inputs), dtype=np.float64).reshape(len(inputs), -1)[:, history:]
    target = np.atleast_2d(np.asarray(yv, dtype=np.float64))[:, history:]
    per_setting = np.sum((target - pred) ** 2, axis=1) / np.maximum(np.sum(target**2, axis=1), 1e-12)
    return float(np.mean(per_setting))


class DeferredStop:
    """SIGINT and SIGTERM during training set a flag that the loop reads between steps, so an interruption
    never lands inside TensorFlow, a checkpoint write or an MLflow call (where it can leave a lock held and
    hang the exit). A second signal interrupts at once. Signal handlers can only be set in the main thread;
    elsewhere the default behaviour stays."""

    def __init__(self) -> None:
        self.signum: int | None = None
        self._previous: dict[int, object] = {}

    def __enter__(self) -> DeferredStop:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        self._restore()

    def _restore(self) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous = {}

    def _handle(self, signum: int, _frame: object) -> None:
        first = self.signum is None
        self.signum = signum
        if not first:
            self._restore()
            self.raise_if_requested()

    def raise_if_requested(self) -> None:
        """Raise KeyboardInterrupt for SIGINT, SystemExit(128 + n) for SIGTERM, nothing without a signal."""
        if self.signum == signal.SIGINT:
            raise KeyboardInterrupt
        if self.signum is not None:
            raise SystemExit(128 + self.signum)


def fit(
    model: keras.Model,
    sampler: SegmentSampler,
    val_xy: tuple[np.ndarray, np.ndarray],
    *,
    budget: Budget,
    schedule: LearningRateSchedule,
    cadence: Cadence,
    patience: int,
    checkpoint_dir: Path,
    state: TrainingState,
    jit_compile: bool,
    on_validation: Callable[[Validation], None] | None = None,
    on_step: Callable[[int, float], None] | None = None,
) -> FitResult:
    """Train a compiled model until the budget is spent (or validation ESR stalls for `patience` validations).

    The learning rate follows `schedule` over the budget's progress. A continued run (`state` from its
    checkpoint) resumes the schedule at the progress it reached and spreads the rest over this budget.
    On return, the model holds this session's best validation weights (its last weights when a continued
    run never beat the validation ESR it started from). Interrupted (SIGINT/SIGTERM), it saves the
    last checkpoint before re-raising, so no completed step is lost.
    """
    history_len = sampler.offsets.size - sampler.segment_length
    ckpt = Checkpointer(checkpoint_dir)
    result = FitResult(state=state)
    start_progress = state.progress
    best_weights = None  # the best validation weights of this session
    since_val_steps, since_val_loss, since_val_start = 0, 0.0, time.perf_counter()
    bad_validations = 0
    t0 = time.perf_counter()

    def progress_now() -> float:
        p = budget.progress(result.steps_this_session, time.perf_counter() - t0)
        return start_progress + (1.0 - start_progress) * p

    def validate() -> None:
        nonlocal since_val_steps, since_val_loss, since_val_start, bad_validations, best_weights
        now = time.perf_counter()
        val = validation_esr(model, val_xy, history_len)
        state.progress = progress_now()
        state.last_val_esr = val
        improved = val < state.best_val_esr
        if improved:
            state.best_val_esr, bad_validations, best_weights = val, 0, model.get_weights()
        else:
            bad_validations += 1
        ckpt.save(model, state, improved)
        point = Validation(
            step=state.steps_completed,
            seconds=state.train_seconds + (now - t0),
            train_esr=since_val_loss / max(1, since_val_steps),
            val_esr=val,
            learning_rate=float(keras.ops.convert_to_numpy(model.optimizer.learning_rate)),
            samples_per_s=since_val_steps
            * sampler.batch_size
            * sampler.segment_length
            / max(now - since_val_start, 1e-9),
        )
        result.history.append(point)
        if on_validation is not None:
            on_validation(point)
        since_val_steps, since_val_loss, since_val_start = 0, 0.0, time.perf_counter()

    with DeferredStop() as stop:
        try:
            while progress_now() < 1.0 and not (patience > 0 and bad_validations >= patience):
                stop.raise_if_requested()
                model.optimizer.learning_rate.assign(schedule(progress_now()))
                batch = sampler.draw()
                s0 = time.perf_counter()
                if result.steps_this_session == 0:
                    loss, result.jit_compile = first_step(model, batch, jit_compile)
                    result.first_step_seconds = time.perf_counter() - s0
                else:
                    loss = float(model.train_on_batch(*batch))
                    result.step_seconds += time.perf_counter() - s0
                if not math.isfinite(loss):
                    raise RtntError(
                        f"training diverged: loss is {loss} at step {state.steps_completed + 1}; "
                        "lower train.learning_rate or check the capture"
                    )
                state.steps_completed += 1
                result.steps_this_session += 1
                result.samples_this_session += sampler.batch_size * sampler.segment_length
                since_val_steps += 1
                since_val_loss += loss
                if on_step is not None:
                    on_step(state.steps_completed, loss)
                if cadence.due(since_val_steps, time.perf_counter() - since_val_start):
                    validate()
            stop.raise_if_requested()
            if since_val_steps > 0 or not result.history:
                validate()
            result.stopped_early = patience > 0 and bad_validations >= patience
        except (KeyboardInterrupt, SystemExit):
            state.progress = progress_now()
            state.train_seconds += time.perf_counter() - t0
            state.samples_seen += result.samples_this_session
            ckpt.save(model, state, improved=False)
            raise
    result.wall_seconds = time.perf_counter() - t0
    state.train_seconds += result.wall_seconds
    state.samples_seen += result.samples_this_session
    state.save(checkpoint_dir)
    if best_weights is not None:
        model.set_weights(best_weights)
    return result
