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
    from rtnt.runtime.envelope_gain import NamEnvelopeGainModel, is_envelope_gain_document
    from rtnt.runtime.model_file import read_model_document
    from rtnt.runtime.reference import ReferenceModel

    doc = read_model_document(Path(path))  # parsed once, whichever JSON format it holds
    if is_envelope_gain_document(doc):
        return NamEnvelopeGainModel.from_dict(doc, prewarm=prewarm, source=str(path))
    return ReferenceModel.from_document(doc, str(path))
