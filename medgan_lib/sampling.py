"""Drawing from a trained generator: latent vectors, interpolation, images, nearest real images."""
from __future__ import annotations

from typing import Any

import numpy as np

from .random_streams import stream

GENERATE_BATCH = 64


def latent_batch(seed: int, n: int, latent_dim: int) -> np.ndarray:
    """``n`` latent vectors from N(0, 1), a function of ``seed`` only (stream "evaluation_latents")."""
    return stream(seed, "evaluation_latents").standard_normal((n, latent_dim)).astype(np.float32)


def slerp(z0: np.ndarray, z1: np.ndarray, steps: int) -> tuple[np.ndarray, np.ndarray]:
    """Spherical interpolation between two latent vectors (linear when they are parallel).

    Gaussian latents concentrate near a sphere, so the straight line between two of them passes
    through improbable short vectors; slerp stays at typical norms. Returns (positions, vectors).
    """
    t = np.linspace(0.0, 1.0, steps)
    a, b = np.asarray(z0, np.float64), np.asarray(z1, np.float64)
    cos = np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b))
    omega = np.arccos(np.clip(cos, -1.0, 1.0))
    if np.sin(omega) < 1e-6:
        path = (1 - t)[:, None] * a + t[:, None] * b
    else:
        path = (np.sin((1 - t) * omega)[:, None] * a + np.sin(t * omega)[:, None] * b) / np.sin(omega)
    return t, path.astype(np.float32)


def generate_images(generator: Any, z: np.ndarray, batch_size: int = GENERATE_BATCH) -> np.ndarray:
    """Generator output (float32, [-1, 1]) for latent vectors ``z``, inference mode, in batches."""
    z = np.asarray(z, np.float32)
    return np.concatenate([np.asarray(generator(z[i:i + batch_size], training=False), np.float32)
                           for i in range(0, len(z), batch_size)])


def nearest_images(queries: np.ndarray, pool: np.ndarray, k: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """Indices and RMS pixel distances of the ``k`` nearest ``pool`` images to each query.

    A generated image that sits at distance ~0 from a training image is a memorised copy;
    the distance to the nearest real image also shows how far from the data a sample is.
    """
    q = np.asarray(queries, np.float64).reshape(len(queries), -1)
    p = np.asarray(pool, np.float64).reshape(len(pool), -1)
    squared = (q**2).sum(1)[:, None] + (p**2).sum(1)[None, :] - 2.0 * q @ p.T
    rms = np.sqrt(np.maximum(squared, 0.0) / q.shape[1])
    k = min(k, len(p))
    indices = np.argsort(rms, axis=1, kind="stable")[:, :k]
    return indices, np.take_along_axis(rms, indices, axis=1)


def diversity_rows(samples: dict[int, np.ndarray], real: np.ndarray) -> list[dict[str, Any]]:
    """Per snapshot epoch: the per-pixel standard deviation across the samples (near 0: one image
    for every noise vector) and their mean RMS distance to the nearest ``real`` image; the real
    images' own standard deviation in a last row ("real data")."""
    rows = []
    for epoch, images in samples.items():
        _, distance = nearest_images(images, real, k=1)
        rows.append({"epoch": epoch, "sample_std": round(float(images.std(axis=0).mean()), 4),
                     "nearest_real_rms": round(float(distance.mean()), 4)})
    rows.append({"epoch": "real data", "sample_std": round(float(real.std(axis=0).mean()), 4), "nearest_real_rms": 0.0})
    return rows
