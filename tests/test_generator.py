"""The generator: literal Table 1 reading, its counts, and the oneDNN-safe layer."""
import json
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from medgan_lib import addons
from medgan_lib.config import preset
from medgan_lib.generator import (
    PAPER_G_PARAMS,
    StridedPointwiseTranspose,
    build_generator,
    generator_parameter_table,
    level_filters,
    level_table,
)
from medgan_lib.params import parameter_counts


@pytest.fixture(scope="module")
def paper_generator() -> tf.keras.Model:
    return build_generator(preset("paper"))


def test_paper_preset_counts_are_the_documented_literal_reading(paper_generator):
    counts = parameter_counts(paper_generator)
    assert counts == {"total": 17_256_181, "trainable": 17_223_413, "non_trainable": 32_768}
    rows = {r["count"]: r for r in generator_parameter_table(preset("paper"), paper_generator)}
    assert rows["total"]["paper"] == PAPER_G_PARAMS["total"]
    assert rows["total"]["difference"] == 17_256_181 - 17_074_528
    assert rows["total"]["difference_pct"] == pytest.approx(1.06, abs=0.01)


def test_paper_preset_makes_256px_rgb_in_tanh_range(paper_generator):
    assert paper_generator.output_shape == (None, 256, 256, 3)
    assert "to_image" not in [layer.name for layer in paper_generator.layers]
    images = paper_generator(tf.random.normal((2, 1024)) * 10.0, training=False)
    assert float(tf.reduce_max(tf.abs(images))) <= 1.0


def test_level_table_reads_the_literal_filters_from_the_model(paper_generator):
    assert [level_filters(preset("paper"), level) for level in range(1, 7)] == [32, 16, 8, 4, 2, 1]
    for level, filters in zip(range(1, 7), [32, 16, 8, 4, 2, 1]):
        rows = level_table(paper_generator, level)
        assert [r["type"] for r in rows] == [
            "Conv2D", "UpSampling2D", "Conv2D", "Conv2DTranspose", "Conv2D", "Conv2DTranspose"
        ]
        assert [r["kernel"] for r in rows] == ["3x3", "-", "1x1", "3x3", "1x1", "1x1"]
        assert [r["filters"] for r in rows if r["filters"] != "-"] == [filters] * 5
        assert rows[1]["pool_size"] == "2x2"
        assert rows[3]["strides"] == rows[5]["strides"] == "2x2"
    assert paper_generator.get_layer("level6_concat").output.shape[1:] == (256, 256, 3)


def test_width_and_channels_add_a_to_image_projection():
    config = preset("smoke").replace(width=3, channels=1)
    model = build_generator(config)
    assert model.output_shape == (None, config.image_size, config.image_size, 1)
    assert model.get_layer("level1_conv3x3").filters == 3 * 2 ** (config.levels - 1)
    assert model.get_layer("to_image").filters == 1


def test_tfa_layers_equal_keras_core():
    x = tf.random.stateless_normal((3, 8, 8, 32), seed=(1, 2)) * 3.0 + 1.0
    tfa_norm = addons.group_normalization(8)
    keras_norm = tf.keras.layers.GroupNormalization(8)
    tfa_norm.build(x.shape)
    keras_norm.build(x.shape)
    for weights in (tfa_norm.weights, keras_norm.weights):
        weights[0].assign(tf.linspace(0.5, 2.0, 32))
        weights[1].assign(tf.linspace(-1.0, 1.0, 32))
    np.testing.assert_allclose(tfa_norm(x), keras_norm(x), rtol=0, atol=1e-5)
    np.testing.assert_allclose(addons.gelu(x), tf.keras.activations.gelu(x, approximate=True), atol=1e-6)
    # The pinned flag matters: the exact form differs measurably.
    assert float(tf.reduce_max(tf.abs(addons.gelu(x) - tf.keras.activations.gelu(x)))) > 1e-4


REFERENCE_SCRIPT = """
import json, os, sys
import numpy as np, tensorflow as tf
x = np.asarray(json.loads(sys.argv[1]), dtype=np.float32)
kernel = np.asarray(json.loads(sys.argv[2]), dtype=np.float32)
bias = np.asarray(json.loads(sys.argv[3]), dtype=np.float32)
layer = tf.keras.layers.Conv2DTranspose(kernel.shape[2], 1, strides=2, padding="same")
layer.build(x.shape)
layer.set_weights([kernel, bias])
print(json.dumps(layer(x).numpy().tolist()))
"""


def test_strided_pointwise_transpose_equals_conv2d_transpose_without_onednn():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 5, 4, 4)).astype(np.float32)
    layer = StridedPointwiseTranspose(3)
    layer.build(x.shape)
    kernel, bias = layer.get_weights()
    bias = rng.normal(size=bias.shape).astype(np.float32)
    layer.set_weights([kernel, bias])
    ours = layer(x).numpy()
    assert kernel.shape == (1, 1, 3, 4)  # Conv2DTranspose's layout
    env = {"TF_ENABLE_ONEDNN_OPTS": "0", "TF_CPP_MIN_LOG_LEVEL": "3", "PATH": "/usr/bin:/bin"}
    out = subprocess.run(
        [sys.executable, "-c", REFERENCE_SCRIPT, json.dumps(x.tolist()), json.dumps(kernel.tolist()),
         json.dumps(bias.tolist())],
        capture_output=True, text=True, env=env, check=True,
    )
    reference = np.asarray(json.loads(out.stdout.strip().splitlines()[-1]), dtype=np.float32)
    assert reference.shape == ours.shape == (2, 10, 8, 3)
    np.testing.assert_allclose(ours, reference, rtol=1e-5, atol=1e-5)
    assert not np.allclose(ours[:, 1::2, 1::2], ours[:, ::2, ::2])  # the scatter is not a broadcast


def test_dropout_masks_resume_from_a_checkpoint(tmp_path):
    from medgan_lib.generator import CheckpointedDropout

    layer = CheckpointedDropout(0.5, seed=3)
    x = tf.ones((4, 64))
    np.testing.assert_array_equal(layer(x, training=False), x)
    first = layer(x, training=True).numpy()
    assert set(np.unique(first)) == {0.0, 2.0}
    checkpoint = tf.train.Checkpoint(layer=layer)
    path = checkpoint.write(str(tmp_path / "state"))
    expected = layer(x, training=True).numpy()
    restored = CheckpointedDropout(0.5, seed=99)
    tf.train.Checkpoint(layer=restored).read(path).assert_existing_objects_matched()
    np.testing.assert_array_equal(restored(x, training=True), expected)
    assert not np.array_equal(first, expected)
