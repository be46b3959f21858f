"""Image loaders: every dataset ends as float32 images in [-1, 1] at the configured size.

Specs accepted by :func:`load_images`:

* ``phantom`` or ``phantom:N`` -- the procedural X-ray aortography phantom of
  :mod:`medgan_lib.phantom` (NOT patient data); 2000 images unless N or ``n_images`` is given.
* ``npz:PATH[?max_pixels=N][#train|#val|#test|#all]`` -- a MedMNIST-layout archive (``train_images``,
  ``val_images``, ``test_images``; ``train`` by default) or one with a plain ``images`` array.
* ``folder:PATH[?options]`` -- PNG, JPEG, TIFF, BMP and DICOM files found recursively, in
  sorted path order. A multi-frame DICOM file gives every frame (``frames=all``, the default),
  one frame in K (``frames=every:K``) or its middle frame (``frames=middle``); the frames of one
  file stay together in a held-out split. ``voi=on`` applies a DICOM file's modality LUT and its
  first window (centre/width) or VOI LUT. Options are joined with ``&``, e.g.
  ``folder:/data/cine?frames=every:4&voi=on``. Symbolic links to folders are followed; a link
  back to a folder already scanned (a loop, or a second link to one folder) is not followed again
  and is noted. A folder that cannot be listed, a broken link or an unreadable file is an error.
* ``medmnist:NAME[@SIZE][#split]`` -- an official MedMNIST v3 2D file (Zenodo record 10519652),
  md5-verified and cached in ``$MEDGAN_DATA_DIR`` (the files sit directly in that folder) or
  ``~/.cache/medgan/medmnist/``. Without ``@SIZE`` the smallest official size >= ``image_size``
  is used (224 if none), so that images are not upsampled from 28 px by default.

Intensity normalisation (each image goes to [0, 1], then linearly to [-1, 1]):

* 8-bit data (PNG, JPEG, BMP, 8-bit TIFF, uint8 arrays): value / 255, so 0 -> -1 and 255 -> 1.
* 16-bit (and 32-bit integer) PNG/TIFF files: min-max per image. Such files often hold 10-14-bit
  data in a 16-bit container and nothing in the file says how many bits are used, so dividing by
  65535 could leave an image as a dark sliver; the price is that absolute intensities are not
  comparable across images.
* DICOM: stored values -> RescaleSlope/Intercept -> divided by the range BitsStored allows (mapped
  through the same rescale), so 12-bit data uses 0..4095 rather than 0..65535; MONOCHROME1 is
  inverted so that higher is brighter. Because the rescale is linear, the result equals
  normalising the stored values by the BitsStored range, except that a negative slope flips
  intensities. Values outside that range fall back to min-max per image (noted). Colour DICOM is
  normalised by BitsStored without rescale. With ``voi=on``: pydicom's ``apply_modality_lut``
  then ``apply_voi_lut`` (the first window, or the VOI LUT, which pydicom prefers), scaled by
  the window's or LUT's output range, so the window's edges map to -1 and 1 and values outside
  it are clipped; files without a window or VOI LUT keep the rule above (noted).
* Float files: min-max per image.
* npz arrays other than uint8 (uint16, other integers, float): one min-max over the whole selected
  array, keeping intensities comparable across images (an array already spanning [0, 1] is
  unchanged). bool arrays map False/True to -1/1.
* An image that is constant under a min-max rule maps to -1. Constant images of any type are noted.

Limits: ``n_images`` keeps the first images in a deterministic order (sorted relative paths, array
index) and is applied while reading: files after the cap are not decoded and only the needed rows
of an npz array are decompressed (streamed from the archive member, whose ``.npy`` header gives the
shape). The notes say how many images were found and how many are used. An image with more than
``max_pixels`` pixels (default :data:`DEFAULT_MAX_PIXELS`, checked from the file header before
decoding; ``?max_pixels=N`` on ``folder:`` and ``npz:`` specs) is refused.

Geometry and colour: channels=1 turns colour into grayscale (BT.601 luminance; colour images whose
R, G, B are identical use one channel unchanged); channels=3 replicates grayscale (colour stays
colour); alpha is dropped; non-square images are centre-cropped to square; then images are
resized with ``tf.image.resize(bilinear, antialias=True)``, which averages over the pixel footprint
when downsampling. Every such step is listed in :attr:`ImageSet.notes` and logged on the
``"medgan"`` logger at WARNING.
"""
from __future__ import annotations

import hashlib
import http.client
import logging
import os
import shutil
import tempfile
import urllib.request
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable

import numpy as np
import tensorflow as tf

from .holdout import PARTS, Split, holdout_mask, keys_digest
from .npz_archive import ArchiveError, ArrayHeader, NpzArchive

if TYPE_CHECKING:
    from .config import Config

LOG = logging.getLogger("medgan")

DEFAULT_PHANTOM_COUNT = 2000
PHANTOM_HOLDOUT_SEED_OFFSET = 1  # the phantom's held-out images: the phantom of seed + 1
# 40 megapixels: above any common radiograph (a full-field mammogram is about 4096 x 5120 = 21 Mpx),
# below Pillow's decompression-bomb warning (89.5 Mpx); decoding one such image peaks near 1 GB.
DEFAULT_MAX_PIXELS = 40_000_000
PIL_EXTENSIONS = frozenset({".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp"})
DICOM_EXTENSIONS = frozenset({".dcm", ".dicom"})
SPLITS = ("train", "val", "test")
SELECTIONS = SPLITS + ("all",)
VALID_SPECS = (
    "phantom",
    "phantom:N",
    "npz:PATH[?max_pixels=N][#train|#val|#test|#all]",
    "folder:PATH[?frames=all|every:K|middle&voi=on|off&max_pixels=N]",
    "medmnist:NAME[@28|@64|@128|@224][#train|#val|#test|#all]",
)

FILE_OPTIONS = ("max_pixels",)  # the ?key=value options of npz: specs
FOLDER_OPTIONS = FILE_OPTIONS + ("frames", "voi")  # the ?key=value options of folder: specs

