"""The real images a run is judged against: its training images and its held-out images.

Training loads the ``train`` part of the run's data (:func:`training_images`); evaluation compares
generated images with the held-out part (:func:`heldout_images`), which the run never trained on:
for the phantom as many frames of the phantom of the next seed, whatever ``Config.holdout`` is;
for folder / npz / MedMNIST data with ``holdout`` > 0 the held-out share of the files or rows
(:mod:`medgan_lib.holdout`, split seed :data:`SPLIT_SEED`). A run of loaded data with holdout 0 has
no held-out images: evaluation then falls back to the training images and says so loudly.
"""
from __future__ import annotations

from .config import Config
from .data import PHANTOM_HOLDOUT_SEED_OFFSET, ImageSet, load_images

SPLIT_SEED = 0  # the split of folder / npz data is a function of the file or row names and this seed
NO_HELDOUT = "training images (no held-out split)"
NO_HELDOUT_WARNING = (
    "WARNING: this run has no held-out images (its data is not the phantom and it was trained with "
    "holdout 0): the generated images are compared with the TRAINING images, which rewards memorisation. "
    "Train with --holdout 0.2 (or pass --real SPEC with images the run never saw) for an honest evaluation."
)


def is_phantom(config: Config) -> bool:
    """Whether the run's data is the embedded phantom (whose held-out images are another seed)."""
    return config.data.strip().lower().partition(":")[0] == "phantom"


def has_heldout(config: Config) -> bool:
    """Whether the run has held-out images: the phantom always, loaded data with ``holdout`` > 0."""
    return is_phantom(config) or config.holdout > 0


def _part(config: Config, part: str) -> ImageSet:
    return load_images(config.data, config.image_size, config.channels, n_images=config.n_images,
                       seed=config.seed, holdout=config.holdout, part=part, split_seed=SPLIT_SEED)


def training_images(config: Config) -> ImageSet:
    """The images the run trains on: the ``train`` part of its data."""
    return _part(config, "train")


def heldout_images(config: Config) -> ImageSet | None:
    """The run's held-out images (see the module docstring), or None if it has none."""
    return _part(config, "holdout") if has_heldout(config) else None


def given_images(config: Config, spec: str) -> ImageSet:
    """The images of data spec ``spec`` at ``config``'s size and channels: real images a user names
    to compare a run with (``evaluate --real``, ``ablation --real``)."""
    return load_images(spec, config.image_size, config.channels, seed=config.seed)


def split_record(config: Config, training: ImageSet) -> dict:
    """The train / held-out split of a run, for its provenance: fraction, seeds, counts, fingerprint."""
    record = {"fraction": config.holdout, "split_seed": SPLIT_SEED, "train_images": len(training.images),
              "train_fingerprint": training.fingerprint}
    if is_phantom(config):
        return {**record, "unit": "phantom frame", "seed": config.seed,
                "holdout_seed": config.seed + PHANTOM_HOLDOUT_SEED_OFFSET, "holdout_images": len(training.images),
                "note": "the held-out images are as many frames of the phantom of the next seed"}
    if not config.holdout:
        return {**record, "holdout_images": 0, "note": NO_HELDOUT}
    split = training.split or {}
    return {**record, **{key: split[key] for key in ("unit", "found", "train", "holdout", "part_sha256") if key in split}}
