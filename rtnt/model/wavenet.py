"""NAM's residual WaveNet in Keras 3: layer arrays and the fixed head scale (`arch: wavenet`).

The forward pass is NAM's (Neural Amp Modeler, trainer and Core), per layer array:

    h = x_in @ R                                          rechannel, no bias
    for each layer l:  z = causal_conv_{k_l, d_l}(h) + b_l + c @ M_l    conv, bias, input mix-in
                       a = act(z)  or  act(z[:B]) * sigmoid(z[B:])      (gated)
                       s = s + a                                        head sum (starts at the
                                                                        previous array's head output)
                       h = h + a @ W_l + w_l                            layer1x1 (when active)
    head = causal_conv_{k_head}(s) (+ bias)

with c the raw input: the mono audio, or for a knob-conditioned model (`conditioning=concat` or `film`) the audio
followed by the K knob values, which array 0 also takes as its layer input. With `conditioning=film` every layer
also has NAM's `activation_pre_film` (Perez et al. 2018, FiLM; NAM Core's WaveNet FiLM fields):
z = z * S(c) + T(c) before the activation, with [S; T] = c @ F_l + f_l a 1x1 of the condition, initialised to
S = 1, T = 0 so that training starts from the unconditioned layer. The spec's `films` says which FiLMs are on;
every NAM FiLM position is implemented (FORMAT.md section 5), though only `activation_pre_film` is trained:
`layer1x1_post_film` and `head1x1_post_film` hold weights but act, as in NAM Core, only in blended layers or on an
active head1x1, neither of which rtnt's arrays have. The model output is
head_scale * head of the last array. Tensors stay (batch, time, channels); every convolution is causal (left
zero padding), so the model output has the input's length and no sample depends on later input. Only Keras
ops that XLA compiles are used.

Weights are created in NAM Core's read order and named after NAM's modules, which is what
`rtnt.export.nam` relies on. Initialisation is PyTorch's default for Conv1d (NAM's trainer): weights and
biases uniform in +-1/sqrt(fan_in).
"""

from __future__ import annotations

import math
from typing import Any

import keras
from keras import ops

from rtnt.model.wavenet_spec import LayerArraySpec, layer_array_specs, with_films, with_knob_inputs

Tensor = Any

TRAINED_FILMS = ("activation_pre_film",)
"""The NAM FiLMs `conditioning=film` switches on in every layer of a wavenet preset."""


def _torch_default(fan_in: int) -> keras.initializers.Initializer:
    """U(-1/sqrt(fan_in), 1/sqrt(fan_in)), PyTorch's default for Conv1d weights and biases."""
    bound = 1.0 / math.sqrt(fan_in)
    return keras.initializers.RandomUniform(-bound, bound)


def activation(name: str, x: Tensor, negative_slope: float) -> Tensor:
    """NAM's activation `name` (rtnt.config.WAVENET_ACTIVATIONS) applied elementwise."""
    if name == "Tanh":
        return ops.tanh(x)
    if name == "ReLU":
        return ops.relu(x)
    if name == "LeakyReLU":
        return ops.leaky_relu(x, negative_slope=negative_slope)
    if name == "Sigmoid":
        return ops.sigmoid(x)
    if name == "SiLU":
        return ops.silu(x)
    if name == "Softsign":
        return ops.softsign(x)
    if name == "Hardtanh":
        return ops.clip(x, -1.0, 1.0)
    raise ValueError(f"unknown WaveNet activation {name!r}")


def causal_conv(x: Tensor, kernel: Tensor, dilation: int) -> Tensor:
    """Causal dilated convolution of (batch, time, in) with a (k, in, out) kernel: tap i reads
    x[t - (k - 1 - i) * dilation], zeros before the start."""
    k = kernel.shape[0]
    if k == 1:
        return ops.matmul(x, kernel[0])
    padded = ops.pad(x, [[0, 0], [(k - 1) * dilation, 0], [0, 0]])
    return ops.conv(padded, kernel, strides=1, padding="valid", dilation_rate=dilation)