MEDMNIST_SIZES = (28, 64, 128, 224)
MEDMNIST_URL = "https://zenodo.org/records/10519652/files/{filename}?download=1"
# md5 of the official 2D MedMNIST v3 files, from medmnist/info.py (MedMNIST/MedMNIST, v3.0.2):
# MEDMNIST_MD5[name][size]; size 28 is "{name}.npz", larger sizes are "{name}_{size}.npz".
MEDMNIST_MD5: dict[str, dict[int, str]] = {
    "pathmnist": {
        28: "a8b06965200029087d5bd730944a56c1",
        64: "55aa9c1e0525abe5a6b9d8343a507616",
        128: "ac42d08fb904d92c244187169d1fd1d9",
        224: "2c51a510bcdc9cf8ddb2af93af1eadec",
    },
    "chestmnist": {
        28: "02c8a6516a18b556561a56cbdd36c4a8",
        64: "9de6cd0b934ebb5b7426cfba5efbae16",
        128: "db107e5590b27930b62dbaf558aebee3",
        224: "45bd33e6f06c3e8cdb481c74a89152aa",
    },
    "dermamnist": {
        28: "0744692d530f8e62ec473284d019b0c7",
        64: "b70a2f5635c6199aeaa28c31d7202e1f",
        128: "2defd784463fa5243564e855ed717de1",
        224: "8974907d8e169bef5f5b96bc506ae45d",
    },
    "octmnist": {
        28: "c68d92d5b585d8d81f7112f81e2d0842",
        64: "e229e9440236b774d9f0dfef9d07bdaf",
        128: "0a97e76651ace45c5d943ee3f65b63ae",
        224: "abc493b6d529d5de7569faaef2773ba3",
    },
    "pneumoniamnist": {
        28: "28209eda62fecd6e6a2d98b1501bb15f",
        64: "8f4eceb4ccffa70c672198ea285246c6",
        128: "05b46931834c231683c68f40c47b2971",
        224: "d6a3c71de1b945ea11211b03746c1fe1",
    },
    "retinamnist": {
        28: "bd4c0672f1bba3e3a89f0e4e876791e4",
        64: "afda852cc34dcda56f86ad2b2457dbcc",
        128: "e48e916a24454daf90583d4e6efb1a18",
        224: "eae7e3b6f3fcbda4ae613ebdcbe35348",
    },
    "breastmnist": {
        28: "750601b1f35ba3300ea97c75c52ff8f6",
        64: "742edef2a1fd1524b2efff4bd7ba9364",
        128: "363e4b3f8d712e9b5de15470a2aaadf1",
        224: "b56378a6eefa9fed602bb16d192d4c8b",
    },
    "bloodmnist": {
        28: "7053d0359d879ad8a5505303e11de1dc",
        64: "2b94928a2ae4916078ca51e05b6b800b",
        128: "adace1e0ed228fccda1f39692059dd4c",
        224: "b718ff6835fcbdb22ba9eacccd7b2601",
    },
    "tissuemnist": {
        28: "ebe78ee8b05294063de985d821c1c34b",
        64: "123ece2eba09d0aa5d698fda57103344",
        128: "61b955355d7425a89687b06cca3ce0c2",
        224: "b077128c4a949f0a4eb01517f9037b9c",
    },
    "organamnist": {
        28: "68e3f8846a6bd62f0c9bf841c0d9eacc",
        64: "2dcccc29b88e6da5a01161ef20cda288",
        128: "eeae80d0a227a8d099027e1b3cfd3b60",
        224: "50747347e05c87dd3aaf92c49f9f3170",
    },
    "organcmnist": {
        28: "b9ceb9546e10131b32923c5bbeaea2b1",
        64: "3ce34a8724ea6f548e6db4744d03b6a9",
        128: "773c1f009daa3fe5d9a2a201b2a7ed94",
        224: "050f5e875dc056f6768abf94ec9995d1",
    },
    "organsmnist": {
        28: "9ab87b696fb54e2a387ebe992d6ed5f1",
        64: "53a6d115339d874c25e309a994ff46d3",
        128: "ded0c5fa01a95dc4978b956f613e9b8e",
        224: "b354719e553fbbb2513d5533f52a4cb1",
    },
}

_LUMA = np.array([0.299, 0.587, 0.114], np.float32)  # ITU-R BT.601, as Pillow's "L"
_CHUNK = 512  # images converted per step when loading arrays


class DataError(ValueError):
    """Bad input: the message names the file and the problem."""


@dataclass(frozen=True)
class ImageSet:
    """A loaded dataset: images in [-1, 1] plus where they came from and what was done to them."""

    images: np.ndarray  # float32 (N, size, size, channels) in [-1, 1]
    source: str  # one human-readable line
    spec: str  # the spec string as given
    fingerprint: str  # dataset_fingerprint(images)
    notes: tuple[str, ...]  # things the user must know (conversions, resizing, skipped files)
    metadata: dict  # loader-specific
    split: dict | None = None  # the train / held-out split this set is a part of (see load_images)


@dataclass
class _Job:
    """One load request plus the tally of what was done to the images."""

    image_size: int
    channels: int
    n_images: int | None
    seed: int
    max_pixels: int = DEFAULT_MAX_PIXELS
    frame_step: int = 1  # multi-frame DICOM: every k-th frame from the first; 0 = the middle frame only
    voi: bool = False  # apply the DICOM modality LUT, then the file's window / VOI LUT
    split: Split | None = None
    part: str = "train"  # the part requested (the phantom has a held-out part also without a split)
    split_record: dict | None = None  # filled by the loader that applies the split
    events: Counter = field(default_factory=Counter)  # note text -> number of images
    sizes: Counter = field(default_factory=Counter)  # original (h, w) -> count
    cropped: Counter = field(default_factory=Counter)
    resized: Counter = field(default_factory=Counter)
    upsampled: int = 0
    extra: list[str] = field(default_factory=list)  # free-form notes

    def notes(self) -> tuple[str, ...]:
        """Everything the user must know, one line each."""
        size = self.image_size
        out = []
        if len(self.sizes) > 1:
            out.append(f"mixed image sizes ({_fmt_sizes(self.sizes)})")
        if self.cropped:
            out.append(
                f"center-cropped {_count(sum(self.cropped.values()), 'non-square image')} to square "
                f"({_fmt_sizes(self.cropped)})"
            )
        if self.resized:
            out.append(
                f"resized {_count(sum(self.resized.values()), 'image')} to {size}x{size} "
                f"(from {_fmt_sizes(self.resized)})"
            )
        if self.upsampled:
            out.append(
                f"{_count(self.upsampled, 'image')} smaller than {size}x{size} upsampled: "
                "they are blurrier than the originals"
            )
        out.extend(f"{text}: {_count(n, 'image')}" for text, n in self.events.items())
        return tuple(out + self.extra)


