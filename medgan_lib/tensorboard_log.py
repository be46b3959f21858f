"""TensorBoard event files of a run (``tensorboard --logdir runs/``).

* ``run_dir/tensorboard/train/``: per epoch the losses, D's accuracies and the epoch's seconds
  (the ``history.csv`` columns), and the fixed-noise sample grid at every snapshot epoch;
  written by :class:`TrainingLog` from the training loop, flushed every epoch.
* ``run_dir/tensorboard/evaluation/``: the metrics ``evaluate`` writes, per snapshot epoch
  (:func:`write_evaluation`); every ``evaluate`` replaces them, like ``metrics_per_epoch.csv``.

The step is the epoch. A resumed run repeats the epochs after its last checkpoint, so
:class:`TrainingLog` first drops the logged steps after the epoch it resumes from (rewriting the
kept events, wall times included): every step is logged once.
"""
from __future__ import annotations

import os
import socket
import time
from pathlib import Path
from typing import Any, Mapping, Sequence

from .rundir import tensorboard_dir

TRAIN, EVALUATION = "train", "evaluation"
EVENT_FILES = "events.out.tfevents.*"
SCALAR_TAGS = {  # history.csv column -> TensorBoard tag; other columns go under "other/"
    "d_loss": "loss/discriminator",
    "g_loss": "loss/generator",
    "d_real_accuracy": "accuracy/discriminator_on_real",
    "d_fake_accuracy": "accuracy/discriminator_on_generated",
    "seconds": "time/seconds_per_epoch",
}
SAMPLES_TAG = "samples/fixed_noise"


def logged_steps(folder: Path) -> list[tuple[str, int]]:
    """(tag, step) of every summary value in the event files of ``folder``, in file order."""
    return [(value.tag, event.step) for event in _events(folder) for value in event.summary.value]


def _events(folder: Path):
    import tensorflow as tf

    for path in sorted(folder.glob(EVENT_FILES)):
        yield from tf.compat.v1.train.summary_iterator(str(path))


def drop_steps_after(folder: Path, last_step: int) -> int:
    """Remove the summaries logged at steps after ``last_step``; returns how many there were.

    The events kept are written unchanged (wall times too) into one new event file that replaces
    the old ones; nothing is rewritten when no step is later than ``last_step``.
    """
    import tensorflow as tf

    events = list(_events(folder))
    later = sum(len(e.summary.value) for e in events if e.step > last_step)
    if not later:
        return 0
    old = sorted(folder.glob(EVENT_FILES))
    name = f"events.out.tfevents.{time.time():.6f}.{socket.gethostname()}.resumed"
    partial = folder / f".{name}.tmp"
    with tf.io.TFRecordWriter(str(partial)) as writer:
        for event in events:
            if event.step <= last_step or not event.summary.value:
                writer.write(event.SerializeToString())
    for path in old:
        path.unlink()
    partial.rename(folder / name)
    return later


class TrainingLog:
    """The training loop's TensorBoard writer: one call per epoch, one per sample grid."""

    def __init__(self, run_dir: str | os.PathLike, resume_epoch: int = 0) -> None:
        import tensorflow as tf

        self.dir = tensorboard_dir(run_dir) / TRAIN
        self.dir.mkdir(parents=True, exist_ok=True)
        drop_steps_after(self.dir, resume_epoch)
        self.writer = tf.summary.create_file_writer(str(self.dir))

    def epoch(self, row: Mapping[str, Any]) -> None:
        """The numbers of one ``history.csv`` row, at step ``row["epoch"]``."""
        import tensorflow as tf

        with self.writer.as_default(step=int(row["epoch"])):
            for key, value in row.items():
                if key != "epoch":
                    tf.summary.scalar(SCALAR_TAGS.get(key, f"other/{key}"), float(value))
        self.writer.flush()

    def samples(self, epoch: int, grid_png: str | os.PathLike) -> None:
        """The fixed-noise sample grid (a PNG written by the loop) at step ``epoch``."""
        import tensorflow as tf

        image = tf.io.decode_png(Path(grid_png).read_bytes())
        with self.writer.as_default(step=int(epoch)):
            tf.summary.image(SAMPLES_TAG, image[None], description=f"generator on the fixed noise, epoch {epoch}")
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()


def write_evaluation(run_dir: str | os.PathLike, rows: Sequence[Mapping[str, Any]]) -> Path:
    """``metrics_per_epoch.csv`` rows as scalars ``metrics/<name>`` (and ``swd/<size>px`` per pyramid
    level) at step = epoch, replacing the earlier evaluation's events. Returns the folder."""
    import tensorflow as tf

    folder = tensorboard_dir(run_dir) / EVALUATION
    folder.mkdir(parents=True, exist_ok=True)
    for path in folder.glob(EVENT_FILES):
        path.unlink()
    writer = tf.summary.create_file_writer(str(folder))
    with writer.as_default():
        for row in rows:
            step = int(row["epoch"])
            for key, value in row.items():
                if key != "epoch" and isinstance(value, (int, float)) and not isinstance(value, bool):
                    tf.summary.scalar(f"metrics/{key}", float(value), step=step)
            if row.get("swd_per_level"):
                levels = zip(str(row["swd_resolutions"]).split(";"), str(row["swd_per_level"]).split(";"))
                for size, value in levels:
                    tf.summary.scalar(f"swd/{size}px", float(value), step=step)
    writer.close()
    return folder
