"""Exporters of trained models: RTNeural JSON (`rtneural`), its gray-box extension (`graybox`), NAM `.nam` (`nam`),
LV2 bundles (`lv2`).

`export_model` picks the format a model's family needs. Keras is imported only when it runs.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rtnt.export.metadata import ModelMetadata
    from rtnt.runtime.controls import ControlSpec

RTNEURAL_FILE = "model.json"
NAM_FILE = "model.nam"


def export_model(
    model: Any, out_dir: str | Path, metadata: ModelMetadata | None = None, controls: Sequence[ControlSpec] = ()
) -> Path:
    """Write `model` into `out_dir` in its family's format and return the file: `model.nam` (NAM WaveNet; a
    conditioned one with NAM's multi-channel condition and the `controls` list) for `arch: wavenet` models,
    `model.json` in rtnt's gray-box extension of RTNeural JSON for `arch: graybox`, else `model.json` (RTNeural,
    with the knob `controls` of a conditioned model; rtnt's `film-1` extension for a FiLM tcn,
    docs/film_format.md). `metadata` becomes the file's `metadata` object (`rtnt.export.metadata`); without it a
    `.nam` still gets NAM's minimal one and a JSON none."""
    from rtnt.export.graybox import is_graybox, save_graybox
    from rtnt.export.nam import is_nam_wavenet, save_nam
    from rtnt.export.rtneural import save_rtneural
    from rtnt.model.film import is_film

    out_dir = Path(out_dir)
    if is_nam_wavenet(model):
        return save_nam(model, out_dir / NAM_FILE, metadata, controls)
    if is_graybox(model):
        return save_graybox(model, out_dir / RTNEURAL_FILE, metadata, controls)
    if is_film(model):
        from rtnt.export.film import save_film

        return save_film(model, out_dir / RTNEURAL_FILE, controls, metadata)
    return save_rtneural(model, out_dir / RTNEURAL_FILE, metadata, controls)
