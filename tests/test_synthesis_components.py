"""The recommended preset's components, each against an independent computation."""
import numpy as np
import pytest
import tensorflow as tf

from medgan_lib.config import SMOKE
from medgan_lib.ema import WeightAverage
from medgan_lib.resize_generator import build_resize_conv_generator
from medgan_lib.spectral_norm import SpectralConv2D, SpectralDense


def _top_singular_value(kernel: np.ndarray) -> float:
    return float(np.linalg.svd(kernel.reshape(-1, kernel.shape[-1]), compute_uv=False)[0])


@pytest.mark.parametrize("make_layer, shape", [
    (lambda: SpectralConv2D(8, 4, strides=2, padding="same", kernel_initializer=tf.keras.initializers.GlorotUniform(1)),
     (2, 16, 16, 3)),
    (lambda: SpectralDense(5, kernel_initializer=tf.keras.initializers.GlorotUniform(2)), (2, 12)),
])
def test_spectral_norm_bounds_the_top_singular_value_to_one(make_layer, shape):
    layer = make_layer()
    x = tf.random.stateless_normal(shape, (1, 2))
    layer(x, training=True)
    layer.kernel.assign(layer.kernel * 7.0)  # a raw kernel far from norm 1
    assert _top_singular_value(layer.kernel.numpy()) > 3.0
    for _ in range(100):  # the power iteration (one step per training call) converges
        layer(x, training=True)
    assert _top_singular_value(layer.normalised_kernel(False).numpy()) == pytest.approx(1.0, abs=1e-2)


def test_spectral_conv_computes_a_convolution_with_the_normalised_kernel():
    layer = SpectralConv2D(4, 3, padding="same")
    x = tf.random.stateless_normal((2, 8, 8, 2), (3, 4))
    y = layer(x, training=False)
    expected = tf.nn.conv2d(x, layer.normalised_kernel(False), 1, "SAME") + layer.bias
    np.testing.assert_allclose(y.numpy(), expected.numpy(), atol=1e-5)
    u = layer.singular_vector.numpy().copy()
    layer(x, training=False)
    np.testing.assert_array_equal(layer.singular_vector.numpy(), u)  # no update outside training
    layer(x, training=True)
    assert not np.array_equal(layer.singular_vector.numpy(), u)


def test_spectral_norm_gradient_flows_through_sigma():
    """d(sum(W / sigma(W) x))/dW differs from the gradient with sigma held constant."""
    layer = SpectralDense(3, use_bias=False)
    x = tf.random.stateless_normal((4, 6), (5, 6))
    layer(x, training=True)
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(layer(x, training=False) ** 2)
    grad = tape.gradient(loss, layer.kernel).numpy()
    kernel = layer.normalised_kernel(False).numpy()
    sigma = float(np.sum(layer.kernel.numpy()) / np.sum(kernel))
    frozen_sigma_grad = 2 * x.numpy().T @ (x.numpy() @ kernel) / sigma
    assert np.all(np.isfinite(grad))
    assert not np.allclose(grad, frozen_sigma_grad, atol=1e-4)


def _small_model(seed: int) -> tf.keras.Model:
    tf.keras.utils.set_random_seed(seed)
    inputs = tf.keras.Input((3,))
    h = tf.keras.layers.Dense(4)(inputs)
    return tf.keras.Model(inputs, tf.keras.layers.BatchNormalization()(h))


def test_ema_after_k_steps_equals_the_closed_form():
    model, average = _small_model(0), _small_model(1)
    ema = WeightAverage(model, average, decay=0.9)
    start = [w.numpy().copy() for w in model.weights]
    for w in model.weights:  # the model jumps to new weights and stays there
        w.assign(w + 1.5)
    k = 7
    for _ in range(k):
        ema.update()
    for a, w0 in zip(average.weights, start):  # BN moving statistics included
        np.testing.assert_allclose(a.numpy(), 0.9**k * w0 + (1 - 0.9**k) * (w0 + 1.5), rtol=1e-5, atol=1e-6)


