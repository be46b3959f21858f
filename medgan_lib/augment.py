"""DiffAugment (Zhao et al. 2020): differentiable augmentation of every image a discriminator sees.

``with_diff_augment(D)`` is ``D(T(x))``: colour, translation and cutout, differentiable, random
per image, applied on EVERY call (D step and G step, training or inference mode, real and
generated alike), its randomness from a ``tf.random.Generator`` owned by the layer and so
checkpointed with D. The wrapped model has no top-level "head" layer, so the GAN never caches
real features for it (they change every step).
"""
from __future__ import annotations

from typing import Any

import tensorflow as tf
from tensorflow import keras

from .config import AUGMENT_POLICY


class DiffAugment(keras.layers.Layer):
    """Differentiable augmentation (Zhao et al. 2020) of images in [-1, 1]; no weights.

    ``policy`` is a subset of ("color", "translation", "cutout"), applied in that order with
    DiffAugment's settings: brightness +U(-0.5, 0.5), saturation x U(0, 2) (identity on grey),
    contrast x U(0.5, 1.5); a shift of up to 1/8 of the size with zero fill; one zero square of
    half the size at a random centre. Every image draws its own parameters from the layer's
    ``tf.random.Generator``, on every call. An empty policy is the identity.
    """

    POLICY = AUGMENT_POLICY

    def __init__(self, policy: tuple[str, ...] = POLICY, seed: int = 0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        unknown = set(policy) - set(self.POLICY)
        if unknown:
            raise ValueError(f"unknown DiffAugment policy {sorted(unknown)}; choose from {self.POLICY}")
        self.policy = tuple(p for p in self.POLICY if p in policy)
        self.seed = seed
        self.rng = tf.random.Generator.from_seed(seed).split(1)[0]  # not the GAN's noise stream

    def _factor(self, x: tf.Tensor) -> tf.Tensor:
        """One U(0, 1) draw per image, shaped (N, 1, 1, 1)."""
        return self.rng.uniform(tf.stack([tf.shape(x)[0], 1, 1, 1]))

    def _color(self, x: tf.Tensor) -> tf.Tensor:
        x = x + (self._factor(x) - 0.5)
        mean = tf.reduce_mean(x, axis=3, keepdims=True)
        x = (x - mean) * (self._factor(x) * 2.0) + mean
        mean = tf.reduce_mean(x, axis=[1, 2, 3], keepdims=True)
        return (x - mean) * (self._factor(x) + 0.5) + mean

    def _offsets(self, x: tf.Tensor, low: int, high: int) -> tf.Tensor:
        """Integer draws in [low, high) per image, shaped (N, 1)."""
        return self.rng.uniform(tf.stack([tf.shape(x)[0], 1]), low, high, dtype=tf.int32)

    def _translation(self, x: tf.Tensor, ratio: float = 0.125) -> tf.Tensor:
        height, width = x.shape[1], x.shape[2]
        shift_y, shift_x = int(height * ratio + 0.5), int(width * ratio + 0.5)
        rows = tf.range(height)[None, :] - self._offsets(x, -shift_y, shift_y + 1)  # source rows (N, H)
        cols = tf.range(width)[None, :] - self._offsets(x, -shift_x, shift_x + 1)
        x = tf.gather(x, tf.clip_by_value(rows, 0, height - 1), axis=1, batch_dims=1)
        x = tf.gather(x, tf.clip_by_value(cols, 0, width - 1), axis=2, batch_dims=1)
        inside = ((rows >= 0) & (rows < height))[:, :, None] & ((cols >= 0) & (cols < width))[:, None, :]
        return x * tf.cast(inside, x.dtype)[..., None]

    def _cutout(self, x: tf.Tensor, ratio: float = 0.5) -> tf.Tensor:
        height, width = x.shape[1], x.shape[2]
        size_y, size_x = int(height * ratio + 0.5), int(width * ratio + 0.5)
        top = self._offsets(x, 0, height + 1 - size_y % 2)[:, :, None] - size_y // 2  # (N, 1, 1)
        left = self._offsets(x, 0, width + 1 - size_x % 2)[:, :, None] - size_x // 2
        ys, xs = tf.range(height)[None, :, None], tf.range(width)[None, None, :]
        hole = (ys >= top) & (ys < top + size_y) & (xs >= left) & (xs < left + size_x)
        return x * (1.0 - tf.cast(hole, x.dtype))[..., None]

    def call(self, images: tf.Tensor) -> tf.Tensor:
        """Apply the policy to every image (float32)."""
        x = tf.cast(images, tf.float32)
        for name in self.policy:
            x = getattr(self, f"_{name}")(x)
        return x

    def get_config(self) -> dict[str, Any]:
        """Serialisable config."""
        return {**super().get_config(), "policy": self.policy, "seed": self.seed}


def with_diff_augment(model: keras.Model, seed: int = 0, policy: tuple[str, ...] = AUGMENT_POLICY) -> keras.Model:
    """``D(T(x))``: ``model`` behind a :class:`DiffAugment` layer (default: the full policy)."""
    images = keras.Input(model.input_shape[1:], name="images")
    augmented = DiffAugment(policy, seed=seed, name="diff_augment", dtype="float32")(images)
    return keras.Model(images, model(augmented), name=f"{model.name}_diffaugment")