@keras.saving.register_keras_serializable(package="rtnt")
class WaveNetLayerArray(keras.layers.Layer):
    """One NAM layer array. Called on [layer_input, condition] (first array) or
    [layer_input, condition, head_input]; returns [residual_output, head_output].

    `residual_output=False` (the last array, whose residual stream nothing reads) skips the final layer's
    residual update; that layer1x1's weights still exist, as NAM's file holds them, but are frozen, since
    they cannot change the output.
    """

    def __init__(self, spec: LayerArraySpec | dict[str, Any], residual_output: bool = True, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.spec = spec if isinstance(spec, LayerArraySpec) else LayerArraySpec.from_dict(spec)
        self.residual_output = bool(residual_output)

    def build(self, input_shape: Any) -> None:
        s = self.spec
        z, c, b = s.conv_out, s.channels, s.bottleneck
        self.rechannel = self.add_weight((s.input_size, c), _torch_default(s.input_size), name="rechannel")
        self.conv_kernels, self.conv_biases, self.mixins = [], [], []
        self.layer1x1_kernels, self.layer1x1_biases = [], []
        self.films: list[dict[str, tuple[Any, Any]]] = []
        for i, k in enumerate(s.kernel_sizes):
            init = _torch_default(k * c)
            self.conv_kernels.append(self.add_weight((k, c, z), init, name=f"layer{i}_conv"))
            self.conv_biases.append(self.add_weight((z,), init, name=f"layer{i}_conv_bias"))
            self.mixins.append(
                self.add_weight((s.condition_size, z), _torch_default(s.condition_size), name=f"layer{i}_mixin")
            )
            if s.layer1x1:
                live = self.residual_output or i + 1 < s.num_layers
                self.layer1x1_kernels.append(
                    self.add_weight((b, c), _torch_default(b), name=f"layer{i}_layer1x1", trainable=live)
                )
                self.layer1x1_biases.append(
                    self.add_weight((c,), _torch_default(b), name=f"layer{i}_layer1x1_bias", trainable=live)
                )
            self.films.append({key: self._film_weights(i, key) for key in s.films})
        head_init = _torch_default(s.head_kernel_size * b)
        self.head_kernel = self.add_weight((s.head_kernel_size, b, s.head_size), head_init, name="head")
        self.head_bias = self.add_weight((s.head_size,), head_init, name="head_bias") if s.head_bias else None

    def _film_weights(self, i: int, key: str) -> tuple[Any, Any]:
        """FiLM `key` of layer i: the (condition_size, 2D) kernel (zeros) and the 2D bias (1 for the scale rows,
        0 for the shift rows), so that it starts as the identity."""
        d = self.spec.film_dim(key)
        kernel = self.add_weight((self.spec.condition_size, 2 * d), "zeros", name=f"layer{i}_{key}")
        bias_init = keras.initializers.Constant([1.0] * d + [0.0] * d)
        return kernel, self.add_weight((2 * d,), bias_init, name=f"layer{i}_{key}_bias")

    def _film(self, i: int, key: str, v: Tensor, condition: Tensor) -> Tensor:
        """FiLM(v, c) = v * S(c) + T(c) when layer i has FiLM `key` on, else v."""
        if key not in self.films[i]:
            return v
        kernel, bias = self.films[i][key]
        st = ops.matmul(condition, kernel) + bias
        d = self.spec.film_dim(key)
        return v * st[..., :d] + st[..., d:]

    def call(self, inputs: list[Tensor]) -> list[Tensor]:
        s = self.spec
        layer_input, condition = inputs[0], inputs[1]
        head_sum = inputs[2] if len(inputs) > 2 else None
        h = ops.matmul(layer_input, self.rechannel)
        for i, d in enumerate(s.dilations):
            conv = causal_conv(self._film(i, "conv_pre_film", h, condition), self.conv_kernels[i], d)
            conv = self._film(i, "conv_post_film", conv + self.conv_biases[i], condition)
            mixin_in = self._film(i, "input_mixin_pre_film", condition, condition)
            mixin = self._film(i, "input_mixin_post_film", ops.matmul(mixin_in, self.mixins[i]), condition)
            z = self._film(i, "activation_pre_film", conv + mixin, condition)
            act = activation(s.activations[i], z[..., : s.bottleneck] if s.gated else z, s.negative_slope)
            a = act * ops.sigmoid(z[..., s.bottleneck :]) if s.gated else act
            a = self._film(i, "activation_post_film", a, condition)
            head_sum = a if head_sum is None else head_sum + a
            if s.layer1x1 and (self.residual_output or i + 1 < s.num_layers):
                h = h + ops.matmul(a, self.layer1x1_kernels[i]) + self.layer1x1_biases[i]
        head = causal_conv(head_sum, self.head_kernel, 1)
        if self.head_bias is not None:
            head = head + self.head_bias
        return [h, head]

    def compute_output_shape(self, input_shape: Any) -> list[tuple[Any, ...]]:
        batch, time = input_shape[0][0], input_shape[0][1]
        return [(batch, time, self.spec.channels), (batch, time, self.spec.head_size)]

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "spec": self.spec.to_dict(), "residual_output": self.residual_output}


@keras.saving.register_keras_serializable(package="rtnt")
class WaveNetHeadScale(keras.layers.Layer):
    """Multiplies the last head output by NAM's fixed `head_scale` (a non-trainable weight, so the
    parameter count equals the `.nam` weight count, whose last value it is)."""

    def __init__(self, scale: float = 0.02, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.initial_scale = float(scale)

    def build(self, input_shape: Any) -> None:
        self.scale = self.add_weight(
            (), keras.initializers.Constant(self.initial_scale), trainable=False, name="head_scale"
        )

    def call(self, inputs: Tensor) -> Tensor:
        return inputs * self.scale

    def compute_output_shape(self, input_shape: Any) -> Any:
        return input_shape

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "scale": self.initial_scale}


def build_wavenet(preset: Any, inputs: Tensor, films: tuple[str, ...] = ()) -> Tensor:
    """The output tensor of a `wavenet` preset's layer arrays on `inputs` (batch, time, 1 + K): the audio, then
    the K knob values of a knob-conditioned model (`with_knob_inputs`), with the NAM FiLMs `films` on in every
    layer (`conditioning=film`: TRAINED_FILMS)."""
    h, head = inputs, None
    specs = with_films(with_knob_inputs(layer_array_specs(preset), int(inputs.shape[-1]) - 1), films)
    for i, spec in enumerate(specs):
        array = WaveNetLayerArray(spec, residual_output=i + 1 < len(specs), name=f"array{i}")
        h, head = array([h, inputs] if head is None else [h, inputs, head])
    return WaveNetHeadScale(float(preset.head_scale), name="head_scale")(head)


def wavenet_parts(model: keras.Model) -> tuple[list[WaveNetLayerArray], WaveNetHeadScale] | None:
    """The layer arrays (in order) and head scale of a model built by `build_wavenet`, else None."""
    arrays = [layer for layer in model.layers if isinstance(layer, WaveNetLayerArray)]
    scales = [layer for layer in model.layers if isinstance(layer, WaveNetHeadScale)]
    if not arrays or len(scales) != 1:
        return None
    return arrays, scales[0]
