"""Strict reading of model files (RTNeural JSON and `.nam`) for the reference runtimes, by the native
loader's rules: UTF-8, at most `max_file_bytes`, no duplicate keys (which would silently let the last
one win), no lone surrogates."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rtnt._native import max_file_bytes
from rtnt.errors import ModelJsonError


def _unique_object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ValueError(f'duplicate member name "{key}" in one object; remove one of them')
        out[key] = value
    return out


def read_model_document(path: Path, error: type[ModelJsonError] = ModelJsonError) -> Any:
    """The parsed JSON document of a model file; every problem raises `error` with a one-line message."""
    try:
        size = path.stat().st_size
        if size > max_file_bytes:
            raise error(
                f"{path} is {size / 2**20:.2f} MiB, more than the {max_file_bytes / 2**20:.2f} MiB a model "
                "file may be (NAM's A2 full is 0.6 MiB); is it a model file?"
            )
        doc = json.loads(path.read_bytes().decode("utf-8"), object_pairs_hook=_unique_object)
        _check_strings(doc)
    except OSError as exc:
        raise error(f"cannot read model file {path}: {exc.strerror or exc}; check the path") from None
    except UnicodeError as exc:
        raise error(f"{path} is not UTF-8 text ({exc.reason} at byte {exc.start}); save the file as UTF-8") from None
    except ValueError as exc:
        raise error(f"{path} is not valid JSON ({exc}); re-export the model") from None
    return doc


def _check_strings(doc: Any) -> None:
    """Raises UnicodeError for a string holding a lone surrogate (a `\\ud800` escape without its pair)."""
    stack = [doc]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            item.encode("utf-8")
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(i for i in item if not isinstance(i, (int, float)))


def count_weights(doc: Any) -> int:
    """The number of weight values in a parsed model document: every number under a `weights` member, at any
    depth (RTNeural JSON's nested per-layer arrays, `.nam`'s flat list, a container's submodels)."""
    if isinstance(doc, dict):
        return sum(_count_numbers(v) if k == "weights" else count_weights(v) for k, v in doc.items())
    if isinstance(doc, list):
        return sum(count_weights(v) for v in doc)
    return 0


def _count_numbers(value: Any) -> int:
    if isinstance(value, list):
        return sum(_count_numbers(v) for v in value)
    return 1 if isinstance(value, (int, float)) and not isinstance(value, bool) else 0
