"""GAN losses, each a function of the discriminator's logits (the sigmoid lives inside the loss).

The paper (Laptev, Gerget, Danilov, "Research of generative adversarial networks for the
synthesis of new medical data", section 2.1) trains with binary cross-entropy. With
``D(x) = sigmoid(logit(x))`` and labels y (1: real, 0: generated):

* eq. 1, BCE:               ``L(y, D) = -[y log D + (1 - y) log(1 - D)]``, averaged over the batch;
* eq. 2, discriminator:     ``L_D = L(1, D(x)) + L(0, D(G(z)))`` over one batch of reals and fakes;
* eq. 3, generator (as printed, saturating): ``L_G = log(1 - D(G(z)))``, minimised by G;
* eq. 4, generator (non-saturating, Goodfellow et al. 2014): ``L_G = -log D(G(z))``.

Taking logits and ``tf.nn.sigmoid_cross_entropy_with_logits`` is the same function as a sigmoid
output followed by BCE, without its overflow. Names follow TF-GAN (``<kind>_generator_loss``,
``<kind>_discriminator_loss``); another loss (hinge) or an extra term (an R1 gradient penalty)
is one more small function here plus an entry in the tables at the end.
"""
from __future__ import annotations

from typing import Callable

import tensorflow as tf


def _bce(labels: tf.Tensor, logits: tf.Tensor) -> tf.Tensor:
    """Eq. 1: mean binary cross-entropy of ``sigmoid(logits)`` against ``labels``."""
    return tf.reduce_mean(tf.nn.sigmoid_cross_entropy_with_logits(labels=labels, logits=logits))


def bce_discriminator_loss(real_logits: tf.Tensor, fake_logits: tf.Tensor, real_label: float = 1.0) -> tf.Tensor:
    """Eq. 2: ``mean(L(real_label, D(x)) ++ L(0, D(G(z))))`` over the real and generated batch together.

    ``real_label`` below 1 is one-sided label smoothing (Salimans et al. 2016); 1 is the paper.
    At chance (all logits 0) the loss is log 2.
    """
    logits = tf.concat([real_logits, fake_logits], axis=0)
    labels = tf.concat([tf.fill(tf.shape(real_logits), real_label), tf.zeros_like(fake_logits)], axis=0)
    return _bce(labels, logits)


def non_saturating_generator_loss(fake_logits: tf.Tensor) -> tf.Tensor:
    """Eq. 4: ``-log D(G(z))``, the BCE of generated images against the label "real".

    Its gradient stays large where D confidently rejects the fakes (Goodfellow et al. 2014).
    """
    return _bce(tf.ones_like(fake_logits), fake_logits)


def saturating_generator_loss(fake_logits: tf.Tensor) -> tf.Tensor:
    """Eq. 3 as printed in the paper: ``log(1 - D(G(z)))``, minimised by G (the minimax game).

    Its gradient vanishes where D confidently rejects the fakes.
    """
    return -_bce(tf.zeros_like(fake_logits), fake_logits)


GeneratorLoss = Callable[[tf.Tensor], tf.Tensor]
GENERATOR_LOSSES: dict[str, GeneratorLoss] = {
    "non_saturating": non_saturating_generator_loss,
    "saturating": saturating_generator_loss,
}


def r1_gradient_penalty(discriminator: Callable[[tf.Tensor], tf.Tensor], real_images: tf.Tensor,
                        gamma: float) -> tf.Tensor:
    """R1 (Mescheder et al. 2018): ``gamma / 2 * E_x ||grad_x logit(x)||^2`` over real images.

    Penalises the discriminator's slope on the data, which keeps it from growing sharp around
    the few hundred training images. ``discriminator`` maps images to logits (called here in
    training mode); call this inside the discriminator loss's tape, so that the penalty's own
    gradient (a second derivative) reaches D's weights.
    """
    with tf.GradientTape() as tape:
        tape.watch(real_images)
        total = tf.reduce_sum(discriminator(real_images))
    slopes = tape.gradient(total, real_images)
    return 0.5 * gamma * tf.reduce_mean(tf.reduce_sum(tf.square(slopes), axis=tf.range(1, tf.rank(slopes))))


def mode_seeking_penalty(latents: tf.Tensor, images: tf.Tensor, pool: int = 4, epsilon: float = 1e-5) -> tf.Tensor:
    """Mode seeking (Mao et al. 2019, "Mode Seeking Generative Adversarial Networks for Diverse
    Image Synthesis", eq. 3), as a loss G minimises: ``1 / (d_I(G(z1), G(z2)) / d_z(z1, z2) + eps)``.

    The batch is split into pairs (row i with row i + n/2); ``d`` is the mean absolute difference,
    averaged over the pairs before the ratio, as in the authors' code. A generator that maps
    different latent vectors to the same image pays a large penalty. Project choice: the images
    are compared after ``pool`` x ``pool`` average pooling, so that only differences in layout and
    brightness count, not per-pixel grain (which noise inputs could raise at no cost).
    """
    half = tf.shape(latents)[0] // 2
    pooled = tf.nn.avg_pool2d(tf.cast(images, tf.float32), pool, pool, "VALID")
    image_distance = tf.reduce_mean(tf.abs(pooled[:half] - pooled[half:2 * half]))
    latent_distance = tf.reduce_mean(tf.abs(tf.cast(latents[:half] - latents[half:2 * half], tf.float32)))
    return 1.0 / (image_distance / latent_distance + epsilon)