def test_ema_rejects_a_different_architecture_and_a_bad_decay():
    model = _small_model(0)
    with pytest.raises(ValueError, match="does not have the weights"):
        WeightAverage(model, tf.keras.Sequential([tf.keras.Input((3,)), tf.keras.layers.Dense(4)]), 0.9)
    with pytest.raises(ValueError, match="decay"):
        WeightAverage(model, _small_model(1), 1.0)


def test_resize_conv_generator_has_no_transposed_convolution_and_makes_the_image_size():
    config = SMOKE.replace(width=4)
    model = build_resize_conv_generator(config)
    images = model(tf.random.stateless_normal((3, config.latent_dim), (7, 8)), training=False)
    assert images.shape == (3, config.image_size, config.image_size, config.channels)
    assert float(tf.reduce_max(tf.abs(images))) <= 1.0
    assert not any(isinstance(layer, tf.keras.layers.Conv2DTranspose) for layer in model.layers)


def _constant_start_image(model: tf.keras.Model, latent_dim: int) -> np.ndarray:
    """The image for a start map that is the same at every position (dense kernel zeroed)."""
    dense = model.get_layer("dense")
    dense.kernel.assign(tf.zeros_like(dense.kernel))
    channels = model.get_layer("reshape").output.shape[-1]
    per_channel = tf.random.stateless_normal((channels,), (9, 9))
    dense.bias.assign(tf.tile(per_channel, [dense.bias.shape[0] // channels]))  # (h, w, c) order
    return model(tf.zeros((1, latent_dim)), training=False).numpy()[0, ..., 0]


def test_resize_conv_generator_builds_in_no_checkerboard_unlike_the_paper_generator():
    """Nearest upsampling and 3x3 convolutions keep a spatially constant start map constant away
    from the zero-padded border (which grows by one pixel per convolution, doubled by every
    upsampling); the paper generator's stride-2 transposed convolutions turn it into a period-2
    pattern."""
    from medgan_lib.generator import build_generator

    config = SMOKE.replace(width=4)
    border = 2**config.levels
    resize = _constant_start_image(build_resize_conv_generator(config), config.latent_dim)
    paper = _constant_start_image(build_generator(config), config.latent_dim)
    inner = (slice(border, -border),) * 2
    assert resize[inner].std() < 1e-5
    even_odd = paper[inner][0::2, 0::2].mean() - paper[inner][1::2, 1::2].mean()
    assert abs(even_odd) > 1e-3


def test_r1_penalty_equals_gamma_half_mean_squared_slope_and_reaches_the_weights():
    """D(x) = c * sum(x^2): grad_x = 2 c x, so R1 = gamma/2 * mean_i 4 c^2 |x_i|^2 and
    dR1/dc = gamma/2 * mean_i 8 c |x_i|^2 (a second derivative through the inner tape)."""
    from medgan_lib.losses import r1_gradient_penalty

    c = tf.Variable(0.7)
    x = tf.random.stateless_normal((5, 4, 4, 1), (1, 1))

    def discriminator(images):
        return c * tf.reduce_sum(tf.square(images), axis=[1, 2, 3])[:, None]

    gamma = 0.3
    squared_norms = np.sum(x.numpy() ** 2, axis=(1, 2, 3))
    with tf.GradientTape() as tape:
        penalty = r1_gradient_penalty(discriminator, x, gamma)
    assert float(penalty) == pytest.approx(gamma / 2 * np.mean(4 * 0.7**2 * squared_norms), rel=1e-5)
    assert float(tape.gradient(penalty, c)) == pytest.approx(gamma / 2 * np.mean(8 * 0.7 * squared_norms), rel=1e-5)


@pytest.mark.parametrize("spectral_norm", [True, False])
def test_conv_discriminator_maps_images_to_logits_down_to_4x4(spectral_norm):
    from medgan_lib.conv_discriminator import build_conv_discriminator

    model = build_conv_discriminator((32, 32, 1), spectral_norm)
    logits = model(tf.random.stateless_normal((3, 32, 32, 1), (2, 2)), training=True)
    assert logits.shape == (3, 1)
    assert model.get_layer("flatten").output.shape[-1] == 4 * 4 * 128  # 32 -> 16 -> 8 -> 4 px with 32, 64, 128 filters
    kinds = {type(layer) for layer in model.layers if "conv" in layer.name or layer.name == "logit"}
    assert kinds == ({SpectralConv2D, SpectralDense} if spectral_norm
                     else {tf.keras.layers.Conv2D, tf.keras.layers.Dense})
    assert not any(isinstance(layer, tf.keras.layers.BatchNormalization) for layer in model.layers)


def test_noise_injection_is_a_function_of_the_latent_batch():
    from medgan_lib.resize_generator import NoiseInjection

    layer = NoiseInjection(stream=3)
    features = tf.random.stateless_normal((4, 8, 8, 2), (4, 4))
    z, other_z = (tf.random.stateless_normal((4, 6), (s, 0)) for s in (5, 6))
    np.testing.assert_array_equal(layer([features, z]).numpy(), features.numpy())  # strength starts at 0
    layer.strength.assign([0.5, -2.0])
    first, again, other = (layer([features, latent]).numpy() - features.numpy() for latent in (z, z, other_z))
    np.testing.assert_array_equal(first, again)  # same latent batch, same noise
    assert not np.allclose(first, other)
    noise = first[..., 0] / 0.5
    np.testing.assert_allclose(first[..., 1], -2.0 * noise, atol=1e-5)  # one map shared by the channels
    assert abs(noise.mean()) < 0.2 and 0.8 < noise.std() < 1.2
    assert NoiseInjection(stream=4)([features, z]).shape == features.shape


def test_modulated_noise_starts_as_the_plain_layer_and_learns_a_strength_per_image():
    from medgan_lib.resize_generator import NoiseInjection

    features = tf.random.stateless_normal((4, 8, 8, 2), (4, 4))
    z = tf.random.stateless_normal((4, 6), (5, 0))
    plain, modulated = NoiseInjection(stream=3), NoiseInjection(stream=3, modulated=True)
    for layer in (plain, modulated):
        layer([features, z])
        layer.strength.assign([0.5, -2.0])
    np.testing.assert_allclose(modulated([features, z]).numpy(), plain([features, z]).numpy(), atol=1e-6)  # exp(0) = 1
    modulated.scale.kernel.assign(np.linspace(-0.5, 0.5, 6, dtype="float32")[:, None])
    added = (modulated([features, z]) - features).numpy()
    per_image = added[..., 0].std(axis=(1, 2)) / (plain([features, z]) - features).numpy()[..., 0].std(axis=(1, 2))
    expected = np.exp(z.numpy() @ modulated.scale.kernel.numpy()[:, 0])
    np.testing.assert_allclose(per_image, expected, rtol=1e-4)  # each image's grain scaled by exp(z . w)
    assert np.ptp(np.log(per_image)) > 0.5
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(modulated([features, z]) ** 2)
    grads = tape.gradient(loss, modulated.scale.trainable_weights)
    assert all(float(tf.reduce_sum(tf.abs(g))) > 0 for g in grads)  # the modulation is trained


def test_group_stddev_sees_each_group_of_four_alone_and_collapse_as_zero():
    from medgan_lib.d_layers import GroupStdDev

    rng = np.random.default_rng(0)
    same = np.repeat(rng.normal(size=(1, 4, 4, 3)), 4, axis=0)  # a collapsed group: 4 equal images
    varied = rng.normal(size=(4, 4, 4, 3))
    out = GroupStdDev(group_size=4)(np.concatenate([same, varied]).astype("float32")).numpy()
    assert out.shape == (8, 4, 4, 4)
    np.testing.assert_allclose(out[..., :3], np.concatenate([same, varied]), rtol=1e-6)
    stat = out[:, 0, 0, 3]
    assert np.all(stat[:4] < 1e-3) and np.all(stat[4:] > 0.5)  # the groups do not mix
    assert np.ptp(out[4:, ..., 3]) < 1e-6  # one value per group, broadcast


def test_conv_discriminator_with_minibatch_std_reacts_to_a_collapsed_batch():
    from medgan_lib.conv_discriminator import build_conv_discriminator

    tf.keras.utils.set_random_seed(0)
    model = build_conv_discriminator((32, 32, 1), spectral_norm=False, minibatch_std=True)
    assert model.get_layer("minibatch_std").output.shape[-1] == 128 + 1  # 3 blocks at 32 px, then the std channel
    image = np.random.default_rng(1).normal(size=(1, 32, 32, 1)).astype("float32")
    varied = np.concatenate([image, np.random.default_rng(2).normal(size=(3, 32, 32, 1)).astype("float32")])
    collapsed = np.repeat(image, 4, axis=0)
    assert abs(float(model(varied)[0, 0]) - float(model(collapsed)[0, 0])) > 1e-4  # image 0's logit depends on its group


def test_a_batch_the_minibatch_std_groups_cannot_split_is_refused_by_name():
    from medgan_lib.config import MEDGAN
    from medgan_lib.errors import ConfigError

    with pytest.raises(ConfigError, match="batch_size.*multiple of 4.*got 30"):
        MEDGAN.replace(batch_size=30)
    assert MEDGAN.replace(batch_size=30, d_minibatch_std=False).batch_size == 30


def test_mode_seeking_penalty_is_the_inverse_distance_ratio_of_pooled_pairs():
    from medgan_lib.losses import mode_seeking_penalty

    latents = tf.constant(np.random.default_rng(0).standard_normal((8, 5)), tf.float32)
    images = tf.constant(np.random.default_rng(1).uniform(-1, 1, (8, 8, 8, 1)), tf.float32)
    pooled = images.numpy().reshape(8, 2, 4, 2, 4, 1).mean(axis=(2, 4))
    ratio = np.abs(pooled[:4] - pooled[4:]).mean() / np.abs(latents.numpy()[:4] - latents.numpy()[4:]).mean()
    assert float(mode_seeking_penalty(latents, images)) == pytest.approx(1 / (ratio + 1e-5), rel=1e-5)
    checkerboard = np.indices((8, 8)).sum(axis=0) % 2 - 0.5  # averages to 0 in every 4x4 block
    grainy = images + tf.constant(checkerboard[None, :, :, None] * np.array([1] * 4 + [-1] * 4)[:, None, None, None], tf.float32)
    assert float(mode_seeking_penalty(latents, grainy)) == pytest.approx(float(mode_seeking_penalty(latents, images)), rel=1e-5)
    collapsed = tf.concat([images[:4], images[:4]], axis=0)  # every pair the same image
    assert float(mode_seeking_penalty(latents, collapsed)) == pytest.approx(1e5, rel=1e-3)


def test_mode_seeking_adds_its_weighted_penalty_to_the_generator_loss_only_when_asked():
    from medgan_lib.config import MEDGAN_SMOKE
    from medgan_lib.losses import mode_seeking_penalty
    from medgan_lib.runs import build_gan

    latents = tf.random.stateless_normal((4, MEDGAN_SMOKE.latent_dim), (5, 1))
    images = tf.random.stateless_uniform((4, 32, 32, 1), (5, 2), -1, 1)
    gan, _ = build_gan(MEDGAN_SMOKE.replace(g_mode_seeking=2.5))
    assert float(gan.mode_seeking(latents, images)) == pytest.approx(2.5 * float(mode_seeking_penalty(latents, images)))
    assert float(build_gan(MEDGAN_SMOKE.replace(g_mode_seeking=0.0))[0].mode_seeking(latents, images)) == 0.0
