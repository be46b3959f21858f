"""Training runs: a run directory that records everything and survives interruption.

A run directory holds

* ``config.json``: the full configuration; rerunning with another one there is an error;
* ``provenance.json``: package versions, git commit, machine, the discriminator mode and the
  ImageNet weights actually used, the dataset's source and fingerprint, every session;
* ``history.csv``: one row per epoch (epoch, d_loss, g_loss, d_real_accuracy, d_fake_accuracy, seconds);
* ``fixed_noise.npy`` and ``samples/epoch_NNNN.png`` + ``.npy``: the generator on a fixed noise
  batch at the snapshot epochs of paper Table 4, scaled to the run's length;
* ``checkpoints/``: full training state (both models, both optimizers, the noise generator,
  the history) in ``epoch_NNNN/`` directories, each written under a temporary name and renamed,
  then published through ``latest.json`` (replaced atomically); generator weights are kept for
  every snapshot epoch in ``checkpoints/generator/``.

Rerunning the same command resumes from the last published checkpoint and, because every
epoch's data order is a function of (seed, epoch) and all noise comes from checkpointed
generators, produces what an uninterrupted run would have.
"""
from __future__ import annotations

import csv
import dataclasses
import datetime as _dt
import json
import logging
import math
import os
import platform
import shutil
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path

import numpy as np
import tensorflow as tf

from . import __version__
from .config import Config
from .data import ImageSet, check_training_set, load_images, make_dataset
from .discriminator import DiscriminatorInfo, build_discriminator
from .figures import save_sample_grid
from .gan import GAN, make_optimizers, precision_policy
from .generator import build_generator

log = logging.getLogger("medgan")

PAPER_SNAPSHOT_EPOCHS = (1, 100, 200, 250, 300, 350, 400, 500, 600)
HISTORY_FIELDS = ("epoch", "d_loss", "g_loss", "d_real_accuracy", "d_fake_accuracy", "seconds")
KEEP_CHECKPOINTS = 2


class RunError(RuntimeError):
    """A run directory that cannot be used as asked (other config, other data, missing weights)."""


class TrainingDiverged(RuntimeError):
    """A loss became NaN or infinite; the last good checkpoint is left intact."""


def snapshot_epochs(epochs: int) -> list[int]:
    """Paper Table 4's epochs (1, 100, ..., 600) scaled to a run of ``epochs`` epochs."""
    return sorted({max(1, round(e * epochs / 600)) for e in PAPER_SNAPSHOT_EPOCHS})


