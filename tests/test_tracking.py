"""The labelled-synthesis experiment: arms, equal steps, disjoint test frames, outputs."""
import csv

import numpy as np
import pytest

from medgan_lib.config import MEDGAN
from medgan_lib.tracker import LabelledFrames, load_tracker
from medgan_lib.tracking import (
    ARMS,
    TEST_SEED,
    Settings,
    agreement_mask,
    arm_training_set,
    assert_disjoint,
    main,
    real_frames,
    run_experiment,
)

TINY = Settings(n_real=(16,), seeds=(0,), n_synthetic=16, n_test=16, gan_steps=2, tracker_steps=4, scale="smoke")


@pytest.fixture(scope="module")
def experiment(tmp_path_factory):
    out = tmp_path_factory.mktemp("tracking")
    record = run_experiment(TINY, out, log=lambda *_: None)
    return out, record


def test_experiment_writes_every_arm_with_equal_steps(experiment):
    out, record = experiment
    with open(out / "results.csv") as f:
        rows = list(csv.DictReader(f))
    assert [r["arm"] for r in rows] == ["mean-position baseline", *ARMS]
    assert {int(r["steps"]) for r in rows if r["arm"] in ARMS} == {TINY.tracker_steps}
    for arm in ARMS:  # the optimiser really took the same number of steps in every arm
        model = load_tracker(out / "trackers" / f"{arm}_n16_seed0")
        assert int(model.optimizer.iterations.numpy()) == TINY.tracker_steps, arm
    assert all(0.0 <= float(r["pck3"]) <= 1.0 and float(r["error_px"]) > 0 for r in rows)
    assert "| 16 | real+synthetic |" in (out / "results.md").read_text()
    assert (out / "error_vs_n_real.png").stat().st_size > 0
    with open(out / "faithfulness.csv") as f:
        faith = list(csv.DictReader(f))
    assert len(faith) == 1 and int(faith[0]["n_synthetic"]) == TINY.n_synthetic
    assert record["done"] == [[16, 0]]


def test_test_frames_are_disjoint_from_training_frames():
    test = real_frames(20, 32, TEST_SEED)
    train = real_frames(20, 32, 0)
    assert_disjoint(test, train, real_frames(10, 32, 1))
    with pytest.raises(AssertionError, match="test frames also appear"):
        assert_disjoint(test, LabelledFrames.concat([train, test.subset(slice(3, 5))]))


def _frames(n: int, value: float) -> LabelledFrames:
    return LabelledFrames(np.full((n, 8, 8, 1), value, np.float32), np.zeros((n, 2, 2), np.float32),
                          np.ones((n, 2), bool))


def test_arm_training_sets():
    real, synthetic = _frames(4, 0.0), _frames(12, 1.0)
    keep = np.array([True, False] * 6)
    mixed, augment = arm_training_set("real+synthetic", real, synthetic, None)
    assert len(mixed) == 24 and (mixed.images[:12] == 0).all() and augment == ()  # real repeated to half
    assert len(arm_training_set("synthetic", real, synthetic, None)[0]) == 12
    assert arm_training_set("real+augment", real, synthetic, None)[1] == ("flip", "shift", "intensity")
    filtered, _ = arm_training_set("real+synthetic-filtered", real, synthetic, keep)
    assert len(filtered) == 4 * 1 + 6 and (filtered.images[4:] == 1).all()
    assert len(arm_training_set("real+synthetic-filtered", real, synthetic, np.zeros(12, bool))[0]) == 4


def test_agreement_filter():
    synthetic = _frames(3, 0.0)
    predicted = type("P", (), {})()
    predicted.xy = np.zeros((3, 2, 2))
    predicted.xy[1, 0] = [4.0, 0.0]  # 4 px away
    predicted.present = np.ones((3, 2), bool)
    predicted.present[2, 1] = False  # presence disagrees
    assert agreement_mask(predicted, synthetic, 3.0).tolist() == [True, False, False]


def test_bad_arm_is_one_error_line(tmp_path, capsys):
    assert main(["--out-dir", str(tmp_path), "--arms", "real,bogus"]) == 2
    assert capsys.readouterr().err.startswith("error: unknown arms ['bogus']")


def test_the_labelled_gan_is_the_recommended_preset_with_landmarks():
    settings = Settings()
    config = settings.gan_config(32, 1)
    assert config.landmark_heatmaps and config.discriminator == "conv" and config.generator == "resize_conv"
    assert config.g_ema_decay == MEDGAN.g_ema_decay and config.seed == 1 and config.n_images == 32
    steps = config.epochs * 32 * config.data_repeats // config.batch_size
    assert abs(steps - settings.gan_steps) <= settings.gan_steps * 0.05
    assert Settings(n_real=(6,)).gan_config(6, 0).batch_size == 4  # a whole minibatch-deviation group
    with pytest.raises(ValueError, match="at least 4"):
        Settings(n_real=(3,))
