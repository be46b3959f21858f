"""A generator without checkerboard artefacts: resize, then convolve (Odena et al. 2016).

``z -> Dense -> Reshape(start, start, start_channels) -> BatchNorm -> ReLU`` and then ``levels``
levels of ``UpSampling2D(2, nearest) -> Conv2D 3x3 -> BatchNorm -> ReLU``, with the paper
generator's level widths (``width * 2**(levels - l)`` filters at level ``l``), and a final
``Conv2D 3x3`` to the image channels bounded by ``tanh``. Nearest-neighbour upsampling followed
by a 3x3 convolution gives every output pixel the same number of contributing weights, so no
period-2 pattern is built in, unlike stride-2 transposed convolutions whose kernels overlap
unevenly (the paper's 3x3/2 branch) or not at all (its 1x1/2 branch, which writes only every
second pixel). The image size is the paper generator's: ``start_size * 2**levels``.

With ``g_noise_levels`` (the last levels, e.g. 2: the two finest) each of those levels adds
per-pixel Gaussian noise with a learned per-channel strength after its convolution
(:class:`NoiseInjection`, as StyleGAN's noise inputs): the pixel-scale grain of X-ray images
(quantum noise) is then a random input the network scales, instead of a pattern it must
compute from the latent vector. With ``g_noise_modulated`` the strength is also scaled per
image by ``exp(Dense(z))`` (initially 1): X-ray frames differ in dose, so in how grainy they are,
and an unmodulated strength gives every generated image the same grain.
"""
from __future__ import annotations

import tensorflow as tf

from .config import Config
from .generator import level_filters

L = tf.keras.layers
LATENT_MIX = 0.6180339887  # golden-ratio weights: seed = bitcast(sum_i z_i (1 + 0.618 i))


def latent_batch_seed(z: tf.Tensor, stream: int) -> tf.Tensor:
    """A stateless-RNG seed ``[s, stream]`` that is a function of the latent batch ``z`` only."""
    weights = 1.0 + LATENT_MIX * tf.range(tf.shape(z)[-1], dtype=tf.float32)
    mixed = tf.reduce_sum(tf.cast(tf.stop_gradient(z), tf.float32) * weights)
    return tf.stack([tf.bitcast(mixed, tf.int32), tf.constant(stream, tf.int32)])


class NoiseInjection(L.Layer):
    """``features + strength * noise``: one N(0, 1) map per image, shared by all channels,
    scaled by a trainable per-channel ``strength`` (initially 0, so the layer starts as the
    identity); with ``modulated`` also by ``exp(z . w + b)`` per image (``w``, ``b`` trainable,
    initially 0).

    The noise is drawn by a stateless generator seeded from the latent batch (see
    :func:`latent_batch_seed`) and the layer's ``stream``: the same latent batch always gives the
    same images (evaluation, fixed-noise samples, a resumed run), the same latent vector in
    another batch gets other grain but the same content, and there is no random state to
    checkpoint.
    """

    def __init__(self, stream: int, modulated: bool = False, **kwargs) -> None:
        super().__init__(**kwargs)
        self.stream = stream
        self.modulated = modulated

    def build(self, input_shape: list[tf.TensorShape]) -> None:
        self.strength = self.add_weight(name="strength", shape=(int(input_shape[0][-1]),), initializer="zeros")
        if self.modulated:
            self.scale = L.Dense(1, kernel_initializer="zeros", name="log_scale")
            self.scale.build(input_shape[1])
        super().build(input_shape)

    def strength_per_image(self, z: tf.Tensor, dtype: tf.DType) -> tf.Tensor:
        """(N, 1, 1, C): the per-channel strength, times ``exp(Dense(z))`` per image when modulated."""
        strength = tf.cast(self.strength, dtype)[None, None, None, :]
        if not self.modulated:
            return strength
        return strength * tf.cast(tf.exp(self.scale(tf.cast(z, tf.float32))), dtype)[:, None, None, :]

    def call(self, inputs: list[tf.Tensor]) -> tf.Tensor:
        features, z = inputs
        shape = tf.concat([tf.shape(features)[:3], [1]], axis=0)
        noise = tf.random.stateless_normal(shape, latent_batch_seed(z, self.stream), dtype=features.dtype)
        return features + self.strength_per_image(z, features.dtype) * noise

    def get_config(self) -> dict:
        return {**super().get_config(), "stream": self.stream, "modulated": self.modulated}


def build_resize_conv_generator(config: Config) -> tf.keras.Model:
    """The resize-convolution generator for ``config``: ``(N, latent_dim)`` to images in [-1, 1]."""
    z = tf.keras.Input(shape=(config.latent_dim,), name="z")
    x = L.Dense(config.start_size**2 * config.start_channels, name="dense")(z)
    x = L.Reshape((config.start_size, config.start_size, config.start_channels), name="reshape")(x)
    x = L.BatchNormalization(name="batchnorm")(x)
    x = L.ReLU(name="relu")(x)
    for level in range(1, config.levels + 1):
        x = L.UpSampling2D(2, interpolation="nearest", name=f"level{level}_upsample")(x)
        x = L.Conv2D(level_filters(config, level), 3, padding="same", use_bias=False, name=f"level{level}_conv3x3")(x)
        if level > config.levels - config.g_noise_levels:
            x = NoiseInjection(level, config.g_noise_modulated, name=f"level{level}_noise")([x, z])
        x = L.BatchNormalization(name=f"level{level}_batchnorm")(x)
        x = L.ReLU(name=f"level{level}_relu")(x)
    x = L.Conv2D(config.output_channels, 3, padding="same", name="to_image")(x)
    image = L.Activation("tanh", name="tanh", dtype="float32")(x)
    return tf.keras.Model(z, image, name="generator")
