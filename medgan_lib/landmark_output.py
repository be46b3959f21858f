"""A labelled generator's landmark output: each landmark a point and a presence, drawn as a heatmap.

From the generator's last feature map (N, s, s, C), per landmark ``k``:

* position: a 3x3 convolution makes one logit map; the expected pixel of its spatial softmax
  (soft-argmax, Nibali et al. 2018, "Numerical coordinate regression with convolutional neural
  networks") is the point ``(x_k, y_k)``, pixel centres at 0 .. s-1 as in
  :func:`medgan_lib.landmarks.encode_heatmaps`;
* presence: global average pooling and a dense layer make one logit; ``p_k = sigmoid(logit)``,
  drawn as ``h_k = [p_k > 0.5]`` with the gradient of ``p_k`` (straight-through estimator, Bengio
  et al. 2013), so a landmark is there or not, as in the real frames;
* the channel the discriminator sees: ``2 h_k exp(-d^2 / (2 sigma^2)) - 1``, ``d`` the distance
  of each pixel centre to the point: exactly the encoding of the real landmarks (in [-1, 1]).

A generated heatmap therefore has the form of a real one by construction, so the discriminator can
only judge where the points are and whether they are there, not how a heatmap is drawn (measured:
free tanh heatmap channels had a noisy background and low peaks, a soft presence drew peaks of
half height, and in both cases the discriminator won). The points decode back through
:func:`medgan_lib.landmarks.decode_heatmaps` to within 0.05 px.
"""
from __future__ import annotations

import tensorflow as tf

from .landmarks import DEFAULT_SIGMA


class LandmarkHeatmaps(tf.keras.layers.Layer):
    """Features (N, s, s, C) -> heatmaps (N, s, s, K) in [-1, 1], one rendered Gaussian per landmark."""

    def __init__(self, landmarks: int, sigma: float = DEFAULT_SIGMA, **kwargs):
        super().__init__(**kwargs)
        self.landmarks = int(landmarks)
        self.sigma = float(sigma)
        self.position_logits = tf.keras.layers.Conv2D(self.landmarks, 3, padding="same", name="position_logits",
                                                      dtype=self.dtype_policy)
        self.presence_logits = tf.keras.layers.Dense(self.landmarks, name="presence_logits", dtype=self.dtype_policy)

    def build(self, input_shape) -> None:
        self.position_logits.build(input_shape)
        self.presence_logits.build((input_shape[0], input_shape[-1]))
        super().build(input_shape)

    def points(self, features: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        """(xy (N, K, 2) in pixels, presence probability (N, K)) of ``features``."""
        features = tf.cast(features, self.compute_dtype)
        logits = self.position_logits(features)  # (N, s, s, K)
        height, width = logits.shape[1], logits.shape[2]
        weights = tf.nn.softmax(tf.reshape(tf.transpose(logits, (0, 3, 1, 2)), (-1, self.landmarks, height * width)))
        rows, cols = tf.meshgrid(tf.range(height, dtype=weights.dtype), tf.range(width, dtype=weights.dtype),
                                 indexing="ij")
        x = tf.reduce_sum(weights * tf.reshape(cols, (1, 1, -1)), axis=-1)
        y = tf.reduce_sum(weights * tf.reshape(rows, (1, 1, -1)), axis=-1)
        presence = tf.sigmoid(self.presence_logits(tf.reduce_mean(features, axis=(1, 2))))
        return tf.stack([x, y], axis=-1), presence

    def call(self, features: tf.Tensor) -> tf.Tensor:
        xy, presence = self.points(features)
        present = presence + tf.stop_gradient(tf.cast(presence > 0.5, presence.dtype) - presence)
        height, width = features.shape[1], features.shape[2]
        grid_x = tf.range(width, dtype=xy.dtype)
        grid_y = tf.range(height, dtype=xy.dtype)
        gx = tf.exp(-tf.square(grid_x[None, None, :] - xy[..., 0:1]) / (2 * self.sigma**2))  # (N, K, w)
        gy = tf.exp(-tf.square(grid_y[None, None, :] - xy[..., 1:2]) / (2 * self.sigma**2))  # (N, K, h)
        unit = gy[..., :, None] * gx[..., None, :] * present[..., None, None]  # (N, K, h, w)
        return 2.0 * tf.transpose(unit, (0, 2, 3, 1)) - 1.0

    def get_config(self) -> dict:
        return {**super().get_config(), "landmarks": self.landmarks, "sigma": self.sigma}


def with_landmark_heatmaps(features: tf.Tensor, image: tf.Tensor, landmarks: int) -> tf.Tensor:
    """The labelled generator's output: ``image`` followed by ``landmarks`` heatmap channels
    rendered from ``features`` (float32, also under a mixed precision policy)."""
    heatmaps = LandmarkHeatmaps(landmarks, name="landmark_heatmaps", dtype="float32")(features)
    return tf.keras.layers.Concatenate(name="image_and_heatmaps", dtype="float32")([image, heatmaps])
