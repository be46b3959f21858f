"""Discriminator variants (dcgan, projected) and DiffAugment: shapes, frozen parts, one GAN step.

The projected variant with ImageNet weights runs only when MEDGAN_WEIGHTS_DIR holds
mobilenet_2_5_224_tf_no_top.h5; elsewhere it uses a random frozen backbone (mode "scratch").
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from medgan_lib import augment
from medgan_lib import backbones
from medgan_lib import d_variants
from medgan_lib import params
from medgan_lib import discriminator as disc
from medgan_lib import pretrained
from medgan_lib.config import Config, preset
from medgan_lib.gan import GAN, frozen_split
from medgan_lib.generator import build_generator
from medgan_lib.runs import announce_discriminator, build_gan

REAL_WEIGHTS_DIR = os.environ.get(pretrained.WEIGHTS_DIR_ENV)
HAVE_REAL_MOBILENET = bool(REAL_WEIGHTS_DIR) and (Path(REAL_WEIGHTS_DIR) / "mobilenet_2_5_224_tf_no_top.h5").is_file()
SIZE = preset("smoke").image_size  # 32


def _frozen_layers(model: tf.keras.Model) -> list[tf.keras.layers.Layer]:
    """The backbone taps sub-model and the random mixing convolutions of a projected D."""
    return [backbones.get_backbone(model)] + [layer for layer in model.layers if layer.name.startswith("mix")]


@pytest.mark.parametrize("kind,diff_augment", [("paper", False), ("dcgan", True), ("projected", False)])
def test_every_variant_returns_finite_logits(random_images, kind: str, diff_augment: bool) -> None:
    model, info = disc.build_discriminator((SIZE, SIZE, 1), "MobileNetV2@0.35", "scratch", kind=kind,
                                           diff_augment=diff_augment)
    for training in (True, False):
        logits = model(random_images(6), training=training).numpy()
        assert logits.shape == (6, 1) and logits.dtype == np.float32 and np.isfinite(logits).all()
    assert (info.kind, info.diff_augment) == (kind, diff_augment)
    assert info.params == params.parameter_counts(model)  # DiffAugment adds no weights
    assert ("diff_augment" in [layer.name for layer in model.layers]) == diff_augment


def test_dcgan_is_a_trainable_conv_net_into_the_paper_head() -> None:
    model, info = disc.build_discriminator((64, 64, 1), kind="dcgan", head_minibatch_std=True)
    trunk = backbones.get_backbone(model)
    assert trunk.name == "dcgan_trunk" and info.mode == "scratch" and info.backbone == "dcgan"
    convs = [layer for layer in trunk.layers if isinstance(layer, tf.keras.layers.Conv2D)]
    assert [(c.filters, c.kernel_size, c.strides) for c in convs] == [
        (f, (4, 4), (2, 2)) for f in (64, 128, 256, 256)]  # 64 -> 4 px
    assert trunk.output_shape == (None, 4 * 4 * 256)
    head = model.get_layer("head")
    assert [layer.name for layer in head.layers[1:]] == ["minibatch_std", "head_bn", "logit"]
    assert info.params["non_trainable"] == 2 * (4 * 4 * 256 + 1)  # only the head BN's moving statistics
    assert frozen_split(model) is None  # trainable features: no feature cache


def test_projected_taps_four_depths_behind_frozen_random_mixing() -> None:
    model, info = disc.build_discriminator((64, 64, 1), "MobileNet@0.25", "scratch", kind="projected")
    taps = backbones.get_backbone(model)
    assert d_variants.stage_ends(taps) == ["conv_pw_3_relu", "conv_pw_5_relu", "conv_pw_11_relu", "conv_pw_13_relu"]
    assert [o.shape[1] for o in taps.outputs] == [16, 8, 4, 2]
    mixes = [layer for layer in model.layers if layer.name.startswith("mix")]
    assert len(mixes) == 4 and all(m.kernel_size == (1, 1) and m.filters == d_variants.PROJECTED_CHANNELS for m in mixes)
    assert all(not layer.trainable and not layer.trainable_weights for layer in _frozen_layers(model))
    trainable = {v.name.split("/")[0] for v in model.trainable_variables}
    assert trainable and all(name.startswith("scale") for name in trainable)
    assert info.mode == "scratch" and "frozen" in info.reason
    assert frozen_split(model) is None
    assert "projected (a project variant" in announce_discriminator(info)


@pytest.mark.parametrize("kind,diff_augment", [("dcgan", False), ("projected", True)])
def test_one_gan_step_moves_trainable_weights_only(phantom_images, kind: str, diff_augment: bool) -> None:
    tf.keras.utils.set_random_seed(4)
    # A random frozen MobileNet's deep features are ~1e-12, too small for the heads' BatchNormalization
    # (epsilon 1e-3) to pass any gradient; random ResNet50 features are O(1) (see test_gan.py).
    config = preset("smoke").replace(discriminator=kind, diff_augment=diff_augment, g_step_d_batch="joint",
                                     backbone="ResNet50")
    gan, _ = build_gan(config)
    d = gan.discriminator
    frozen = [w for layer in _frozen_layers(d.layers[-1]) for w in layer.weights] if kind == "projected" else []
    before = [w.numpy().copy() for w in d.trainable_weights], [w.numpy().copy() for w in frozen]
    gan.train_on_batch(phantom_images(16))
    assert all(not np.array_equal(b, w.numpy()) for b, w in zip(before[0], d.trainable_weights))
    assert all(np.array_equal(b, w.numpy()) for b, w in zip(before[1], frozen))  # incl. BN statistics


def test_diff_augment_is_differentiable_random_and_identity_when_disabled(random_images) -> None:
    x = tf.constant(random_images(8, channels=3))
    np.testing.assert_array_equal(augment.DiffAugment(policy=())(x).numpy(), x.numpy())
    layer = augment.DiffAugment(seed=1)
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = layer(x)
        loss = tf.reduce_sum(y * y)
    grad = tape.gradient(loss, x).numpy()
    assert y.shape == x.shape and np.isfinite(grad).all() and np.abs(grad).sum() > 0
    assert not np.allclose(y.numpy(), layer(x).numpy())  # a new draw on every call
    again = augment.DiffAugment(seed=1)(x).numpy()
    np.testing.assert_array_equal(y.numpy(), again)  # reproducible from the seed
    with pytest.raises(ValueError, match="unknown DiffAugment policy"):
        augment.DiffAugment(policy=("flip",))


def test_diff_augment_ops_do_what_they_say() -> None:
    ones = tf.ones((16, SIZE, SIZE, 1))
    shifted = augment.DiffAugment(policy=("translation",), seed=2)(ones).numpy()[..., 0]
    max_shift = int(SIZE * 0.125 + 0.5)
    for image in shifted:
        rows, cols = image.max(axis=1), image.max(axis=0)  # a row/column of zero fill is all 0
        assert (SIZE - rows.sum()) <= max_shift and (SIZE - cols.sum()) <= max_shift
        assert set(np.unique(image)) <= {0.0, 1.0}
    assert (shifted == 0).any()
    cut = augment.DiffAugment(policy=("cutout",), seed=3)(ones).numpy()[..., 0]
    holes = (cut == 0).sum(axis=(1, 2))
    assert (holes > 0).all() and (holes <= (SIZE // 2) ** 2).all()
    flat = augment.DiffAugment(policy=("color",), seed=4)(tf.fill((4, SIZE, SIZE, 1), 0.3)).numpy()
    assert np.allclose(flat, flat[:, :1, :1, :], atol=1e-6)  # a constant image stays constant
    assert np.ptp(flat[:, 0, 0, 0]) > 0.01  # brightness differs per image


def test_augmented_frozen_discriminator_is_not_feature_cached() -> None:
    frozen, _ = disc.build_transfer_architecture((SIZE, SIZE, 1), "MobileNet@0.25")
    config = preset("smoke")
    generator = build_generator(config)
    assert GAN(generator, frozen, config).feature_cache
    assert not GAN(generator, augment.with_diff_augment(frozen), config).feature_cache


def test_config_validates_the_variant() -> None:
    assert Config(preset="x").discriminator == "paper" and not Config(preset="x").diff_augment
    with pytest.raises(ValueError, match="discriminator must be one of"):
        Config(preset="x", discriminator="stylegan")
    with pytest.raises(ValueError, match="kind must be one of"):
        disc.build_discriminator((SIZE, SIZE, 1), kind="stylegan")


@pytest.mark.skipif(not HAVE_REAL_MOBILENET, reason="needs MEDGAN_WEIGHTS_DIR with mobilenet_2_5_224_tf_no_top.h5")
def test_projected_transfer_uses_frozen_imagenet_mobilenet(random_images, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    monkeypatch.setattr(pretrained, "_host_reachable", lambda url: False)
    model, info = disc.build_discriminator((64, 64, 1), "MobileNet@0.25", "transfer", kind="projected",
                                           diff_augment=True)
    assert info.mode == "transfer" and info.weights["origin"] == "weights_dir"
    inner = model.layers[-1]
    assert abs(backbones.get_backbone(inner).get_layer("conv_pw_7_bn").moving_mean.numpy()).mean() > 0.1
    assert all(not layer.trainable_weights for layer in _frozen_layers(inner))
    assert np.isfinite(model(random_images(4, 64), training=True).numpy()).all()
