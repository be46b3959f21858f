"""The paper's generator (section 2.2, Figure 3, Table 1), in its closest literal reading.

``z -> Dense -> Dropout -> BatchNormalization -> Reshape(start, start, channels)`` and then
``levels`` upsampling levels. Each level ``l`` has three parallel branches whose outputs are
concatenated, each doubling the spatial size:

* A: Conv2D 3x3 -> GroupNormalization -> UpSampling2D 2x2 -> GELU
* B: Conv2D 1x1 -> Conv2DTranspose 3x3, stride 2
* C: Conv2D 1x1 -> Conv2DTranspose 1x1, stride 2

All with ``f_l = width * 2**(levels - l)`` filters: 32, 16, 8, 4, 2, 1 for the paper's six levels
(every garbled formula of Table 1 evaluates to these). The last level's concatenation of three
``width``-filter branches is the image when ``3 * width`` equals the image channels (the paper:
width 1, RGB); otherwise a 1x1 convolution maps it to the image channels. ``tanh`` bounds the
output to [-1, 1].

Branch C's transposed convolution is implemented by ``StridedPointwiseTranspose``: the same
parameters and outputs as ``Conv2DTranspose(kernel_size=1, strides=2, padding="same")``, but
without TensorFlow 2.15's oneDNN CPU kernel for that case, which corrupts the heap here.
"""
from __future__ import annotations

import math

import tensorflow as tf

from . import addons
from .config import Config
from .distribute import global_draw
from .params import compare_counts, parameter_counts

PAPER_G_PARAMS = {"total": 17_074_528, "trainable": 17_016_608, "non_trainable": 57_920}


class StridedPointwiseTranspose(tf.keras.layers.Layer):
    """Exact equivalent of ``Conv2DTranspose(filters, 1, strides=2, padding="same")``.

    A 1x1 transposed convolution with stride 2 places ``W x + b`` on every even pixel of the
    doubled grid and ``b`` elsewhere. The kernel keeps Conv2DTranspose's layout
    ``(1, 1, filters, in_channels)`` so weights are interchangeable.
    """

    def __init__(self, filters: int, **kwargs) -> None:
        super().__init__(**kwargs)
        self.filters = filters

    def build(self, input_shape: tf.TensorShape) -> None:
        in_channels = int(input_shape[-1])
        self.kernel = self.add_weight(
            name="kernel", shape=(1, 1, self.filters, in_channels), initializer="glorot_uniform"
        )
        self.bias = self.add_weight(name="bias", shape=(self.filters,), initializer="zeros")
        super().build(input_shape)

    def call(self, inputs: tf.Tensor) -> tf.Tensor:
        pointwise = tf.einsum("bhwc,fc->bhwf", inputs, tf.cast(self.kernel[0, 0], inputs.dtype))
        shape = tf.shape(pointwise)
        spread = pointwise[:, :, tf.newaxis, :, tf.newaxis, :]
        spread = tf.pad(spread, [[0, 0], [0, 0], [0, 1], [0, 0], [0, 1], [0, 0]])
        doubled = tf.reshape(spread, [shape[0], 2 * shape[1], 2 * shape[2], self.filters])
        return doubled + tf.cast(self.bias, inputs.dtype)

    def compute_output_shape(self, input_shape: tf.TensorShape) -> tf.TensorShape:
        b, h, w, _ = input_shape
        return tf.TensorShape([b, None if h is None else 2 * h, None if w is None else 2 * w, self.filters])

    def get_config(self) -> dict:
        return {**super().get_config(), "filters": self.filters}


class CheckpointedDropout(tf.keras.layers.Dropout):
    """Keras Dropout whose masks come from a ``tf.random.Generator`` owned by the layer.

    Checkpoints save the generator's state with the weights, so a resumed run drops exactly the
    units an uninterrupted run would have (Keras' own Dropout keeps its random state outside
    the checkpoint). Under a ``tf.distribute`` strategy every replica takes its rows of one mask
    drawn for the global batch, the single-device mask.
    """

    def __init__(self, rate: float, seed: int, **kwargs) -> None:
        super().__init__(rate, seed=seed, **kwargs)
        self.mask_generator = tf.random.Generator.from_seed(seed)

    def call(self, inputs: tf.Tensor, training: bool | None = None) -> tf.Tensor:
        if not training or self.rate == 0:
            return inputs
        mask = global_draw(lambda shape: self.mask_generator.uniform(shape, dtype=inputs.dtype), tf.shape(inputs))
        keep = mask >= self.rate
        return tf.where(keep, inputs / (1.0 - self.rate), tf.zeros_like(inputs))


