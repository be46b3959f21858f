"""The run directory: where every file of a training run lives, and how to read it back.

A run directory holds

* ``config.json``: the full configuration; rerunning with another one there is an error;
* ``provenance.json``: package versions, git commit, machine, the discriminator mode and the
  ImageNet weights actually used, the dataset's source and fingerprint, every session;
* ``history.csv``: one row per epoch (``HISTORY_FIELDS``);
* ``fixed_noise.npy`` and ``samples/epoch_NNNN.png`` + ``.npy``: the generator on a fixed noise
  batch at the snapshot epochs (paper Table 4's epochs scaled to the run's length);
* ``checkpoints/``: full training state in ``epoch_NNNN/`` directories published through
  ``latest.json`` (:mod:`medgan_lib.checkpoints`), and the generator weights of every snapshot
  epoch in ``checkpoints/generator/epoch_NNNN.weights.h5``;
* ``figures/``: the notebooks' figures and tables (PNG, PDF, CSV, text);
* ``tensorboard/``: TensorBoard event files, ``train/`` and ``evaluation/`` (:mod:`medgan_lib.tensorboard_log`);
* ``metrics.json``, ``metrics_per_epoch.csv`` / ``.json``: written by :mod:`medgan_lib.evaluation`.

Training (:mod:`medgan_lib.runs`) writes these files through the paths below; evaluation,
benchmarks, comparisons and the notebooks read them through the readers below.
"""
from __future__ import annotations

import csv
import functools
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from .config import Config
from .errors import ConfigError, MedganError, RunError
from .tables import csv_text

PAPER_EPOCHS = 600
PAPER_SNAPSHOT_EPOCHS = (1, 100, 200, 250, 300, 350, 400, 500, 600)
HISTORY_FIELDS = ("epoch", "d_loss", "g_loss", "d_real_accuracy", "d_fake_accuracy", "seconds")

PathLike = str | os.PathLike


class RunNotReady(MedganError):
    """The run asked for is missing, unfinished or configured differently."""


# ----------------------------------------------------------------------------- paths


def config_path(run_dir: PathLike) -> Path:
    return Path(run_dir) / "config.json"


def provenance_path(run_dir: PathLike) -> Path:
    return Path(run_dir) / "provenance.json"


def history_path(run_dir: PathLike) -> Path:
    return Path(run_dir) / "history.csv"


def fixed_noise_path(run_dir: PathLike) -> Path:
    return Path(run_dir) / "fixed_noise.npy"


def samples_dir(run_dir: PathLike) -> Path:
    return Path(run_dir) / "samples"


def sample_path(run_dir: PathLike, epoch: int, suffix: str = ".npy") -> Path:
    """The fixed-noise samples after ``epoch``: ``samples/epoch_NNNN.npy`` (or ``.png``)."""
    return samples_dir(run_dir) / f"epoch_{epoch:04d}{suffix}"


def checkpoints_dir(run_dir: PathLike) -> Path:
    return Path(run_dir) / "checkpoints"


def generator_snapshot_dir(run_dir: PathLike) -> Path:
    """Where a run keeps the generator weights of its snapshot epochs."""
    return checkpoints_dir(run_dir) / "generator"


def generator_snapshot_path(run_dir: PathLike, epoch: int) -> Path:
    """The generator weights saved after ``epoch`` (``epoch_NNNN.weights.h5``)."""
    return generator_snapshot_dir(run_dir) / f"epoch_{epoch:04d}.weights.h5"


def tensorboard_dir(run_dir: PathLike) -> Path:
    """``run_dir/tensorboard``: one TensorBoard run per subfolder."""
    return Path(run_dir) / "tensorboard"


def figures_dir(run_dir: PathLike) -> Path:
    """``run_dir/figures``, created if missing."""
    path = Path(run_dir) / "figures"
    path.mkdir(parents=True, exist_ok=True)
    return path


# ----------------------------------------------------------------------------- snapshot epochs


