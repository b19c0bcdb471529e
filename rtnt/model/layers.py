"""Custom Keras layers used by rtnt's models, registered for `keras.models.load_model`."""

from __future__ import annotations

from typing import Any

import keras


@keras.saving.register_keras_serializable(package="rtnt")
class SmoothTanh(keras.layers.Layer):
    """Smoothed tanh: tanh(x / alpha), or alpha * tanh(x / alpha) when `scaled`.

    alpha = 1 is plain tanh. The scaled form has slope 1 at zero and approaches the identity as alpha
    grows. The RTNeural exporter folds 1/alpha into the preceding layer (and alpha into the next one
    for the scaled form), so exported models hold plain tanh.
    """

    def __init__(self, alpha: float = 1.0, scaled: bool = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if not alpha > 0:
            raise ValueError(f"SmoothTanh alpha must be > 0, got {alpha}")
        self.alpha = float(alpha)
        self.scaled = bool(scaled)

    def call(self, inputs: Any) -> Any:
        y = keras.ops.tanh(inputs / self.alpha)
        return y * self.alpha if self.scaled else y

    def compute_output_shape(self, input_shape: Any) -> Any:
        return input_shape

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "alpha": self.alpha, "scaled": self.scaled}