def level_filters(config: Config, level: int) -> int:
    """Filters of every convolution in upsampling level ``level`` (1-based)."""
    return config.width * 2 ** (config.levels - level)


def _upsampling_level(x: tf.Tensor, level: int, filters: int, gn_groups: int) -> tf.Tensor:
    name = f"level{level}"
    a = tf.keras.layers.Conv2D(filters, 3, padding="same", name=f"{name}_conv3x3")(x)
    a = addons.group_normalization(math.gcd(filters, gn_groups), name=f"{name}_groupnorm")(a)
    a = tf.keras.layers.UpSampling2D(2, name=f"{name}_upsample")(a)
    a = addons.gelu_layer(name=f"{name}_gelu")(a)
    b = tf.keras.layers.Conv2D(filters, 1, padding="same", name=f"{name}_conv1x1_b")(x)
    b = tf.keras.layers.Conv2DTranspose(filters, 3, strides=2, padding="same", name=f"{name}_deconv3x3")(b)
    c = tf.keras.layers.Conv2D(filters, 1, padding="same", name=f"{name}_conv1x1_c")(x)
    c = StridedPointwiseTranspose(filters, name=f"{name}_deconv1x1")(c)
    return tf.keras.layers.Concatenate(name=f"{name}_concat")([a, b, c])


def build_generator(config: Config) -> tf.keras.Model:
    """The generator for ``config``: latent vectors ``(N, latent_dim)`` to images in [-1, 1].

    ``config.generator="resize_conv"`` builds :mod:`medgan_lib.resize_generator`'s instead of the
    paper's.
    """
    if config.generator == "resize_conv":
        from .resize_generator import build_resize_conv_generator  # it imports level_filters from here

        return build_resize_conv_generator(config)
    z = tf.keras.Input(shape=(config.latent_dim,), name="z")
    x = tf.keras.layers.Dense(config.start_size**2 * config.start_channels, name="dense")(z)
    x = CheckpointedDropout(config.dropout, seed=config.seed, name="dropout")(x)
    x = tf.keras.layers.BatchNormalization(name="batchnorm")(x)
    x = tf.keras.layers.Reshape((config.start_size, config.start_size, config.start_channels), name="reshape")(x)
    for level in range(1, config.levels + 1):
        x = _upsampling_level(x, level, level_filters(config, level), config.gn_groups)
    if x.shape[-1] != config.output_channels:
        x = tf.keras.layers.Conv2D(config.output_channels, 1, name="to_image")(x)
    image = tf.keras.layers.Activation("tanh", name="tanh", dtype="float32")(x)
    return tf.keras.Model(z, image, name="generator")


def generator_parameter_table(config: Config, model: tf.keras.Model | None = None) -> list[dict]:
    """Paper Table 3's generator column beside the counts of our model for ``config``."""
    return compare_counts(parameter_counts(model or build_generator(config)), PAPER_G_PARAMS)


TABLE1_ORDER = ("conv3x3", "upsample", "conv1x1_b", "deconv3x3", "conv1x1_c", "deconv1x1")


def level_table(model: tf.keras.Model, level: int = 1) -> list[dict]:
    """Paper Table 1 for one upsampling level, read from the built model's layers."""
    rows = []
    for suffix in TABLE1_ORDER:
        layer = model.get_layer(f"level{level}_{suffix}")
        cfg = layer.get_config()
        kind = "Conv2DTranspose" if isinstance(layer, StridedPointwiseTranspose) else type(layer).__name__
        kernel = cfg.get("kernel_size", (1, 1) if isinstance(layer, StridedPointwiseTranspose) else None)
        strides = cfg.get("strides", (2, 2) if isinstance(layer, StridedPointwiseTranspose) else None)
        rows.append(
            {
                "layer": layer.name,
                "type": kind,
                "kernel": "x".join(map(str, kernel)) if kernel else "-",
                "pool_size": "x".join(map(str, cfg["size"])) if "size" in cfg else "-",
                "padding": cfg.get("padding", "same" if isinstance(layer, StridedPointwiseTranspose) else "-"),
                "filters": cfg.get("filters", "-"),
                "strides": "x".join(map(str, strides)) if kind != "Conv2D" and strides else "-",
                "output_shape": "x".join(str(d) for d in layer.output.shape[1:]),
            }
        )
    return rows