def load_images(
    spec: str,
    image_size: int,
    channels: int = 1,
    n_images: int | None = None,
    seed: int = 0,
    *,
    holdout: float = 0.0,
    part: str = "train",
    split_seed: int = 0,
) -> ImageSet:
    """Load a dataset named by ``spec`` as float32 (N, image_size, image_size, channels) in [-1, 1].

    ``n_images`` keeps the first images in a deterministic order (sorted paths, array index) and
    is applied while reading; ``seed`` only affects the phantom. Raises DataError on bad input.

    ``holdout`` > 0 splits the data (see :mod:`medgan_lib.holdout`) and returns ``part``, "train"
    or "holdout": for folders a fraction of the files (all frames of a file stay together), for
    npz/MedMNIST a fraction of the selected rows, ranked with ``split_seed``; ``n_images`` then
    caps the returned part. The phantom is unlimited, so its training part is the unsplit phantom
    of ``seed`` whatever ``holdout`` is, and its held-out part (``part="holdout"``, also with
    ``holdout`` 0) is as many frames of the phantom of seed ``seed + 1``
    (:data:`PHANTOM_HOLDOUT_SEED_OFFSET`). The split is recorded in :attr:`ImageSet.split` and in
    the notes.
    """
    if image_size < 1:
        raise DataError(f"image_size must be a positive integer, got {image_size}")
    if channels not in (1, 3):
        raise DataError(f"channels must be 1 or 3, got {channels}")
    if n_images is not None and n_images < 0:
        raise DataError(f"n_images must be >= 0 or None, got {n_images}")
    kind, _, arg = spec.strip().partition(":")
    loader = _LOADERS.get(kind.strip().lower())
    if loader is None:
        hint = f" (did you mean folder:{spec}?)" if Path(spec).expanduser().is_dir() else ""
        raise DataError(f"unknown dataset spec {spec!r}{hint}; valid specs: {', '.join(VALID_SPECS)}")
    if part not in PARTS:
        raise DataError(f"{spec}: part must be one of {PARTS}, got {part!r}")
    if holdout:
        try:
            split = Split(float(holdout), split_seed, part)
        except ValueError as exc:
            raise DataError(f"{spec}: {exc}") from exc
    elif part == "holdout" and loader is not _load_phantom:
        raise DataError(f"{spec}: part={part!r} needs a held-out split (holdout > 0)")
    else:
        split = None
    job = _Job(image_size, channels, n_images, seed, split=split, part=part)
    unit, source, metadata = loader(arg.strip(), job)
    if len(unit) == 0:
        limit = f" with n_images={n_images}" if n_images is not None else ""
        raise DataError(f"{spec}: zero images after selection{limit}")
    images = unit * np.float32(2) - np.float32(1)
    notes = job.notes()
    for note in notes:
        LOG.warning("%s: %s", spec, note)
    return ImageSet(images, source, spec, dataset_fingerprint(images), notes, metadata, job.split_record)


def check_training_set(images: ImageSet, config: Config) -> None:
    """DataError naming the data spec unless ``images`` can train ``config``: shape and one full batch.

    Call it before anything is written into a new run directory, so that fixing the data and
    training again starts cleanly.
    """
    expected = (config.image_size, config.image_size, config.channels)
    if images.images.shape[1:] != expected:
        raise DataError(f"{images.spec}: images of shape {images.images.shape[1:]}, the configuration needs {expected}")
    count = len(images.images)
    if count < config.batch_size:
        capped = config.n_images == count
        raise DataError(
            f"{images.spec}: {_count(count, 'training image')}{' (the n_images cap)' if capped else ''}, fewer than "
            f"the batch size {config.batch_size}: an epoch would have no batch (the last partial batch is dropped); "
            f"{'raise --n-images, ' if capped else 'add images, '}or lower --batch-size"
        )


def make_dataset(images: np.ndarray, batch_size: int, seed: int, epoch: int) -> tf.data.Dataset:
    """One epoch of float32 batches, ordered by np.random.default_rng([seed, epoch]).permutation.

    The permuted array is put in memory once (from_tensor_slices); the last partial batch is
    dropped and batches are prefetched, with no Python code in the per-batch path.
    """
    if batch_size < 1:
        raise DataError(f"batch_size must be a positive integer, got {batch_size}")
    if len(images) < batch_size:
        raise DataError(
            f"only {len(images)} images, fewer than batch_size {batch_size}: "
            "an epoch would have no batch (drop_remainder=True)"
        )
    order = np.random.default_rng([seed, epoch]).permutation(len(images))
    shuffled = np.asarray(images, np.float32)[order]
    dataset = tf.data.Dataset.from_tensor_slices(shuffled)
    return dataset.batch(batch_size, drop_remainder=True).prefetch(tf.data.AUTOTUNE)


def dataset_fingerprint(images: np.ndarray) -> str:
    """sha256 hex of the shape and the float32 bytes of ``images``."""
    array = np.ascontiguousarray(images, dtype=np.float32)
    digest = hashlib.sha256(repr(array.shape).encode())
    digest.update(array.data)
    return digest.hexdigest()


# ----------------------------------------------------------------------------- loaders


def _load_phantom(arg: str, job: _Job) -> tuple[np.ndarray, str, dict]:
    """``phantom`` / ``phantom:N`` via medgan_lib.phantom.make_phantom."""
    if arg:
        if not arg.isdigit() or int(arg) < 1:
            raise DataError(f"phantom:{arg}: N must be a positive integer, e.g. phantom:500")
        count = int(arg)
    else:
        count = DEFAULT_PHANTOM_COUNT if job.n_images is None else job.n_images
    keep = count if job.n_images is None else min(count, job.n_images)
    seed = _phantom_part_seed(keep, job) if job.split or job.part == "holdout" else job.seed
    if keep < count:
        note = _cap_note(f"phantom:{count}", count, keep, "frames", "in frame order", job.n_images, "rendered")
        job.extra.append(note)
    if keep == 0:
        return np.zeros((0, job.image_size, job.image_size, job.channels), np.float32), "phantom", {}
    from medgan_lib.phantom import make_phantom

    phantom = make_phantom(keep, job.image_size, seed)  # frame i does not depend on the count
    pixels = np.asarray(phantom.images, np.float32)
    _check_finite(pixels, "phantom images")
    unit = _shape_batch(np.clip(pixels, 0.0, 1.0)[..., None], job)
    metadata = {
        "params": list(phantom.params[:keep]),
        "landmarks": {name: np.asarray(points)[:keep].tolist() for name, points in phantom.landmarks.items()},
    }
    source = f"phantom (procedural X-ray aortography, NOT patient data): {keep} images, seed {seed}"
    return unit, source, metadata


def _phantom_part_seed(keep: int, job: _Job) -> int:
    """The phantom seed of the requested part (held out: ``seed + 1``); records the split.

    Frame i of seed s is drawn from ``default_rng([s, i])``, so the frames of two seeds below
    2**32 - 1 are different draws and no held-out frame is a training frame; the training part is
    not reduced (the phantom is unlimited). Larger seeds are refused: numpy's SeedSequence splits
    them into 32-bit words, where ``[s + 1, i]`` could alias another seed's frame.
    """
    if not 0 <= job.seed < 2**32 - 1:
        raise DataError(f"phantom: a held-out part needs a seed in [0, 2**32 - 2], got {job.seed}")
    held_seed = job.seed + PHANTOM_HOLDOUT_SEED_OFFSET
    job.split_record = {
        "fraction": job.split.fraction if job.split else 0.0, "part": job.part, "unit": "phantom frame",
        "seed": job.seed, "holdout_seed": held_seed, "frames": keep,
    }
    job.extra.append(
        f"held-out split: the phantom's held-out images are {keep} frames of seed {held_seed}, the training "
        f"images {keep} frames of seed {job.seed}, so none is a training frame; the training set is not reduced. "
        f"This is the {job.part} part"
    )
    return held_seed if job.part == "holdout" else job.seed


