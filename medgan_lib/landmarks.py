"""Landmarks as image channels: one Gaussian heatmap per landmark, and the rule that reads them back.

Encoding (:func:`encode_heatmaps`): landmark ``k`` at pixel ``(x, y)`` (``(0, 0)`` the centre of
the top-left pixel, as :mod:`medgan_lib.phantom` returns them) becomes channel ``k`` holding
``exp(-d^2 / (2 sigma^2))``, ``d`` the distance of each pixel centre to the landmark, with
``sigma = DEFAULT_SIGMA`` (1.5 px) unless given. An absent landmark (the phantom's
``valve_center`` without a valve, or a point outside the frame) is an all-zero channel, so
presence is carried by the heatmap itself. Heatmaps live in [0, 1]; :func:`to_signed` /
:func:`to_unit` map them to and from the generator's tanh range [-1, 1] (background -1, peak 1).

Decoding (:func:`decode_heatmaps`), one stated rule for the ground truth, the tracker's output
and generated channels:

* presence: the channel's maximum (in [0, 1]) is above ``threshold`` (``DEFAULT_THRESHOLD``, 0.5);
* position: the argmax pixel, refined per axis by the parabola through the log-heatmap at the
  argmax and its two neighbours (the three-point window is shifted inward at the image border).
  The log of a Gaussian is a parabola, so an encoded heatmap decodes exactly wherever its
  landmark lies in the frame; values are clipped at ``LOG_FLOOR`` before the log and the offset
  is clamped to one pixel, so noisy generated heatmaps fall back towards the argmax.
"""
from __future__ import annotations

import numpy as np

from typing import TYPE_CHECKING

from .phantom import LANDMARK_NAMES

if TYPE_CHECKING:
    from .config import Config
    from .data import ImageSet

DEFAULT_SIGMA = 1.5  # pixels, at every image size
DEFAULT_THRESHOLD = 0.5  # presence: heatmap peak above this, in [0, 1] units
LOG_FLOOR = 1e-4
LABELLED_DISCRIMINATORS = ("dcgan", "conv")  # the paper's and the projected D feed a 1- or 3-channel backbone


def encode_heatmaps(xy: np.ndarray, present: np.ndarray, size: int, sigma: float = DEFAULT_SIGMA) -> np.ndarray:
    """Heatmaps (n, size, size, k) float32 in [0, 1] of landmarks ``xy`` (n, k, 2) where ``present`` (n, k).

    Landmarks marked present but lying outside the frame (beyond half a pixel of its border), or
    with NaN coordinates, are encoded as absent.
    """
    xy = np.asarray(xy, np.float64)
    present = visible(xy, present, size)
    if sigma <= 0:
        raise ValueError(f"sigma must be positive, got {sigma}")
    grid = np.arange(size, dtype=np.float64)
    safe = np.where(present[..., None], xy, 0.0)
    gx = np.exp(-((grid[None, None, :] - safe[..., 0:1]) ** 2) / (2 * sigma**2))  # (n, k, size)
    gy = np.exp(-((grid[None, None, :] - safe[..., 1:2]) ** 2) / (2 * sigma**2))
    maps = gy[..., :, None] * gx[..., None, :] * present[..., None, None]  # (n, k, y, x)
    return np.ascontiguousarray(maps.transpose(0, 2, 3, 1), dtype=np.float32)


def visible(xy: np.ndarray, present: np.ndarray, size: int) -> np.ndarray:
    """``present`` and finite and inside the frame ([-0.5, size - 0.5] on both axes), (n, k) bool."""
    xy = np.asarray(xy, np.float64)
    present = np.asarray(present, bool)
    if xy.ndim != 3 or xy.shape[-1] != 2 or present.shape != xy.shape[:2]:
        raise ValueError(f"expected xy (n, k, 2) and present (n, k), got {xy.shape} and {present.shape}")
    with np.errstate(invalid="ignore"):
        inside = np.all((xy >= -0.5) & (xy <= size - 0.5), axis=-1)
    return present & inside


def decode_heatmaps(heatmaps: np.ndarray, threshold: float = DEFAULT_THRESHOLD) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Read landmarks from heatmaps (n, h, w, k) in [0, 1]: (xy (n, k, 2), present (n, k), peak (n, k)).

    Coordinates are returned for every channel (also where absent, for inspection); see the
    module docstring for the rule.
    """
    maps = np.asarray(heatmaps, np.float64)
    if maps.ndim != 4:
        raise ValueError(f"expected heatmaps (n, h, w, k), got shape {maps.shape}")
    n, h, w, k = maps.shape
    if h < 3 or w < 3:
        raise ValueError(f"heatmaps must be at least 3x3, got {h}x{w}")
    flat = maps.transpose(0, 3, 1, 2).reshape(n, k, h * w)
    best = flat.argmax(axis=-1)
    peak = np.take_along_axis(flat, best[..., None], axis=-1)[..., 0]
    row, col = np.divmod(best, w)
    planes = maps.transpose(0, 3, 1, 2)  # (n, k, h, w)
    ii, kk = np.meshgrid(np.arange(n), np.arange(k), indexing="ij")
    x = _refine(planes[ii, kk, row, :], col)
    y = _refine(planes[ii, kk, :, col], row)
    return np.stack([x, y], axis=-1).astype(np.float32), peak > threshold, peak.astype(np.float32)


def _refine(lines: np.ndarray, index: np.ndarray) -> np.ndarray:
    """Sub-pixel maximum of ``lines`` (..., length) near ``index`` (...): parabola through the log at 3 points."""
    length = lines.shape[-1]
    centre = np.clip(index, 1, length - 2)
    taken = np.take_along_axis(lines, np.stack([centre - 1, centre, centre + 1], axis=-1), axis=-1)
    a, b, c = np.moveaxis(np.log(np.maximum(taken, LOG_FLOOR)), -1, 0)
    curvature = a - 2 * b + c
    with np.errstate(divide="ignore", invalid="ignore"):
        vertex = np.where(curvature < 0, 0.5 * (a - c) / curvature, 0.0)
    offset = np.clip(centre + vertex - index, -1.0, 1.0)
    return index + offset


def to_signed(unit: np.ndarray) -> np.ndarray:
    """[0, 1] heatmaps to the generator's [-1, 1] range."""
    return np.asarray(unit, np.float32) * np.float32(2) - np.float32(1)


