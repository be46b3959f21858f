"""Figures: sample grids of generated or real images."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from PIL import Image


def to_uint8(images: np.ndarray) -> np.ndarray:
    """Images in [-1, 1] to uint8 [0, 255]."""
    return np.clip(np.rint((np.asarray(images, np.float32) + 1.0) * 127.5), 0, 255).astype(np.uint8)


def image_grid(images: np.ndarray, columns: int | None = None, gap: int = 2) -> np.ndarray:
    """Tile ``(N, H, W, C)`` images in [-1, 1] into one uint8 ``(rows*H, columns*W, C)`` array."""
    images = to_uint8(images)
    n, h, w, c = images.shape
    columns = columns or math.ceil(math.sqrt(n))
    rows = math.ceil(n / columns)
    grid = np.full((rows * (h + gap) - gap, columns * (w + gap) - gap, c), 255, np.uint8)
    for i, image in enumerate(images):
        r, col = divmod(i, columns)
        grid[r * (h + gap): r * (h + gap) + h, col * (w + gap): col * (w + gap) + w] = image
    return grid


def save_sample_grid(images: np.ndarray, path: str | Path, columns: int | None = None) -> Path:
    """Save a grid of images in [-1, 1] as a PNG (grayscale when single-channel)."""
    grid = image_grid(images, columns)
    Image.fromarray(grid[..., 0] if grid.shape[-1] == 1 else grid).save(path)
    return Path(path)