def _load_npz(arg: str, job: _Job) -> tuple[np.ndarray, str, dict]:
    """``npz:PATH[?options][#selection]``."""
    if not arg:
        raise DataError("npz: needs a path, e.g. npz:/data/breastmnist.npz")
    base, sep, selection = arg.rpartition("#")
    if sep and selection in SELECTIONS:
        body, chosen = base, selection
    elif sep and Path(base.rpartition("?")[0] or base).expanduser().is_file():
        raise DataError(f"{base}: unknown selection '#{selection}'; use #train, #val, #test or #all")
    else:
        body, chosen = arg, None
    path_text, options = _spec_options(body, "npz", FILE_OPTIONS)
    _apply_options(options, job)
    path = Path(path_text).expanduser()
    unit, description, metadata = _npz_images(path, chosen, job)
    return unit, f"npz:{path} ({description})", metadata


def _load_medmnist(arg: str, job: _Job) -> tuple[np.ndarray, str, dict]:
    """``medmnist:NAME[@SIZE][#selection]``: verified cached file, downloaded if missing."""
    body, sep, selection = arg.partition("#")
    if sep and selection not in SELECTIONS:
        raise DataError(f"medmnist:{arg}: unknown selection '#{selection}'; use #train, #val, #test or #all")
    name, at, size_text = body.partition("@")
    name = name.strip().lower()
    if name not in MEDMNIST_MD5:
        raise DataError(
            f"medmnist:{arg}: unknown MedMNIST 2D dataset {name!r}; available: {', '.join(MEDMNIST_MD5)}"
        )
    if at:
        if not size_text.strip().isdigit() or int(size_text) not in MEDMNIST_SIZES:
            raise DataError(f"medmnist:{arg}: size must be one of {MEDMNIST_SIZES}, got {size_text!r}")
        size = int(size_text)
    else:
        size = next((s for s in MEDMNIST_SIZES if s >= job.image_size), MEDMNIST_SIZES[-1])
        job.extra.append(f"no MedMNIST size given: using the official {size}px file for image_size {job.image_size}")
    filename = f"{name}.npz" if size == 28 else f"{name}_{size}.npz"
    path = _medmnist_dir() / filename
    url = MEDMNIST_URL.format(filename=filename)
    md5 = MEDMNIST_MD5[name][size]
    if path.is_file():
        actual = _md5(path)
        if actual != md5:
            raise DataError(
                f"{path}: md5 {actual} does not match the official MedMNIST md5 {md5} of {filename}: the file "
                f"is corrupt, truncated or not the official release; delete it to download it again, "
                f"or replace it with {url}"
            )
    else:
        _fetch(url, path, md5)
    unit, description, metadata = _npz_images(path, selection or None, job)
    metadata.update(name=name, size=size, url=url, md5=md5)
    source = f"medmnist:{name}@{size} (official MedMNIST v3 file {path}, md5 verified; {description})"
    return unit, source, metadata


def _load_folder(arg: str, job: _Job) -> tuple[np.ndarray, str, dict]:
    """``folder:PATH[?options]``: image files found recursively, decoded in sorted path order."""
    path_text, options = _spec_options(arg, "folder", FOLDER_OPTIONS)
    _apply_options(options, job)
    if not path_text:
        raise DataError("folder: needs a path, e.g. folder:/data/xrays")
    root = Path(path_text).expanduser()
    if not root.exists():
        raise DataError(f"{root}: folder not found")
    if not root.is_dir():
        raise DataError(f"{root}: not a folder (for an .npz archive use npz:{path_text})")
    scan = _scan_folder(root)
    if not scan.files:
        detail = f" ({'; '.join(scan.notes)})" if scan.notes else ""
        raise DataError(f"{root}: no images found (PNG, JPEG, TIFF, BMP or DICOM, searched recursively){detail}")
    job.extra.extend(scan.notes)
    where = f"folder:{root}"
    chosen = _split_part([entry.relative for entry in scan.files], job, where, "file")
    part = [scan.files[index] for index in chosen]
    where += f" ({job.split.part} part)" if job.split else ""
    found = len(part)
    batches, files, formats, frames = _decode_files(part, job)
    empty = np.zeros((0, job.image_size, job.image_size, job.channels), np.float32)
    unit = np.concatenate(batches) if batches else empty
    if len(files) < found or any(len(used) < total for used, total in frames.values()):
        job.extra.append(_folder_cap_note(where, found, files, frames, job.n_images))
    if frames:
        job.extra.append(_multiframe_note(frames, job.frame_step))
    kinds = ", ".join(f"{n} {fmt}" for fmt, n in formats.most_common())
    used = f"{len(files)} files" if len(files) == found else f"{len(files)} of {found} files, n_images={job.n_images}"
    if len(unit) != len(files):
        used = f"{len(unit)} images from {used}"
    if job.split:
        used += f" of the {job.split.part} part, holdout={job.split.fraction}"
    metadata = {"root": str(root), "files_found": len(scan.files), "files": files}
    if frames:
        metadata["frames"] = {name: used_frames for name, (used_frames, _) in frames.items()}
    return unit, f"folder:{root} ({used}: {kinds})", metadata


def _decode_files(
    entries: list[_Entry], job: _Job
) -> tuple[list[np.ndarray], list[str], Counter, dict[str, tuple[list[int], int]]]:
    """Decode files in order until ``n_images`` images: unit batches, files used, formats and frames.

    ``frames`` maps each multi-frame file to (its used frame numbers, 1-based; its frame count).
    Files after the cap are not opened.
    """
    batches, files = [], []
    formats: Counter = Counter()
    frames: dict[str, tuple[list[int], int]] = {}
    remaining = job.n_images
    for entry in entries:
        if remaining is not None and remaining <= 0:
            break
        if entry.reader == "dicom":
            pixels, chosen, total = _decode_dicom(entry.path, job, remaining)
            fmt = "DICOM"
            if total > 1:
                frames[entry.relative] = ([index + 1 for index in chosen], total)
        else:
            pixels, fmt = _decode_pillow(entry.path, job)
            pixels = pixels[None]
        batches.append(_shape_batch(pixels, job))
        files.append(entry.relative)
        formats[fmt] += 1
        remaining = None if remaining is None else remaining - len(pixels)
    return batches, files, formats, frames


def _folder_cap_note(where: str, found: int, files: list[str], frames: dict, cap: int | None) -> str:
    """The ``n_images`` note of a folder: files found and used, a multi-frame file used in part."""
    if not frames:
        return _cap_note(where, found, len(files), "image files", "in sorted path order", cap)
    last = frames.get(files[-1]) if files else None
    partly = f", the last one for {len(last[0])} of its frames" if last else ""
    return (
        f"{where}: found {found} image files; n_images={cap} keeps the first {cap} images in sorted path and frame "
        f"order: {len(files)} files used{partly}; the other {found - len(files)} files are not read. Set "
        "--n-images (Config.n_images) higher to use more"
    )


