"""The training algorithm: losses, the concatenated D batch, and one step on a toy discriminator."""
import math

import numpy as np
import pytest
import tensorflow as tf

from medgan_lib.config import preset
from medgan_lib.gan import GAN, make_optimizers
from medgan_lib.losses import bce_discriminator_loss, non_saturating_generator_loss, saturating_generator_loss
from medgan_lib.generator import build_generator


def test_losses_at_chance_are_log_2():
    zeros = tf.zeros((8, 1))
    assert float(bce_discriminator_loss(zeros, zeros)) == pytest.approx(math.log(2), rel=1e-6)
    assert float(non_saturating_generator_loss(zeros)) == pytest.approx(math.log(2), rel=1e-6)
    assert float(saturating_generator_loss(zeros)) == pytest.approx(-math.log(2), rel=1e-6)


def test_discriminator_loss_matches_eq1_with_smoothing():
    real, fake = tf.constant([[2.0], [-1.0]]), tf.constant([[0.5], [-3.0]])
    p_real, p_fake = tf.sigmoid(real).numpy().ravel(), tf.sigmoid(fake).numpy().ravel()
    y = 0.9
    expected = -np.mean(
        np.concatenate([y * np.log(p_real) + (1 - y) * np.log(1 - p_real), np.log(1 - p_fake)])
    )
    assert float(bce_discriminator_loss(real, fake, real_label=y)) == pytest.approx(expected, rel=1e-5)


def test_non_saturating_loss_keeps_gradient_where_saturating_vanishes():
    confident_fake = tf.Variable([[-8.0]])
    with tf.GradientTape(persistent=True) as tape:
        ns = non_saturating_generator_loss(confident_fake)
        sat = saturating_generator_loss(confident_fake)
    assert abs(float(tape.gradient(ns, confident_fake)[0, 0])) > 0.99
    assert abs(float(tape.gradient(sat, confident_fake)[0, 0])) < 1e-3


def test_head_batchnorm_blinds_the_discriminator_on_separate_batches():
    """Why the D step concatenates: in training mode BN maps each separate batch to mean 0."""
    norm = tf.keras.layers.BatchNormalization(center=False, scale=False)
    real = tf.random.normal((16, 4)) + 5.0
    fake = tf.random.normal((16, 4)) - 5.0
    separate = [float(tf.reduce_mean(norm(x, training=True))) for x in (real, fake)]
    joint = norm(tf.concat([real, fake], 0), training=True)
    assert separate == pytest.approx([0.0, 0.0], abs=1e-4)
    assert float(tf.reduce_mean(joint[:16]) - tf.reduce_mean(joint[16:])) > 1.5


def toy_discriminator(shape: tuple[int, int, int]) -> tf.keras.Model:
    """Paper head on the simplest trainable features: per-image mean and std."""
    x = tf.keras.Input(shape)
    mean = tf.keras.layers.GlobalAveragePooling2D()(x)
    std = tf.keras.layers.Lambda(lambda t: tf.math.reduce_std(t, axis=[1, 2]))(x)
    features = tf.keras.layers.Dense(8, activation="relu")(tf.keras.layers.Concatenate()([mean, std]))
    features = tf.keras.layers.BatchNormalization(center=False, scale=False)(features)
    return tf.keras.Model(x, tf.keras.layers.Dense(1, use_bias=False)(features))


def test_discriminator_learns_on_a_toy_case():
    config = preset("smoke").replace(d_learning_rate=1e-2, g_learning_rate=1e-6)
    tf.keras.utils.set_random_seed(0)
    generator = build_generator(config)
    gan = GAN(generator, toy_discriminator(generator.output_shape[1:]), config)
    gan.compile(*make_optimizers(config))
    size = config.image_size
    real = np.full((256, size, size, 1), 0.8, np.float32) + np.random.default_rng(0).normal(0, 0.05, (256, size, size, 1)).astype(np.float32)
    history = gan.fit(real, batch_size=32, epochs=6, verbose=0).history
    assert history["d_loss"][0] > 2 * history["d_loss"][-1]
    assert history["d_loss"][-1] < 0.3
    assert history["d_real_accuracy"][-1] > 0.95 and history["d_fake_accuracy"][-1] > 0.95


def test_one_step_moves_generator_and_discriminator():
    config = preset("smoke")
    tf.keras.utils.set_random_seed(1)
    generator = build_generator(config)
    discriminator = toy_discriminator(generator.output_shape[1:])
    gan = GAN(generator, discriminator, config)
    gan.compile(*make_optimizers(config))
    g_before = [w.numpy().copy() for w in generator.trainable_weights]
    d_before = [w.numpy().copy() for w in discriminator.trainable_weights]
    real = np.zeros((16, config.image_size, config.image_size, 1), np.float32)
    gan.train_on_batch(real)
    assert all(not np.array_equal(b, w.numpy()) for b, w in zip(g_before, generator.trainable_weights))
    assert all(not np.array_equal(b, w.numpy()) for b, w in zip(d_before, discriminator.trainable_weights))


def smoke_gan(discriminator: tf.keras.Model, **changes) -> GAN:
    config = preset("smoke").replace(**changes)
    gan = GAN(build_generator(config), discriminator, config)
    gan.compile(*make_optimizers(config))
    return gan


def test_one_step_moves_generator_and_head_but_not_a_frozen_backbone(phantom_images):
    from medgan_lib.backbones import get_backbone
    from medgan_lib.discriminator import build_transfer_architecture

    tf.keras.utils.set_random_seed(2)
    size = preset("smoke").image_size
    # ResNet50: its random frozen features are O(1); a random MobileNet's are ~1e-18, which the
    # head's BatchNormalization (epsilon 1e-3) turns into zeros and hence zero gradients.
    discriminator, _ = build_transfer_architecture((size, size, 1), "ResNet50")
    gan = smoke_gan(discriminator)
    backbone = get_backbone(discriminator)
    frozen_before = [w.numpy().copy() for w in backbone.weights]  # kernels and BN moving statistics
    head_before = discriminator.get_layer("head").get_layer("logit").kernel.numpy().copy()
    g_before = gan.generator.get_layer("dense").kernel.numpy().copy()
    gan.train_on_batch(phantom_images(16))
    assert all(np.array_equal(b, w.numpy()) for b, w in zip(frozen_before, backbone.weights))
    assert not np.array_equal(head_before, discriminator.get_layer("head").get_layer("logit").kernel.numpy())
    assert not np.array_equal(g_before, gan.generator.get_layer("dense").kernel.numpy())
    assert [v.name for v in discriminator.trainable_variables] == [
        discriminator.get_layer("head").get_layer("logit").kernel.name
    ]


@pytest.mark.parametrize("g_step_d_batch", ["inference", "joint"])
def test_scratch_discriminator_losses_leave_chance_within_a_few_steps(phantom_images, g_step_d_batch):
    from medgan_lib.discriminator import build_discriminator

    tf.keras.utils.set_random_seed(3)
    size = preset("smoke").image_size
    discriminator, info = build_discriminator((size, size, 1), "MobileNetV2@0.35", mode="scratch")
    assert info.mode == "scratch"
    gan = smoke_gan(discriminator, g_step_d_batch=g_step_d_batch)
    history = gan.fit(phantom_images(64), batch_size=16, epochs=8, verbose=0).history
    print(history)
    assert history["d_loss"][-1] < math.log(2) - 0.1
    assert min(history["d_real_accuracy"][-1], history["d_fake_accuracy"][-1]) > 0.65
