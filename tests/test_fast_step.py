"""The fast training step computes what the plain one does: feature cache, update order, bf16."""
import math

import numpy as np
import pytest
import tensorflow as tf

from medgan_lib.config import preset
from medgan_lib.discriminator import build_discriminator, build_transfer_architecture
from medgan_lib.gan import GAN, FusedAdam, make_optimizers, precision_policy
from medgan_lib.generator import build_generator
from medgan_lib.runs import build_gan

SMOKE = preset("smoke")
SIZE = SMOKE.image_size


def twin_gans(discriminator: tf.keras.Model, first: dict, second: dict) -> tuple[GAN, GAN]:
    """Two GANs over the same discriminator and equal generators (same weights, noise and dropout seeds)."""
    gans = []
    for changes in (first, second):
        config = SMOKE.replace(**changes)
        gan = GAN(build_generator(config), discriminator, config)
        gan.compile(*make_optimizers(config))
        gans.append(gan)
    gans[1].generator.set_weights(gans[0].generator.get_weights())
    return gans[0], gans[1]


def assert_all_close(actual: list, expected: list, rtol: float = 1e-5, atol: float = 1e-6) -> None:
    assert len(actual) == len(expected) and actual
    for a, e in zip(actual, expected):
        np.testing.assert_allclose(a.numpy(), e.numpy(), rtol=rtol, atol=atol)


@pytest.fixture(scope="module")
def frozen_discriminator() -> tf.keras.Model:
    # ResNet50: random frozen features of order 1 (a random MobileNet's vanish, see test_gan).
    tf.keras.utils.set_random_seed(4)
    discriminator, _ = build_transfer_architecture((SIZE, SIZE, 1), "ResNet50", head_minibatch_std=True)
    return discriminator


@pytest.mark.parametrize("g_step_d_batch", ["joint", "inference"])
@pytest.mark.parametrize("update_order", ["alternating", "simultaneous"])
def test_cached_real_features_give_the_uncached_gradients(phantom_images, frozen_discriminator, update_order, g_step_d_batch):
    settings = {"update_order": update_order, "g_step_d_batch": g_step_d_batch}
    uncached, cached = twin_gans(frozen_discriminator, {**settings, "cache_real_features": False},
                                 {**settings, "cache_real_features": True})
    assert cached.feature_cache and not uncached.feature_cache
    images = phantom_images(16)
    features = cached.training_inputs(images, batch_size=8)
    assert features.shape == (16, 2048) and features.dtype == np.float32
    state = frozen_discriminator.get_weights()  # the head's BN moving statistics change in training mode

    def gradients(gan: GAN, real: np.ndarray) -> tuple[list, list, dict]:
        frozen_discriminator.set_weights(state)
        if update_order == "simultaneous":
            return gan.simultaneous_gradients(tf.constant(real))
        d_grads, results = gan.discriminator_gradients(tf.constant(real))
        return d_grads, gan.generator_gradients(tf.constant(real))[0], results

    d_cached, g_cached, r_cached = gradients(cached, features)
    d_plain, g_plain, r_plain = gradients(uncached, images)
    # Only the head trains: D's gradients are the head's, from real and generated features in ONE batch.
    assert [v.name for v in frozen_discriminator.trainable_variables] == ["logit/kernel:0"]
    assert_all_close(d_cached, d_plain, rtol=1e-4)
    assert_all_close(g_cached, g_plain, rtol=1e-4, atol=1e-6)
    assert float(r_cached["d_loss"]) == pytest.approx(float(r_plain["d_loss"]), rel=1e-5)