def _multiframe_note(frames: dict[str, tuple[list[int], int]], step: int) -> str:
    """What was taken from the multi-frame DICOM files (frame numbers are 1-based)."""
    rule = {0: "the middle frame", 1: "every frame"}.get(step, f"one frame in {step} (frames 1, {1 + step}, ...)")
    used = sum(len(chosen) for chosen, _ in frames.values())
    listed = [f"{name} ({len(chosen)} of {total} frames)" for name, (chosen, total) in list(frames.items())[:5]]
    more = ", ..." if len(frames) > 5 else ""
    return (
        f"multi-frame DICOM ({_frame_rule(step)}): {rule} of {_count(len(frames), 'file')}, {used} images: "
        f"{', '.join(listed)}{more}; frames=all|every:K|middle on the folder: spec changes it"
    )


def _split_part(keys: list[str], job: _Job, where: str, unit: str) -> np.ndarray:
    """Ascending indices of the items of the requested split part (all items without a split)."""
    split = job.split
    if split is None:
        return np.arange(len(keys))
    try:
        mask = holdout_mask(keys, split.fraction, split.seed)
    except ValueError as exc:
        raise DataError(f"{where}: {exc}") from exc
    chosen = np.flatnonzero(mask if split.part == "holdout" else ~mask)
    held = int(mask.sum())
    job.split_record = {
        "fraction": split.fraction, "seed": split.seed, "part": split.part, "unit": unit,
        "found": len(keys), "train": len(keys) - held, "holdout": held,
        "part_sha256": keys_digest([keys[index] for index in chosen]),
    }
    job.extra.append(
        f"held-out split: {held} of {len(keys)} {unit}s held out (holdout={split.fraction}, split seed "
        f"{split.seed}, ranked by sha256 of seed and {unit} name); this is the {split.part} part: "
        f"{len(chosen)} {unit}s"
    )
    return chosen


def _spec_options(arg: str, kind: str, allowed: tuple[str, ...]) -> tuple[str, dict[str, str]]:
    """``PATH?key=value&key=value`` -> (PATH, options); a path that exists as written keeps its '?'."""
    base, sep, query = arg.rpartition("?")
    if not sep or Path(arg).expanduser().exists():
        return arg, {}
    options = {}
    for item in query.split("&"):
        key, equals, value = item.partition("=")
        key = key.strip().lower()
        if not equals or key not in allowed:
            raise DataError(
                f"{kind}:{arg}: unknown option {item!r}; valid options: {', '.join(f'{name}=...' for name in allowed)}"
            )
        options[key] = value.strip()
    return base, options


def _apply_options(options: dict[str, str], job: _Job) -> None:
    """Store the parsed spec options in ``job`` (validated; DataError naming the option)."""
    if "max_pixels" in options:
        text = options["max_pixels"]
        if not text.replace("_", "").isdigit() or int(text) < 1:
            raise DataError(f"max_pixels={text}: must be a positive integer number of pixels, e.g. max_pixels=60000000")
        job.max_pixels = int(text)
    if "frames" in options:
        job.frame_step = _frame_step(options["frames"])
    if "voi" in options:
        if options["voi"].lower() not in ("on", "off"):
            raise DataError(f"voi={options['voi']}: use voi=on (apply the file's window / VOI LUT) or voi=off")
        job.voi = options["voi"].lower() == "on"


def _frame_step(text: str) -> int:
    """``all`` -> 1, ``every:K`` -> K, ``middle`` -> 0; DataError naming the option otherwise."""
    rule = text.strip().lower()
    if rule == "all":
        return 1
    if rule == "middle":
        return 0
    kind, _, step = rule.partition(":")
    if kind == "every" and step.isdigit() and int(step) >= 1:
        return int(step)
    raise DataError(f"frames={text}: use frames=all, frames=every:K (K >= 1, e.g. every:4) or frames=middle")


def _frame_rule(step: int) -> str:
    """The spec option text of a frame step, for notes."""
    return {0: "frames=middle", 1: "frames=all"}.get(step, f"frames=every:{step}")


def _check_pixel_count(path: Path | str, height: int, width: int, job: _Job) -> None:
    """DataError naming the file and the limit when one image has more than ``job.max_pixels`` pixels."""
    if height * width > job.max_pixels:
        raise DataError(
            f"{path}: {width}x{height} = {height * width:,} pixels, above the limit of {job.max_pixels:,} pixels "
            "per image (checked before decoding, to protect memory); raise it with ?max_pixels=N on the spec "
            "if the image is genuine"
        )


_LOADERS: dict[str, Callable[[str, _Job], tuple[np.ndarray, str, dict]]] = {
    "phantom": _load_phantom,
    "npz": _load_npz,
    "folder": _load_folder,
    "medmnist": _load_medmnist,
}


# ----------------------------------------------------------------------------- arrays


def _npz_images(path: Path, selection: str | None, job: _Job) -> tuple[np.ndarray, str, dict]:
    """Images of an .npz archive in [0, 1], a short description and metadata.

    Only the rows kept by ``n_images`` are read (see :mod:`medgan_lib.npz_archive`).
    """
    if not path.is_file():
        raise DataError(f"{path}: npz file not found")
    try:
        with NpzArchive(path) as archive:
            names = _npz_array_names(archive.names, selection, path)
            headers = [_check_header(archive.header(name), path, job) for name in names]
            if len({header.shape[1:] for header in headers}) > 1:
                shapes = ", ".join(f"{header.name} {header.shape}" for header in headers)
                raise DataError(f"{path}: arrays have different image shapes and cannot be combined: {shapes}")
            total = sum(header.shape[0] for header in headers)
            chosen = np.arange(total)
            if job.split:
                keys = [f"{header.name}[{row}]" for header in headers for row in range(header.shape[0])]
                chosen = _split_part(keys, job, f"{path} [{'+'.join(names)}]", "array row")
            found = len(chosen)
            keep = found if job.n_images is None else min(found, job.n_images)
            parts = []
            offset = 0
            for header in headers:
                rows = chosen[:keep]
                rows = rows[(rows >= offset) & (rows < offset + header.shape[0])] - offset
                parts.append(archive.rows(header.name, rows))
                offset += header.shape[0]
    except ArchiveError as exc:
        raise DataError(f"{path}: {exc}") from exc
    except OSError as exc:
        raise DataError(f"{path}: cannot read as an .npz archive ({type(exc).__name__}: {exc})") from exc
    raw = parts[0] if len(parts) == 1 else np.concatenate(parts)
    where = f"{path} [{'+'.join(names)}]" + (f" ({job.split.part} part)" if job.split else "")
    _check_finite(raw, where)
    if keep < found:
        job.extra.append(_cap_note(where, found, keep, "images", "in array order", job.n_images))
    unit = _array_to_unit(raw, where, job)
    count = f"{len(raw)} images" if keep == found else f"{keep} of {found} images, n_images={job.n_images}"
    if job.split:
        count += f" of the {job.split.part} part, holdout={job.split.fraction}"
    description = f"{'+'.join(names)}: {count} {raw.shape[1]}x{raw.shape[2]} {raw.dtype}"
    metadata = {"path": str(path), "arrays": names, "dtype": str(raw.dtype), "raw_shape": list(raw.shape),
                "images_found": total}
    return unit, description, metadata