def scaled_epoch(paper_epoch: int, epochs: int) -> int:
    """A paper epoch (of 600) scaled to a run of ``epochs`` epochs."""
    return max(1, round(paper_epoch * epochs / PAPER_EPOCHS))


def snapshot_epochs(epochs: int) -> list[int]:
    """Paper Table 4's epochs (1, 100, ..., 600) scaled to a run of ``epochs`` epochs."""
    return sorted({scaled_epoch(e, epochs) for e in PAPER_SNAPSHOT_EPOCHS})


def _epoch_of(path: Path) -> int:
    """The NNNN of ``epoch_NNNN.<anything>``."""
    return int(path.name.split("_")[1].split(".")[0])


def sample_epochs(run_dir: PathLike) -> list[int]:
    """Epochs with saved fixed-noise samples (``samples/epoch_NNNN.npy``)."""
    return sorted(_epoch_of(p) for p in samples_dir(run_dir).glob("epoch_*.npy"))


def snapshot_epochs_saved(run_dir: PathLike) -> list[int]:
    """Epochs with saved generator weights (``checkpoints/generator/epoch_NNNN.weights.h5``)."""
    return sorted(_epoch_of(p) for p in generator_snapshot_dir(run_dir).glob("epoch_*.weights.h5"))


# ----------------------------------------------------------------------------- files


