"""Full training state of a run, written atomically so a killed run resumes exactly.

``run_dir/checkpoints/epoch_NNNN/`` holds both models, both optimizers, the noise generator
(``tf.train.Checkpoint``) and the history up to that epoch. Each is written under a temporary
name unique to the process, renamed, then published through ``latest.json`` (replaced
atomically); the last ``KEEP_CHECKPOINTS`` are kept. A resume checks what it reads and falls back
to an older intact state (:mod:`medgan_lib.resume`). The weight average of G is part of the state when the run keeps one,
and it (else G) is what the snapshot epochs' generator weights hold; they go to
``checkpoints/generator/`` (:func:`medgan_lib.rundir.generator_snapshot_path`) and are never pruned.
"""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import tensorflow as tf

from .config import Config
from .gan import GAN
from .generator import build_generator
from .resume import checkpoint_epoch, checkpoint_name, read_pointer, restore_newest_intact
from .rundir import (HISTORY_FIELDS, RunNotReady, checkpoints_dir, generator_snapshot_path, history_csv,
                     read_config, read_history, write_atomic)

KEEP_CHECKPOINTS = 2


class PublishedStates:
    """``tf.train.Checkpoint`` states with their history in ``directory/epoch_NNNN/``, each written
    under a temporary name, renamed, then published through ``latest.json``; the last ``keep`` are kept."""

    def __init__(self, directory: Path, checkpoint: tf.train.Checkpoint,
                 history_fields: tuple[str, ...] = HISTORY_FIELDS, keep: int = KEEP_CHECKPOINTS) -> None:
        self.dir = Path(directory)
        self.checkpoint = checkpoint
        self.history_fields = history_fields
        self.keep = keep

    @property
    def pointer(self) -> Path:
        return self.dir / "latest.json"

    def latest_epoch(self) -> int:
        """The epoch of the published state (0 if none)."""
        published = read_pointer(self.dir)
        return published[0] if published else 0

    def save(self, epoch: int, history: list[dict]) -> None:
        """Write the state after ``epoch`` and publish it; older states and newer stale ones are pruned."""
        self.dir.mkdir(parents=True, exist_ok=True)
        for stale in self.dir.glob(".tmp_epoch_*"):  # left by a killed trainer (the caller holds the run lock)
            shutil.rmtree(stale, ignore_errors=True)
        final = self.dir / checkpoint_name(epoch)
        tmp = self.dir / f".tmp_{final.name}.{os.getpid()}"
        try:
            tmp.mkdir()
            self.checkpoint.write(str(tmp / "state"))
            write_atomic(tmp / "history.csv", history_csv(history, self.history_fields))
            shutil.rmtree(final, ignore_errors=True)
            os.replace(tmp, final)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        write_atomic(self.pointer, json.dumps({"epoch": epoch, "dir": final.name}))
        saved = sorted((e, p) for p in self.dir.glob("epoch_*") if (e := checkpoint_epoch(p)) is not None)
        kept = [p for e, p in saved if e <= epoch][-self.keep:]
        for _, old in saved:
            if old not in kept:  # older ones, and newer ones left from before a fallback
                shutil.rmtree(old)

    def restore(self) -> list[dict]:
        """Load the newest intact published state into its objects; returns its history (empty for a new run)."""
        return restore_newest_intact(self.dir, self._restore_one)[1]

    def _restore_one(self, directory: Path) -> list[dict]:
        self.checkpoint.read(str(directory / "state")).assert_existing_objects_matched()
        return read_history(directory / "history.csv")


class Checkpoints(PublishedStates):
    """Atomic, resumable training state of a GAN run in ``run_dir/checkpoints``."""

    def __init__(self, run_dir: Path, gan: GAN) -> None:
        self.run_dir = Path(run_dir)
        self.gan = gan
        average = {"generator_average": gan.generator_average} if gan.generator_average is not None else {}
        super().__init__(checkpoints_dir(run_dir), tf.train.Checkpoint(
            generator=gan.generator,
            discriminator=gan.discriminator,
            g_optimizer=gan.g_optimizer,
            d_optimizer=gan.d_optimizer,
            noise=gan.noise,
            **average,
        ))

    def save_generator(self, epoch: int) -> None:
        """The weights of the generator that makes the run's samples (:attr:`GAN.sampler`: the
        weight average if the run keeps one) after snapshot ``epoch``, for evaluation and export."""
        path = generator_snapshot_path(self.run_dir, epoch)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".tmp_{os.getpid()}_{path.name}")  # same suffix, so Keras writes the same format
        try:
            self.gan.sampler.save_weights(str(tmp))
            os.replace(tmp, path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise


def trained_generator(run_dir: Path, config: Config | None = None) -> tf.keras.Model:
    """G itself (not its weight average) at the run's published checkpoint, as a new float32
    generator of ``config`` (default the recorded one): what the run would sample without the average."""
    config = config or read_config(run_dir)
    published = read_pointer(checkpoints_dir(run_dir))
    if published is None:
        raise RunNotReady(f"no published checkpoint in {checkpoints_dir(run_dir)}: train the run first")
    model = build_generator(config)
    status = tf.train.Checkpoint(generator=model).read(str(published[1] / "state"))
    status.assert_existing_objects_matched().expect_partial()  # every G weight found; the rest is not wanted
    return model
