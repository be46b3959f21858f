"""A small trainable convolutional discriminator for the recommended preset (no backbone, no BN).

``images -> [4x4 stride-2 Conv2D -> LeakyReLU(0.2)] x L -> Flatten -> Dense(1)``, filters
32, 64, 128, 256, 256, ... until the maps are 4x4 (four blocks at 64 px), random init, fully
trainable, logits out. With ``spectral_norm`` every convolution and the dense layer divide their
kernel by its top singular value (:mod:`medgan_lib.spectral_norm`), which bounds D's Lipschitz
constant layer by layer (Miyato et al. 2018). With ``minibatch_std`` the 4x4 maps gain one channel,
the standard deviation over groups of 4 images (:class:`medgan_lib.d_layers.GroupStdDev`), before
the dense layer. There is no BatchNormalization: every image's logit
depends on that image alone, so real and generated batches may go through D separately and a
gradient penalty on real images (R1) is the penalty of each image's own logit.
"""
from __future__ import annotations

import tensorflow as tf

from .config import MINIBATCH_STD_GROUP
from .d_layers import GroupStdDev
from .d_variants import LEAK
from .spectral_norm import SpectralConv2D, SpectralDense

CONV_FILTERS = (32, 64, 128, 256)  # per stride-2 block; the last repeats


def build_conv_discriminator(image_shape: tuple[int, int, int], spectral_norm: bool = True,
                             minibatch_std: bool = False) -> tf.keras.Model:
    """The discriminator for images of ``image_shape`` (H, W, C) in [-1, 1]: logits (N, 1)."""
    conv = SpectralConv2D if spectral_norm else tf.keras.layers.Conv2D
    dense = SpectralDense if spectral_norm else tf.keras.layers.Dense
    images = tf.keras.Input(tuple(int(v) for v in image_shape), name="images")
    h = images
    block = 0
    while h.shape[1] > 4 or h.shape[2] > 4:
        filters = CONV_FILTERS[min(block, len(CONV_FILTERS) - 1)]
        block += 1
        h = conv(filters, 4, strides=2, padding="same", name=f"conv{block}")(h)
        h = tf.keras.layers.LeakyReLU(LEAK, name=f"lrelu{block}")(h)
    if minibatch_std:
        h = GroupStdDev(MINIBATCH_STD_GROUP, name="minibatch_std")(h)
    h = tf.keras.layers.Flatten(name="flatten")(h)
    logits = dense(1, name="logit", dtype="float32")(h)
    return tf.keras.Model(images, logits, name="discriminator_conv" + ("_sn" if spectral_norm else ""))