def to_unit(signed: np.ndarray) -> np.ndarray:
    """[-1, 1] heatmaps (e.g. generated channels) back to [0, 1], clipped."""
    return np.clip((np.asarray(signed, np.float32) + 1) / 2, 0.0, 1.0)


def stack_landmarks(landmarks: dict[str, np.ndarray], names: tuple[str, ...] = LANDMARK_NAMES) -> tuple[np.ndarray, np.ndarray]:
    """A phantom's ``{name: (n, 2) with NaN where absent}`` as (xy (n, k, 2) float32, present (n, k) bool)."""
    missing = [name for name in names if name not in landmarks]
    if missing:
        raise ValueError(f"landmarks missing: {missing}; have {sorted(landmarks)}")
    xy = np.stack([np.asarray(landmarks[name], np.float32) for name in names], axis=1)
    return xy, ~np.isnan(xy).any(axis=-1)


def unstack_landmarks(xy: np.ndarray, present: np.ndarray, names: tuple[str, ...] = LANDMARK_NAMES) -> dict[str, np.ndarray]:
    """Inverse of :func:`stack_landmarks`: absent points become NaN."""
    xy = np.where(np.asarray(present, bool)[..., None], np.asarray(xy, np.float32), np.nan)
    return {name: xy[:, i].astype(np.float32) for i, name in enumerate(names)}


def phantom_heatmap_channels(metadata: dict, size: int, sigma: float = DEFAULT_SIGMA) -> np.ndarray:
    """Heatmap channels (n, size, size, k) in [-1, 1] from a phantom ImageSet's ``metadata["landmarks"]``.

    Raises ValueError for data without landmarks (only the phantom carries them).
    """
    if "landmarks" not in metadata:
        raise ValueError("these images carry no landmarks (only the phantom data source does); "
                         "labelled training needs data: phantom")
    xy, present = stack_landmarks({name: np.asarray(v, np.float32).reshape(-1, 2)
                                   for name, v in metadata["landmarks"].items()})
    return to_signed(encode_heatmaps(xy, present, size, sigma))


def training_arrays(images: ImageSet, config: Config) -> np.ndarray:
    """What a GAN of ``config`` trains on: the images, or with ``landmark_heatmaps`` the images
    followed by their landmarks' heatmap channels in [-1, 1] (phantom data only)."""
    if not config.landmark_heatmaps:
        return images.images
    if config.discriminator not in LABELLED_DISCRIMINATORS:
        raise ValueError(f"landmark_heatmaps needs a discriminator that takes any channel count "
                         f"({', '.join(LABELLED_DISCRIMINATORS)}), got {config.discriminator!r}")
    heatmaps = phantom_heatmap_channels(images.metadata, config.image_size)
    return np.concatenate([images.images, heatmaps], axis=-1)


def split_labelled_output(output: np.ndarray, channels: int,
                          threshold: float = DEFAULT_THRESHOLD) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A labelled generator's output (n, s, s, channels + k) in [-1, 1] as (images in [-1, 1],
    landmark xy (n, k, 2), present (n, k)), the landmarks read by :func:`decode_heatmaps`."""
    output = np.asarray(output, np.float32)
    xy, present, _ = decode_heatmaps(to_unit(output[..., channels:]), threshold)
    return output[..., :channels], xy, present


def landmark_columns(xy: np.ndarray, present: np.ndarray, names: tuple[str, ...] = LANDMARK_NAMES) -> list[dict[str, str]]:
    """Per frame: ``{name}_x``, ``{name}_y`` (pixels, 3 decimals; empty where absent) and ``{name}_present`` (0/1)."""
    rows = []
    for frame_xy, frame_present in zip(np.asarray(xy), np.asarray(present, bool)):
        row: dict[str, str] = {}
        for name, (x, y), here in zip(names, frame_xy, frame_present):
            row.update({f"{name}_x": f"{x:.3f}" if here else "", f"{name}_y": f"{y:.3f}" if here else "",
                        f"{name}_present": str(int(here))})
        rows.append(row)
    return rows


def decoding_rule() -> str:
    """How landmarks are read from heatmap channels, for files that carry them."""
    return (f"pixel (x, y), (0, 0) the centre of the top-left pixel; from the generated heatmap channel of each "
            f"landmark (Gaussian, sigma {DEFAULT_SIGMA} px, [-1, 1] mapped to [0, 1]): present if its maximum "
            f"exceeds {DEFAULT_THRESHOLD}, position = argmax refined by a parabola through the log-heatmap "
            "at the argmax and its two neighbours per axis")