def _npz_array_names(keys: list[str], selection: str | None, path: Path) -> list[str]:
    """The image arrays a selection names: MedMNIST ``{split}_images`` or a plain ``images``."""
    expected = "'images' or the MedMNIST layout 'train_images', 'val_images', 'test_images'"
    if any(f"{split}_images" in keys for split in SPLITS):
        names = [f"{split}_images" for split in (SPLITS if selection == "all" else (selection or "train",))]
        missing = [name for name in names if name not in keys]
        if missing:
            raise DataError(f"{path}: no {', '.join(missing)} array; keys found: {keys}; expected {expected}")
        return names
    if "images" in keys:
        if selection is not None:
            raise DataError(
                f"{path}: '#{selection}' needs the MedMNIST layout (train_images, val_images, "
                f"test_images) but the file has a plain 'images' array; drop '#{selection}'"
            )
        return ["images"]
    raise DataError(f"{path}: no image array; keys found: {keys}; expected {expected}")


def _check_header(header: ArrayHeader, path: Path, job: _Job) -> ArrayHeader:
    """An image array's header, validated before its data is read: (N, H, W[, C]), numeric, size limit."""
    where = f"{path} [{header.name}]"
    if header.dtype.kind not in "uifb":
        raise DataError(f"{where}: unsupported dtype {header.dtype}; expected uint8, uint16 or float")
    if len(header.shape) not in (3, 4):
        raise DataError(f"{where}: shape {header.shape}; expected (N, H, W) or (N, H, W, C)")
    if len(header.shape) == 4 and header.shape[-1] not in (1, 3, 4):
        hint = "; it looks channels-first: transpose to (N, H, W, C)" if header.shape[1] in (1, 3, 4) else ""
        raise DataError(f"{where}: shape {header.shape}; the last axis must be 1, 3 or 4 channels{hint}")
    _check_pixel_count(where, header.shape[1], header.shape[2], job)
    return header


def _array_to_unit(raw: np.ndarray, where: str, job: _Job) -> np.ndarray:
    """(N, H, W[, C]) array -> (N, size, size, channels) float32 in [0, 1], converted in chunks."""
    if raw.ndim == 3:
        raw = raw[..., None]
    if raw.shape[-1] == 4:
        raw = raw[..., :3]
        job.events["alpha channel dropped"] += len(raw)
    if raw.dtype == np.uint8:
        low, scale = 0.0, 255.0
    elif raw.dtype == np.bool_:
        low, scale = 0.0, 1.0
    elif len(raw):
        low, high = float(raw.min()), float(raw.max())
        job.extra.append(
            f"{where}: {raw.dtype} array min-max normalised over all {len(raw)} images "
            f"(min {low:g} -> -1, max {high:g} -> 1)"
        )
        if high == low:
            job.extra.append(f"{where}: every pixel equals {low:g}; all images map to -1")
        scale = high - low or 1.0
    else:
        low, scale = 0.0, 1.0
    unit = np.empty((len(raw), job.image_size, job.image_size, job.channels), np.float32)
    for start in range(0, len(raw), _CHUNK):
        chunk = (raw[start : start + _CHUNK].astype(np.float32) - np.float32(low)) / np.float32(scale)
        unit[start : start + _CHUNK] = _shape_batch(chunk, job)
    return unit


# ----------------------------------------------------------------------------- files


@dataclass(frozen=True)
class _Entry:
    """One image file of a folder: where it is, its path relative to the root, which decoder reads it."""

    path: Path
    relative: str
    reader: str  # "pillow" or "dicom"


@dataclass
class _Scan:
    """The image files under a folder, sorted by relative path, and the notes on what was not taken."""

    files: list[_Entry]
    notes: list[str]


def _scan_folder(root: Path) -> _Scan:
    """Every image file under ``root``; links to folders followed once (loops noted, not followed).

    A folder that cannot be listed, a broken link and an unreadable file without a known extension
    are DataErrors naming the path.
    """
    files: list[_Entry] = []
    skipped: Counter = Counter()
    hidden = 0
    links: list[str] = []
    scanned: dict[tuple[int, int], str] = {}  # (device, inode) of each scanned folder -> its relative path
    pending = [(root, (), ())]  # folder, its relative parts, the (device, inode) of its ancestors
    while pending:
        directory, parts, ancestors = pending.pop()
        key = _folder_key(directory)
        relative = "/".join(parts) or "."
        if key in scanned:
            target = os.readlink(directory) if directory.is_symlink() else directory
            why = "a loop: it points back to a folder that contains it" if key in ancestors else "already scanned"
            links.append(f"{relative} -> {target} ({why}, as {scanned[key]}; not followed again)")
            continue
        scanned[key] = relative
        for entry in _list_folder(directory):
            path = Path(entry.path)
            if entry.name.startswith("."):
                hidden += 1
                continue
            if entry.is_symlink() and not path.exists():
                raise DataError(f"{path}: broken symbolic link (its target {os.readlink(path)} does not exist)")
            if entry.is_dir():
                pending.append((path, parts + (entry.name,), ancestors + (key,)))
                continue
            suffix = path.suffix.lower()
            if not entry.is_file():
                skipped["(not a regular file)"] += 1
            elif suffix in PIL_EXTENSIONS:
                files.append(_Entry(path, "/".join(parts + (entry.name,)), "pillow"))
            elif suffix in DICOM_EXTENSIONS or _has_dicom_preamble(path):
                files.append(_Entry(path, "/".join(parts + (entry.name,)), "dicom"))
            else:
                skipped[suffix or "(no extension)"] += 1
    files.sort(key=lambda item: item.relative.split("/"))
    notes = []
    if hidden:
        notes.append(f"skipped {_count(hidden, 'hidden file or folder', 'hidden files or folders')}")
    if skipped:
        kinds = ", ".join(f"{ext}: {n}" for ext, n in skipped.most_common())
        notes.append(f"skipped {_count(sum(skipped.values()), 'non-image file')} ({kinds})")
    if links:
        notes.append(f"symbolic links to folders not followed again: {'; '.join(sorted(links))}")
    return _Scan(files, notes)


def _folder_key(directory: Path) -> tuple[int, int]:
    """(device, inode) of a folder, following links: the identity used for loop protection."""
    try:
        info = directory.stat()
    except OSError as exc:
        raise DataError(f"{directory}: cannot read folder ({exc.strerror or exc})") from exc
    return info.st_dev, info.st_ino


def _list_folder(directory: Path) -> list[os.DirEntry]:
    """The entries of one folder; DataError naming it when it cannot be listed."""
    try:
        with os.scandir(directory) as entries:
            return list(entries)
    except OSError as exc:
        raise DataError(
            f"{directory}: cannot list folder ({exc.strerror or exc}); fix its permissions or move it out of "
            "the data folder, so that no images are skipped silently"
        ) from exc


def _has_dicom_preamble(path: Path) -> bool:
    """True if the file has the 128-byte preamble followed by b"DICM"."""
    try:
        with open(path, "rb") as handle:
            return handle.read(132)[128:] == b"DICM"
    except OSError as exc:
        raise DataError(f"{path}: cannot read file ({exc.strerror or exc})") from exc


