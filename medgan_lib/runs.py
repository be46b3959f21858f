"""Training a run: build the models, train epoch by epoch in a run directory, resume exactly.

:func:`train` writes the files of :mod:`medgan_lib.rundir` (config, provenance, history,
fixed-noise samples, generator snapshots) and the full state of :mod:`medgan_lib.checkpoints`.
Rerunning the same command resumes from the last published checkpoint and, because every
epoch's data order is a function of (seed, epoch) and all noise comes from checkpointed
generators, produces what an uninterrupted run would have.
"""
from __future__ import annotations

import contextlib
import dataclasses
import datetime as _dt
import errno
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
from typing import Iterator

import numpy as np
import tensorflow as tf

from . import __version__
from .config import Config
from .data import ImageSet, check_training_set, make_dataset
from .discriminator import DiscriminatorInfo, build_discriminator
from .errors import Interrupted, MedganError, RunError
from . import distribute
from .figures import save_sample_grid
from .checkpoints import Checkpoints
from .gan import GAN, make_optimizers, precision_policy, set_learning_rates
from .generator import build_generator
from .landmarks import training_arrays
from .random_streams import stream
from .real_sets import split_record, training_images
from .rundir import (
    HISTORY_FIELDS,
    checkpoints_dir,
    config_differences,
    config_path,
    fixed_noise_path,
    history_csv,
    history_path,
    json_field,
    provenance_path,
    read_config,
    read_provenance,
    sample_path,
    save_npy_atomic,
    snapshot_epochs,
    write_atomic,
)
from .resume import read_pointer
from .runlock import train_lock
from .stopping import StopNow, StopRequest, stop_on_signals

log = logging.getLogger("medgan")


class TrainingDiverged(MedganError):
    """A loss became NaN or infinite; the last good checkpoint is left intact."""


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


def _check_config(run_dir: Path, config: Config) -> None:
    if not config_path(run_dir).exists():
        return
    differences = config_differences(read_config(run_dir), config)
    if differences:
        raise RunError(
            f"{run_dir} holds a run with another configuration; use another --run-dir or the same "
            "settings. Differences:\n  " + "\n  ".join(differences)
        )


def _provenance(run_dir: Path, config: Config, images: ImageSet, d_info: DiscriminatorInfo,
                distribution: dict = distribute.SINGLE_DEVICE) -> dict:
    path = provenance_path(run_dir)
    session = {
        "started": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "git_commit": git_commit(),
        "command": " ".join(sys.argv),
        "distribution": distribution,
    }
    if path.exists():
        provenance = read_provenance(run_dir)
        fingerprint = json_field(provenance, path, "dataset", "fingerprint", kind=str)
        json_field(provenance, path, "sessions", kind=list)
        if fingerprint != images.fingerprint:
            raise RunError(
                f"{run_dir} was trained on data with fingerprint {fingerprint[:16]}..., "
                f"but {config.data!r} now gives {images.fingerprint[:16]}...: the data changed; use another --run-dir"
            )
        mismatch = distribute.resume_mismatch(provenance.get("distribution"), distribution)
        if mismatch:
            raise RunError(f"{run_dir} was {mismatch}")
    else:
        provenance = {
            "created": session["started"],
            "packages": package_versions(),
            "machine": {"platform": platform.platform(), "processor": platform.processor(), "cpus": os.cpu_count()},
            "discriminator": dataclasses.asdict(d_info),
            "distribution": distribution,
            "dataset": {
                "spec": images.spec,
                "source": images.source,
                "fingerprint": images.fingerprint,
                "n_images": int(images.images.shape[0]),
                "notes": list(images.notes),
                "split": split_record(config, images),
            },
            "sessions": [],
        }
    provenance["sessions"].append(session)
    return provenance


def _recorded_d_mode(run_dir: Path) -> str | None:
    path = provenance_path(run_dir)
    return json_field(read_provenance(run_dir), path, "discriminator", "mode", kind=str) if path.exists() else None


def build_gan(config: Config, d_mode: str | None = None,
              strategy: tf.distribute.Strategy | None = None) -> tuple[GAN, DiscriminatorInfo]:
    """Generator, discriminator (mode ``d_mode`` or the config's) and their compiled GAN.

    Models, optimisers, metrics and random generators are created in ``strategy``'s scope (the
    current strategy by default); under a non-default strategy every BatchNormalization layer
    uses the statistics of the global batch.
    """
    image_shape = (config.image_size, config.image_size, config.output_channels)
    strategy = strategy or tf.distribute.get_strategy()
    with strategy.scope():
        return _build_gan(config, d_mode, image_shape)


