"""Write a gray-box file's learned chain at another oversampling factor, for ASR with and without oversampling.

The chain's learned parameters stay as they are; only the `oversampling` objects (docs/graybox_format.md) change:
factor 1 removes them, factor 2 or 4 puts rtnt's filter pair of that factor around every static nonlinearity
(a `waveshaper`, or a run of `dense` layers from one channel back to one: an MLP), in parallel branches too.
Evaluate the result like any model file:

    python scripts/graybox_oversampling_variant.py model.json 1 --out model_1x.json
    rtnt-evaluate model_1x.json capture=ts9_pedal
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from rtnt.config_graybox import OVERSAMPLING_FACTORS
from rtnt.model.graybox.oversampling import oversampling_filters


def mlp_run_length(layers: list[dict[str, Any]], start: int) -> int:
    """The number of `dense` layers from `start` up to the first with one output (an MLP), 0 if there is none."""
    for end in range(start, len(layers)):
        if layers[end].get("type") != "dense":
            return 0
        if layers[end]["shape"][-1] == 1:
            return end - start + 1
    return 0


def with_oversampling(layers: list[dict[str, Any]], factor: int) -> None:
    """Set every static nonlinearity of `layers` (and of parallel branches) to run at `factor` times the rate."""
    for layer in layers:
        layer.pop("oversampling", None)
        for branch in layer.get("branches", []):
            with_oversampling(branch, factor)
    if factor == 1:
        return
    filters = oversampling_filters(factor)
    index = 0
    while index < len(layers):
        run = 1 if layers[index].get("type") == "waveshaper" else mlp_run_length(layers, index)
        if run:
            layers[index]["oversampling"] = filters.to_json(run)
        index += max(run, 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", type=Path, help="a gray-box JSON file")
    parser.add_argument("factor", type=int, choices=OVERSAMPLING_FACTORS, help="oversampling factor")
    parser.add_argument("--out", type=Path, required=True, help="where to write the variant")
    args = parser.parse_args()
    document = json.loads(args.model.read_text())
    with_oversampling(document["layers"], args.factor)
    args.out.write_text(json.dumps(document))
    print(f"wrote {args.out} (oversampling {args.factor}x)")


if __name__ == "__main__":
    main()
