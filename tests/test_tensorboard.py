"""TensorBoard event files of a run (every step logged once, also across a resume) and the headless bar."""
from collections import Counter

import numpy as np
import pytest
import tensorflow as tf
import tqdm.auto
import tqdm.std

from medgan_lib import progress, rundir, runs
from medgan_lib.config import preset
from medgan_lib.rundir import tensorboard_dir
from medgan_lib.tensorboard_log import SAMPLES_TAG, SCALAR_TAGS, TrainingLog, logged_steps, write_evaluation

from conftest import LIGHT_BACKBONE


def events(folder):
    return [event for path in sorted(folder.glob("events.out.tfevents.*"))
            for event in tf.compat.v1.train.summary_iterator(str(path))]


def test_resuming_drops_the_steps_after_the_checkpoint_and_keeps_the_rest_unchanged(tmp_path):
    grid = tmp_path / "grid.png"
    grid.write_bytes(tf.io.encode_png(np.full((6, 8, 1), 200, np.uint8)).numpy())
    log = TrainingLog(tmp_path, 0)
    for epoch in (1, 2, 3):
        log.epoch({"epoch": epoch, "d_loss": 0.5 + epoch, "g_loss": 0.7, "seconds": 1.5, "ema_decay": 0.9})
        log.samples(epoch, grid)
    log.close()
    folder = tensorboard_dir(tmp_path) / "train"
    before = {(v.tag, e.step): (e.wall_time, v.SerializeToString()) for e in events(folder) for v in e.summary.value}
    assert {tag for tag, _ in before} == {"loss/discriminator", "loss/generator", "time/seconds_per_epoch",
                                          "other/ema_decay", SAMPLES_TAG}
    log = TrainingLog(tmp_path, 1)  # the run resumes from its checkpoint of epoch 1
    assert {step for _, step in logged_steps(folder)} == {1}
    for epoch in (2, 3):
        log.epoch({"epoch": epoch, "d_loss": 9.0, "g_loss": 0.7, "seconds": 1.5, "ema_decay": 0.9})
    log.close()
    counts = Counter(logged_steps(folder))
    assert set(counts.values()) == {1}  # no step twice
    assert {step for (tag, step) in counts if tag == "loss/discriminator"} == {1, 2, 3}
    after = {(v.tag, e.step): (e.wall_time, v.SerializeToString()) for e in events(folder) for v in e.summary.value}
    assert all(after[key] == before[key] for key in before if key[1] == 1)  # kept events unchanged
    value = next(v for e in events(folder) for v in e.summary.value if v.tag == "loss/discriminator" and e.step == 3)
    assert tf.make_ndarray(value.tensor) == pytest.approx(9.0)


def test_evaluation_metrics_replace_the_earlier_evaluation(tmp_path):
    row = {"epoch": 2, "swd": 500.0, "precision": 0.25, "fid": "", "swd_per_level": "10.00;20.00",
           "swd_resolutions": "32;16"}
    write_evaluation(tmp_path, [row, {**row, "epoch": 4}])
    folder = write_evaluation(tmp_path, [{**row, "epoch": 4, "swd": 400.0}])
    assert Counter(logged_steps(folder)) == Counter({("metrics/swd", 4): 1, ("metrics/precision", 4): 1,
                                                     ("swd/32px", 4): 1, ("swd/16px", 4): 1})


def test_training_writes_scalars_every_epoch_and_grids_at_snapshots_once_across_an_interruption(tmp_path,
                                                                                                 monkeypatch):
    config = preset("smoke").replace(epochs=2, n_images=32, backbone=LIGHT_BACKBONE)
    real_samples = TrainingLog.samples

    def interrupt_at_epoch_2(self, epoch, grid):
        real_samples(self, epoch, grid)
        if epoch == 2:
            raise KeyboardInterrupt  # after epoch 2 was logged, before its checkpoint

    monkeypatch.setattr(TrainingLog, "samples", interrupt_at_epoch_2)
    with pytest.raises(KeyboardInterrupt):
        runs.train(config, tmp_path / "run", progress=False)
    folder = tensorboard_dir(tmp_path / "run") / "train"
    assert ("loss/generator", 2) in logged_steps(folder)
    monkeypatch.setattr(TrainingLog, "samples", real_samples)
    runs.train(config, tmp_path / "run", progress=False)  # resumes after epoch 1
    counts = Counter(logged_steps(folder))
    assert set(counts.values()) == {1}
    for tag in SCALAR_TAGS.values():
        assert {step for (t, step) in counts if t == tag} == {1, 2}, tag
    assert {step for (t, step) in counts if t == SAMPLES_TAG} == set(rundir.snapshot_epochs(2))
    history = rundir.read_history(tmp_path / "run" / "history.csv")
    logged = {e.step: tf.make_ndarray(v.tensor) for e in events(folder) for v in e.summary.value
              if v.tag == "loss/discriminator"}
    assert logged == pytest.approx({row["epoch"]: row["d_loss"] for row in history})


def test_headless_runs_use_the_terminal_bar(monkeypatch):
    monkeypatch.setenv(progress.ENV_HEADLESS, "1")
    assert progress.progress_bar_class() is tqdm.std.tqdm  # no widget, so no comm under papermill / nbval
    monkeypatch.delenv(progress.ENV_HEADLESS)
    assert progress.progress_bar_class() is tqdm.auto.tqdm


def test_the_cli_run_holds_loss_scalars_for_every_epoch(smoke_run):
    counts = Counter(logged_steps(tensorboard_dir(smoke_run) / "train"))
    epochs = rundir.snapshot_epochs(preset("smoke").epochs)
    assert {step for (tag, step) in counts if tag == "loss/generator"} == set(range(1, preset("smoke").epochs + 1))
    assert {step for (tag, step) in counts if tag == SAMPLES_TAG} == set(epochs)
