"""TensorFlow kernels of the gray-box blocks: biquad cascades by frequency sampling, FFT convolution.

Frequency sampling (as NablAFx and DDSP train their filters): the cascade's transfer function
H(z) = prod_s (b0 + b1 z^-1 + b2 z^-2) / (1 + a1 z^-1 + a2 z^-2) is evaluated on the n_fft / 2 + 1 bins of the
real FFT and multiplied into the spectrum of the zero-padded signal. A product of spectra is a circular
convolution with the impulse response h time-aliased modulo n_fft; with n_fft >= 2 T for a T-sample signal the
first T output samples equal the recursion's from zero state up to the tail of h beyond T samples. That tail
is what the exported exact recursion keeps and training drops: the tests bound it.
"""

from __future__ import annotations

import math

import tensorflow as tf


def next_pow2(n: tf.Tensor) -> tf.Tensor:
    """The smallest power of two >= n (n >= 1), as int32."""
    n = tf.cast(tf.maximum(n, 1), tf.float32)
    return tf.cast(tf.round(2.0 ** tf.math.ceil(tf.math.log(n) / math.log(2.0) - 1e-6)), tf.int32)


def biquad_response(coefficients: tf.Tensor, n_fft: tf.Tensor) -> tf.Tensor:
    """Complex frequency response (n_fft / 2 + 1,) of a cascade of sections, `coefficients` (sections, 5) holding
    b0, b1, b2, a1, a2 (a0 = 1); for (batch, sections, 5) one response per batch row, (batch, n_fft / 2 + 1).
    Evaluated in float64 (a pole near z = 1, e.g. a DC blocker's, leaves 1 - a1 cos(w) - ... with few float32
    digits), returned as complex64."""
    bins = tf.cast(n_fft // 2 + 1, tf.float64)
    w = tf.range(bins, dtype=tf.float64) * (2.0 * math.pi / tf.cast(n_fft, tf.float64))  # (F,)
    z1 = tf.complex(tf.cos(w), -tf.sin(w))  # z^-1 on the unit circle
    z2 = z1 * z1
    c64 = tf.cast(coefficients, tf.float64)
    c = tf.complex(c64, tf.zeros_like(c64))[..., None]  # ([B,] S, 5, 1)
    response = (c[..., 0, 0, :] + c[..., 0, 1, :] * z1 + c[..., 0, 2, :] * z2) / (
        1.0 + c[..., 0, 3, :] * z1 + c[..., 0, 4, :] * z2
    )
    for s in range(1, coefficients.shape[-2]):  # a product loop: XLA cannot differentiate a complex reduce_prod
        response *= (c[..., s, 0, :] + c[..., s, 1, :] * z1 + c[..., s, 2, :] * z2) / (
            1.0 + c[..., s, 3, :] * z1 + c[..., s, 4, :] * z2
        )
    return tf.cast(response, tf.complex64)


def filter_biquads(x: tf.Tensor, coefficients: tf.Tensor) -> tf.Tensor:
    """x (batch, time, 1) through the cascade by frequency sampling at n_fft = next_pow2(2 T) (module doc);
    `coefficients` (sections, 5) for every batch row, or (batch, sections, 5) per row."""
    n = tf.shape(x)[1]
    n_fft = next_pow2(2 * n)
    spectrum = tf.signal.rfft(x[:, :, 0], fft_length=[n_fft])
    response = biquad_response(coefficients, n_fft)
    y = tf.signal.irfft(spectrum * (response if response.shape.rank == 2 else response[None, :]), fft_length=[n_fft])
    return y[:, :n, None]


def fft_convolve(x: tf.Tensor, taps: tf.Tensor) -> tf.Tensor:
    """Causal linear convolution y[t] = sum_k taps[k] x[t - k] of x (batch, time, 1) from zero history, by FFT
    at n_fft = next_pow2(T + K - 1): exact, no circular wrap."""
    n = tf.shape(x)[1]
    n_fft = next_pow2(n + tf.shape(taps)[0] - 1)
    spectrum = tf.signal.rfft(x[:, :, 0], fft_length=[n_fft]) * tf.signal.rfft(taps, fft_length=[n_fft])[None, :]
    return tf.signal.irfft(spectrum, fft_length=[n_fft])[:, :n, None]
