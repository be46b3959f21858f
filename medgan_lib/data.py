"""Image loaders: every dataset ends as float32 images in [-1, 1] at the configured size.

Specs accepted by :func:`load_images`:

* ``phantom`` or ``phantom:N`` -- the procedural X-ray aortography phantom of
  :mod:`medgan_lib.phantom` (NOT patient data); 2000 images unless N or ``max_images`` is given.
* ``npz:PATH[#train|#val|#test|#all]`` -- a MedMNIST-layout archive (``train_images``,
  ``val_images``, ``test_images``; ``train`` by default) or one with a plain ``images`` array.
* ``folder:PATH`` -- PNG, JPEG, TIFF, BMP and DICOM files found recursively, in sorted path order.
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
  intensities. Values outside that range fall back to min-max per image (noted). Window
  center/width is not applied. Colour DICOM is normalised by BitsStored without rescale.
* Float files: min-max per image.
* npz arrays other than uint8 (uint16, other integers, float): one min-max over the whole selected
  array, keeping intensities comparable across images (an array already spanning [0, 1] is
  unchanged). bool arrays map False/True to -1/1.
* An image that is constant under a min-max rule maps to -1 (noted).

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
from typing import Callable

import numpy as np
import tensorflow as tf

LOG = logging.getLogger("medgan")

DEFAULT_PHANTOM_COUNT = 2000
PIL_EXTENSIONS = frozenset({".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp"})
DICOM_EXTENSIONS = frozenset({".dcm", ".dicom"})
SPLITS = ("train", "val", "test")
SELECTIONS = SPLITS + ("all",)
VALID_SPECS = (
    "phantom",
    "phantom:N",
    "npz:PATH[#train|#val|#test|#all]",
    "folder:PATH",
    "medmnist:NAME[@28|@64|@128|@224][#train|#val|#test|#all]",
)

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


@dataclass
class _Job:
    """One load request plus the tally of what was done to the images."""

    image_size: int
    channels: int
    max_images: int | None
    seed: int
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
    spec: str, image_size: int, channels: int = 1, max_images: int | None = None, seed: int = 0
) -> ImageSet:
    """Load a dataset named by ``spec`` as float32 (N, image_size, image_size, channels) in [-1, 1].

    ``max_images`` keeps the first images in a deterministic order (sorted paths, array index);
    ``seed`` only affects the phantom. Raises DataError on bad input.
    """
    if image_size < 1:
        raise DataError(f"image_size must be a positive integer, got {image_size}")
    if channels not in (1, 3):
        raise DataError(f"channels must be 1 or 3, got {channels}")
    if max_images is not None and max_images < 0:
        raise DataError(f"max_images must be >= 0 or None, got {max_images}")
    kind, _, arg = spec.strip().partition(":")
    loader = _LOADERS.get(kind.strip().lower())
    if loader is None:
        hint = f" (did you mean folder:{spec}?)" if Path(spec).expanduser().is_dir() else ""
        raise DataError(f"unknown dataset spec {spec!r}{hint}; valid specs: {', '.join(VALID_SPECS)}")
    job = _Job(image_size, channels, max_images, seed)
    unit, source, metadata = loader(arg.strip(), job)
    if len(unit) == 0:
        limit = f" with max_images={max_images}" if max_images is not None else ""
        raise DataError(f"{spec}: zero images after selection{limit}")
    images = unit * np.float32(2) - np.float32(1)
    notes = job.notes()
    for note in notes:
        LOG.warning("%s: %s", spec, note)
    return ImageSet(images, source, spec, dataset_fingerprint(images), notes, metadata)


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
        count = DEFAULT_PHANTOM_COUNT if job.max_images is None else job.max_images
    keep = count if job.max_images is None else min(count, job.max_images)
    if keep == 0:
        return np.zeros((0, job.image_size, job.image_size, job.channels), np.float32), "phantom", {}
    from medgan_lib.phantom import make_phantom

    phantom = make_phantom(count, job.image_size, job.seed)
    pixels = np.asarray(phantom.images[:keep], np.float32)
    _check_finite(pixels, "phantom images")
    unit = _shape_batch(np.clip(pixels, 0.0, 1.0)[..., None], job)
    metadata = {
        "params": list(phantom.params[:keep]),
        "landmarks": {name: np.asarray(points)[:keep].tolist() for name, points in phantom.landmarks.items()},
    }
    source = f"phantom (procedural X-ray aortography, NOT patient data): {keep} images, seed {job.seed}"
    return unit, source, metadata


def _load_npz(arg: str, job: _Job) -> tuple[np.ndarray, str, dict]:
    """``npz:PATH[#selection]``."""
    if not arg:
        raise DataError("npz: needs a path, e.g. npz:/data/breastmnist.npz")
    base, sep, selection = arg.rpartition("#")
    if sep and selection in SELECTIONS:
        path_text, chosen = base, selection
    elif sep and Path(base).expanduser().is_file():
        raise DataError(f"{base}: unknown selection '#{selection}'; use #train, #val, #test or #all")
    else:
        path_text, chosen = arg, None
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
    """``folder:PATH``: image files found recursively, decoded in sorted path order."""
    if not arg:
        raise DataError("folder: needs a path, e.g. folder:/data/xrays")
    root = Path(arg).expanduser()
    if not root.exists():
        raise DataError(f"{root}: folder not found")
    if not root.is_dir():
        raise DataError(f"{root}: not a folder (for an .npz archive use npz:{arg})")
    files, skipped, hidden = _scan_folder(root)
    skip_notes = []
    if hidden:
        skip_notes.append(f"skipped {_count(hidden, 'hidden file or folder', 'hidden files or folders')}")
    if skipped:
        kinds = ", ".join(f"{ext}: {n}" for ext, n in skipped.most_common())
        skip_notes.append(f"skipped {_count(sum(skipped.values()), 'non-image file')} ({kinds})")
    if not files:
        detail = f" ({'; '.join(skip_notes)})" if skip_notes else ""
        raise DataError(f"{root}: no images found (PNG, JPEG, TIFF, BMP or DICOM, searched recursively){detail}")
    job.extra.extend(skip_notes)
    files = files[: job.max_images] if job.max_images is not None else files
    unit = np.empty((len(files), job.image_size, job.image_size, job.channels), np.float32)
    formats: Counter = Counter()
    multiframe = []
    for index, (path, reader) in enumerate(files):
        if reader == "dicom":
            pixels, frame = _decode_dicom(path, job)
            fmt = "DICOM"
            if frame:
                multiframe.append(f"{path.relative_to(root)} ({frame})")
        else:
            pixels, fmt = _decode_pillow(path, job)
        unit[index] = _shape_batch(pixels[None], job)[0]
        formats[fmt] += 1
    if multiframe:
        shown = ", ".join(multiframe[:5]) + (", ..." if len(multiframe) > 5 else "")
        job.extra.append(f"multi-frame DICOM: used the middle frame of {_count(len(multiframe), 'file')}: {shown}")
    kinds = ", ".join(f"{n} {fmt}" for fmt, n in formats.most_common())
    metadata = {"root": str(root), "files": [str(path.relative_to(root)) for path, _ in files]}
    return unit, f"folder:{root} ({len(files)} files: {kinds})", metadata


_LOADERS: dict[str, Callable[[str, _Job], tuple[np.ndarray, str, dict]]] = {
    "phantom": _load_phantom,
    "npz": _load_npz,
    "folder": _load_folder,
    "medmnist": _load_medmnist,
}


# ----------------------------------------------------------------------------- arrays


def _npz_images(path: Path, selection: str | None, job: _Job) -> tuple[np.ndarray, str, dict]:
    """Images of an .npz archive in [0, 1], a short description and metadata."""
    if not path.is_file():
        raise DataError(f"{path}: npz file not found")
    try:
        archive = np.load(path, allow_pickle=False)
    except Exception as exc:
        raise DataError(f"{path}: cannot read as an .npz archive ({type(exc).__name__}: {exc})") from exc
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise DataError(f"{path}: is a single .npy array, not an .npz archive with an 'images' array")
    with archive:
        keys = sorted(archive.files)
        expected = "'images' or the MedMNIST layout 'train_images', 'val_images', 'test_images'"
        if any(f"{split}_images" in keys for split in SPLITS):
            names = [f"{split}_images" for split in (SPLITS if selection == "all" else (selection or "train",))]
            missing = [name for name in names if name not in keys]
            if missing:
                raise DataError(f"{path}: no {', '.join(missing)} array; keys found: {keys}; expected {expected}")
        elif "images" in keys:
            if selection is not None:
                raise DataError(
                    f"{path}: '#{selection}' needs the MedMNIST layout (train_images, val_images, "
                    f"test_images) but the file has a plain 'images' array; drop '#{selection}'"
                )
            names = ["images"]
        else:
            raise DataError(f"{path}: no image array; keys found: {keys}; expected {expected}")
        parts = []
        remaining = job.max_images
        for name in names:
            part = _read_array(archive, name, path)
            if remaining is not None:
                part = part[:remaining]
                remaining -= len(part)
            parts.append(part)
    if len({part.shape[1:] for part in parts}) > 1:
        shapes = ", ".join(f"{name} {part.shape}" for name, part in zip(names, parts))
        raise DataError(f"{path}: arrays have different image shapes and cannot be combined: {shapes}")
    raw = parts[0] if len(parts) == 1 else np.concatenate(parts)
    where = f"{path} [{'+'.join(names)}]"
    unit = _array_to_unit(raw, where, job)
    description = f"{'+'.join(names)}: {len(raw)} images {raw.shape[1]}x{raw.shape[2]} {raw.dtype}"
    metadata = {"path": str(path), "arrays": names, "dtype": str(raw.dtype), "raw_shape": list(raw.shape)}
    return unit, description, metadata


def _read_array(archive: np.lib.npyio.NpzFile, name: str, path: Path) -> np.ndarray:
    """One validated image array of an archive: (N, H, W) or (N, H, W, C), numeric, finite."""
    try:
        array = archive[name]
    except Exception as exc:
        raise DataError(f"{path}: cannot read array {name!r} ({type(exc).__name__}: {exc})") from exc
    where = f"{path} [{name}]"
    if array.dtype.kind not in "uifb":
        raise DataError(f"{where}: unsupported dtype {array.dtype}; expected uint8, uint16 or float")
    if array.ndim not in (3, 4):
        raise DataError(f"{where}: shape {array.shape}; expected (N, H, W) or (N, H, W, C)")
    if array.ndim == 4 and array.shape[-1] not in (1, 3, 4):
        hint = "; it looks channels-first: transpose to (N, H, W, C)" if array.shape[1] in (1, 3, 4) else ""
        raise DataError(f"{where}: shape {array.shape}; the last axis must be 1, 3 or 4 channels{hint}")
    _check_finite(array, where)
    return array


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


def _scan_folder(root: Path) -> tuple[list[tuple[Path, str]], Counter, int]:
    """Image files under ``root`` as sorted (path, reader) pairs, skipped extensions, hidden count."""
    files = []
    skipped: Counter = Counter()
    hidden = 0
    for directory, subdirs, names in os.walk(root):
        hidden += sum(name.startswith(".") for name in subdirs)
        subdirs[:] = [name for name in subdirs if not name.startswith(".")]
        for name in names:
            path = Path(directory, name)
            suffix = path.suffix.lower()
            if name.startswith("."):
                hidden += 1
            elif suffix in PIL_EXTENSIONS:
                files.append((path, "pillow"))
            elif suffix in DICOM_EXTENSIONS or _has_dicom_preamble(path):
                files.append((path, "dicom"))
            else:
                skipped[suffix or "(no extension)"] += 1
    files.sort(key=lambda item: item[0].relative_to(root).parts)
    return files, skipped, hidden


def _has_dicom_preamble(path: Path) -> bool:
    """True if the file has the 128-byte preamble followed by b"DICM"."""
    try:
        with open(path, "rb") as handle:
            return handle.read(132)[128:] == b"DICM"
    except OSError:
        return False


def _decode_pillow(path: Path, job: _Job) -> tuple[np.ndarray, str]:
    """(H, W, C) float32 in [0, 1] with C in {1, 3}, and the Pillow format name."""
    from PIL import Image

    try:
        with Image.open(path) as image:
            fmt = image.format or path.suffix.lstrip(".").upper()
            frames = getattr(image, "n_frames", 1)
            if frames > 1:
                image.seek(frames // 2)
                job.events["multi-page file: middle page used"] += 1
            image.load()
            pixels, rule = _pillow_pixels(image, job)
    except Exception as exc:
        raise DataError(f"{path}: cannot decode image ({type(exc).__name__}: {exc})") from exc
    if rule == "8bit":
        return pixels.astype(np.float32) / np.float32(255), fmt
    _check_finite(pixels, str(path))
    label = "float images" if rule == "float" else "16-bit images"
    job.events[f"{label} min-max normalised per image"] += 1
    return _minmax(pixels, job), fmt


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


def _decode_dicom(path: Path, job: _Job) -> tuple[np.ndarray, str]:
    """(H, W, C) float32 in [0, 1] of a DICOM file, and "frame k of n" for multi-frame files."""
    import pydicom

    try:
        dataset = pydicom.dcmread(path, force=True)
    except Exception as exc:
        raise DataError(f"{path}: unreadable DICOM file ({type(exc).__name__}: {exc})") from exc
    if not any(tag in dataset for tag in ("PixelData", "FloatPixelData", "DoubleFloatPixelData")):
        raise DataError(f"{path}: DICOM file has no pixel data (no PixelData element)")
    photometric = str(dataset.get("PhotometricInterpretation", "MONOCHROME2")).strip()
    if photometric == "PALETTE COLOR":
        raise DataError(f"{path}: PALETTE COLOR DICOM is not supported; convert it to RGB first")
    try:
        pixels = dataset.pixel_array
    except Exception as exc:
        syntax = getattr(getattr(dataset, "file_meta", None), "TransferSyntaxUID", "unknown")
        raise DataError(
            f"{path}: cannot decode DICOM pixel data (transfer syntax {syntax}; {type(exc).__name__}: {exc})"
        ) from exc
    samples = int(dataset.get("SamplesPerPixel", 1) or 1)
    if samples not in (1, 3):
        raise DataError(f"{path}: DICOM with {samples} samples per pixel is not supported (expected 1 or 3)")
    frame = ""
    if pixels.ndim == (3 if samples == 1 else 4):
        frame = f"frame {pixels.shape[0] // 2 + 1} of {pixels.shape[0]}"
        pixels = pixels[pixels.shape[0] // 2]
    if pixels.ndim != (2 if samples == 1 else 3):
        raise DataError(f"{path}: unexpected DICOM pixel array shape {pixels.shape}")
    _check_finite(pixels, str(path))
    unit = _dicom_unit(pixels, dataset, samples, job)
    if photometric == "MONOCHROME1":
        unit = 1.0 - unit
        job.events["MONOCHROME1 DICOM inverted so that higher is brighter"] += 1
    return unit.astype(np.float32).reshape(pixels.shape[0], pixels.shape[1], samples), frame


def _dicom_unit(pixels: np.ndarray, dataset, samples: int, job: _Job) -> np.ndarray:
    """DICOM pixels in [0, 1]: rescale, then the BitsStored range (see the module docstring)."""
    if pixels.dtype.kind == "f":
        job.events["float DICOM min-max normalised per image"] += 1
        return _minmax(pixels, job)
    bits = int(dataset.get("BitsStored", 0) or pixels.dtype.itemsize * 8)
    signed = int(dataset.get("PixelRepresentation", 0) or 0) == 1
    low, high = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else (0, (1 << bits) - 1)
    if pixels.min() < low or pixels.max() > high:
        job.events[f"DICOM values outside the {bits}-bit BitsStored range, min-max normalised per image"] += 1
        return _minmax(pixels, job)
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


def _minmax(pixels: np.ndarray, job: _Job) -> np.ndarray:
    """One image stretched to [0, 1]; a constant image maps to 0."""
    values = pixels.astype(np.float64)
    low, high = values.min(), values.max()
    if high == low:
        job.events["constant images (all pixels equal) mapped to -1"] += 1
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


def _count(n: int, singular: str, plural: str | None = None) -> str:
    """'1 image' / '3 images'."""
    return f"{n} {singular if n == 1 else plural or singular + 's'}"


def _fmt_sizes(sizes: Counter) -> str:
    """'64x64: 300, 512x512: 12' (at most six sizes)."""
    common = sizes.most_common()
    text = ", ".join(f"{h}x{w}: {n}" for (h, w), n in common[:6])
    return text + (f", and {len(common) - 6} more sizes" if len(common) > 6 else "")
