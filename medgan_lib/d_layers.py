"""Building blocks of the discriminators: the image input, the backbone's input adapter, minibatch
standard deviation and the paper's head (BatchNormalization + Dense(1), section 2.3)."""
from __future__ import annotations

from typing import Any

import tensorflow as tf
from tensorflow import keras

from medgan_lib.backbones import preprocess_fn
from medgan_lib.distribute import global_variance


class ToBackboneInput(keras.layers.Layer):
    """Images in [-1, 1] (1 or 3 channels) -> the backbone's expected input. No weights."""

    def __init__(self, backbone: str, target_size: tuple[int, int], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.backbone = backbone
        self.target_size = tuple(int(s) for s in target_size)

    def call(self, images: tf.Tensor) -> tf.Tensor:
        """Replicate grey, resize if needed, map to [0, 255], apply preprocess_input."""
        x = tf.cast(images, tf.float32)
        if x.shape[-1] == 1:
            x = tf.repeat(x, 3, axis=-1)
        if tuple(x.shape[1:3]) != self.target_size:
            x = tf.image.resize(x, self.target_size, method="bilinear")
        return preprocess_fn(self.backbone)((x + 1.0) * 127.5)

    def get_config(self) -> dict[str, Any]:
        """Serialisable config."""
        return {**super().get_config(), "backbone": self.backbone,
                "target_size": self.target_size}


class MinibatchStdDev(keras.layers.Layer):
    """Append the batch-mean of per-feature standard deviations across the batch.

    Minibatch standard deviation (Karras et al., 2018) on pooled features; a project option.
    """

    def call(self, features: tf.Tensor) -> tf.Tensor:
        """(N, F) -> (N, F + 1)."""
        std = tf.sqrt(global_variance(features) + 1e-8)
        stat = tf.ones_like(features[:, :1]) * tf.reduce_mean(std)
        return tf.concat([features, stat], axis=-1)


class GroupStdDev(keras.layers.Layer):
    """Append one channel: the standard deviation across groups of ``group_size`` consecutive images.

    ProGAN's minibatch standard deviation on feature maps (Karras et al., 2018, section 3): for
    each group, the per-feature, per-pixel standard deviation over its images, averaged to one
    number, broadcast as an extra channel to the group's images. A generator that collapses gives
    its groups a near-zero value that the discriminator can see. Groups are consecutive rows, so
    in a batch ``[real; fake]`` with both halves a multiple of ``group_size`` no group mixes them.
    """

    def __init__(self, group_size: int = 4, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.group_size = int(group_size)

    def call(self, maps: tf.Tensor) -> tf.Tensor:
        """(N, H, W, C) -> (N, H, W, C + 1); N must be a multiple of the group size."""
        n, height, width, channels = (tf.shape(maps)[i] for i in range(4))
        group = tf.minimum(self.group_size, n)
        grouped = tf.reshape(maps, (-1, group, height, width, channels))
        std = tf.sqrt(tf.math.reduce_variance(grouped, axis=1) + 1e-8)
        stat = tf.reduce_mean(std, axis=(1, 2, 3))
        stat = tf.repeat(stat, group)[:, None, None, None] * tf.ones_like(maps[..., :1])
        return tf.concat([maps, stat], axis=-1)

    def get_config(self) -> dict[str, Any]:
        """Serialisable config."""
        return {**super().get_config(), "group_size": self.group_size}


def image_input(image_shape: tuple[int, int, int], any_channels: bool = False) -> keras.KerasTensor:
    """The discriminator's input layer; 1 or 3 channels unless ``any_channels`` (no backbone to feed)."""
    height, width, channels = (int(v) for v in image_shape)
    if channels not in (1, 3) and not any_channels:
        raise ValueError(f"images must have 1 or 3 channels, got shape {image_shape}")
    return keras.Input((height, width, channels), name="images")


def paper_head(n_features: int, minibatch_std: bool) -> keras.Model:
    """The paper's head, features (N, F) -> logits (N, 1): [MinibatchStdDev,] BN, Dense(1).

    float32 also under a mixed precision policy (so are the logits).
    """
    feat_in = keras.Input((n_features,), name="pooled_features")
    h = MinibatchStdDev(name="minibatch_std", dtype="float32")(feat_in) if minibatch_std else feat_in
    h = keras.layers.BatchNormalization(center=False, scale=False, name="head_bn", dtype="float32")(h)
    logits = keras.layers.Dense(1, use_bias=False, name="logit", dtype="float32")(h)
    return keras.Model(feat_in, logits, name="head")
