"""Deterministic train / held-out splits of a dataset, for evaluation on images a run never saw.

An item (a file of a folder, a row of an npz array) is held out by rank: every item gets the
sha256 of (split seed, its key), where the key is its relative path or ``array[row]``, and the
``holdout_count`` items with the smallest hashes are the held-out part. The split is therefore a
function of the keys and the seed only, not of load order, image content, ``n_images`` or the
training seed: the same folder gives the same split in every run and on resume, and the two parts
are disjoint by construction. Adding or removing one file moves at most one other file across.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Sequence

import numpy as np

PARTS = ("train", "holdout")


@dataclass(frozen=True)
class Split:
    """Which part of a train / held-out split to load: ``fraction`` held out, ranked with ``seed``."""

    fraction: float
    seed: int = 0
    part: str = "train"

    def __post_init__(self) -> None:
        if not 0.0 < self.fraction < 1.0:
            raise ValueError(f"holdout must be a fraction between 0 and 1 (exclusive), got {self.fraction}")
        if self.part not in PARTS:
            raise ValueError(f"part must be one of {PARTS}, got {self.part!r}")


def holdout_count(n: int, fraction: float) -> int:
    """Items held out of ``n``: round(fraction * n), at least 1; ValueError if none would be left to train on."""
    count = max(1, round(fraction * n))
    if count >= n:
        raise ValueError(f"holdout {fraction} of {n} items holds out {count}, leaving none to train on")
    return count


def holdout_mask(keys: Sequence[str], fraction: float, seed: int) -> np.ndarray:
    """Boolean mask over ``keys``: True for the held-out items (the smallest sha256(seed, key) ranks)."""
    ranks = sorted(range(len(keys)), key=lambda index: _digest(seed, keys[index]))
    mask = np.zeros(len(keys), bool)
    mask[ranks[: holdout_count(len(keys), fraction)]] = True
    return mask


def keys_digest(keys: Sequence[str]) -> str:
    """sha256 hex of the keys in order, one per line: a short record of exactly which items a part has."""
    return hashlib.sha256("\n".join(keys).encode()).hexdigest()


def _digest(seed: int, key: str) -> bytes:
    return hashlib.sha256(f"{seed}\0{key}".encode()).digest()
