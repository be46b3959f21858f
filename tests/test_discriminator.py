"""Tests for medgan_lib.pretrained and medgan_lib.discriminator.

The real-ImageNet tests run only when the env var MEDGAN_WEIGHTS_DIR (read at import) holds
mobilenet_2_5_224_tf_no_top.h5; every other test isolates itself from real weights and the
network (empty weights dir, temporary KERAS_HOME, downloads disabled).
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import os
import time
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from tensorflow import keras

from medgan_lib import backbones
from medgan_lib import discriminator as disc
from medgan_lib import pretrained

REAL_WEIGHTS_DIR = os.environ.get(pretrained.WEIGHTS_DIR_ENV)
MOBILENET_025 = "mobilenet_2_5_224_tf_no_top.h5"
HAVE_REAL_MOBILENET = bool(REAL_WEIGHTS_DIR) and (Path(REAL_WEIGHTS_DIR) / MOBILENET_025).is_file()
NEEDS_REAL = pytest.mark.skipif(
    not HAVE_REAL_MOBILENET,
    reason=f"needs MEDGAN_WEIGHTS_DIR containing {MOBILENET_025} (real ImageNet weights)",
)


def _structured(size: int) -> np.ndarray:
    """Three clearly different grey images in [-1, 1]: stripes, a disk, a checkerboard."""
    yy, xx = np.mgrid[0:size, 0:size] / size
    stripes = np.sin(2 * np.pi * 8 * xx)
    disk = np.where((xx - 0.5) ** 2 + (yy - 0.5) ** 2 < 0.1, 1.0, -1.0)
    checker = np.sign(np.sin(2 * np.pi * 4 * xx) * np.sin(2 * np.pi * 4 * yy))
    return np.stack([stripes, disk, checker])[..., None].astype("float32")


def _off_diagonal_cosines(features: np.ndarray) -> np.ndarray:
    """Pairwise cosine similarities between different rows."""
    unit = features / np.linalg.norm(features, axis=1, keepdims=True)
    sims = unit @ unit.T
    return sims[~np.eye(len(sims), dtype=bool)]


# --- parameter counts -------------------------------------------------------------------


def test_xception_transfer_architecture_matches_table3() -> None:
    rows = {r["count"]: r for r in disc.discriminator_param_table((256, 256, 3))}
    assert rows["total"]["ours"] == rows["total"]["paper"] == 20_867_624
    assert rows["trainable"]["ours"] == rows["trainable"]["paper"] == 2_048
    assert rows["non_trainable"]["ours"] == rows["non_trainable"]["paper"] == 20_865_576
    assert all(row["difference"] == 0 for row in rows.values())
    assert all(r["difference"] == 0 for r in rows.values())


def test_backbone_table_matches_paper_table2() -> None:
    table = backbones.backbone_table()
    assert [r["name"] for r in table] == list(backbones.BACKBONES)
    for row in table:
        assert row["measured_params_with_top"] == row["paper_params"], row["name"]
        assert 0 < row["measured_params_no_top"] < row["measured_params_with_top"]
    by_name = {r["name"]: r for r in table}
    assert by_name["Xception"]["measured_params_no_top"] == 20_861_480  # Keras' Xception without its top
    assert by_name["MobileNet"]["measured_params_no_top"] == 3_228_864
    assert by_name["Xception"]["min_input_size"] == 71
    assert by_name["InceptionV3"]["min_input_size"] == 75


# --- every backbone ---------------------------------------------------------------------


@pytest.mark.parametrize("backbone", list(backbones.BACKBONES))
def test_backbone_builds_scratch_and_transfer_architecture(random_images, backbone: str) -> None:
    x = random_images(2, 64, 1)
    model, info = disc.build_discriminator((64, 64, 1), backbone, mode="scratch")
    logits = model(x, training=False).numpy()
    assert logits.shape == (2, 1) and np.isfinite(logits).all()
    assert info.mode == "scratch" and info.weights is None
    assert backbones.get_backbone(model).trainable
    assert info.params["trainable"] > info.params["non_trainable"]
    expected_size = max(64, backbones.BACKBONES[backbone].min_size)
    assert info.backbone_input_size == (expected_size, expected_size)

    frozen, finfo = disc.build_transfer_architecture((64, 64, 1), backbone)
    assert not backbones.get_backbone(frozen).trainable
    (only,) = frozen.trainable_weights
    features, head = disc.split_discriminator(frozen)
    assert only is head.get_layer("logit").kernel
    assert finfo.params["trainable"] == features.output_shape[-1]
    assert finfo.params["total"] == info.params["total"]
    np.testing.assert_allclose(head(features(x), training=False), frozen(x, training=False),
                               rtol=1e-5, atol=1e-5)


# --- preprocessing ----------------------------------------------------------------------


def test_grey_is_replicated_and_resized_to_xception_minimum(random_images) -> None:
    model, info = disc.build_transfer_architecture((64, 64, 1), "Xception")
    assert info.backbone_input_size == (71, 71)
    prep = disc.split_discriminator(model)[0].get_layer("to_backbone_input")
    const = prep(np.full((1, 64, 64, 1), 0.5, "float32")).numpy()
    assert const.shape == (1, 71, 71, 3)
    np.testing.assert_allclose(const, 0.5, atol=1e-5)  # [-1,1] -> [0,255] -> "tf" mode
    varied = prep(random_images(1, 64, 1)).numpy()
    np.testing.assert_array_equal(varied[..., 0], varied[..., 1])
    np.testing.assert_array_equal(varied[..., 0], varied[..., 2])
    assert varied.std() > 0.1


def test_resnet_caffe_preprocessing_and_no_resize() -> None:
    model, info = disc.build_transfer_architecture((64, 64, 3), "ResNet50")
    assert info.backbone_input_size == (64, 64)
    prep = disc.split_discriminator(model)[0].get_layer("to_backbone_input")
    rgb = np.zeros((1, 64, 64, 3), "float32")
    rgb[..., 0] = 1.0  # pure red -> BGR order, ImageNet means subtracted
    out = prep(rgb).numpy()[0, 0, 0]
    np.testing.assert_allclose(out, [127.5 - 103.939, 127.5 - 116.779, 255 - 123.68], atol=1e-3)


# --- modes and training behaviour ---------------------------------------------------------


def test_frozen_backbone_bn_stays_in_inference_scratch_bn_trains(random_images) -> None:
    x = random_images(4, 32, 3)
    for build, should_change in (
        (lambda: disc.build_transfer_architecture((32, 32, 3), "MobileNet@0.25"), False),
        (lambda: disc.build_discriminator((32, 32, 3), "MobileNet@0.25", mode="scratch"), True),
    ):
        model, _ = build()
        bn = backbones.get_backbone(model).get_layer("conv1_bn")
        before = bn.moving_mean.numpy().copy()
        model(x, training=True)
        changed = not np.allclose(before, bn.moving_mean.numpy())
        assert changed == should_change


def test_minibatch_std_head_option() -> None:
    model, info = disc.build_transfer_architecture((32, 32, 3), "MobileNet@0.25",
                                                   head_minibatch_std=True)
    features, head = disc.split_discriminator(model)
    width = features.output_shape[-1]
    assert info.params["trainable"] == width + 1
    feats = np.random.default_rng(1).normal(size=(5, width)).astype("float32")
    out = head.get_layer("minibatch_std")(feats).numpy()
    np.testing.assert_allclose(out[:, -1], feats.std(axis=0).mean(), rtol=1e-4)
    assert head(feats, training=True).shape == (5, 1)


def test_checkpoint_roundtrip(random_images, tmp_path: Path) -> None:
    x = random_images(3, 32, 1)
    model_a, _ = disc.build_discriminator((32, 32, 1), "MobileNet@0.25", mode="scratch",
                                          head_minibatch_std=True)
    model_a(x, training=True)  # move BN statistics away from their initial values
    path = tf.train.Checkpoint(model=model_a).save(str(tmp_path / "ckpt"))
    model_b, _ = disc.build_discriminator((32, 32, 1), "MobileNet@0.25", mode="scratch",
                                          head_minibatch_std=True)
    assert not np.allclose(model_a(x, training=False), model_b(x, training=False))
    tf.train.Checkpoint(model=model_b).restore(path).assert_existing_objects_matched()
    np.testing.assert_allclose(model_a(x, training=False), model_b(x, training=False), atol=1e-6)


def test_transfer_without_weights_raises_with_instructions(offline: dict[str, Path]) -> None:
    with pytest.raises(pretrained.WeightsUnavailable) as err:
        disc.build_discriminator((64, 64, 1), "Xception", mode="transfer")
    message = str(err.value)
    assert "xception_weights_tf_dim_ordering_tf_kernels_notop.h5" in message
    assert str(offline["weights_dir"]) in message
    assert str(offline["keras_home"] / "models") in message
    assert "https://storage.googleapis.com/tensorflow/keras-applications/xception/" in message
    assert not pretrained.imagenet_weights_available("Xception")


def test_auto_falls_back_to_scratch_loudly(offline: dict[str, Path],
                                           caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="medgan"):
        model, info = disc.build_discriminator((32, 32, 1), "MobileNet@0.25", mode="auto")
    assert info.requested_mode == "auto" and info.mode == "scratch"
    assert "unavailable" in info.reason and MOBILENET_025 in info.reason
    assert any("SCRATCH" in r.getMessage() and r.levelno == logging.WARNING
               for r in caplog.records)
    assert backbones.get_backbone(model).trainable


def test_transfer_rejects_alpha_without_imagenet_weights(offline: dict[str, Path]) -> None:
    with pytest.raises(ValueError, match="alpha"):
        disc.build_discriminator((32, 32, 1), "MobileNet@0.3", mode="transfer")
    with pytest.raises(ValueError, match="alpha"):
        backbones.parse_backbone("Xception@0.5")


# --- locating weight files ----------------------------------------------------------------


def test_corrupted_file_in_weights_dir_is_rejected(offline: dict[str, Path]) -> None:
    bad = offline["weights_dir"] / MOBILENET_025
    bad.write_bytes(b"not an h5 file")
    actual = hashlib.sha256(b"not an h5 file").hexdigest()
    for mode in ("transfer", "auto"):
        with pytest.raises(pretrained.WeightsHashMismatch) as err:
            disc.build_discriminator((32, 32, 1), "MobileNet@0.25", mode=mode)
        message = str(err.value)
        assert MOBILENET_025 in message and actual in message
        assert pretrained.weights_file("MobileNet", 0.25).sha256 in message
    assert not pretrained.imagenet_weights_available("MobileNet", 0.25)


def test_keras_cache_file_is_used_by_path(offline: dict[str, Path],
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    entry = pretrained.weights_file("ResNet50")
    content = b"pretend resnet weights"
    monkeypatch.setitem(pretrained.IMAGENET_WEIGHTS, ("ResNet50", None),
                        dataclasses.replace(entry, md5=hashlib.md5(content).hexdigest()))

    def no_get_file(*args: object, **kwargs: object) -> str:
        raise AssertionError("get_file must not be called for a cached file")

    monkeypatch.setattr(pretrained.keras.utils, "get_file", no_get_file)
    cached = offline["keras_home"] / "models" / entry.file_name
    cached.parent.mkdir()
    cached.write_bytes(content)
    source = pretrained.resolve_imagenet_weights("ResNet50", None)
    assert source.origin == "keras_cache" and source.path == str(cached)
    assert source.sha256 == hashlib.sha256(content).hexdigest()
    assert pretrained.imagenet_weights_available("ResNet50")

    cached.write_bytes(b"damaged")
    with pytest.raises(pretrained.WeightsHashMismatch, match=entry.file_name):
        pretrained.resolve_imagenet_weights("ResNet50", None)
    assert cached.read_bytes() == b"damaged"  # never deleted behind the user's back


def test_download_uses_official_url_and_hash(offline: dict[str, Path],
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[tuple, dict]] = []

    def fake_get_file(*args: object, **kwargs: object) -> str:
        calls.append((args, kwargs))
        target = offline["keras_home"] / "models" / str(args[0])
        target.parent.mkdir(exist_ok=True)
        target.write_bytes(b"downloaded")
        return str(target)

    monkeypatch.setattr(pretrained, "_host_reachable", lambda url: True)
    monkeypatch.setattr(pretrained.keras.utils, "get_file", fake_get_file)
    source = pretrained.resolve_imagenet_weights("InceptionV3", None)
    entry = pretrained.weights_file("InceptionV3")
    assert source.origin == "download" and source.file_name == entry.file_name
    (args, kwargs), = calls
    assert args == (entry.file_name, entry.url)
    assert kwargs["file_hash"] == "bcbd6486424b2319ff4ef7d526e38f63"
    assert kwargs["cache_dir"] == str(offline["keras_home"])
    with pytest.raises(pretrained.WeightsUnavailable, match="downloads disabled"):
        pretrained.resolve_imagenet_weights("Xception", None, allow_download=False)


def test_unreachable_host_is_detected_quickly(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    start = time.monotonic()
    assert not pretrained._host_reachable("https://192.0.2.1/x.h5", timeout=0.5)  # TEST-NET-1
    assert time.monotonic() - start < 3


def test_user_path_is_used_as_given(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    custom = tmp_path / "my_finetuned.h5"
    custom.write_bytes(b"custom")
    with caplog.at_level(logging.WARNING, logger="medgan"):
        source = pretrained.resolve_imagenet_weights("Xception", None, user_path=str(custom))
    assert source.origin == "user_path" and source.path == str(custom)
    assert "not the official" in caplog.text
    with pytest.raises(FileNotFoundError):
        pretrained.resolve_imagenet_weights("Xception", None, user_path=str(tmp_path / "none"))


def test_weights_table_coverage() -> None:
    names = {(b, a): e.file_name for (b, a), e in pretrained.IMAGENET_WEIGHTS.items()}
    assert names[("MobileNet", 0.25)] == MOBILENET_025
    assert names[("MobileNetV2", 0.35)] == (
        "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_0.35_224_no_top.h5")
    assert {b for b, _ in names} == set(backbones.BACKBONES)
    assert pretrained.weights_file("MobileNet", 0.25).sha256 == (
        "dbdb03ee2a22fd895301636cd328b234bb3a9952358f436d82f46b81e0d5b0bf")
    assert pretrained.weights_file("MobileNetV2").alpha == 1.0


# --- real ImageNet weights ----------------------------------------------------------------


@NEEDS_REAL
def test_real_mobilenet_transfer(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(pretrained.WEIGHTS_DIR_ENV, REAL_WEIGHTS_DIR)
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    monkeypatch.setattr(pretrained, "_host_reachable", lambda url: False)
    keras.utils.set_random_seed(0)
    images = _structured(96)

    model, info = disc.build_discriminator((96, 96, 1), "MobileNet@0.25", mode="transfer")
    assert info.mode == "transfer" and info.weights["origin"] == "weights_dir"
    assert info.weights["file_name"] == MOBILENET_025
    backbone = backbones.get_backbone(model)
    assert not backbone.trainable
    assert abs(backbone.get_layer("conv_pw_7_bn").moving_mean.numpy()).mean() > 0.1
    pretrained_cos = _off_diagonal_cosines(disc.split_discriminator(model)[0](images).numpy())

    random_model, _ = disc.build_transfer_architecture((96, 96, 1), "MobileNet@0.25")
    random_cos = _off_diagonal_cosines(
        disc.split_discriminator(random_model)[0](images).numpy())
    assert pretrained_cos.max() < 0.99
    assert random_cos.min() > 0.9
    assert pretrained_cos.mean() < random_cos.mean() - 0.2


@NEEDS_REAL
def test_real_mobilenet_auto_picks_transfer(monkeypatch: pytest.MonkeyPatch,
                                            tmp_path: Path) -> None:
    monkeypatch.setenv(pretrained.WEIGHTS_DIR_ENV, REAL_WEIGHTS_DIR)
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    assert pretrained.imagenet_weights_available("MobileNet", 0.25)
    _, info = disc.build_discriminator((32, 32, 3), "MobileNet@0.25", mode="auto")
    assert info.mode == "transfer" and info.params["trainable"] == 256
