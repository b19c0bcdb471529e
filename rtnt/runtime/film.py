"""FiLM in the numpy reference runtime: rtnt's `film-1` JSON (docs/film_format.md).

The first layer, `film-split`, takes the frames [x, c1..cK] and passes x on; it hands the controls to the
`Conditioner`, which runs the conditioning MLP and the adaptors only at the samples where a control value differs
from the previous sample's (constant knobs cost one evaluation per change), and holds each modulated conv's
per-sample (gamma, beta). A `Modulation` after the conv (before its activation) computes gamma * z + beta.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from rtnt.errors import ModelJsonError

FILM_FORMAT = "film-1"
SPLIT_LAYER = "film-split"


class Conditioner:
    """The conditioning MLP (tanh dense layers) and the adaptors of one model; `update(c)` computes every
    modulated layer's per-sample (gamma, beta) of a block of controls (n, K)."""

    def __init__(self, mlp: list[tuple[np.ndarray, np.ndarray]], adaptors: dict[int, tuple[np.ndarray, np.ndarray]]):
        self.mlp, self.adaptors = mlp, adaptors
        self.gamma_beta: dict[int, np.ndarray] = {}
        self.reset()

    def reset(self) -> None:
        self.last: np.ndarray | None = None  # the controls of the previous sample
        self.last_values: dict[int, np.ndarray] = {}

    def update(self, c: np.ndarray) -> None:
        """(gamma, beta) rows of every sample of `c`, evaluated only where the controls change."""
        if not len(c):
            return
        previous = np.concatenate([c[:1] if self.last is None else self.last[None], c[:-1]])
        changed = np.any(c != previous, axis=1)
        if self.last is None:
            changed[0] = True
        rows = np.cumsum(changed) - 1 + (0 if changed[0] else 1)
        h = c[changed]
        for kernel, bias in self.mlp:
            h = np.tanh(h @ kernel + bias)
        for layer, (kernel, bias) in self.adaptors.items():
            fresh = (h @ kernel + bias).astype(np.float32)
            table = fresh if changed[0] else np.concatenate([self.last_values[layer][None], fresh])
            self.gamma_beta[layer] = table[rows]
            self.last_values[layer] = table[-1]
        self.last = c[-1].copy()


class Split:
    """The `film-split` layer: frames (n, 1 + K) -> audio (n, 1); the controls go to the conditioner."""

    def __init__(self, conditioner: Conditioner) -> None:
        self.conditioner = conditioner

    def reset(self) -> None:
        self.conditioner.reset()

    def forward(self, x: np.ndarray) -> np.ndarray:
        self.conditioner.update(x[:, 1:])
        return x[:, :1]


class Modulation:
    """gamma * z + beta after the conv at JSON layer `layer`, with the conditioner's per-sample (gamma, beta)."""

    def __init__(self, conditioner: Conditioner, layer: int, channels: int) -> None:
        self.conditioner, self.layer, self.channels = conditioner, layer, channels

    def reset(self) -> None:
        pass

    def forward(self, z: np.ndarray) -> np.ndarray:
        gb = self.conditioner.gamma_beta[self.layer]
        return gb[:, : self.channels] * z + gb[:, self.channels :]


def parse_conditioner(data: Mapping[str, Any], n_controls: int, source: str) -> Conditioner | None:
    """The conditioner of a `film-1` document (None when the document has no FiLM); a malformed or inconsistent
    `film` object raises ModelJsonError naming `source`."""
    film, fmt = data.get("film"), data.get("rtnt_format")
    if film is None and fmt != FILM_FORMAT:
        return None

    def fail(problem: str) -> ModelJsonError:
        return ModelJsonError(f"{source}: {problem}; re-export the model or fix the file (docs/film_format.md)")

    if fmt != FILM_FORMAT:
        raise fail(f"has a 'film' object but 'rtnt_format' is {fmt!r}, not {FILM_FORMAT!r}")
    if not isinstance(film, Mapping):
        raise fail(f"'rtnt_format' is {FILM_FORMAT!r} but the top-level 'film' object is missing")
    if n_controls == 0:
        raise fail("a FiLM model needs 'controls' (K >= 1) and 'in_shape' ending in 1 + K")
    mlp_raw, adaptors_raw = film.get("mlp"), film.get("adaptors")
    if not _is_list(mlp_raw) or not mlp_raw:
        raise fail("film.mlp must be a non-empty list of dense layers")
    if not _is_list(adaptors_raw) or not adaptors_raw:
        raise fail("film.adaptors must be a non-empty list of {layer, weights}")
    mlp, width = [], n_controls
    for j, layer in enumerate(mlp_raw):
        where = f"film.mlp[{j}]"
        if not isinstance(layer, Mapping) or layer.get("type") != "dense" or layer.get("activation") != "tanh":
            raise fail(f"{where} must be a dense layer with activation tanh")
        kernel, bias = _two_arrays(layer.get("weights"), where, fail)
        if kernel.ndim != 2 or kernel.shape[0] != width or bias.shape != (kernel.shape[1],):
            raise fail(f"{where} weights have shapes {kernel.shape}, {bias.shape}; expected ({width}, H), (H,)")
        mlp.append((kernel, bias))
        width = kernel.shape[1]
    adaptors: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    for j, entry in enumerate(adaptors_raw):
        where = f"film.adaptors[{j}]"
        if not isinstance(entry, Mapping) or "layer" not in entry or "weights" not in entry:
            raise fail(f"{where} must be an object with 'layer' and 'weights'")
        layer = entry["layer"]
        if not isinstance(layer, int) or isinstance(layer, bool) or layer < 1 or layer in adaptors:
            raise fail(f"{where}: 'layer' {layer!r} must be the index of a conv1d layer, once")
        kernel, bias = _two_arrays(entry["weights"], where, fail)
        if kernel.ndim != 2 or kernel.shape[0] != width or kernel.shape[1] % 2 or bias.shape != (kernel.shape[1],):
            raise fail(f"{where} weights have shapes {kernel.shape}, {bias.shape}; expected ({width}, 2 C), (2 C,)")
        adaptors[layer] = (kernel, bias)
    return Conditioner(mlp, adaptors)


def _is_list(value: Any) -> bool:
    return isinstance(value, Sequence) and not isinstance(value, str)


def _two_arrays(raw: Any, where: str, fail: Callable[[str], ModelJsonError]) -> tuple[np.ndarray, np.ndarray]:
    if not _is_list(raw) or len(raw) != 2:
        raise fail(f"{where} 'weights' must be [kernel, bias]")
    try:
        kernel, bias = (np.asarray(w, dtype=np.float32) for w in raw)
    except (TypeError, ValueError):
        raise fail(f"{where} weights are not rectangular numeric arrays") from None
    if not (np.all(np.isfinite(kernel)) and np.all(np.isfinite(bias))):
        raise fail(f"{where} weights hold NaN or Inf")
    return kernel, bias
