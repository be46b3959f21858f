"""Full training state of a run, written atomically so a killed run resumes exactly.

``run_dir/checkpoints/epoch_NNNN/`` holds both models, both optimizers, the noise generator
(``tf.train.Checkpoint``) and the history up to that epoch. Each is written under a temporary
name, renamed, then published through ``latest.json`` (replaced atomically); the last
``KEEP_CHECKPOINTS`` are kept. Generator weights of the snapshot epochs go to
``checkpoints/generator/`` (:func:`medgan_lib.rundir.generator_snapshot_path`) and are never pruned.
"""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import tensorflow as tf

from .gan import GAN
from .rundir import HISTORY_FIELDS, checkpoints_dir, generator_snapshot_path, history_csv, read_history, write_atomic

KEEP_CHECKPOINTS = 2


class PublishedStates:
    """``tf.train.Checkpoint`` states with their history in ``directory/epoch_NNNN/``, each written
    under a temporary name, renamed, then published through ``latest.json``; the last ``keep`` are kept."""

    def __init__(self, directory: Path, checkpoint: tf.train.Checkpoint,
                 history_fields: tuple[str, ...] = HISTORY_FIELDS, keep: int = KEEP_CHECKPOINTS) -> None:
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.checkpoint = checkpoint
        self.history_fields = history_fields
        self.keep = keep

    @property
    def pointer(self) -> Path:
        return self.dir / "latest.json"

    def latest_epoch(self) -> int:
        if not self.pointer.exists():
            return 0
        return int(json.loads(self.pointer.read_text())["epoch"])

    def save(self, epoch: int, history: list[dict]) -> None:
        """Write the state after ``epoch`` and publish it; older states are pruned afterwards."""
        final = self.dir / f"epoch_{epoch:04d}"
        tmp = self.dir / f".tmp_epoch_{epoch:04d}"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        self.checkpoint.write(str(tmp / "state"))
        write_atomic(tmp / "history.csv", history_csv(history, self.history_fields))
        shutil.rmtree(final, ignore_errors=True)
        os.replace(tmp, final)
        write_atomic(self.pointer, json.dumps({"epoch": epoch, "dir": final.name}))
        kept = sorted(self.dir.glob("epoch_*"))[-self.keep:]
        for old in self.dir.glob("epoch_*"):
            if old not in kept:
                shutil.rmtree(old)

    def restore(self) -> list[dict]:
        """Load the published state into its objects; returns its history (empty for a new run)."""
        if not self.pointer.exists():
            return []
        state = self.dir / json.loads(self.pointer.read_text())["dir"]
        self.checkpoint.read(str(state / "state")).assert_existing_objects_matched()
        return read_history(state / "history.csv")


class Checkpoints(PublishedStates):
    """Atomic, resumable training state of a GAN run in ``run_dir/checkpoints``."""

    def __init__(self, run_dir: Path, gan: GAN) -> None:
        self.run_dir = Path(run_dir)
        self.gan = gan
        super().__init__(checkpoints_dir(run_dir), tf.train.Checkpoint(
            generator=gan.generator,
            discriminator=gan.discriminator,
            g_optimizer=gan.g_optimizer,
            d_optimizer=gan.d_optimizer,
            noise=gan.noise,
        ))

    def save_generator(self, epoch: int) -> None:
        """The generator's weights after snapshot ``epoch``, kept for evaluation and exploring."""
        path = generator_snapshot_path(self.run_dir, epoch)
        path.parent.mkdir(exist_ok=True)
        tmp = path.with_name(f".tmp_{path.name}")  # same suffix, so Keras writes the same format
        self.gan.generator.save_weights(str(tmp))
        os.replace(tmp, path)
