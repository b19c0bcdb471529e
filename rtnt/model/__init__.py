"""Keras model builders for rtnt presets, and their size figures.

Importing this package does not import Keras: `receptive_field` and `ModelSummary` are plain Python,
`build_model` and `SmoothTanh` import Keras on first access, `model_summary` when it runs.
"""

from __future__ import annotations

from typing import Any

from rtnt.model.geometry import receptive_field
from rtnt.model.summary import ModelSummary, model_summary

__all__ = ["ModelSummary", "SmoothTanh", "build_model", "model_summary", "receptive_field"]

_LAZY = {"build_model": "rtnt.model.build", "SmoothTanh": "rtnt.model.layers"}


def __getattr__(name: str) -> Any:
    """Import the Keras-backed names on first access (PEP 562)."""
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
