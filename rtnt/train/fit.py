"""Training loop: Adam with per-epoch exponential decay, early stopping on validation ESR,
an atomic `.keras` checkpoint after every epoch, and a hook for per-epoch tracking."""

from __future__ import annotations

import json
import math
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np

from rtnt.data.splits import Region, cut_segments, segment_starts
from rtnt.errors import RtntError
from rtnt.train.losses import FullyConditionedESR

LAST_CHECKPOINT = "last.keras"
BEST_CHECKPOINT = "best.keras"
STATE_FILE = "state.json"


class SegmentBatches(keras.utils.PyDataset):
    """Batches of fully-conditioned training segments, re-tiled at a random offset every epoch."""

    def __init__(
        self,
        x: np.ndarray,
        y: np.ndarray,
        region: Region,
        receptive_field: int,
        segment_length: int,
        batch_size: int,
        steps_per_epoch: int,
        seed: int,
    ):
        super().__init__()
        self.x, self.y, self.region = x, y, region
        self.receptive_field, self.segment_length, self.batch_size = receptive_field, segment_length, batch_size
        self.rng = np.random.default_rng(seed)
        n_segments = len(segment_starts(region, receptive_field, segment_length))
        self.steps = steps_per_epoch or max(1, math.ceil(n_segments / batch_size))
        self._draw()

    def _draw(self) -> None:
        starts = segment_starts(self.region, self.receptive_field, self.segment_length, self.rng)
        need = self.steps * self.batch_size
        reps = math.ceil(need / len(starts))
        self.starts = self.rng.permutation(np.tile(starts, reps))[:need] if reps > 1 else self.rng.permutation(starts)

    def __len__(self) -> int:
        return self.steps

    def __getitem__(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        batch = self.starts[i * self.batch_size : (i + 1) * self.batch_size]
        return cut_segments(self.x, self.y, batch, self.receptive_field, self.segment_length)

    def on_epoch_end(self) -> None:
        self._draw()


@dataclass
class FitResult:
    epochs_completed: int  # cumulative, including epochs of a continued run
    best_val_esr: float
    train_loss: list[float]
    val_loss: list[float]
    stopped_early: bool
    checkpoint_dir: Path


class AtomicCheckpoint(keras.callbacks.Callback):
    """After every epoch, save `last.keras` (weights + optimizer) and `state.json` atomically,
    and `best.keras` when validation ESR improves. A kill mid-save leaves the previous files intact."""

    def __init__(self, directory: Path, best_val: float = math.inf):
        super().__init__()
        self.directory = directory
        self.best_val = best_val

    def _save(self, name: str) -> None:
        tmp = self.directory / f".{name}.tmp.keras"
        self.model.save(tmp)
        os.replace(tmp, self.directory / name)

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        val = float((logs or {}).get("val_loss", math.nan))
        self._save(LAST_CHECKPOINT)
        if val < self.best_val:
            self.best_val = val
            self._save(BEST_CHECKPOINT)
        state = {"epochs_completed": epoch + 1, "best_val_esr": self.best_val, "last_val_esr": val}
        tmp = self.directory / f".{STATE_FILE}.tmp"
        tmp.write_text(json.dumps(state))
        os.replace(tmp, self.directory / STATE_FILE)


class EpochHook(keras.callbacks.Callback):
    """Calls `hook(epoch, {"train_loss": ..., "val_loss": ...})` after each epoch (1-based epoch)."""

    def __init__(self, hook: Callable[[int, dict[str, float]], None]):
        super().__init__()
        self.hook = hook

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        logs = logs or {}
        self.hook(epoch + 1, {"train_loss": float(logs.get("loss", math.nan)), "val_loss": float(logs.get("val_loss", math.nan))})


class RaiseOnNaN(keras.callbacks.Callback):
    """Stop with a clear error as soon as the training loss is NaN or infinite."""

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(float(loss)):
            raise RtntError(
                f"training diverged: loss is {float(loss)} at batch {batch}; lower train.learning_rate or check the capture"
            )


def compile_model(model: keras.Model, learning_rate: float, history: int, pre_emphasis: float) -> None:
    """Compile with Adam and the fully-conditioned ESR loss."""
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=learning_rate),
        loss=FullyConditionedESR(history=history, pre_emphasis=pre_emphasis),
    )


def fit(
    model: keras.Model,
    batches: SegmentBatches,
    val_xy: tuple[np.ndarray, np.ndarray],
    *,
    epochs: int,
    learning_rate: float,
    lr_decay: float,
    patience: int,
    checkpoint_dir: Path,
    initial_epoch: int = 0,
    best_val: float = math.inf,
    verbose: bool = True,
    on_epoch_end: Callable[[int, dict[str, float]], None] | None = None,
) -> FitResult:
    """Train a compiled model for `epochs` more epochs, starting after `initial_epoch` completed ones.

    The learning rate after e cumulative epochs is learning_rate · lr_decay^e, so a continued run
    picks up the schedule where it stopped. Early stopping restores the best validation weights.
    """
    checkpoint_dir.mkdir(parents=True, exist_ok=True)
    early = keras.callbacks.EarlyStopping(monitor="val_loss", patience=patience, restore_best_weights=True)
    callbacks: list[keras.callbacks.Callback] = [
        keras.callbacks.LearningRateScheduler(lambda e, _lr: learning_rate * lr_decay**e),
        RaiseOnNaN(),
        early,
        AtomicCheckpoint(checkpoint_dir, best_val),
    ]
    if on_epoch_end is not None:
        callbacks.append(EpochHook(on_epoch_end))
    xv, yv = val_xy
    history = model.fit(
        batches,
        validation_data=(xv[None, :, None], yv[None, :, None]),
        epochs=initial_epoch + epochs,
        initial_epoch=initial_epoch,
        callbacks=callbacks,
        verbose=(1 if sys.stdout.isatty() else 2) if verbose else 0,
    )
    train_loss = [float(v) for v in history.history.get("loss", [])]
    val_loss = [float(v) for v in history.history.get("val_loss", [])]
    completed = initial_epoch + len(train_loss)
    best = min([best_val, *val_loss]) if val_loss else best_val
    return FitResult(completed, best, train_loss, val_loss, early.stopped_epoch > 0, checkpoint_dir)