def _build_gan(config: Config, d_mode: str | None, image_shape: tuple[int, int, int]) -> tuple[GAN, DiscriminatorInfo]:
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
            spectral_norm=config.d_spectral_norm,
            augment_policy=config.augment_policy,
        )
        average = build_generator(config) if config.g_ema_decay else None
    if tf.distribute.has_strategy():
        distribute.synchronize_batch_norm(generator)
        distribute.synchronize_batch_norm(discriminator)
    gan = GAN(generator, discriminator, config, average)
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
    strategy: str = "default",
) -> Path:
    """Train ``config`` in ``run_dir``, resuming from its last intact checkpoint. Returns the run directory.

    ``strategy`` (see :mod:`medgan_lib.distribute`) spreads every global batch of
    ``config.batch_size`` over the replicas; a run resumes only with the strategy and replica
    count it started with, and in multi-worker runs only the chief writes ``run_dir``.

    Holds the run directory's trainer lock throughout. Everything that can be checked (the
    recorded config and provenance, ``latest.json``, the data, the discriminator's weights, the
    checkpoint) is checked before anything is written, so a new run directory that fails a check
    is left as it was. SIGINT or SIGTERM stop at the next epoch boundary after saving a checkpoint.
    """
    distribution = distribute.start_strategy(strategy)  # before any other TensorFlow call
    described = distribute.describe(distribution, strategy)
    if config.batch_size % described["replicas"]:
        raise RunError(f"batch size {config.batch_size} does not split evenly over {described['replicas']} replicas")
    if described["workers"] > 1:
        checkpoint_seconds = 0.0  # every worker must checkpoint at the same epochs: each epoch
    chief_dir, run_dir = Path(run_dir), distribute.worker_run_dir(Path(run_dir), distribution)
    if run_dir.exists() and not run_dir.is_dir():
        raise RunError(f"{run_dir}: is a file, not a run directory")
    with train_lock(run_dir), stop_on_signals() as stop:
        checkpoints = None
        try:
            checkpoints, history, run = _prepare(config, run_dir, deterministic, distribution, described)
            if stop.signal_name:
                raise Interrupted(f"interrupted ({stop.signal_name}) before training started; "
                                  "resume with the same command")
            with _disk_full_message(run_dir, checkpoints):
                _train_epochs(run, checkpoints, history, stop, checkpoint_seconds, progress)
        except StopNow as signal_name:
            last = checkpoints.latest_epoch() if checkpoints else 0
            raise Interrupted(f"interrupted ({signal_name}) in the middle of an epoch; the last checkpoint, "
                              f"epoch {last}, is intact: resume with the same command") from None
    log.info("finished %s: %d epochs", chief_dir, config.epochs)
    return chief_dir


@dataclasses.dataclass
class _Run:
    """What the epoch loop needs of a prepared run."""

    config: Config
    run_dir: Path
    gan: GAN
    real_inputs: np.ndarray
    provenance: dict


def _prepare(config: Config, run_dir: Path, deterministic: bool, distribution: tf.distribute.Strategy,
             described: dict) -> tuple[Checkpoints, list[dict], _Run]:
    """Check the run directory, load data and models and restore the checkpoint; writes nothing."""
    _check_config(run_dir, config)
    read_pointer(checkpoints_dir(run_dir))  # a malformed latest.json fails before the slow steps
    tf.keras.utils.set_random_seed(config.seed)
    if deterministic:
        tf.config.experimental.enable_op_determinism()
    images = training_images(config)
    check_training_set(images, config)
    arrays = np.concatenate([training_arrays(images, config)] * config.data_repeats)
    log.info("data: %s", images.source)
    gan, d_info = build_gan(config, _recorded_d_mode(run_dir), distribution)
    provenance = _provenance(run_dir, config, images, d_info, described)
    log.warning(announce_discriminator(d_info))
    checkpoints = Checkpoints(run_dir, gan)
    history = checkpoints.restore()
    real_inputs = gan.training_inputs(arrays, config.batch_size)
    if gan.feature_cache:
        log.info("feature cache: frozen-backbone features of the %d real images computed once", len(real_inputs))
    return checkpoints, history, _Run(config, run_dir, gan, real_inputs, provenance)


