"""Size figures of a built model: parameters, multiply-accumulates per sample, receptive field."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from omegaconf import DictConfig

from rtnt.config import PresetConfig
from rtnt.model.geometry import samples_to_ms

if TYPE_CHECKING:
    import keras


@dataclass(frozen=True)
class ModelSummary:
    """`params`: all weights incl. non-trainable (BatchNorm statistics); `macs_per_sample`: see
    `model_summary`; `receptive_field_samples`/`_ms`: conv receptive field at 48 kHz (recurrent memory excluded)."""

    params: int
    macs_per_sample: int
    receptive_field_samples: int
    receptive_field_ms: float


def model_summary(model_or_preset: keras.Model | PresetConfig | DictConfig) -> ModelSummary:
    """Figures of a Keras model, or of the model a preset builds.

    MACs are the multiply-accumulates per output sample of streaming inference, counting only
    matrix products: Conv1D k * (in / groups) * out, Dense (also time-distributed) in * out, and for
    GRU / LSTM the input and recurrent kernels, 3 (GRU) or 4 (LSTM) * units * (in + units).
    Bias additions, activations, gate products, PReLU and BatchNorm scaling are not counted.
    The receptive field is 1 + sum (k - 1) * dilation over the Conv1D layers. A WaveNet layer array counts
    its rechannel, dilated convs, input mix-ins, layer1x1s and head conv the same way, and adds
    sum (k - 1) * dilation + head kernel - 1 to the receptive field; the head scale is not counted as a MAC.
    A gray-box block (`rtnt.model.graybox.blocks`) counts its own `macs_per_sample` (5 per biquad section, one per
    FIR tap; each oversampling filter its taps, the layers between them times the factor) and `receptive_span` (FIR
    taps - 1; the warm-up history of a recursive block; the oversampling filters' history); a gray-box `parallel`
    block (an Add layer) counts the MACs of all its branches and the receptive span of its longest branch.
    """
    if isinstance(model_or_preset, (PresetConfig, DictConfig)):
        from rtnt.model.build import build_model

        model = build_model(model_or_preset)
    else:
        model = model_or_preset
    rf = 1 + _receptive_span(model)
    return ModelSummary(
        params=int(model.count_params()),
        macs_per_sample=_chain_macs(_steps(model)),
        receptive_field_samples=rf,
        receptive_field_ms=samples_to_ms(rf),
    )


def _steps(model: Any) -> list[Any]:
    """The model's layers in chain order; a model with gray-box parallel blocks (Add layers) as
    `rtnt.model.graybox.chain.graybox_steps`, each parallel block one step holding its branches."""
    import keras

    if any(isinstance(layer, keras.layers.Add) for layer in model.layers):
        from rtnt.model.graybox.chain import graybox_steps

        return graybox_steps(model)
    return list(model.layers)


def _chain_macs(layers: list[Any]) -> int:
    """MACs per base-rate sample of a chain: a layer between a gray-box `Upsample` and `Downsample` (an oversampled
    static nonlinearity) runs `factor` times per sample; a parallel block costs the sum of its branches."""
    from rtnt.model.graybox.blocks import Downsample, Upsample
    from rtnt.model.graybox.chain import ParallelStep

    total, factor = 0, 1
    for layer in layers:
        if isinstance(layer, Downsample):
            factor = 1
        if isinstance(layer, ParallelStep):
            total += sum(_chain_macs(branch) for branch in layer.branches)
            continue
        total += factor * _macs(layer)
        if isinstance(layer, Upsample):
            factor = layer.factor
    return total


def _macs(layer: Any) -> int:
    """Multiply-accumulates per time step of one layer's matrix products."""
    import keras

    from rtnt.model.graybox.blocks import GrayBoxBlock
    from rtnt.model.wavenet import WaveNetLayerArray

    if isinstance(layer, GrayBoxBlock):
        return layer.macs_per_sample
    if isinstance(layer, WaveNetLayerArray):
        return layer.spec.macs_per_sample
    if isinstance(layer, keras.layers.TimeDistributed):
        return _macs(layer.layer)
    if isinstance(layer, (keras.layers.Conv1D, keras.layers.Dense)):
        return _size(layer.kernel)
    if isinstance(layer, (keras.layers.GRU, keras.layers.LSTM)):
        return _size(layer.cell.kernel) + _size(layer.cell.recurrent_kernel)
    return 0


def _receptive_span(model: Any) -> int:
    """The sum of the layers' spans along the chain; through a gray-box parallel block, its longest branch's."""
    from rtnt.model.graybox.chain import graybox_span

    return graybox_span(_steps(model), _dilated_span)


def _dilated_span(layer: Any) -> int:
    """(k - 1) * dilation for a Conv1D layer, the receptive span of a WaveNet layer array, else 0."""
    import keras

    from rtnt.model.graybox.blocks import GrayBoxBlock
    from rtnt.model.wavenet import WaveNetLayerArray

    if isinstance(layer, GrayBoxBlock):
        return layer.receptive_span
    if isinstance(layer, WaveNetLayerArray):
        return layer.spec.receptive_span
    if isinstance(layer, keras.layers.Conv1D):
        return (layer.kernel_size[0] - 1) * layer.dilation_rate[0]
    return 0


def _size(variable: Any) -> int:
    n = 1
    for dim in variable.shape:
        n *= int(dim)
    return n
