"""Labelled synthesis: a GAN whose generator also outputs the landmarks' heatmap channels."""
import csv
import dataclasses
import json

import numpy as np
import pytest

from medgan_lib.config import SMOKE
from medgan_lib.data import load_images
from medgan_lib.generator import build_generator
from medgan_lib.landmarks import decode_heatmaps, stack_landmarks, to_unit, training_arrays
from medgan_lib.phantom import LANDMARK_NAMES, make_phantom
from medgan_lib.generate import generate_to_directory, latent_stream, sampling_snapshot
from medgan_lib.landmarks import split_labelled_output
from medgan_lib.rundir import load_weights_file
from medgan_lib.runs import build_gan, train

LABELLED = SMOKE.replace(discriminator="dcgan", landmark_heatmaps=True, epochs=2, n_images=32)


def test_config_adds_one_channel_per_landmark_and_checks_its_needs():
    assert LABELLED.output_channels == 1 + len(LANDMARK_NAMES) and SMOKE.output_channels == 1
    assert build_generator(LABELLED).output.shape[-1] == LABELLED.output_channels
    images = load_images("phantom", 32, 1, n_images=2, seed=0)
    with pytest.raises(ValueError, match="discriminator"):
        training_arrays(images, SMOKE.replace(landmark_heatmaps=True))
    with pytest.raises(ValueError, match="no landmarks"):
        training_arrays(dataclasses.replace(images, metadata={}), LABELLED)


def test_training_arrays_hold_the_phantom_landmarks():
    images = load_images("phantom", 32, 1, n_images=8, seed=3)
    arrays = training_arrays(images, LABELLED)
    assert arrays.shape == (8, 32, 32, LABELLED.output_channels)
    np.testing.assert_array_equal(arrays[..., :1], images.images)
    assert training_arrays(images, SMOKE) is images.images
    xy, present = stack_landmarks(make_phantom(8, 32, seed=3).landmarks)
    decoded, found, _ = decode_heatmaps(to_unit(arrays[..., 1:]))
    np.testing.assert_array_equal(found, present)
    assert np.abs(decoded - xy)[present].max() < 0.5


@pytest.fixture(scope="module")
def labelled_run(tmp_path_factory):
    return train(LABELLED, tmp_path_factory.mktemp("labelled") / "run", progress=False)


def test_labelled_run_trains_and_keeps_image_samples(labelled_run):
    gan, info = build_gan(LABELLED)
    assert gan.discriminator.input.shape[-1] == LABELLED.output_channels and info.kind == "dcgan"
    samples = np.load(labelled_run / "samples" / "epoch_0002.npy")
    assert samples.shape == (LABELLED.n_fixed_samples, 32, 32, 1)


def test_generate_writes_the_generated_landmarks(labelled_run, tmp_path):
    generate_to_directory(labelled_run, 5, tmp_path / "out", batch_size=2)
    with open(tmp_path / "out" / "manifest.csv") as f:
        rows = list(csv.DictReader(f))
    generator = build_generator(LABELLED)
    load_weights_file(generator, sampling_snapshot(labelled_run).path)
    z = np.concatenate([batch for _, batch in latent_stream(0, 5, LABELLED.latent_dim, 5)])
    _, xy, present = split_labelled_output(generator(z, training=False), LABELLED.channels)
    for row, frame_xy, frame_present in zip(rows, xy, present):
        for k, name in enumerate(LANDMARK_NAMES):
            assert row[f"{name}_present"] == str(int(frame_present[k]))
            if frame_present[k]:
                assert float(row[f"{name}_x"]) == pytest.approx(frame_xy[k, 0], abs=2e-3)
            else:
                assert row[f"{name}_x"] == ""
    record = json.loads((tmp_path / "out" / "generation.json").read_text())
    assert record["landmarks"]["names"] == list(LANDMARK_NAMES) and "argmax" in record["landmarks"]["rule"]
    assert record["image_shape"] == [32, 32, 1]
