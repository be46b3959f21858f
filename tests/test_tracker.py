"""The keypoint tracker: it learns, its batches and augmentation are right, its runs resume."""
import json

import numpy as np
import pytest

from medgan_lib.phantom import LANDMARK_NAMES, make_phantom
from medgan_lib.tracker import (
    EpochBatches,
    LabelledFrames,
    TrackerConfig,
    TrackerRunError,
    augment_batch,
    evaluate_tracker,
    landmark_metrics,
    load_tracker,
    mean_position_baseline,
    read_tracker_history,
    train_tracker,
)

TINY = TrackerConfig(image_size=32, base_filters=8, depth=2, batch_size=16, steps=150, steps_per_epoch=50,
                     learning_rate=3e-3)


@pytest.fixture(scope="module")
def frames() -> LabelledFrames:
    return LabelledFrames.from_phantom(make_phantom(48, 32, seed=7))


def test_tracker_learns_below_mean_position_baseline(frames, tmp_path):
    model = train_tracker(TINY, frames, tmp_path / "run")
    learned = evaluate_tracker(model, frames)
    baseline = mean_position_baseline(frames, frames)
    assert learned["error_px"] < 0.6 * baseline["error_px"], (learned, baseline)
    assert learned["pck3"] > baseline["pck3"]
    history = read_tracker_history(tmp_path / "run")
    assert [row["epoch"] for row in history] == [1, 2, 3]
    assert history[-1]["xy_loss"] < history[0]["xy_loss"]


def test_resume_gives_the_uninterrupted_run(frames, tmp_path):
    config = TrackerConfig(**{**TINY.__dict__, "steps": 6, "steps_per_epoch": 3, "augment": ("shift",)})
    whole = train_tracker(config, frames, tmp_path / "whole")
    train_tracker(config, frames, tmp_path / "split", stop_after_epoch=1)
    assert len(read_tracker_history(tmp_path / "split")) == 1
    resumed = train_tracker(config, frames, tmp_path / "split")
    for a, b in zip(whole.get_weights(), resumed.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
    assert [r["loss"] for r in read_tracker_history(tmp_path / "whole")] == pytest.approx(
        [r["loss"] for r in read_tracker_history(tmp_path / "split")], rel=1e-4)
    reloaded = load_tracker(tmp_path / "split")
    for a, b in zip(reloaded.get_weights(), resumed.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_other_config_or_data_in_a_run_dir_is_an_error(frames, tmp_path):
    config = TrackerConfig(**{**TINY.__dict__, "steps": 2, "steps_per_epoch": 2})
    train_tracker(config, frames.subset(slice(0, 16)), tmp_path / "run")
    assert json.loads((tmp_path / "run" / "config.json").read_text())["n_frames"] == 16
    with pytest.raises(TrackerRunError, match="data_fingerprint"):
        train_tracker(config, frames.subset(slice(16, 32)), tmp_path / "run")
    with pytest.raises(TrackerRunError, match="learning_rate"):
        train_tracker(TrackerConfig(**{**config.__dict__, "learning_rate": 1e-2}), frames.subset(slice(0, 16)),
                      tmp_path / "run")


def test_epoch_batches_cover_the_set_and_count_steps(frames):
    config = TrackerConfig(**{**TINY.__dict__, "batch_size": 16, "steps": 60, "steps_per_epoch": 6})
    batches = EpochBatches(frames, config, epoch=1)
    assert len(batches) == 6 and config.epochs == 10
    assert set(batches.order.tolist()) == set(range(len(frames)))  # 96 draws cycle the 48 frames twice
    images, targets = batches[0]
    assert images.shape == (16, 32, 32, 1) and targets["xy"].shape == (16, len(LANDMARK_NAMES), 3)
    np.testing.assert_array_equal(EpochBatches(frames, config, epoch=1)[3][0], batches[3][0])
    assert not np.array_equal(EpochBatches(frames, config, epoch=2).order, batches.order)


def test_flip_and_shift_move_the_landmarks_with_the_image():
    phantom = make_phantom(4, 64, seed=3)
    frames = LabelledFrames.from_phantom(phantom)
    flipped = augment_batch(np.random.default_rng(0), frames, ("flip",))
    was = np.array([not np.array_equal(f, g) for f, g in zip(flipped.images, frames.images)])
    assert was.any()
    left, right = LANDMARK_NAMES.index("annulus_left"), LANDMARK_NAMES.index("annulus_right")
    i = int(np.flatnonzero(was)[0])
    np.testing.assert_array_equal(flipped.images[i], frames.images[i, :, ::-1])
    assert flipped.xy[i, left, 0] == pytest.approx(63 - frames.xy[i, right, 0])
    assert flipped.xy[i, left, 0] < flipped.xy[i, right, 0]  # still ordered by image x
    shifted = augment_batch(np.random.default_rng(1), frames, ("shift",))
    d = np.round(shifted.xy - frames.xy)[:, 0]  # integer shift per frame, the same for every landmark
    np.testing.assert_allclose(shifted.xy - frames.xy, np.broadcast_to(d[:, None], frames.xy.shape), atol=1e-4)
    dx, dy = d[0].astype(int)
    np.testing.assert_array_equal(shifted.images[0, 10 + dy, 10 + dx], frames.images[0, 10, 10])


def test_metrics_on_known_answers():
    truth = LabelledFrames(np.zeros((2, 64, 64, 1), np.float32), np.zeros((2, 2, 2), np.float32),
                           np.array([[True, False], [True, True]]))
    xy = np.array([[[3.0, 4.0], [50.0, 50.0]], [[0.0, 1.0], [0.0, 0.0]]])
    m = landmark_metrics(xy, np.array([[True, True], [True, True]]), truth)
    assert m["error_px"] == pytest.approx(2.0)  # (5 + 1 + 0) / 3, the absent landmark not counted
    assert m["error_pct"] == pytest.approx(100 * 2.0 / 64)
    assert m["pck3"] == pytest.approx(2 / 3)
    assert m["presence_accuracy"] == pytest.approx(3 / 4)


def test_reusing_a_model_trains_as_a_new_one(frames, tmp_path):
    config = TrackerConfig(**{**TINY.__dict__, "steps": 2, "steps_per_epoch": 2})
    fresh = [w.copy() for w in train_tracker(config, frames, tmp_path / "a").get_weights()]
    other = train_tracker(TrackerConfig(**{**config.__dict__, "seed": 5}), frames, tmp_path / "b")
    reused = train_tracker(config, frames, tmp_path / "c", reuse=other)
    assert reused is other
    for a, b in zip(fresh, reused.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
