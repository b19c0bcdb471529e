"""Python face of the native C++ runtime (`rtnt._native`, built from native/ by pip).

`NativeModel` loads RTNeural-format JSON or a Neural Amp Modeler `.nam` file (WaveNet, LSTM,
SlimmableContainer; told apart by content) and streams audio through it causally, exactly as a
plugin would: `prepare(max_block)` once, then `process` any number of samples per call, with the
state carried across calls until `reset()`. A `.nam` model's `reset()` prewarms on silence as NAM
Core's does (`prewarm=False` to start from zeroed histories instead). A conditioned RTNeural JSON model
(`controls`, see rtnt.runtime.controls) takes its K control values per sample next to the audio.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rtnt.errors import ModelJsonError, RtntError
from rtnt.runtime.controls import ControlSpec, control_block

try:
    from rtnt import _native
except ImportError:  # the extension was not built (e.g. running from a bare source tree)
    _native = None


def native_available() -> bool:
    """True when the compiled extension `rtnt._native` can be imported."""
    return _native is not None


def _module() -> Any:
    if _native is None:
        raise RtntError(
            "the native runtime rtnt._native is not built; install rtnt with `pip install -e .` "
            "(needs a C++17 compiler)"
        )
    return _native


def build_info() -> dict[str, Any]:
    """Compiler, vector ISA and vector register count the extension was built with."""
    return dict(_module().build_info())


def clock_gaps(seconds: float, threshold: float = 1e-6) -> tuple[np.ndarray, np.ndarray]:
    """Spin on the clock for `seconds`; return the start and length (seconds) of every gap between
    consecutive readings longer than `threshold`: time in which the calling thread did not run."""
    at, length = _module().clock_gaps(float(seconds), float(threshold))
    return np.asarray(at), np.asarray(length)


def constant_work(call_seconds: float, calls: int) -> np.ndarray:
    """Wall time (seconds) of each of `calls` calls of a fixed L1-resident arithmetic loop sized to
    take about `call_seconds`: per-call times of work that never varies."""
    return np.asarray(_module().constant_work(float(call_seconds), int(calls)))


@dataclass(frozen=True)
class BlockTiming:
    """Wall time of every timed block (seconds), of the whole timed loop, and the number of times
    the OS preempted the thread meanwhile (involuntary context switches; -1 if unknown)."""

    times: np.ndarray
    total: float
    preemptions: int


class NativeModel:
    """A model running in the native runtime. Construct with `from_file` or `from_json_text`."""

    def __init__(self, impl: Any, source: str) -> None:
        self._impl = impl
        self.source = source
        self._twin: Callable[[], NativeModel] | None = None

    @classmethod
    def from_file(cls, path: str | Path, *, slim: float | None = None, prewarm: bool = True) -> NativeModel:
        """Load an RTNeural JSON or a `.nam` file; raise ModelJsonError naming where and what is wrong.

        `slim` picks a SlimmableContainer's submodel (e.g. `A2.nam`) as NAM Core's
        `SetSlimmableSize(slim)` does: 0 the smallest, None the default (the largest); any other
        model refuses it. `prewarm` is NAM Core's prewarm-on-reset (no effect on RTNeural JSON).
        """
        mod = _module()
        try:
            impl = mod.Model.from_file(str(path), slim=None if slim is None else float(slim))
        except mod.ModelError as e:
            raise ModelJsonError(f"{path}: {e}") from None
        model = cls._with_prewarm(impl, str(path), prewarm)
        model._twin = lambda: cls.from_file(path, slim=slim, prewarm=model.prewarm_on_reset)
        return model

    @classmethod
    def from_json_text(
        cls,
        text: str,
        source: str = "<json text>",
        *,
        slim: float | None = None,
        prewarm: bool = True,
        fir_form: str = "auto",
    ) -> NativeModel:
        """Load RTNeural JSON or `.nam` text; raise ModelJsonError naming where and what is wrong.

        `fir_form` chooses how gray-box `fir` layers convolve: `auto` (by tap count, docs/benchmarks/graybox_native.md),
        `direct` or `partitioned` (zero-latency partitioned FFT); all give the same output within float rounding.
        """
        mod = _module()
        try:
            impl = mod.Model.from_json_text(text, slim=None if slim is None else float(slim), fir_form=fir_form)
        except mod.ModelError as e:
            raise ModelJsonError(f"{source}: {e}") from None
        model = cls._with_prewarm(impl, source, prewarm)
        model._twin = lambda: cls.from_json_text(
            text, source, slim=slim, prewarm=model.prewarm_on_reset, fir_form=fir_form
        )
        return model

    @classmethod
    def _with_prewarm(cls, impl: Any, source: str, prewarm: bool) -> NativeModel:
        """The model with prewarm-on-reset set; the loader prepared it prewarmed, so it is reset
        again when prewarm is off (a first `process` then starts from zeroed histories)."""
        model = cls(impl, source)
        if not prewarm:
            model.prewarm_on_reset = False
            impl.reset()
        return model

    def twin(self) -> NativeModel:
        """A second, independent instance of the same model (same source, submodel and prewarm setting),
        e.g. another channel of a plugin."""
        if self._twin is None:
            raise RtntError(f"{self.source}: this model was not loaded by from_file or from_json_text")
        return self._twin()

    def prepare(self, max_block: int) -> None:
        """Allocate for blocks of up to `max_block` samples (1..65536) and reset the state."""
        self._impl.prepare(int(max_block))

    def reset(self) -> None:
        """Restart the signal: zero the state and, for a `.nam` model with `prewarm_on_reset`, prewarm
        it on silence as NAM Core's Reset() does (the model starts as if it had heard silence forever)."""
        self._impl.reset()

    @property
    def prewarm_on_reset(self) -> bool:
        """Whether `reset()` (and `prepare()`) prewarm; NAM Core's default is on."""
        return bool(self._impl.prewarm_on_reset)

    @prewarm_on_reset.setter
    def prewarm_on_reset(self, on: bool) -> None:
        self._impl.prewarm_on_reset = bool(on)

    @property
    def prewarm_samples(self) -> int:
        """Samples of silence NAM Core's prewarm runs through the model (0 for RTNeural JSON)."""
        return int(self._impl.prewarm_samples)

    @property
    def sample_rate(self) -> float:
        """The sample rate the file declares, or -1 where it declares none (RTNeural JSON, some .nam)."""
        return float(self._impl.sample_rate)

    @property
    def description(self) -> str:
        """One line naming the format and architecture, e.g. 'NAM 0.5.0 WaveNet: 2 layer array(s), ...'."""
        return str(self._impl.description)

    @property
    def kernels(self) -> str:
        """How a `.nam` WaveNet runs, one word per layer array: 'narrow' or 'fused' (the fused layer kernels) or
        'generic' (a product per step; FiLMs other than activation_pre_film); '' for other models."""
        return str(self._impl.kernels)

    @property
    def controls(self) -> list[ControlSpec]:
        """The controls of a conditioned model, in input-channel order (empty for an unconditioned one)."""
        return [ControlSpec(name, lo, hi, default) for name, lo, hi, default in self._impl.controls]

    def _args(self, x: np.ndarray, controls: Any) -> tuple[np.ndarray, np.ndarray | None]:
        """(x, controls) as the extension takes them: float32 C-contiguous; controls (n, K) for a conditioned
        model (a (K,) row is held for every sample), None otherwise; RtntError when they do not fit."""
        x = np.ascontiguousarray(x, dtype=np.float32)
        k = len(self._impl.controls)
        if k == 0:
            if controls is not None:
                raise RtntError(f"{self.source}: this model takes no controls; call process without them")
            return x, None
        if x.ndim != 1:
            raise RtntError(f"{self.source}: a conditioned model takes a 1-D signal, got shape {x.shape}")
        return x, np.ascontiguousarray(control_block(controls, len(x), k, self.source))

    def process(self, x: np.ndarray, controls: np.ndarray | None = None) -> np.ndarray:
        """Process the next samples: 1-D float32 in, 1-D float32 out (2-D (n, out) for multi-output models).
        A conditioned model needs `controls`: (n, K) float32, one row per sample, or (K,) held for all."""
        return self._impl.process(*self._args(x, controls))

    def process_blocks(self, x: np.ndarray, block: int, controls: np.ndarray | None = None) -> np.ndarray:
        """Process `x` (and its per-sample `controls`) from the current state in consecutive blocks of `block`
        samples (the last one shorter), the block loop running in C++; the same output as one `process` call."""
        x, c = self._args(x, controls)
        return _module().process_blocks(self._impl, x, int(block), c)

    def time_blocks(
        self, x: np.ndarray, block: int, warmup: int = 16, controls: np.ndarray | None = None
    ) -> BlockTiming:
        """Time `process` in C++ over `x` (and its `controls`) cut into blocks of `block` samples, after
        `warmup` untimed blocks.

        Needs `prepare(max_block)` with max_block >= block first.
        """
        x, c = self._args(x, controls)
        times, total, switches = _module().bench(self._impl, x, int(block), int(warmup), c)
        return BlockTiming(np.asarray(times), float(total), int(switches))

    @property
    def in_size(self) -> int:
        return int(self._impl.in_size)

    @property
    def out_size(self) -> int:
        return int(self._impl.out_size)

    @property
    def max_block(self) -> int:
        return int(self._impl.max_block)

    @property
    def macs_per_sample(self) -> float:
        """Multiply-accumulates per sample over all layers (nominal, excluding SIMD padding)."""
        return float(self._impl.macs_per_sample)

    @property
    def receptive_field(self) -> int:
        """Receptive field in samples."""
        return int(self._impl.receptive_field)
