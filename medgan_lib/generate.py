"""Synthetic images for downstream use: ``medgan generate --run-dir R --n N --out DIR``.

:func:`generate_to_directory` loads a generator snapshot of a finished (or running) training run,
draws ``n`` latent vectors from the seed's stream, generates the images batch by batch (memory
stays flat for any ``n``) and writes into ``out``:

* the images, one file each (``synthetic_000000.png`` ..., ``.dcm``) or one ``synthetic.npz``
  (see :mod:`medgan_lib.image_files` for the encodings);
* ``manifest.csv``: one row per image (``MANIFEST_FIELDS``: file, row in that file, run, epoch,
  seed, latent index, weights); callers can add columns (labels of a labelled run, for example)
  through ``extra_columns``; a labelled run (``landmark_heatmaps``) adds ``{name}_x``, ``{name}_y`` and
  ``{name}_present`` per landmark, read from its generated heatmaps (the rule is in
  ``generation.json``); written last, so a directory without it is an unfinished call;
* ``generation.json``: what was asked and what was used (snapshot file and its sha256, the
  encoding, the medgan version and commit); ``provenance.json`` and ``config.json``: copies of the run's.

The latent vector of image ``i`` is row ``i`` of the seed's latent stream (the same vectors
``evaluate`` scores for that seed), whatever ``n`` and the batch size: the same seed and batch
size give the same files, and a larger ``n`` extends a smaller one. (Another batch size gives the
same latents, but the convolutions may round differently: about 1e-7, at most one step of a
16-bit file.) DICOM files get new UIDs at every call (one series per call), so only their pixel
data repeat.
"""
from __future__ import annotations

import csv
import datetime as _dt
import hashlib
import json
import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

from . import __version__
from .errors import MedganError
from .image_files import NPZ_ENCODING, DicomSeries, NpzWriter, write_png
from .landmarks import decoding_rule, landmark_columns, split_labelled_output
from .phantom import LANDMARK_NAMES
from .random_streams import STREAM_IDS, stream
from .rundir import generator_snapshot_dir, generator_snapshot_path, read_config, snapshot_generator
from .rundir import snapshot_epochs, snapshot_epochs_saved, write_atomic
from .runs import git_commit

FORMATS = {"png": ".png", "png16": ".png", "npz": ".npz", "dicom": ".dcm", "dicom16": ".dcm"}
MANIFEST_FIELDS = ("file", "row", "run", "epoch", "seed", "latent_index", "weights")
OWN_FILES = ("manifest.csv", "generation.json", "provenance.json", "config.json")  # replaced by --overwrite
FILE_STEM = "synthetic"
LATENT_STREAM = STREAM_IDS["evaluation_latents"]  # the stream evaluation draws its latent vectors from
# A run that keeps an exponential moving average of G's weights (this Config field > 0) saves the
# average as its generator snapshots, the weights meant for sampling.
EMA_FIELD = "g_ema_decay"


class GenerationError(MedganError):
    """A run or an output directory that cannot be used as asked."""


@dataclass(frozen=True)
class Snapshot:
    """The generator weights chosen for sampling."""

    epoch: int
    kind: str  # "ema" or "generator"
    path: Path


@dataclass(frozen=True)
class Generated:
    """What :func:`generate_to_directory` wrote."""

    out: Path
    n: int
    epoch: int
    file_format: str
    weights: str  # the snapshot kind
    files: int


def sampling_snapshot(run_dir: str | os.PathLike, epoch: int | None = None) -> Snapshot:
    """The generator snapshot of ``epoch`` (default: the last saved): the weights the run saved for
    sampling (``kind`` "ema" when the run keeps a weight average, which is what it saves then)."""
    run_dir = Path(run_dir)
    if not (run_dir / "config.json").is_file():
        raise GenerationError(f"no training run in {run_dir} (config.json missing)")
    saved = snapshot_epochs_saved(run_dir)
    if not saved:
        config = read_config(run_dir)
        raise GenerationError(
            f"{run_dir} has no generator snapshots ({generator_snapshot_dir(run_dir)} holds no "
            f"epoch_NNNN.weights.h5); training writes them after epochs {snapshot_epochs(config.epochs)}: "
            "train or resume the run first")
    if epoch is None:
        epoch = saved[-1]
    elif epoch not in saved:
        raise GenerationError(f"{run_dir} has no generator snapshot for epoch {epoch}; saved: {saved}")
    kind = "ema" if getattr(read_config(run_dir), EMA_FIELD, 0.0) > 0 else "generator"
    return Snapshot(epoch, kind, generator_snapshot_path(run_dir, epoch))


def latent_stream(seed: int, n: int, latent_dim: int, batch_size: int) -> Iterator[tuple[int, np.ndarray]]:
    """(first index, latent batch) for ``n`` vectors of the seed's stream, ``batch_size`` at a time.

    Row ``i`` is the same for any ``batch_size`` and ``n > i`` (numpy draws normals sequentially).
    """
    rng = stream(seed, "evaluation_latents")
    for start in range(0, n, batch_size):
        yield start, rng.standard_normal((min(batch_size, n - start), latent_dim)).astype(np.float32)


def to_unit(images: np.ndarray) -> np.ndarray:
    """Generator output in [-1, 1] as float32 in [0, 1]."""
    return np.clip((np.asarray(images, np.float32) + 1.0) / 2.0, 0.0, 1.0)


