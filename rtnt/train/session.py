"""One training session: a fresh model from a preset, or a continuation of an earlier run's checkpoint."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np
from omegaconf import DictConfig

from rtnt.constants import SAMPLE_RATE
from rtnt.data.splits import Splits, region_with_history
from rtnt.errors import ConfigError, exception_summary
from rtnt.model.conditioning import settings_input
from rtnt.train.fit import (
    Budget,
    Cadence,
    FitResult,
    SegmentSampler,
    TrainingState,
    Validation,
    compile_model,
    fit,
)
from rtnt.train.schedule import LearningRateSchedule

RUN_FILE = "run.json"  # the MLflow run id that wrote the checkpoints in this folder


@dataclass
class Checkpoint:
    """A `.keras` checkpoint to continue from, its training state and the run that wrote it ("" if unknown)."""

    path: Path
    state: TrainingState
    parent_run_id: str


@dataclass
class TrainingSession:
    """The model of one run and its training state; checkpoints go to `out_dir/checkpoints`, tagged with
    `run_id`. `continued_from` holds the tags that describe a continued run (empty for a fresh one)."""

    cfg: DictConfig
    out_dir: Path
    run_id: str
    model: keras.Model
    receptive_field: int
    state: TrainingState
    continued_from: dict[str, str]

    @classmethod
    def create(
        cls, cfg: DictConfig, out_dir: Path, run_id: str, checkpoint: Checkpoint | None = None, n_knobs: int = 0
    ) -> TrainingSession:
        """Build and compile the preset's model with 1 + `n_knobs` input channels (the audio, then the knobs of a
        capture set under `conditioning=concat` or `film`), or load `checkpoint` (from `continue_from`)."""
        from rtnt.model.build import build_model
        from rtnt.model.summary import model_summary

        keras.utils.set_random_seed(int(cfg.train.seed))
        if checkpoint is not None:
            import rtnt.model.build  # noqa: F401  (registers SmoothTanh and the WaveNet layers for loading)

            try:
                model = keras.models.load_model(checkpoint.path)
            except Exception as exc:  # Keras raises ValueError, OSError, zipfile and h5py errors alike
                raise ConfigError(
                    f"continue_from checkpoint {checkpoint.path} is not a loadable Keras model "
                    f"({exception_summary(exc)}); pass a last.keras that rtnt-train wrote, or the run id"
                ) from None
            tags = {
                "rtnt.continued_from": str(checkpoint.path),
                "rtnt.initial_step": str(checkpoint.state.steps_completed),
            }
            if checkpoint.parent_run_id:
                tags["rtnt.parent_run"] = checkpoint.parent_run_id
            width = int(model.inputs[0].shape[-1])
            if width != 1 + n_knobs:
                raise ConfigError(
                    f"continue_from checkpoint {checkpoint.path} takes {width} input channel(s) but this capture "
                    f"and conditioning give {1 + n_knobs}; continue with the capture set and conditioning it was "
                    "trained on"
                )
            rf = model_summary(model).receptive_field_samples
            return cls(cfg, out_dir, run_id, model, rf, checkpoint.state, tags)
        model = build_model(cfg.preset, n_knobs, cfg.conditioning)
        rf = model_summary(model).receptive_field_samples
        t = cfg.train
        compile_model(
            model, t.learning_rate, rf - 1, t.pre_emphasis, t.stft_weight, t.dc_weight, t.clipnorm, t.level_balance
        )
        return cls(cfg, out_dir, run_id, model, rf, TrainingState(), {})

    @property
    def checkpoint_dir(self) -> Path:
        return self.out_dir / "checkpoints"

    def summary_metrics(self) -> dict[str, float]:
        from rtnt.model.summary import model_summary

        s = model_summary(self.model)
        return {
            "params": float(s.params),
            "macs_per_sample": float(s.macs_per_sample),
            "receptive_field": float(s.receptive_field_samples),
            "receptive_field_ms": float(s.receptive_field_ms),
        }

    def train(
        self,
        x: np.ndarray,
        y: np.ndarray,
        splits: Splits,
        on_validation: Callable[[Validation], None] | None = None,
        knobs: np.ndarray | None = None,
    ) -> FitResult:
        """Train on the train region within the configured budget, validating and checkpointing on the
        validation region; the model ends with its best validation weights. For a capture set, `y` holds one
        target per training setting (settings, samples) and `knobs` their knob values (settings, knobs): segments
        are drawn from every setting, and the validation ESR is the mean over the settings."""
        from rtnt.train.progress import TrainingProgress

        t = self.cfg.train
        region = splits.train
        if t.max_train_seconds > 0:
            region = type(region)(
                region.name, max(region.start, region.stop - int(t.max_train_seconds * SAMPLE_RATE)), region.stop
            )
        sampler = SegmentSampler(
            x,
            y,
            region,
            self.receptive_field,
            int(round(t.segment_seconds * SAMPLE_RATE)),
            t.batch_size,
            t.seed + self.state.steps_completed,
            knobs,
        )
        steps_per_epoch = t.steps_per_epoch or max(1, math.ceil(sampler.segments_per_pass / t.batch_size))
        self.state.steps_per_epoch = steps_per_epoch
        budget = training_budget(t, steps_per_epoch)
        val_x = region_with_history(x, splits.val, self.receptive_field)
        val_y = region_with_history(y, splits.val, self.receptive_field)
        if knobs is not None:
            val_x = settings_input(val_x, knobs)
        self.checkpoint_dir.mkdir(parents=True, exist_ok=True)
        (self.checkpoint_dir / RUN_FILE).write_text(json.dumps({"run_id": self.run_id}))
        cadence = Cadence(t.validate_every_steps, t.validate_every_s)
        if cadence.steps == 0 and cadence.seconds == 0:
            cadence = Cadence(steps=steps_per_epoch)
        progress = TrainingProgress(budget, self.state.progress, live=None if t.verbose else False)
        hooks = [h for h in (progress.on_validation if t.verbose else None, on_validation) if h is not None]
        with progress:
            return fit(
                self.model,
                sampler,
                (val_x, val_y),
                budget=budget,
                schedule=learning_rate_schedule(t, budget, steps_per_epoch),
                cadence=cadence,
                patience=t.early_stopping_patience,
                checkpoint_dir=self.checkpoint_dir,
                state=self.state,
                jit_compile=t.jit_compile,
                on_validation=lambda v: [h(v) for h in hooks],
                on_step=progress.on_step if t.verbose else None,
            )


def training_budget(t: DictConfig, steps_per_epoch: int) -> Budget:
    """`train.minutes` and/or `train.steps` when set, else `train.epochs` epochs of `steps_per_epoch` steps."""
    if t.minutes > 0 or t.steps > 0:
        return Budget(steps=int(t.steps), seconds=float(t.minutes) * 60.0)
    return Budget(steps=int(t.epochs) * steps_per_epoch)


def learning_rate_schedule(t: DictConfig, budget: Budget, steps_per_epoch: int) -> LearningRateSchedule:
    """The configured schedule over `budget`; exponential decay counts the epochs the budget holds."""
    epochs = budget.steps / steps_per_epoch if budget.steps > 0 else float(t.epochs)
    return LearningRateSchedule(
        kind=t.schedule,
        peak=t.learning_rate,
        warmup=t.warmup_fraction,
        floor=t.lr_floor,
        decay=t.lr_decay,
        epochs=epochs,
    )
