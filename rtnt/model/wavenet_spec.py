"""Shape of one layer array of NAM's residual WaveNet, resolved per layer (plain Python, no Keras).

Shared by the Keras builder (`rtnt.model.wavenet`), the `.nam` exporter and the size figures, so that
every one of them reads the same per-layer kernel sizes, activations and widths.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any

from omegaconf import DictConfig

from rtnt.runtime.nam_reference import FILM_KEYS  # NAM's FiLM switches, in its weight order


@dataclass(frozen=True)
class LayerArraySpec:
    """One layer array; see `rtnt.config.LayerArrayConfig` for what each field means."""

    input_size: int
    condition_size: int
    channels: int
    bottleneck: int
    kernel_sizes: tuple[int, ...]
    dilations: tuple[int, ...]
    activations: tuple[str, ...]
    negative_slope: float
    gated: bool
    layer1x1: bool
    head_size: int
    head_kernel_size: int
    head_bias: bool
    films: tuple[str, ...] = ()  # the active FiLMs (NAM's keys, FILM_KEYS order), each with shift and 1 group

    def __post_init__(self) -> None:
        unknown = [k for k in self.films if k not in FILM_KEYS]
        if unknown or list(self.films) != [k for k in FILM_KEYS if k in self.films]:
            raise ValueError(f"films {self.films} must be distinct NAM FiLM keys in the order {', '.join(FILM_KEYS)}")

    @classmethod
    def from_config(cls, cfg: Any) -> LayerArraySpec:
        """Resolve a `LayerArrayConfig` (dataclass or DictConfig): broadcast one kernel size or activation
        to every layer, bottleneck 0 to channels."""
        n = len(cfg.dilations)
        kernels = [int(k) for k in cfg.kernel_sizes]
        acts = [str(a) for a in cfg.activation]
        return cls(
            input_size=int(cfg.input_size),
            condition_size=int(cfg.condition_size),
            channels=int(cfg.channels),
            bottleneck=int(cfg.bottleneck or cfg.channels),
            kernel_sizes=tuple(kernels * n if len(kernels) == 1 else kernels),
            dilations=tuple(int(d) for d in cfg.dilations),
            activations=tuple(acts * n if len(acts) == 1 else acts),
            negative_slope=float(cfg.negative_slope),
            gated=bool(cfg.gated),
            layer1x1=bool(cfg.layer1x1),
            head_size=int(cfg.head_size),
            head_kernel_size=int(cfg.head_kernel_size),
            head_bias=bool(cfg.head_bias),
        )

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LayerArraySpec:
        """Inverse of `to_dict` (Keras layer configs hold the spec as a plain dict)."""
        tuples = ("kernel_sizes", "dilations", "activations", "films")
        return cls(**{k: tuple(v) if k in tuples else v for k, v in data.items()})

    def to_dict(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @property
    def num_layers(self) -> int:
        return len(self.dilations)

    @property
    def conv_out(self) -> int:
        """Output channels of each dilated conv and input mix-in: bottleneck, doubled when gated."""
        return 2 * self.bottleneck if self.gated else self.bottleneck

    def film_dim(self, key: str) -> int:
        """D of FiLM `key` (FORMAT.md section 4): the width it modulates. With no head1x1 (rtnt's arrays) the skip
        output is the activation, bottleneck wide."""
        z, c, b = self.conv_out, self.channels, self.bottleneck
        dims = {
            "conv_pre_film": c,
            "conv_post_film": z,
            "input_mixin_pre_film": self.condition_size,
            "input_mixin_post_film": z,
            "activation_pre_film": z,
            "activation_post_film": b,
            "layer1x1_post_film": c,
            "head1x1_post_film": b,
        }
        return dims[key]

    @property
    def film_params_per_layer(self) -> int:
        """Weights and biases of one layer's FiLMs: per active FiLM a 1x1 condition_size -> 2D with bias."""
        return sum(2 * self.film_dim(k) * (self.condition_size + 1) for k in self.films)

    @property
    def receptive_span(self) -> int:
        """Samples of history this array adds to the receptive field: sum (k - 1) d, plus head kernel - 1."""
        return sum((k - 1) * d for k, d in zip(self.kernel_sizes, self.dilations)) + self.head_kernel_size - 1

    @property
    def macs_per_sample(self) -> int:
        """Multiply-accumulates per output sample of the array's matrix products (no biases, activations
        or gate products), as `rtnt.model.summary` counts them."""
        z, c, b = self.conv_out, self.channels, self.bottleneck
        per_layer = sum(
            k * c * z + self.condition_size * z + (b * c if self.layer1x1 else 0) for k in self.kernel_sizes
        )
        per_layer += self.num_layers * sum(2 * self.film_dim(key) * self.condition_size for key in self.films)
        return self.input_size * c + per_layer + self.head_kernel_size * b * self.head_size

    @property
    def param_count(self) -> int:
        """Weights and biases in NAM's read order (equals the array's share of a `.nam` weight list)."""
        z, c, b, n = self.conv_out, self.channels, self.bottleneck, self.num_layers
        layer1x1 = (b * c + c) * n if self.layer1x1 else 0
        head = self.head_kernel_size * b * self.head_size + (self.head_size if self.head_bias else 0)
        return (
            self.input_size * c
            + sum(k * c * z + z for k in self.kernel_sizes)
            + n * self.condition_size * z
            + layer1x1
            + n * self.film_params_per_layer
            + head
        )


def layer_array_specs(preset: Any | DictConfig) -> list[LayerArraySpec]:
    """The resolved layer arrays of a `wavenet` preset."""
    return [LayerArraySpec.from_config(a) for a in preset.layer_arrays]


def with_knob_inputs(specs: list[LayerArraySpec], n_knobs: int) -> list[LayerArraySpec]:
    """The arrays of a knob-conditioned WaveNet (`conditioning=concat`): the model input is the audio and
    `n_knobs` knob values, which array 0 reads as its layer input and every array as its condition (NAM's
    multi-channel condition, `in_channels` 1 + n_knobs in the `.nam` file)."""
    width = 1 + n_knobs
    return [replace(s, condition_size=width, input_size=width if i == 0 else s.input_size) for i, s in enumerate(specs)]


def with_films(specs: list[LayerArraySpec], films: tuple[str, ...]) -> list[LayerArraySpec]:
    """The arrays with the FiLMs `films` (NAM's keys) switched on in every layer (`conditioning=film`)."""
    return [replace(s, films=tuple(films)) for s in specs]
