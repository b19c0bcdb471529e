"""Export a FiLM-conditioned tcn (`rtnt.model.film`) to rtnt's `film-1` extension of RTNeural JSON
(docs/film_format.md).

The file keeps `in_shape [.., 1 + K]`, `controls` and the conv stack's layers as the RTNeural exporter writes them
(activations and smoothed tanh folded the same way), after a first `film-split` layer that passes the audio
channel on. The top-level `film` object holds the conditioning MLP as RTNeural dense layers and, per modulated
conv, the adaptor (`layer`: its index in `layers`; `weights`: kernel (H, 2 C), bias (2 C)) whose output rows
[0, C) are gamma and [C, 2 C) beta. A smoothed tanh tanh(z / alpha) after a modulated conv divides the conv's
weights (the RTNeural fold) and the beta rows by alpha.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rtnt.errors import ExportError
from rtnt.export.metadata import ModelMetadata, metadata_object, write_model_file
from rtnt.export.rtneural import _Graph, _numpy, _to_json, rtneural_loudness
from rtnt.runtime.controls import CONTROLS_KEY, ControlSpec

FILM_FORMAT = "film-1"
SPLIT_LAYER = "film-split"


def export_film(
    model: Any, controls: Sequence[ControlSpec], metadata: ModelMetadata | None = None, *, loudness: bool = True
) -> dict[str, Any]:
    """The `film-1` JSON dict of a FiLM tcn with `controls` (K of them, matching its 1 + K input channels)."""
    import keras

    from rtnt.model.film import ADAPTOR_PREFIX, MLP_PREFIX
    from rtnt.model.layers import SmoothTanh

    width = int(model.inputs[0].shape[-1])
    if not controls or width != 1 + len(controls):
        raise ExportError(
            f"cannot export FiLM model '{model.name}': its input has {width} channel(s) but {len(controls)} "
            "control(s) were given; a FiLM model's input is 1 audio channel + 1 per control (K >= 1)"
        )
    by_name = {layer.name: layer for layer in model.layers}
    n_conv = sum(1 for name in by_name if name.startswith("conv"))
    graph = _Graph(1)
    conv_index: list[int] = []
    alphas: list[float] = []
    for i in range(n_conv):
        graph.add(by_name[f"conv{i}"])
        conv_index.append(len(graph.layers))  # + 1 for the split layer in front
        act = by_name.get(f"act{i}")
        alphas.append(float(act.alpha) if isinstance(act, SmoothTanh) else 1.0)
        if act is not None:
            graph.add(act)
    graph.add(by_name["out"])
    graph.finish()
    mlp = [by_name[name] for name in sorted((n for n in by_name if n.startswith(MLP_PREFIX)), key=_suffix)]
    for dense in mlp:
        if not isinstance(dense, keras.layers.Dense):
            raise ExportError(f"cannot export FiLM model '{model.name}': {dense.name} is not a Dense layer")
    lead = [None, None]
    split = {"type": SPLIT_LAYER, "activation": "", "shape": [*lead, 1]}
    data: dict[str, Any] = {
        "rtnt_format": FILM_FORMAT,
        "in_shape": [*lead, width],
        CONTROLS_KEY: [c.to_json() for c in controls],
        "layers": [split, *(_to_json(jl, lead) for jl in graph.layers)],
        "film": {
            "mlp": [_mlp_layer(dense) for dense in mlp],
            "adaptors": [_adaptor(by_name[f"{ADAPTOR_PREFIX}{i}"], conv_index[i], alphas[i]) for i in range(n_conv)],
        },
    }
    if metadata is not None:
        data["metadata"] = metadata_object(metadata, (lambda: rtneural_loudness(data)) if loudness else None)
    return data


def _suffix(name: str) -> int:
    return int("".join(ch for ch in name if ch.isdigit()) or 0)


def _mlp_layer(dense: Any) -> dict[str, Any]:
    """One conditioning-MLP layer in RTNeural's dense layout (kernel (in, out), bias, activation tanh)."""
    kernel, bias = _numpy(dense.kernel), _numpy(dense.bias)
    return {
        "type": "dense",
        "activation": "tanh",
        "shape": [None, kernel.shape[1]],
        "weights": [kernel.astype(np.float32).tolist(), bias.astype(np.float32).tolist()],
    }


def _adaptor(dense: Any, layer: int, alpha: float) -> dict[str, Any]:
    """The adaptor of the conv at `layer`: Keras' (g, b) become gamma = 1 + g and beta = b (beta / alpha before a
    smoothed tanh whose 1/alpha the RTNeural fold put into the conv)."""
    kernel, bias = _numpy(dense.kernel), _numpy(dense.bias)
    c = kernel.shape[1] // 2
    bias[:c] += 1.0
    kernel[:, c:] /= alpha
    bias[c:] /= alpha
    return {"layer": layer, "weights": [kernel.astype(np.float32).tolist(), bias.astype(np.float32).tolist()]}


def save_film(
    model: Any, path: str | Path, controls: Sequence[ControlSpec], metadata: ModelMetadata | None = None
) -> Path:
    """Write `export_film(model, controls, metadata)` to `path` (parent folders created); returns the path."""
    return write_model_file(path, export_film(model, controls, metadata))
