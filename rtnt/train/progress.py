"""Training progress for people: a live rich display on a terminal, one plain line per validation otherwise
(CI logs, Hydra multiruns, files)."""

from __future__ import annotations

import math
import sys
import time
from typing import TextIO

from rtnt.train.fit import Budget, Validation


def format_duration(seconds: float) -> str:
    """`m:ss` (or `h:mm:ss`) for a number of seconds; `--` when unknown."""
    if not math.isfinite(seconds) or seconds < 0:
        return "--"
    s = int(round(seconds))
    h, rem = divmod(s, 3600)
    return f"{h}:{rem // 60:02d}:{rem % 60:02d}" if h else f"{rem // 60}:{rem % 60:02d}"


class TrainingProgress:
    """Reports step, elapsed and remaining time against the budget, train and validation ESR and samples/s.

    Use as a context manager around `fit`, passing `on_step` and `on_validation` as its hooks.
    `live=None` chooses the rich display when `stream` is a terminal.
    """

    def __init__(
        self, budget: Budget, start_progress: float = 0.0, stream: TextIO | None = None, live: bool | None = None
    ):
        self.budget = budget
        self.start_progress = start_progress
        self.stream = stream or sys.stdout
        self.live_mode = self.stream.isatty() if live is None else live
        self.t0 = time.perf_counter()
        self.step = 0
        self.steps_here = 0
        self.train_loss = math.nan
        self.last: Validation | None = None
        self._live = None

    def __enter__(self) -> TrainingProgress:
        self.t0 = time.perf_counter()
        if self.live_mode:
            from rich.console import Console
            from rich.live import Live

            self._live = Live(self._render(), console=Console(file=self.stream), refresh_per_second=2, transient=False)
            self._live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._live is not None:
            self._live.update(self._render())
            self._live.__exit__(*exc)
            self._live = None

    def elapsed(self) -> float:
        return time.perf_counter() - self.t0

    def remaining(self) -> float:
        """Seconds left in the budget: the wall-clock budget directly, else extrapolated from the step rate."""
        elapsed = self.elapsed()
        candidates = []
        if self.budget.seconds > 0:
            candidates.append(self.budget.seconds - elapsed)
        if self.budget.steps > 0 and self.steps_here > 0:
            candidates.append((self.budget.steps - self.steps_here) * elapsed / self.steps_here)
        return max(0.0, min(candidates)) if candidates else math.nan

    def on_step(self, step: int, loss: float) -> None:
        self.step, self.train_loss = step, loss
        self.steps_here += 1
        if self._live is not None:
            self._live.update(self._render())

    def on_validation(self, point: Validation) -> None:
        self.last = point
        if self._live is not None:
            self._live.update(self._render())
        else:
            print(self.line(), file=self.stream, flush=True)

    def line(self) -> str:
        """The plain one-line summary of the latest validation."""
        v = self.last
        if v is None:
            return (
                f"step {self.step}  elapsed {format_duration(self.elapsed())}  "
                f"remaining {format_duration(self.remaining())}"
            )
        return (
            f"step {v.step}  elapsed {format_duration(self.elapsed())}  remaining {format_duration(self.remaining())}  "
            f"train ESR {v.train_esr:.4g}  val ESR {v.val_esr:.4g}  lr {v.learning_rate:.2e}  "
            f"{v.samples_per_s / 1e3:.0f}k samples/s"
        )

    def _render(self):  # noqa: ANN202  (a rich renderable)
        from rich.table import Table

        table = Table.grid(padding=(0, 2))
        for _ in range(7):
            table.add_column()
        table.add_row("[bold]step", "elapsed", "remaining", "train ESR", "val ESR", "lr", "samples/s")
        v = self.last
        table.add_row(
            str(self.step),
            format_duration(self.elapsed()),
            format_duration(self.remaining()),
            f"{self.train_loss:.4g}",
            f"{v.val_esr:.4g}" if v else "--",
            f"{v.learning_rate:.2e}" if v else "--",
            f"{v.samples_per_s / 1e3:.0f}k" if v else "--",
        )
        return table