def prepare_output(out: Path, overwrite: bool, own: tuple[str, ...] = OWN_FILES) -> None:
    """Create ``out``; one that holds files is refused unless ``overwrite``, which removes the earlier
    outputs there (``synthetic*`` and the names in ``own``) and keeps anything else."""
    out.mkdir(parents=True, exist_ok=True)
    held = sorted(p.name for p in out.iterdir())
    if held and not overwrite:
        shown = ", ".join(held[:3]) + (", ..." if len(held) > 3 else "")
        raise GenerationError(f"{out} already holds {len(held)} files ({shown}); choose an empty or new "
                              "directory, or pass --overwrite")
    for name in held:
        if name.startswith((FILE_STEM, f".{FILE_STEM}", ".npz_")) or name in own:
            path = out / name
            shutil.rmtree(path) if path.is_dir() else path.unlink()


def _sha256(path: Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def generate_to_directory(
    run_dir: str | os.PathLike,
    n: int,
    out: str | os.PathLike,
    epoch: int | None = None,
    seed: int = 0,
    file_format: str = "png",
    batch_size: int = 64,
    overwrite: bool = False,
    extra_columns: Callable[[int], dict[str, str]] | None = None,
) -> Generated:
    """Write ``n`` synthetic images of the run's snapshot into ``out`` (see the module docstring).

    ``extra_columns(latent_index)`` may add columns to the manifest rows (the same keys every call).
    """
    if file_format not in FORMATS:
        raise GenerationError(f"unknown format {file_format!r}; choose one of {', '.join(FORMATS)}")
    if n < 1 or batch_size < 1:
        raise GenerationError(f"n and batch_size must be >= 1, got {n} and {batch_size}")
    run_dir, out = Path(run_dir), Path(out)
    snapshot = sampling_snapshot(run_dir, epoch)
    config = read_config(run_dir)
    prepare_output(out, overwrite)
    generator = snapshot_generator(run_dir, snapshot.epoch, config)

    digits = max(6, len(str(n - 1)))
    suffix = FORMATS[file_format]
    image_shape = (config.image_size, config.image_size, config.channels)
    npz = NpzWriter(out / f"{FILE_STEM}.npz", n, image_shape, config.latent_dim) if file_format == "npz" else None
    dicom = None
    if file_format.startswith("dicom"):
        dicom = DicomSeries(
            description=f"medgan {run_dir.resolve().name} ({config.preset}) epoch {snapshot.epoch}",
            derivation=(f"Synthetic image generated by a GAN (medgan {__version__}): run "
                        f"{run_dir.resolve().name}, preset {config.preset}, {snapshot.kind} weights of epoch "
                        f"{snapshot.epoch}, latent seed {seed}. Not an image of a patient."),
            bits=16 if file_format == "dicom16" else 8)
    manifest_tmp = out / ".manifest.csv.tmp"
    with open(manifest_tmp, "w", newline="") as manifest_file:
        manifest = None
        for start, z in latent_stream(seed, n, config.latent_dim, batch_size):
            output = np.asarray(generator(z, training=False), np.float32)
            labels = [{}] * len(z)
            if config.landmark_heatmaps:
                _, xy, present = split_labelled_output(output, config.channels)
                labels = landmark_columns(xy, present)
            images = to_unit(output[..., :config.channels])
            if npz is not None:
                npz.add(start, images, z)
            for offset, image in enumerate(images):
                index = start + offset
                name = f"{FILE_STEM}.npz" if npz is not None else f"{FILE_STEM}_{index:0{digits}d}{suffix}"
                if dicom is not None:
                    dicom.write(image, out / name, index + 1, comment=f"latent seed {seed}, index {index}")
                elif npz is None:
                    write_png(image, out / name, 16 if file_format == "png16" else 8)
                row = {"file": name, "row": index if npz is not None else 0, "run": str(run_dir.resolve()),
                       "epoch": snapshot.epoch, "seed": seed, "latent_index": index, "weights": snapshot.kind,
                       **labels[offset], **(extra_columns(index) if extra_columns else {})}
                if manifest is None:
                    manifest = csv.DictWriter(manifest_file, list(row), lineterminator="\n")
                    manifest.writeheader()
                manifest.writerow(row)
    if npz is not None:
        npz.close()

    for name in ("provenance.json", "config.json"):
        if (run_dir / name).is_file():
            shutil.copyfile(run_dir / name, out / name)
    record = {
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "command": " ".join(sys.argv),
        "run": str(run_dir.resolve()),
        "preset": config.preset,
        "epoch": snapshot.epoch,
        "weights": {"kind": snapshot.kind, "file": str(snapshot.path.resolve()), "sha256": _sha256(snapshot.path)},
        "n": n,
        "seed": seed,
        "latents": f"numpy default_rng([{seed}, {LATENT_STREAM}]) standard normal, row i = latent_index i",
        "format": file_format,
        "encoding": _encoding(file_format),
        "image_shape": list(image_shape),
        **({"landmarks": {"names": list(LANDMARK_NAMES), "columns": "manifest.csv: {name}_x, {name}_y, {name}_present",
                          "rule": decoding_rule()}} if config.landmark_heatmaps else {}),
        "medgan": {"version": __version__, "git_commit": git_commit()},
    }
    write_atomic(out / "generation.json", json.dumps(record, indent=2))
    os.replace(manifest_tmp, out / "manifest.csv")
    files = 1 if npz is not None else n
    return Generated(out, n, snapshot.epoch, file_format, snapshot.kind, files)


def _encoding(file_format: str) -> str:
    """How pixel values are stored, for ``generation.json``."""
    if file_format == "npz":
        return NPZ_ENCODING
    bits = 16 if file_format.endswith("16") else 8
    kind = "PNG" if file_format.startswith("png") else "DICOM Secondary Capture, MONOCHROME2 or RGB"
    return f"{kind}, {bits}-bit unsigned: round(x * {2**bits - 1}) of the generator output x in [0, 1]"
