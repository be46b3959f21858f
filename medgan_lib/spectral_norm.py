"""Spectral normalisation (Miyato et al. 2018) of convolution and dense kernels.

A layer here computes with ``W / sigma(W)``, where ``sigma(W)`` is the largest singular value of
the kernel reshaped to ``(fan_in, filters)``, estimated by power iteration with a persistent
vector ``u`` (one iteration per training call, as in the paper). The raw kernel stays the
trainable variable and the gradient flows through ``sigma`` (``u`` and ``v`` are constants of
the step), so each layer is 1-Lipschitz in its weights' spectral norm whatever the optimiser
does. ``u`` is a non-trainable weight: it is checkpointed with the model, so a resumed run
continues the same estimate. Outside training ``u`` is used as it is, without an update.
"""
from __future__ import annotations

from typing import Any

import tensorflow as tf


class _SpectralKernel:
    """Mixin for a Keras layer with a ``kernel``: the power-iteration vector and ``W / sigma``."""

    def __init__(self, *args: Any, power_iterations: int = 1, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.power_iterations = power_iterations

    def build(self, input_shape: tf.TensorShape) -> None:
        super().build(input_shape)
        filters = int(self.kernel.shape[-1])
        self.singular_vector = self.add_weight(
            name="singular_vector", shape=(1, filters), trainable=False,
            initializer=tf.keras.initializers.RandomNormal(seed=0), dtype=tf.float32)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "power_iterations": self.power_iterations}

    def normalised_kernel(self, training: bool | None) -> tf.Tensor:
        """The kernel divided by its estimated top singular value; ``u`` is updated in training."""
        kernel = tf.cast(self.kernel, tf.float32)
        matrix = tf.reshape(kernel, (-1, kernel.shape[-1]))
        u = self.singular_vector
        for _ in range(self.power_iterations):
            v = tf.math.l2_normalize(tf.matmul(u, matrix, transpose_b=True))
            u = tf.math.l2_normalize(tf.matmul(v, matrix))
        u, v = tf.stop_gradient(u), tf.stop_gradient(v)
        if training:
            self.singular_vector.assign(u)
        sigma = tf.reduce_sum(tf.matmul(v, matrix) * u)
        return tf.cast(kernel / sigma, self.compute_dtype)


class SpectralConv2D(_SpectralKernel, tf.keras.layers.Conv2D):
    """``Conv2D`` computing with its spectrally normalised kernel (channels-last)."""

    def call(self, inputs: tf.Tensor, training: bool | None = None) -> tf.Tensor:
        outputs = self.convolution_op(inputs, self.normalised_kernel(training))
        if self.use_bias:
            outputs = tf.nn.bias_add(outputs, self.bias)
        return self.activation(outputs)


class SpectralDense(_SpectralKernel, tf.keras.layers.Dense):
    """``Dense`` computing with its spectrally normalised kernel (inputs of rank 2)."""

    def call(self, inputs: tf.Tensor, training: bool | None = None) -> tf.Tensor:
        outputs = tf.matmul(inputs, self.normalised_kernel(training))
        if self.use_bias:
            outputs = tf.nn.bias_add(outputs, self.bias)
        return self.activation(outputs)
