"""Numpy reference runtimes of the exported formats: RTNeural JSON (`reference`) and NAM `.nam` (`nam_reference`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def load_reference(path: str | Path, *, prewarm: bool = True) -> Any:
    """The reference runtime of a model file, by suffix: `NamModel` for `.nam` (prewarmed on silence at every
    reset unless `prewarm=False`), else `ReferenceModel` for RTNeural JSON (always zero state). Both have
    `reset()` and `process(x) -> y`."""
    if Path(path).suffix == ".nam":
        from rtnt.runtime.nam_reference import NamModel

        return NamModel.from_file(path, prewarm=prewarm)
    from rtnt.runtime.reference import ReferenceModel

    return ReferenceModel.from_json(path)