@pytest.mark.parametrize("g_step_d_batch", ["joint", "inference"])
def test_simultaneous_step_gives_the_alternating_d_gradients(phantom_images, g_step_d_batch):
    tf.keras.utils.set_random_seed(5)
    discriminator, _ = build_discriminator((SIZE, SIZE, 1), SMOKE.backbone, mode="scratch")
    alternating, simultaneous = twin_gans(discriminator, {"update_order": "alternating", "g_step_d_batch": g_step_d_batch},
                                          {"update_order": "simultaneous", "g_step_d_batch": g_step_d_batch})
    assert not alternating.feature_cache and not simultaneous.feature_cache  # trainable backbone
    real = tf.constant(phantom_images(16))
    d_alternating, r_alternating = alternating.discriminator_gradients(real)
    d_simultaneous, g_simultaneous, r_simultaneous = simultaneous.simultaneous_gradients(real)
    assert_all_close(d_simultaneous, d_alternating)
    assert float(r_simultaneous["d_loss"]) == pytest.approx(float(r_alternating["d_loss"]), rel=1e-6)
    assert len(g_simultaneous) == len(simultaneous.generator.trainable_variables)
    assert all(g is not None and np.isfinite(g.numpy()).all() for g in g_simultaneous)


def test_update_order_is_validated_and_the_paper_keeps_alternation():
    assert preset("paper").update_order == "alternating" and not preset("paper").mixed_precision
    with pytest.raises(ValueError, match="update_order"):
        SMOKE.replace(update_order="sometimes")


def test_bf16_option_trains_smoke_without_nan(phantom_images):
    tf.keras.utils.set_random_seed(6)
    config = SMOKE.replace(mixed_precision=True)
    gan, _ = build_gan(config)
    assert tf.keras.mixed_precision.global_policy().name == "float32"  # restored after building
    assert gan.generator.get_layer("level1_conv3x3").compute_dtype == "bfloat16"
    assert gan.generator.output.dtype == tf.float32
    head = gan.discriminator.get_layer("head")
    assert {layer.compute_dtype for layer in head.layers[1:]} == {"float32"}
    assert all(v.dtype == tf.float32 for v in gan.generator.trainable_variables + gan.discriminator.trainable_variables)
    history = gan.fit(phantom_images(64), batch_size=16, epochs=3, verbose=0).history
    assert all(math.isfinite(v) for values in history.values() for v in values)
    assert abs(history["d_loss"][-1] - math.log(2)) > 1e-3  # it trained


def test_bf16_option_with_the_feature_cache_trains_without_nan(phantom_images):
    tf.keras.utils.set_random_seed(7)
    config = SMOKE.replace(mixed_precision=True)
    with precision_policy(True):
        generator = build_generator(config)
        discriminator, _ = build_transfer_architecture((SIZE, SIZE, 1), "ResNet50")
    gan = GAN(generator, discriminator, config)
    gan.compile(*make_optimizers(config))
    assert gan.feature_cache
    features = gan.training_inputs(phantom_images(64), batch_size=16)
    assert features.dtype == np.float32 and np.isfinite(features).all()
    history = gan.fit(features, batch_size=16, epochs=2, verbose=0).history
    assert all(math.isfinite(v) for values in history.values() for v in values)


@pytest.mark.parametrize("mixed", [False, True])
def test_fused_adam_updates_as_keras_adam(mixed):
    with precision_policy(mixed):  # mixed: the variable is an AutoCastVariable
        layers = [tf.keras.layers.Dense(3, name="dense") for _ in range(2)]
    for layer in layers:
        layer.build((None, 5))
    layers[1].set_weights(layers[0].get_weights())
    optimizers = [tf.keras.optimizers.Adam(1e-2, beta_1=0.5), FusedAdam(1e-2, beta_1=0.5)]
    for step in range(5):
        grads = [tf.random.stateless_normal(v.shape, seed=(step, i)) for i, v in enumerate(layers[0].trainable_variables)]
        for layer, optimizer in zip(layers, optimizers):
            optimizer.apply_gradients(zip(grads, layer.trainable_variables))
    assert_all_close(layers[1].trainable_variables, layers[0].trainable_variables, rtol=1e-5, atol=1e-6)  # rounding only
    assert [v.name for v in optimizers[1].variables] == [v.name for v in optimizers[0].variables]
    assert_all_close(optimizers[1].variables, optimizers[0].variables, rtol=1e-5, atol=1e-6)  # rounding only