def write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` so that readers see the old or the new file, never a part."""
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def history_csv(rows: list[dict]) -> str:
    lines = [",".join(HISTORY_FIELDS)]
    lines += [",".join(repr(row[k]) if isinstance(row[k], float) else str(row[k]) for k in HISTORY_FIELDS) for row in rows]
    return "\n".join(lines) + "\n"


def read_history(path: Path) -> list[dict]:
    """history.csv as a list of rows (epoch int, the rest float)."""
    with open(path) as f:
        return [
            {k: int(v) if k == "epoch" else float(v) for k, v in row.items()} for row in csv.DictReader(f)
        ]


def git_commit() -> str:
    """The commit of the medgan source tree, or "unknown" outside a git checkout."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=Path(__file__).parent, capture_output=True, text=True, timeout=10
        )
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=Path(__file__).parent, capture_output=True, text=True, timeout=10,
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    if out.returncode != 0:
        return "unknown"
    return out.stdout.strip() + ("+uncommitted" if dirty.stdout.strip() else "")


def package_versions() -> dict[str, str]:
    versions = {"python": platform.python_version(), "medgan": __version__}
    for name in ("tensorflow", "keras", "tensorflow-addons", "numpy"):
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def generator_snapshot_dir(run_dir: str | os.PathLike) -> Path:
    """Where a run keeps the generator weights of its snapshot epochs."""
    return Path(run_dir) / "checkpoints" / "generator"


def generator_snapshot_path(run_dir: str | os.PathLike, epoch: int) -> Path:
    """The generator weights saved after ``epoch`` (``epoch_NNNN.weights.h5``)."""
    return generator_snapshot_dir(run_dir) / f"epoch_{epoch:04d}.weights.h5"


class Checkpoints:
    """Atomic, resumable training state in ``run_dir/checkpoints``."""

    def __init__(self, run_dir: Path, gan: GAN) -> None:
        self.dir = run_dir / "checkpoints"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.gan = gan
        self.checkpoint = tf.train.Checkpoint(
            generator=gan.generator,
            discriminator=gan.discriminator,
            g_optimizer=gan.g_optimizer,
            d_optimizer=gan.d_optimizer,
            noise=gan.noise,
        )

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
        write_atomic(tmp / "history.csv", history_csv(history))
        shutil.rmtree(final, ignore_errors=True)
        os.replace(tmp, final)
        write_atomic(self.pointer, json.dumps({"epoch": epoch, "dir": final.name}))
        kept = sorted(self.dir.glob("epoch_*"))[-KEEP_CHECKPOINTS:]
        for old in self.dir.glob("epoch_*"):
            if old not in kept:
                shutil.rmtree(old)

    def restore(self) -> list[dict]:
        """Load the published state into the models; returns its history (empty for a new run)."""
        if not self.pointer.exists():
            return []
        state = self.dir / json.loads(self.pointer.read_text())["dir"]
        self.checkpoint.read(str(state / "state")).assert_existing_objects_matched()
        return read_history(state / "history.csv")

    def save_generator(self, epoch: int) -> None:
        path = generator_snapshot_path(self.dir.parent, epoch)
        path.parent.mkdir(exist_ok=True)
        tmp = path.with_name(f".tmp_{path.name}")  # same suffix, so Keras writes the same format
        self.gan.generator.save_weights(str(tmp))
        os.replace(tmp, path)


def _check_config(run_dir: Path, config: Config) -> None:
    path = run_dir / "config.json"
    if not path.exists():
        return
    saved = Config.from_dict(json.loads(path.read_text())).to_dict()  # fields added later: defaults
    wanted = config.to_dict()
    differences = [f"{k}: run has {saved.get(k)!r}, asked {wanted.get(k)!r}" for k in wanted if saved.get(k) != wanted.get(k)]
    if differences:
        raise RunError(
            f"{run_dir} holds a run with another configuration; use another --run-dir or the same "
            "settings. Differences:\n  " + "\n  ".join(differences)
        )


def _provenance(run_dir: Path, config: Config, images: ImageSet, d_info: DiscriminatorInfo) -> dict:
    path = run_dir / "provenance.json"
    session = {
        "started": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "git_commit": git_commit(),
        "command": " ".join(sys.argv),
    }
    if path.exists():
        provenance = json.loads(path.read_text())
        if provenance["dataset"]["fingerprint"] != images.fingerprint:
            raise RunError(
                f"{run_dir} was trained on data with fingerprint {provenance['dataset']['fingerprint'][:16]}..., "
                f"but {config.data!r} now gives {images.fingerprint[:16]}...: the data changed; use another --run-dir"
            )
    else:
        provenance = {
            "created": session["started"],
            "packages": package_versions(),
            "machine": {"platform": platform.platform(), "processor": platform.processor(), "cpus": os.cpu_count()},
            "discriminator": dataclasses.asdict(d_info),
            "dataset": {
                "spec": images.spec,
                "source": images.source,
                "fingerprint": images.fingerprint,
                "n_images": int(images.images.shape[0]),
                "notes": list(images.notes),
            },
            "sessions": [],
        }
    provenance["sessions"].append(session)
    return provenance


def _recorded_d_mode(run_dir: Path) -> str | None:
    path = run_dir / "provenance.json"
    return json.loads(path.read_text())["discriminator"]["mode"] if path.exists() else None


def build_gan(config: Config, d_mode: str | None = None) -> tuple[GAN, DiscriminatorInfo]:
    """Generator, discriminator (mode ``d_mode`` or the config's) and their compiled GAN."""
    image_shape = (config.image_size, config.image_size, config.channels)
    with precision_policy(config.mixed_precision):
        generator = build_generator(config)
        discriminator, info = build_discriminator(
            image_shape,
            backbone=config.backbone,
            mode=d_mode or config.d_mode,
            head_minibatch_std=config.d_minibatch_std,
            input_size=config.d_input_size,
            kind=config.discriminator,
            diff_augment=config.diff_augment,
            seed=config.seed,
        )
    gan = GAN(generator, discriminator, config)
    gan.compile(*make_optimizers(config))
    gan.g_optimizer.build(generator.trainable_variables)
    gan.d_optimizer.build(discriminator.trainable_variables)
    return gan, info


def announce_discriminator(info: DiscriminatorInfo) -> str:
    """One loud line saying which discriminator mode and weights this run really uses."""
    if info.is_variant:
        augment = " + DiffAugment" if info.diff_augment else ""
        return f"DISCRIMINATOR: {info.kind}{augment} (a project variant, not the paper's method) - {info.reason}"
    if info.mode == "transfer":
        weights = info.weights or {}
        return (
            f"DISCRIMINATOR: transfer (paper method) - frozen {info.backbone} with ImageNet weights "
            f"from {weights.get('origin')}: {weights.get('path')}"
        )
    return (
        f"DISCRIMINATOR: scratch - {info.backbone} randomly initialised and fully trained, NOT the paper's "
        f"ImageNet transfer learning (requested mode {info.requested_mode!r}; {info.reason})"
    )


def _finite(row: dict) -> bool:
    return all(math.isfinite(row[k]) for k in HISTORY_FIELDS if k not in ("epoch", "seconds"))


def train(
    config: Config,
    run_dir: str | os.PathLike,
    deterministic: bool = False,
    checkpoint_seconds: float = 60.0,
    progress: bool = True,
) -> Path:
    """Train ``config`` in ``run_dir``, resuming from its last checkpoint. Returns the run directory."""
    from tqdm.auto import tqdm

    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    _check_config(run_dir, config)
    tf.keras.utils.set_random_seed(config.seed)
    if deterministic:
        tf.config.experimental.enable_op_determinism()

    images = load_images(config.data, config.image_size, config.channels, n_images=config.n_images, seed=config.seed)
    check_training_set(images, config)
    log.info("data: %s", images.source)
    gan, d_info = build_gan(config, _recorded_d_mode(run_dir))
    provenance = _provenance(run_dir, config, images, d_info)
    log.warning(announce_discriminator(d_info))

    write_atomic(run_dir / "config.json", config.to_json())
    write_atomic(run_dir / "provenance.json", json.dumps(provenance, indent=2))
    noise_path = run_dir / "fixed_noise.npy"
    if not noise_path.exists():
        noise = np.random.default_rng([config.seed, 1]).standard_normal((config.n_fixed_samples, config.latent_dim))
        np.save(noise_path, noise.astype(np.float32))
    fixed_noise = np.load(noise_path)

    checkpoints = Checkpoints(run_dir, gan)
    history = checkpoints.restore()
    real_inputs = gan.training_inputs(images.images, config.batch_size)
    if gan.feature_cache:
        log.info("feature cache: frozen-backbone features of the %d real images computed once", len(real_inputs))
    start = len(history)
    if start:
        log.info("resuming %s after epoch %d of %d", run_dir, start, config.epochs)
    snapshots = set(snapshot_epochs(config.epochs))
    last_save = time.monotonic()
    bar = tqdm(range(start + 1, config.epochs + 1), initial=start, total=config.epochs, desc="epochs",
               disable=not progress, unit="epoch")
    for epoch in bar:
        began = time.perf_counter()
        result = gan.fit(make_dataset(real_inputs, config.batch_size, config.seed, epoch), epochs=1, verbose=0)
        row = {"epoch": epoch, **{k: float(v[-1]) for k, v in result.history.items()}}
        row["seconds"] = round(time.perf_counter() - began, 3)
        if not _finite(row):
            raise TrainingDiverged(
                f"epoch {epoch}: non-finite loss ({row}); training stopped. The last good checkpoint "
                f"(epoch {checkpoints.latest_epoch()}) in {checkpoints.dir} is intact; lower the learning rates "
                "or change the configuration and start a new run directory"
            )
        history.append(row)
        bar.set_postfix(d_loss=f"{row['d_loss']:.3f}", g_loss=f"{row['g_loss']:.3f}")
        write_atomic(run_dir / "history.csv", history_csv(history))
        if epoch in snapshots:
            samples = gan.generator(fixed_noise, training=False).numpy()
            (run_dir / "samples").mkdir(exist_ok=True)
            np.save(run_dir / "samples" / f"epoch_{epoch:04d}.npy", samples)
            save_sample_grid(samples, run_dir / "samples" / f"epoch_{epoch:04d}.png")
            checkpoints.save_generator(epoch)
        if epoch == config.epochs or epoch in snapshots or time.monotonic() - last_save >= checkpoint_seconds:
            checkpoints.save(epoch, history)
            last_save = time.monotonic()
    log.info("finished %s: %d epochs", run_dir, config.epochs)
    return run_dir