def _decode_pillow(path: Path, job: _Job) -> tuple[np.ndarray, str]:
    """(H, W, C) float32 in [0, 1] with C in {1, 3}, and the Pillow format name."""
    from PIL import Image

    try:
        with Image.open(path) as image:
            _check_pixel_count(path, image.height, image.width, job)
            fmt = image.format or path.suffix.lstrip(".").upper()
            frames = getattr(image, "n_frames", 1)
            if frames > 1:
                image.seek(frames // 2)
                job.events["multi-page file: middle page used"] += 1
            image.load()
            pixels, rule = _pillow_pixels(image, job)
    except DataError:
        raise
    except Exception as exc:
        raise DataError(f"{path}: cannot decode image ({type(exc).__name__}: {exc})") from exc
    if rule == "8bit":
        return pixels.astype(np.float32) / np.float32(255), fmt
    _check_finite(pixels, str(path))
    label = "float images" if rule == "float" else "16-bit images"
    job.events[f"{label} min-max normalised per image"] += 1
    return _minmax(pixels), fmt


def _pillow_pixels(image, job: _Job) -> tuple[np.ndarray, str]:
    """Raw (H, W, C) pixels of a loaded Pillow image and their rule: "8bit", "int" or "float"."""
    mode = image.mode
    if mode == "F":
        return np.asarray(image, np.float32)[..., None], "float"
    if mode == "I" or mode.startswith("I;16"):
        return np.asarray(image).astype(np.float64)[..., None], "int"
    if mode in ("1", "L"):
        return np.asarray(image.convert("L"))[..., None], "8bit"
    if mode in ("LA", "La"):
        job.events["alpha channel dropped"] += 1
        return np.asarray(image.getchannel("L"))[..., None], "8bit"
    has_alpha = mode in ("RGBA", "RGBa", "PA") or "transparency" in image.info
    if has_alpha:
        job.events["alpha channel dropped"] += 1
    return np.asarray(image.convert("RGBA" if has_alpha else "RGB"))[..., :3], "8bit"


def _decode_dicom(path: Path, job: _Job, limit: int | None = None) -> tuple[np.ndarray, list[int], int]:
    """(n, H, W, C) float32 in [0, 1] of a DICOM file's chosen frames, their 0-based indices, its frame count.

    Frames are chosen by ``job.frame_step`` (at most ``limit``) and decoded one at a time.
    """
    import pydicom
    from pydicom.pixels import iter_pixels

    try:
        dataset = pydicom.dcmread(path, force=True)
    except Exception as exc:
        raise DataError(f"{path}: unreadable DICOM file ({type(exc).__name__}: {exc})") from exc
    if not any(tag in dataset for tag in ("PixelData", "FloatPixelData", "DoubleFloatPixelData")):
        raise DataError(f"{path}: DICOM file has no pixel data (no PixelData element)")
    photometric = str(dataset.get("PhotometricInterpretation", "MONOCHROME2")).strip()
    if photometric == "PALETTE COLOR":
        raise DataError(f"{path}: PALETTE COLOR DICOM is not supported; convert it to RGB first")
    samples = int(dataset.get("SamplesPerPixel", 1) or 1)
    if samples not in (1, 3):
        raise DataError(f"{path}: DICOM with {samples} samples per pixel is not supported (expected 1 or 3)")
    rows, columns = int(dataset.get("Rows", 0) or 0), int(dataset.get("Columns", 0) or 0)
    _check_pixel_count(path, rows, columns, job)
    try:
        total = int(dataset.get("NumberOfFrames", 1) or 1)
    except (TypeError, ValueError) as exc:
        raise DataError(f"{path}: invalid NumberOfFrames {dataset.get('NumberOfFrames')!r}") from exc
    chosen = [total // 2] if job.frame_step == 0 else list(range(0, total, job.frame_step))
    chosen = chosen if limit is None else chosen[:limit]
    voi = _voi_transform(dataset, samples, path, job) if job.voi else None
    out = np.empty((len(chosen), rows, columns, samples), np.float32)
    try:
        frames = iter_pixels(dataset, indices=chosen)
        for position, pixels in enumerate(frames):
            if pixels.shape[:2] != (rows, columns) or pixels.ndim != (2 if samples == 1 else 3):
                frame = chosen[position] + 1
                raise DataError(f"{path}: unexpected DICOM pixel array shape {pixels.shape} for frame {frame}")
            _check_finite(pixels, f"{path} frame {chosen[position] + 1}")
            unit = voi(pixels) if voi else _dicom_unit(pixels, dataset, samples, job)
            if photometric == "MONOCHROME1":
                unit = 1.0 - unit
                job.events["MONOCHROME1 DICOM inverted so that higher is brighter"] += 1
            out[position] = unit.reshape(rows, columns, samples)
    except DataError:
        raise
    except Exception as exc:
        syntax = getattr(getattr(dataset, "file_meta", None), "TransferSyntaxUID", "unknown")
        raise DataError(
            f"{path}: cannot decode DICOM pixel data (transfer syntax {syntax}; {type(exc).__name__}: {exc})"
        ) from exc
    return out, chosen, total


def _voi_transform(dataset, samples: int, path: Path, job: _Job) -> Callable[[np.ndarray], np.ndarray] | None:
    """Stored values -> [0, 1] through the modality LUT and the file's first window or VOI LUT.

    None (the BitsStored rule applies, noted) when the file defines neither or is colour. The
    output is scaled by the range the window or LUT maps to (a window's: found by sending values
    far outside it through it; a LUT's: 0 .. 2**bits - 1 of its descriptor), so a window's lower
    edge maps to 0 and its upper edge to 1.
    """
    from pydicom.pixels import apply_modality_lut, apply_voi_lut

    has_window = "WindowCenter" in dataset and "WindowWidth" in dataset
    if samples != 1 or not (has_window or dataset.get("VOILUTSequence")):
        reason = "colour" if samples != 1 else "no window or VOI LUT in the file"
        job.events[f"voi=on but {reason}: BitsStored rule used"] += 1
        return None
    kind = "VOI LUT" if dataset.get("VOILUTSequence") else "window"
    windows = len(dataset.WindowCenter) if has_window and dataset["WindowCenter"].VM > 1 else 1
    label = f"DICOM modality LUT and {kind} applied (voi=on)"
    if kind == "window" and windows > 1:
        label += f", the first of {windows} windows"

    if kind == "VOI LUT":  # its output range is 0 .. 2**bits - 1 (LUTDescriptor); its input is integral
        low, high = 0.0, float(2 ** int(dataset.VOILUTSequence[0].LUTDescriptor[2]) - 1)
    else:  # the window's output range: send values far below and above it through it
        low, high = sorted(float(v) for v in apply_voi_lut(np.array([-(2.0**40), 2.0**40]), dataset, index=0))
    if high <= low:
        raise DataError(f"{path}: the {kind} maps every value to {low:g}")

    def transform(pixels: np.ndarray) -> np.ndarray:
        values = apply_modality_lut(pixels, dataset)
        if kind == "VOI LUT" and values.dtype.kind == "f":
            values = np.rint(values).astype(np.int64)
        job.events[label] += 1
        return np.clip((apply_voi_lut(values, dataset, index=0).astype(np.float64) - low) / (high - low), 0.0, 1.0)

    return transform


def _dicom_unit(pixels: np.ndarray, dataset, samples: int, job: _Job) -> np.ndarray:
    """DICOM pixels in [0, 1]: rescale, then the BitsStored range (see the module docstring)."""
    if pixels.dtype.kind == "f":
        job.events["float DICOM min-max normalised per image"] += 1
        return _minmax(pixels)
    bits = int(dataset.get("BitsStored", 0) or pixels.dtype.itemsize * 8)
    signed = int(dataset.get("PixelRepresentation", 0) or 0) == 1
    low, high = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else (0, (1 << bits) - 1)
    if pixels.min() < low or pixels.max() > high:
        job.events[f"DICOM values outside the {bits}-bit BitsStored range, min-max normalised per image"] += 1
        return _minmax(pixels)
    slope, intercept = 1.0, 0.0
    if samples == 1:
        slope = float(dataset.get("RescaleSlope", 1) or 1)
        intercept = float(dataset.get("RescaleIntercept", 0) or 0)
        if (slope, intercept) != (1.0, 0.0):
            job.events["DICOM RescaleSlope/Intercept applied"] += 1
    values = pixels.astype(np.float64) * slope + intercept
    low, high = sorted((low * slope + intercept, high * slope + intercept))
    return (values - low) / (high - low)


# ----------------------------------------------------------------------------- shared steps


def _shape_batch(batch: np.ndarray, job: _Job) -> np.ndarray:
    """(n, h, w, c) float32 in [0, 1] with c in {1, 3} -> (n, size, size, channels) in [0, 1]."""
    count, height, width, depth = batch.shape
    job.sizes[(height, width)] += count
    flat = batch.reshape(count, -1)
    constant = int(np.sum(flat.min(axis=1) == flat.max(axis=1))) if flat.size else 0
    if constant:
        job.events["constant images (every pixel has the same value)"] += constant
    if depth == 3 and job.channels == 1:
        same = np.all(batch[..., :1] == batch[..., 1:], axis=(1, 2, 3))
        if same.any():
            job.events["colour images with identical R, G, B: one channel used as grayscale"] += int(same.sum())
        if not same.all():
            job.events["RGB converted to grayscale (BT.601 luminance)"] += int((~same).sum())
        batch = np.where(same[:, None, None, None], batch[..., :1], (batch @ _LUMA)[..., None])
    elif depth == 1 and job.channels == 3:
        batch = np.repeat(batch, 3, axis=-1)
        job.events["grayscale replicated to 3 channels"] += count
    side = min(height, width)
    if height != width:
        top, left = (height - side) // 2, (width - side) // 2
        batch = batch[:, top : top + side, left : left + side]
        job.cropped[(height, width)] += count
    if side != job.image_size:
        job.resized[(height, width)] += count
        job.upsampled += count if side < job.image_size else 0
        resized = tf.image.resize(batch, (job.image_size, job.image_size), antialias=True)
        batch = np.clip(resized.numpy(), 0.0, 1.0)
    return batch.astype(np.float32, copy=False)


def _minmax(pixels: np.ndarray) -> np.ndarray:
    """One image stretched to [0, 1]; a constant image maps to 0."""
    values = pixels.astype(np.float64)
    low, high = values.min(), values.max()
    if high == low:  # noted by _shape_batch
        return np.zeros_like(values)
    return (values - low) / (high - low)


def _check_finite(pixels: np.ndarray, where: str) -> None:
    """DataError naming ``where`` and the counts if any pixel is NaN or infinite."""
    if pixels.dtype.kind != "f":
        return
    finite = np.isfinite(pixels)
    if not finite.all():
        nan = int(np.isnan(pixels).sum())
        inf = int(finite.size - finite.sum()) - nan
        raise DataError(f"{where}: {nan} NaN and {inf} Inf pixel values")


# ----------------------------------------------------------------------------- MedMNIST files


def _medmnist_dir() -> Path:
    """The MedMNIST cache folder: $MEDGAN_DATA_DIR or ~/.cache/medgan/medmnist."""
    configured = os.environ.get("MEDGAN_DATA_DIR")
    return Path(configured).expanduser() if configured else Path.home() / ".cache" / "medgan" / "medmnist"


def _fetch(url: str, dest: Path, md5: str) -> None:
    """Download ``url`` to ``dest`` atomically (temporary file, md5 check, rename)."""
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        handle, temp_name = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
        os.close(handle)
    except OSError as exc:
        raise DataError(f"{dest}: cannot create the MedMNIST cache file ({exc})") from exc
    temp = Path(temp_name)
    try:
        LOG.warning("downloading %s to %s", url, dest)
        try:
            _download(url, temp)
        except (OSError, http.client.HTTPException) as exc:
            raise DataError(
                f"{dest.name} is not cached at {dest} and could not be downloaded from {url} "
                f"({type(exc).__name__}: {exc}). If this machine is offline, download that file elsewhere "
                f"(md5 {md5}) and place it at {dest}"
            ) from exc
        actual = _md5(temp)
        if actual != md5:
            raise DataError(f"download of {url} has md5 {actual}, expected {md5}; nothing was cached at {dest}")
        os.replace(temp, dest)
    finally:
        temp.unlink(missing_ok=True)


def _download(url: str, dest: Path) -> None:
    """Stream ``url`` into ``dest``; the only network access of this module."""
    with urllib.request.urlopen(url, timeout=60) as response, open(dest, "wb") as out:
        shutil.copyfileobj(response, out, length=1 << 20)


def _md5(path: Path) -> str:
    """md5 hex digest of a file, read in 1 MiB blocks."""
    digest = hashlib.md5()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


# ----------------------------------------------------------------------------- formatting


def _cap_note(what: str, found: int, used: int, unit: str, order: str, cap: int | None, verb: str = "read") -> str:
    """The note of an ``n_images`` cap: how many were found, which are used, how to change it."""
    return (
        f"{what}: found {found} {unit}, using the first {used} {order} (n_images={cap}); the other "
        f"{found - used} are not {verb}. Set --n-images (Config.n_images) to {found} or more to use them all"
    )


def _count(n: int, singular: str, plural: str | None = None) -> str:
    """'1 image' / '3 images'."""
    return f"{n} {singular if n == 1 else plural or singular + 's'}"


def _fmt_sizes(sizes: Counter) -> str:
    """'64x64: 300, 512x512: 12' (at most six sizes)."""
    common = sizes.most_common()
    text = ", ".join(f"{h}x{w}: {n}" for (h, w), n in common[:6])
    return text + (f", and {len(common) - 6} more sizes" if len(common) > 6 else "")
