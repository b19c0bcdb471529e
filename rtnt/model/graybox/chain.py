"""The structure of a built gray-box model: its layers in chain order, with each `parallel` block's branches.

`rtnt.model.graybox.build` builds a parallel block as branches of layers that all start from the block's input
tensor and end in one Add layer (named after the block). `graybox_steps(model)` walks the Keras graph back from
the output and recovers that series-parallel structure: a list of steps, each a Keras layer or a `ParallelStep`
holding the Add layer and, per branch, its own list of steps (empty for the identity branch). The exporter writes
it as nested `parallel` layers; `graybox_span` gives the receptive span (a branch's spans add up, a parallel
block takes its longest branch).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from rtnt.errors import ExportError


@dataclass(frozen=True)
class ParallelStep:
    """A parallel block: its Add layer and the steps of each branch, in the Add layer's input order."""

    add: Any
    branches: list[list[Step]]


Step = Any  # a Keras layer or a ParallelStep


def graybox_steps(model: Any, start: Any = None) -> list[Step]:
    """The model's steps from `start` (its input tensor by default; a conditioned chain's audio split) to its output;
    ExportError for a graph that is not a chain of layers and parallel blocks (a layer with several inputs other than
    an Add or a knob-controlled block's [signal, knobs], or one used twice)."""
    import keras

    producers: dict[int, Any] = {}
    for layer in model.layers:
        if isinstance(layer, keras.layers.InputLayer):
            continue
        if isinstance(layer, keras.Model) or len(getattr(layer, "_inbound_nodes", [])) > 1:
            raise _refuse(model, f"layer '{layer.name}' is a nested model or used twice")
        producers[id(layer.output)] = layer
    if len(model.inputs) != 1 or len(model.outputs) != 1:
        raise _refuse(model, f"it has {len(model.inputs)} inputs and {len(model.outputs)} outputs")
    return _steps(model.outputs[0], model.inputs[0] if start is None else start, producers, model)


def graybox_span(steps: list[Step], span: Callable[[Any], int]) -> int:
    """The history the steps need: the sum of `span(layer)` along the chain, a parallel block's longest branch."""
    total = 0
    for step in steps:
        if isinstance(step, ParallelStep):
            total += max(graybox_span(branch, span) for branch in step.branches)
        else:
            total += span(step)
    return total


def graybox_layers(steps: list[Step]) -> list[Any]:
    """Every Keras layer of the steps, branches included, in chain order (Add layers excluded)."""
    out: list[Any] = []
    for step in steps:
        if isinstance(step, ParallelStep):
            for branch in step.branches:
                out.extend(graybox_layers(branch))
        else:
            out.append(step)
    return out


def _steps(end: Any, start: Any, producers: dict[int, Any], model: Any) -> list[Step]:
    """The steps from tensor `start` to tensor `end`, walking back from `end`."""
    import keras

    steps: list[Step] = []
    t = end
    while t is not start:
        layer = producers.get(id(t))
        if layer is None:
            raise _refuse(model, "a branch does not start at its parallel block's input")
        if isinstance(layer, keras.layers.Add):
            inputs = _inputs(layer)
            fork = _block_input(layer, producers, model)
            steps.append(ParallelStep(layer, [_steps(i, fork, producers, model) for i in inputs]))
            t = fork
        elif isinstance(layer.input, (list, tuple)) and getattr(layer, "controlled", None):
            steps.append(layer)  # a controlled block: its signal, then the knobs
            t = layer.input[0]
        elif isinstance(layer.input, (list, tuple, dict)):
            raise _refuse(model, f"layer '{layer.name}' takes several inputs and is not a parallel block's Add")
        else:
            steps.append(layer)
            t = layer.input
    return steps[::-1]


def _block_input(add: Any, producers: dict[int, Any], model: Any) -> Any:
    """The input tensor of the parallel block that ends in Add layer `add`. With one branch there is no fork to find:
    walk back over the branch's layers, named `<add name>_br0_...` by `rtnt.model.graybox.build`."""
    import keras

    inputs = _inputs(add)
    if len(inputs) > 1:
        return _fork(inputs, producers, model)
    t = inputs[0]
    while (layer := producers.get(id(t))) is not None and layer.name.startswith(f"{add.name}_br0_"):
        t = _block_input(layer, producers, model) if isinstance(layer, keras.layers.Add) else layer.input
    return t


def _fork(inputs: list[Any], producers: dict[int, Any], model: Any) -> Any:
    """The tensor the branches ending in `inputs` start from: the latest tensor on the first branch's way back to
    the model input that every other branch descends from (or is)."""
    import keras

    others = [_ancestors(t, producers) for t in inputs[1:]]
    t = inputs[0]
    while True:
        if all(id(t) in a for a in others):
            return t
        layer = producers.get(id(t))
        if layer is None:
            raise _refuse(model, "the branches of a parallel block share no input")
        t = _block_input(layer, producers, model) if isinstance(layer, keras.layers.Add) else layer.input


def _ancestors(t: Any, producers: dict[int, Any]) -> set[int]:
    """ids of `t` and every tensor it is computed from."""
    seen: set[int] = set()
    stack = [t]
    while stack:
        u = stack.pop()
        if id(u) in seen:
            continue
        seen.add(id(u))
        layer = producers.get(id(u))
        if layer is not None:
            stack.extend(_inputs(layer))
    return seen


def _inputs(layer: Any) -> list[Any]:
    """The input tensors of `layer` as a list (an Add layer of a one-branch parallel block has a single one)."""
    return list(layer.input) if isinstance(layer.input, (list, tuple)) else [layer.input]


def _refuse(model: Any, problem: str) -> ExportError:
    return ExportError(
        f"cannot export gray-box model '{model.name}': {problem}; rtnt's gray-box JSON holds a chain of blocks and "
        "parallel blocks (build it with rtnt.model.graybox.build)"
    )
