"""Numpy reference runtimes of the exported formats: RTNeural JSON (`reference`), NAM `.nam` (`nam_reference`)
and a `.nam` followed by an envelope gain (`envelope_gain`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def load_reference(path: str | Path, *, prewarm: bool = True) -> Any:
    """The reference runtime of a model file: `NamModel` for `.nam` (prewarmed on silence at every reset unless
    `prewarm=False`), `NamEnvelopeGainModel` for rtnt's "nam-envelope-gain-1" JSON (prewarmed likewise), else
    `ReferenceModel` for RTNeural JSON (always zero state). All have `reset()` and `process(x) -> y`."""
    if Path(path).suffix == ".nam":
        from rtnt.runtime.nam_reference import NamModel

        return NamModel.from_file(path, prewarm=prewarm)
    from rtnt.runtime.envelope_gain import NamEnvelopeGainModel, is_envelope_gain_file

    if is_envelope_gain_file(path):
        return NamEnvelopeGainModel.from_file(path, prewarm=prewarm)
    from rtnt.runtime.reference import ReferenceModel

    return ReferenceModel.from_json(path)