def _is_disk_full(error: BaseException, run_dir: Path) -> bool:
    if getattr(error, "errno", None) in (errno.ENOSPC, errno.EDQUOT) or "No space left" in str(error):
        return True
    try:  # np.save and some writers report a short write without an errno
        return isinstance(error, OSError) and shutil.disk_usage(run_dir).free < 1 << 20
    except OSError:
        return False


@contextlib.contextmanager
def _disk_full_message(run_dir: Path, checkpoints: Checkpoints) -> Iterator[None]:
    """Turn a full disk during training into one RunError saying which checkpoint is intact."""
    try:
        yield
    except (OSError, tf.errors.OpError) as error:
        if not _is_disk_full(error, run_dir):
            raise
        raise RunError(f"no space left on {run_dir}; the last checkpoint, epoch {checkpoints.latest_epoch()}, "
                       "is intact: free some space and resume with the same command") from None


def _train_epochs(run: _Run, checkpoints: Checkpoints, history: list[dict], stop: StopRequest,
                  checkpoint_seconds: float, progress: bool) -> None:
    """Write the run's records, then train from the epoch after ``history`` to the last one."""
    from .progress import progress_bar_class
    from .tensorboard_log import TrainingLog

    config, run_dir, gan = run.config, run.run_dir, run.gan
    write_atomic(config_path(run_dir), config.to_json())
    write_atomic(provenance_path(run_dir), json.dumps(run.provenance, indent=2))
    write_atomic(history_path(run_dir), history_csv(history))  # the restored checkpoint's, after a fallback too
    noise_path = fixed_noise_path(run_dir)
    if not noise_path.exists():
        noise = stream(config.seed, "fixed_noise").standard_normal((config.n_fixed_samples, config.latent_dim))
        save_npy_atomic(noise_path, noise.astype(np.float32))
    fixed_noise = np.load(noise_path)

    start = len(history)
    if start:
        log.info("resuming %s after epoch %d of %d", run_dir, start, config.epochs)
    snapshots = set(snapshot_epochs(config.epochs))
    last_save = time.monotonic()
    tensorboard = TrainingLog(run_dir, start)
    bar = progress_bar_class()(range(start + 1, config.epochs + 1), initial=start, total=config.epochs,
                               desc="epochs", disable=not progress, unit="epoch")
    try:
        for epoch in bar:
            began = time.perf_counter()
            dataset = make_dataset(run.real_inputs, config.batch_size, config.seed, epoch)
            set_learning_rates(gan, config, epoch)
            result = gan.fit(dataset, epochs=1, verbose=0)
            row = {"epoch": epoch, **{k: float(v[-1]) for k, v in result.history.items()}}
            row["seconds"] = round(time.perf_counter() - began, 3)
            if not _finite(row):
                raise TrainingDiverged(
                    f"epoch {epoch}: non-finite loss ({row}); training stopped. The last good checkpoint "
                    f"(epoch {checkpoints.latest_epoch()}) in {checkpoints.dir} is intact; lower the learning rates "
                    "or change the configuration and start a new run directory"
                )
            history.append(row)
            tensorboard.epoch(row)
            bar.set_postfix(d_loss=f"{row['d_loss']:.3f}", g_loss=f"{row['g_loss']:.3f}")
            write_atomic(history_path(run_dir), history_csv(history))
            if epoch in snapshots:
                samples = gan.sampler(fixed_noise, training=False).numpy()[..., :config.channels]
                sample_path(run_dir, epoch).parent.mkdir(exist_ok=True)
                save_npy_atomic(sample_path(run_dir, epoch), samples)
                tensorboard.samples(epoch, save_sample_grid(samples, sample_path(run_dir, epoch, ".png")))
                checkpoints.save_generator(epoch)
            if (epoch == config.epochs or epoch in snapshots or stop.signal_name
                    or time.monotonic() - last_save >= checkpoint_seconds):
                checkpoints.save(epoch, history)
                last_save = time.monotonic()
            if stop.signal_name and epoch < config.epochs:
                raise Interrupted(f"interrupted ({stop.signal_name}) at epoch {epoch} of {config.epochs}; its "
                                  "checkpoint is saved: resume with the same command")
    finally:
        tensorboard.close()