def write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` so that readers see the old or the new file, never a part."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")  # unique per process: two writers never share it
    try:
        with open(tmp, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def save_npy_atomic(path: Path, array: np.ndarray) -> None:
    """``np.save`` so that readers see the old or the new file, never a part."""
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp.npy")
    try:
        np.save(tmp, array)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def read_json(path: Path) -> dict[str, Any]:
    """A JSON object from ``path``; a RunError naming the file if it is not one."""
    try:
        value = json.loads(Path(path).read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise RunError(f"{path}: malformed JSON ({exc}); restore the file or use another run directory") from None
    if not isinstance(value, dict):
        raise RunError(f"{path}: expected a JSON object, got {type(value).__name__}")
    return value


def json_field(record: dict[str, Any], path: Path, *keys: str, kind: type | tuple[type, ...] = object) -> Any:
    """``record[k1][k2]...`` read from the JSON file ``path``; a RunError naming the file and the
    field if it is missing or not of type ``kind``."""
    value: Any = record
    for depth, key in enumerate(keys):
        if not isinstance(value, dict) or key not in value:
            raise RunError(f"{path}: field {'.'.join(keys[:depth + 1])!r} is missing")
        value = value[key]
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise RunError(f"{path}: field {'.'.join(keys)!r} has the wrong type ({value!r})")
    return value


def history_csv(rows: list[dict], fields: tuple[str, ...] = HISTORY_FIELDS) -> str:
    """``history.csv`` text of ``rows`` (floats written exactly, by ``repr``)."""
    return csv_text([{k: repr(row[k]) if isinstance(row[k], float) else row[k] for k in fields}
                     for row in rows], fields)


def read_history(path: Path) -> list[dict]:
    """A ``history.csv`` (a run's or a checkpoint's) as rows: epoch int, the rest float."""
    with open(path) as f:
        return [{k: int(v) if k == "epoch" else float(v) for k, v in row.items()} for row in csv.DictReader(f)]


def read_config(run_dir: PathLike) -> Config:
    """The configuration recorded in a run directory (fields added later take their defaults);
    a RunError naming ``config.json`` and the field if it is malformed."""
    path = config_path(run_dir)
    try:
        return Config.from_dict(read_json(path))
    except ConfigError as exc:
        raise RunError(f"{path}: field {exc.field!r} {exc.problem}") from None


def read_provenance(run_dir: PathLike) -> dict[str, Any]:
    """``provenance.json``; a RunError naming it if it is malformed."""
    return read_json(provenance_path(run_dir))


def config_differences(recorded: Config, wanted: Config, asked: str = "asked") -> list[str]:
    """``"field: run has X, <asked> Y"`` for every field where the two configurations differ.

    ``notes`` (the preset's reasons, text only) do not count: rewording them changes no run.
    """
    saved, new = recorded.to_dict(), wanted.to_dict()
    return [f"{k}: run has {saved.get(k)!r}, {asked} {new[k]!r}"
            for k in new if k != "notes" and saved.get(k) != new[k]]


def require_finished_run(config: Config, run_dir: PathLike) -> list[dict]:
    """The history of the finished run of ``config`` in ``run_dir``; ``RunNotReady`` otherwise."""
    hint = "run notebooks/03_training.ipynb (or `make reproduce`) with the same parameters first"
    if not config_path(run_dir).exists() or not history_path(run_dir).exists():
        raise RunNotReady(f"no training run in {run_dir}: {hint}")
    differences = config_differences(read_config(run_dir), config, "notebook asks")
    if differences:
        raise RunNotReady(f"{run_dir} holds a run with another configuration ({'; '.join(differences)}); "
                          "use the same parameters as 03_training or another run_dir")
    history = read_history(history_path(run_dir))
    if len(history) < config.epochs:
        raise RunNotReady(f"{run_dir} has {len(history)} of {config.epochs} epochs: {hint} (it resumes)")
    return history


def load_samples(run_dir: PathLike) -> dict[int, np.ndarray]:
    """The fixed-noise samples of every snapshot epoch, images in [-1, 1]."""
    return {epoch: np.load(sample_path(run_dir, epoch)) for epoch in sample_epochs(run_dir)}


# ----------------------------------------------------------------------------- generator weights


def load_weights_file(model: Any, path: PathLike) -> None:
    """Load an ``.h5`` weights file written in either Keras format; a RunError naming the file
    if it cannot be read (truncated, damaged, missing).

    Keras picks the reader by the file name: ``*.weights.h5`` means the v3 layout (a ``vars``
    tree), any other ``*.h5`` the legacy layout (one group per layer). Early runs of this project
    hold the legacy layout under a ``.weights.h5`` name, so the layout is read from the file and
    a legacy file is loaded through a ``.h5`` symlink.
    """
    try:
        _load_weights_file(model, Path(path))
    except (OSError, ValueError, KeyError) as exc:
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise RunError(f"{path}: unreadable weights file ({type(exc).__name__}: {first_line}); "
                       "retrain or resume the run to write it again") from None


def _load_weights_file(model: Any, path: Path) -> None:
    import h5py

    with h5py.File(path, "r") as f:
        v3 = "vars" in f or "layers" in f
    if v3 == path.name.endswith(".weights.h5"):
        model.load_weights(str(path))
        return
    with tempfile.TemporaryDirectory() as tmp:
        link = Path(tmp) / ("weights.weights.h5" if v3 else "weights.h5")
        link.symlink_to(path.resolve())
        model.load_weights(str(link))


def snapshot_generator(run_dir: PathLike, epoch: int, config: Config | None = None) -> Any:
    """A new generator of the run (``config``, default the recorded one) with the weights of
    snapshot ``epoch``, built in float32 whatever precision the run trained in: every sampling
    path (evaluate, generate, export, the ablation, labelled synthesis) gives the same images on
    any CPU, with or without native bf16."""
    from .generator import build_generator

    config = config or read_config(run_dir)
    model = build_generator(config)
    load_weights_file(model, generator_snapshot_path(run_dir, epoch))
    return model


@functools.lru_cache(maxsize=4)
def _cached_generator(run_dir: str, epoch: int) -> Any:
    return snapshot_generator(run_dir, epoch)


def load_generator(run_dir: PathLike, epoch: int) -> Any:
    """The run's generator with the weights saved after ``epoch`` (cached; for exploring)."""
    saved = snapshot_epochs_saved(run_dir)
    if epoch not in saved:
        raise RunNotReady(f"no generator checkpoint for epoch {epoch} in {run_dir}; available: {saved}")
    return _cached_generator(str(Path(run_dir).resolve()), int(epoch))
