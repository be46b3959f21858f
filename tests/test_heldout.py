"""Held-out real images: the split a run trains without, and evaluate's default comparison with it."""
import json

import numpy as np
import pytest

from medgan_lib.config import PRESETS, Config, preset
from medgan_lib.data import load_images
from medgan_lib.evaluation import evaluate_run
from medgan_lib.real_sets import NO_HELDOUT, heldout_images, training_images
from medgan_lib.rundir import config_differences, read_config, read_provenance
from medgan_lib.runs import train

from conftest import LIGHT_BACKBONE, write_snapshot_run


def test_holdout_field_defaults_to_zero_and_is_validated():
    assert {config.holdout for config in PRESETS.values()} == {0.0}  # presets train on the data they did before
    old = {k: v for k, v in preset("cpu").to_dict().items() if k != "holdout"}  # config.json of an older run
    assert Config.from_dict(old).holdout == 0.0 and not config_differences(Config.from_dict(old), preset("cpu"))
    for bad in (-0.1, 1.0):
        with pytest.raises(ValueError, match=r"holdout must be in \[0, 1\)"):
            preset("smoke").replace(holdout=bad)


def test_phantom_training_data_does_not_depend_on_the_fraction():
    base = preset("smoke")
    plain = training_images(base)
    assert training_images(base.replace(holdout=0.3)).fingerprint == plain.fingerprint
    held = heldout_images(base)
    assert held.fingerprint == load_images("phantom", base.image_size, 1, n_images=64, seed=1).fingerprint
    assert heldout_images(base.replace(holdout=0.3)).fingerprint == held.fingerprint


@pytest.fixture(scope="module")
def holdout_run(tmp_path_factory, smoke_run_data):
    """A one-epoch smoke run (the light backbone) on the shared npz data with a quarter of its rows held out."""
    config = preset("smoke").replace(data=smoke_run_data, holdout=0.25, epochs=1, backbone=LIGHT_BACKBONE)
    return train(config, tmp_path_factory.mktemp("holdout") / "run", progress=False)


def _rows(images: np.ndarray) -> set[bytes]:
    return {image.tobytes() for image in images}


def test_holdout_run_trains_without_the_held_out_rows_and_records_the_split(holdout_run, offline):
    config = read_config(holdout_run)
    train_part, held = training_images(config), heldout_images(config)
    assert (len(train_part.images), len(held.images)) == (48, 16)
    assert not _rows(train_part.images) & _rows(held.images)  # disjoint
    everything = load_images(config.data, config.image_size, config.channels)
    assert _rows(train_part.images) | _rows(held.images) == _rows(everything.images)  # and complete
    dataset = read_provenance(holdout_run)["dataset"]
    assert dataset["fingerprint"] == train_part.fingerprint and dataset["n_images"] == 48
    split = dataset["split"]
    assert (split["fraction"], split["split_seed"], split["unit"]) == (0.25, 0, "array row")
    assert (split["found"], split["train"], split["holdout"]) == (64, 48, 16)
    assert split["part_sha256"] == train_part.split["part_sha256"]
    train(config, holdout_run, progress=False)  # re-run (resume of a finished run): the same split, else RunError
    assert read_provenance(holdout_run)["dataset"]["split"] == split
    assert training_images(config).split["part_sha256"] == split["part_sha256"]


def test_evaluate_compares_with_the_held_out_rows_and_a_reference_at_equal_n(holdout_run, offline):
    record = evaluate_run(holdout_run, n=12, seed=1, progress=False)
    config = read_config(holdout_run)
    assert record["real"]["fingerprint"] == heldout_images(config).fingerprint
    assert record["real"]["fingerprint"] != record["training"]["fingerprint"] == training_images(config).fingerprint
    assert record["real"]["set"].startswith("held-out") and record["real"]["n_used"] == 12 and not record["warnings"]
    reference = record["reference"]["row"]
    assert reference["n_real"] == reference["n_fake"] == record["per_epoch"][-1]["n_real"] == 12
    assert record["metrics"]["nearest_training"]["n_real"] == 48  # memorisation: against every training image
    assert json.loads((holdout_run / "metrics.json").read_text())["reference"]["row"] == reference


def test_evaluate_of_a_phantom_run_uses_the_next_phantom_seed(tmp_path, offline):
    run_dir = write_snapshot_run(tmp_path / "run")
    config = read_config(run_dir)
    record = evaluate_run(run_dir, epochs=[3], n=16, progress=False)
    assert record["real"]["fingerprint"] == heldout_images(config).fingerprint
    assert record["real"]["split"]["holdout_seed"] == config.seed + 1 and "seed 1" in record["real"]["source"]
    assert record["real"]["fingerprint"] != training_images(config).fingerprint
    assert record["reference"]["row"]["n_fake"] == record["reference"]["row"]["n_real"] == 16


def test_evaluate_without_held_out_images_warns_and_records_it(smoke_run, offline):
    record = evaluate_run(smoke_run, epochs=[3], n=12, progress=False)  # npz data, holdout 0
    assert record["real"]["set"] == NO_HELDOUT and record["reference"] is None
    assert record["real"]["fingerprint"] == record["training"]["fingerprint"]
    assert record["warnings"] and record["warnings"][0].startswith("WARNING") and "--holdout" in record["warnings"][0]
    assert json.loads((smoke_run / "metrics.json").read_text())["real"]["set"] == NO_HELDOUT
