"""Offline image-quality metrics for generated images (small composable functions, TF-GAN style).

Images are numpy float32 ``(N, H, W, C)`` in [-1, 1] with C = 1 or 3. Every function is
deterministic for a given ``seed``.

Feature-space distances (work on features from any extractor):

* :func:`frechet_distance` -- FID when the features are Inception pool features;
* :func:`kernel_inception_distance` -- KID: unbiased MMD^2 with the cubic polynomial kernel,
  mean and std over random subsets.

Inception features (:func:`inception_features`) use the Keras ``InceptionV3`` ImageNet weights
found by :func:`medgan_lib.pretrained.resolve_imagenet_weights`; without them it raises
:class:`~medgan_lib.pretrained.WeightsUnavailable`. These are NOT the TF1 "pool_3" graph of the
original FID code (pytorch-fid / TF-GAN use that), and images are resized bilinearly from small
sizes, so our FID/KID values are only comparable with each other, not with published numbers.

Weight-free metrics (always available):

* :func:`sliced_wasserstein_distance` -- SWD on Laplacian-pyramid 7x7 patches (ProGAN);
* :func:`ms_ssim_diversity` -- mean MS-SSIM over random pairs (lower = more diverse);
* :func:`precision_recall` -- improved precision/recall (Kynkaanniemi et al. 2019) on any
  features, by default :func:`pixel_features`;
* :func:`nearest_training_neighbours` / :func:`memorisation_rate` -- Pearson correlation of each
  generated image with its closest training image.

:func:`evaluate_images` bundles them and states the sample counts next to every number.
"""

from __future__ import annotations

import logging
import math
from typing import Any

import numpy as np
import tensorflow as tf

from medgan_lib.pretrained import WeightsUnavailable, resolve_imagenet_weights

log = logging.getLogger("medgan")

# MS-SSIM weights of Wang, Simoncelli & Bovik (2003), finest scale first (tf.image default).
MS_SSIM_POWER_FACTORS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)
SWD_MIN_RESOLUTION = 16  # ProGAN: pyramid levels down to 16 px
SWD_PATCH = 7  # ProGAN neighbourhood size
NEAR_DUPLICATE_THRESHOLD = 0.95
INCEPTION_SIZE = 299
PIXEL_FEATURES_DESCRIPTION = "pixels: area-resized to {s}x{s}, flattened, standardised per image"

__all__ = [
    "frechet_distance",
    "kernel_inception_distance",
    "inception_features",
    "sliced_wasserstein_distance",
    "swd_resolutions",
    "ms_ssim_settings",
    "ms_ssim_diversity",
    "pixel_features",
    "precision_recall",
    "nearest_training_neighbours",
    "memorisation_rate",
    "closest_pairs",
    "nearest_images",
    "evaluate_images",
]


def _check_images(images: np.ndarray, name: str = "images") -> np.ndarray:
    """Return images as float32 (N, H, W, C) with C in (1, 3); raise ValueError otherwise."""
    array = np.asarray(images, dtype=np.float32)
    if array.ndim != 4 or array.shape[-1] not in (1, 3):
        raise ValueError(f"{name} must be (N, H, W, C) with C = 1 or 3, got shape {array.shape}")
    if len(array) == 0:
        raise ValueError(f"{name} is empty")
    if not np.isfinite(array).all():
        raise ValueError(f"{name} contains NaN or inf")
    return array


def _check_features(features: np.ndarray, name: str, min_rows: int = 2) -> np.ndarray:
    """Return features as float64 (N, D) with at least ``min_rows`` rows."""
    array = np.asarray(features, dtype=np.float64)
    if array.ndim != 2 or len(array) < min_rows:
        raise ValueError(f"{name} must be (N >= {min_rows}, D), got shape {array.shape}")
    if not np.isfinite(array).all():
        raise ValueError(f"{name} contains NaN or inf")
    return array


# ----------------------------------------------------------------------------- FID / KID


def _psd_eigenvalues(values: np.ndarray) -> np.ndarray:
    """Eigenvalues of a symmetric PSD matrix with round-off noise (|v| <= d * eps * max) -> 0."""
    tolerance = np.abs(values).max(initial=0.0) * len(values) * np.finfo(np.float64).eps
    return np.where(values > tolerance, values, 0.0)


def _sqrt_psd(matrix: np.ndarray) -> np.ndarray:
    """Symmetric square root of a symmetric PSD matrix via its eigen-decomposition."""
    values, vectors = np.linalg.eigh((matrix + matrix.T) / 2)
    return (vectors * np.sqrt(_psd_eigenvalues(values))) @ vectors.T


def frechet_distance(features_a: np.ndarray, features_b: np.ndarray) -> float:
    """Frechet distance between Gaussians fitted to two feature sets (FID on Inception features).

    ``|mu_a - mu_b|^2 + tr(S_a) + tr(S_b) - 2 tr((S_a S_b)^(1/2))`` with unbiased covariances.
    The trace term is computed as the sum of square roots of the eigenvalues of the symmetric
    PSD matrix ``S_a^(1/2) S_b S_a^(1/2)`` (same spectrum as ``S_a S_b``), which stays real and
    stable when the covariances are rank-deficient (fewer samples than dimensions): eigenvalues
    below ``d * eps * max`` are round-off of exact zeros and are set to 0 before the square root
    (otherwise each would add ~sqrt(eps) to the trace). Round-off below 0 is reported as 0.
    """
    a = _check_features(features_a, "features_a")
    b = _check_features(features_b, "features_b")
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"feature dimensions differ: {a.shape[1]} vs {b.shape[1]}")
    mu_a, mu_b = a.mean(axis=0), b.mean(axis=0)
    cov_a = np.atleast_2d(np.cov(a, rowvar=False))
    cov_b = np.atleast_2d(np.cov(b, rowvar=False))
    root_a = _sqrt_psd(cov_a)
    product = root_a @ cov_b @ root_a
    eigenvalues = _psd_eigenvalues(np.linalg.eigvalsh((product + product.T) / 2))
    trace_sqrt = float(np.sqrt(eigenvalues).sum())
    value = float(np.sum((mu_a - mu_b) ** 2) + np.trace(cov_a) + np.trace(cov_b) - 2 * trace_sqrt)
    return max(value, 0.0)


def _polynomial_kernel(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """k(x, y) = (x . y / d + 1)^3."""
    return (x @ y.T / x.shape[1] + 1.0) ** 3


def kernel_inception_distance(
    features_a: np.ndarray,
    features_b: np.ndarray,
    subset_size: int = 1000,
    n_subsets: int = 100,
    seed: int = 0,
) -> tuple[float, float]:
    """KID: unbiased MMD^2 with the cubic polynomial kernel, as (mean, std) over random subsets.

    Each subset draws ``min(subset_size, len(a), len(b))`` rows without replacement from each
    set (Binkowski et al. 2018; TF-GAN / clean-fid use 1000 and 100). If the subset size equals
    both set sizes every subset is identical and the std is 0: it then says nothing about
    sampling noise.
    """
    a = _check_features(features_a, "features_a")
    b = _check_features(features_b, "features_b")
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"feature dimensions differ: {a.shape[1]} vs {b.shape[1]}")
    if n_subsets < 1:
        raise ValueError(f"n_subsets must be >= 1, got {n_subsets}")
    m = min(int(subset_size), len(a), len(b))
    if m < 2:
        raise ValueError(f"subset_size must be >= 2, got {subset_size}")
    rng = np.random.default_rng(seed)
    values = np.empty(n_subsets)
    off_diagonal = m * (m - 1)
    for i in range(n_subsets):
        x = a[rng.choice(len(a), m, replace=False)]
        y = b[rng.choice(len(b), m, replace=False)]
        k_xx, k_yy, k_xy = _polynomial_kernel(x, x), _polynomial_kernel(y, y), _polynomial_kernel(x, y)
        values[i] = ((k_xx.sum() - np.trace(k_xx)) / off_diagonal
                     + (k_yy.sum() - np.trace(k_yy)) / off_diagonal
                     - 2.0 * k_xy.mean())
    return float(values.mean()), float(values.std())


# ----------------------------------------------------------------------------- Inception

_INCEPTION_MODELS: dict[str, tf.keras.Model] = {}


def _inception_model(weights_path: str) -> tf.keras.Model:
    """Keras InceptionV3(include_top=False, pooling="avg") at 299x299, cached per weight file."""
    if weights_path not in _INCEPTION_MODELS:
        _INCEPTION_MODELS[weights_path] = tf.keras.applications.InceptionV3(
            include_top=False, pooling="avg", weights=weights_path,
            input_shape=(INCEPTION_SIZE, INCEPTION_SIZE, 3),
        )
    return _INCEPTION_MODELS[weights_path]


def inception_features(
    images: np.ndarray,
    batch_size: int = 32,
    allow_download: bool = False,
    weights_path: str | None = None,
) -> np.ndarray:
    """2048-d InceptionV3 pool features (float64 (N, 2048)) of images in [-1, 1].

    Grey images are replicated to RGB, resized bilinearly to 299x299, mapped to [0, 255] and
    passed through ``inception_v3.preprocess_input``. Weights come from
    ``resolve_imagenet_weights("InceptionV3", None, allow_download, weights_path)``; raises
    WeightsUnavailable (checked before anything is built) when they cannot be found.
    """
    source = resolve_imagenet_weights("InceptionV3", None, allow_download=allow_download,
                                      user_path=weights_path)
    array = _check_images(images)
    model = _inception_model(source.path)
    preprocess = tf.keras.applications.inception_v3.preprocess_input
    out = []
    for start in range(0, len(array), batch_size):
        x = tf.convert_to_tensor(array[start:start + batch_size])
        if x.shape[-1] == 1:
            x = tf.repeat(x, 3, axis=-1)
        x = tf.image.resize(x, (INCEPTION_SIZE, INCEPTION_SIZE), method="bilinear")
        x = preprocess((x + 1.0) * 127.5)
        out.append(model(x, training=False).numpy())
    return np.concatenate(out).astype(np.float64)


# ----------------------------------------------------------------------------- SWD

_BINOMIAL = np.array([1.0, 4.0, 6.0, 4.0, 1.0], np.float32) / 16.0  # ProGAN's 5x5 = outer(b, b)


def _blur(x: np.ndarray) -> np.ndarray:
    """Separable 5x5 binomial blur of (N, C, H, W) with mirror padding (scipy mode='mirror')."""
    pad = np.pad(x, ((0, 0), (0, 0), (2, 2), (0, 0)), mode="reflect")
    h = x.shape[2]
    x = sum(w * pad[:, :, k:k + h, :] for k, w in enumerate(_BINOMIAL))
    pad = np.pad(x, ((0, 0), (0, 0), (0, 0), (2, 2)), mode="reflect")
    w_ = x.shape[3]
    return sum(w * pad[:, :, :, k:k + w_] for k, w in enumerate(_BINOMIAL)).astype(np.float32)


def _pyr_down(x: np.ndarray) -> np.ndarray:
    """Blur and keep every second pixel (cv2.pyrDown); odd sizes round up."""
    return _blur(x)[:, :, ::2, ::2]


def _pyr_up(x: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Zero-insert, blur with gain 4 (cv2.pyrUp), crop to ``shape``."""
    n, c, h, w = x.shape
    up = np.zeros((n, c, 2 * h, 2 * w), np.float32)
    up[:, :, ::2, ::2] = x
    return 4.0 * _blur(up)[:, :, :shape[0], :shape[1]]


def _laplacian_pyramid(x: np.ndarray, levels: int) -> list[np.ndarray]:
    """Band-pass levels, finest first; the last level is the coarsest Gaussian level."""
    pyramid = [x]
    for _ in range(1, levels):
        pyramid.append(_pyr_down(pyramid[-1]))
        pyramid[-2] = pyramid[-2] - _pyr_up(pyramid[-1], pyramid[-2].shape[2:])
    return pyramid


def swd_resolutions(size: int) -> list[int]:
    """Pyramid level sizes: halve while the result is >= 16 px (64 -> [64, 32, 16], 28 -> [28])."""
    if size < SWD_PATCH:
        raise ValueError(f"images must be at least {SWD_PATCH} px for 7x7 patches, got {size}")
    sizes = [size]
    while (sizes[-1] + 1) // 2 >= SWD_MIN_RESOLUTION:
        sizes.append((sizes[-1] + 1) // 2)
    return sizes


def _patches(level: np.ndarray, count: int, rng: np.random.Generator) -> np.ndarray:
    """``count`` random 7x7 patches (count, C, 7, 7), spread evenly over the images."""
    n, c, h, w = level.shape
    image = rng.permutation(np.arange(count) % n)
    top = rng.integers(0, h - SWD_PATCH + 1, count)
    left = rng.integers(0, w - SWD_PATCH + 1, count)
    offsets = np.arange(SWD_PATCH)
    return level[image[:, None, None, None], np.arange(c)[None, :, None, None],
                 (top[:, None] + offsets)[:, None, :, None],
                 (left[:, None] + offsets)[:, None, None, :]]


def _normalise(desc: np.ndarray, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    """(count, C, 7, 7) -> (count, C*49) after per-channel standardisation."""
    return ((desc - mean) / np.maximum(std, 1e-8)).reshape(len(desc), -1)


def _sliced_wasserstein(a: np.ndarray, b: np.ndarray, repeats: int, directions: int,
                        rng: np.random.Generator) -> float:
    """Mean over random unit directions of the 1-D Wasserstein-1 distance of the projections."""
    results = []
    for _ in range(repeats):
        dirs = rng.standard_normal((a.shape[1], directions)).astype(np.float32)
        dirs /= np.linalg.norm(dirs, axis=0, keepdims=True)
        proj_a = np.sort(dirs.T @ a.T, axis=1)  # (direction, patch): contiguous rows sort fast
        proj_b = np.sort(dirs.T @ b.T, axis=1)
        results.append(float(np.mean(np.abs(proj_a - proj_b))))
    return float(np.mean(results))


def sliced_wasserstein_distance(
    real: np.ndarray,
    fake: np.ndarray,
    patches_per_image: int = 128,
    dir_repeats: int = 4,
    dirs_per_repeat: int = 128,
    normalise: str = "real",
    seed: int = 0,
) -> dict[str, Any]:
    """Sliced Wasserstein distance on Laplacian-pyramid patches (Karras et al. 2018, ProGAN).

    Per pyramid level (sizes from :func:`swd_resolutions`: 5x5 binomial pyramid, levels down to
    16 px, the coarsest being the low-pass image) both sets give
    ``patches_per_image * min(n_real, n_fake)`` random 7x7xC patch descriptors, standardised per
    channel; ``dir_repeats * dirs_per_repeat`` random unit directions project them and the
    sorted 1-D projections give the Wasserstein-1 distance. Values are multiplied by 1e3 as in
    ProGAN. ``normalise="real"`` (default) standardises both sets with the REAL descriptors'
    mean/std of that level, so global brightness/contrast errors count; ``"each"`` is ProGAN's
    exact choice (each set by its own statistics), blind to a per-level affine intensity change.
    The value is a biased estimate: two samples of one distribution give a floor that grows as
    the sample shrinks (32 px phantom: ~28 at 200 vs 200 images, 128 patches each), so compare
    SWDs only at equal image counts and patch settings.

    Returns ``{"value": mean over levels, "per_level": [...], "resolutions": [...],
    "n_real", "n_fake", "patches_per_set", "unit": "x1e3"}``.
    """
    real = _check_images(real, "real")
    fake = _check_images(fake, "fake")
    if real.shape[1:] != fake.shape[1:]:
        raise ValueError(f"real and fake shapes differ: {real.shape[1:]} vs {fake.shape[1:]}")
    if normalise not in ("real", "each"):
        raise ValueError(f"normalise must be 'real' or 'each', got {normalise!r}")
    resolutions = swd_resolutions(min(real.shape[1:3]))
    count = patches_per_image * min(len(real), len(fake))
    pyramids = [_laplacian_pyramid(np.transpose(x, (0, 3, 1, 2)).copy(), len(resolutions))
                for x in (real, fake)]
    per_level = []
    for level, (lr, lf) in enumerate(zip(*pyramids)):
        d_real = _patches(lr, count, np.random.default_rng([seed, level, 0]))
        d_fake = _patches(lf, count, np.random.default_rng([seed, level, 1]))
        stats = [(d.mean(axis=(0, 2, 3), keepdims=True), d.std(axis=(0, 2, 3), keepdims=True))
                 for d in (d_real, d_fake)]
        fake_stats = stats[0] if normalise == "real" else stats[1]
        a = _normalise(d_real, *stats[0])
        b = _normalise(d_fake, *fake_stats)
        dist = _sliced_wasserstein(a, b, dir_repeats, dirs_per_repeat,
                                   np.random.default_rng([seed, level, 2]))
        per_level.append(dist * 1e3)
    return {
        "value": float(np.mean(per_level)),
        "per_level": per_level,
        "resolutions": resolutions,
        "n_real": len(real),
        "n_fake": len(fake),
        "patches_per_set": count,
        "normalise": normalise,
        "unit": "x1e3",
    }


# ----------------------------------------------------------------------------- MS-SSIM


def ms_ssim_settings(size: int) -> dict[str, Any]:
    """Scales, filter size and power factors of :func:`ms_ssim_diversity` for ``size`` px images.

    The standard setting (5 scales, 11x11 Gaussian window, sigma 1.5) needs the coarsest scale
    (size / 16) to be >= 11 px, i.e. >= 176 px images. Smaller images use a 7x7 window and the
    largest number of scales (<= 5) whose coarsest scale is still >= 7 px: 28 px -> 3 scales
    (28, 14, 7), 32 -> 3, 64 -> 4 (64, 32, 16, 8), 128 -> 5. The power factors are the first
    weights of the standard five, renormalised to sum to 1.
    """
    filter_size = 11 if size >= 11 * 16 else 7
    scales, current = 1, size
    while scales < len(MS_SSIM_POWER_FACTORS) and math.ceil(current / 2) >= filter_size:
        scales += 1
        current = math.ceil(current / 2)
    if size < filter_size:
        raise ValueError(f"MS-SSIM needs images of at least {filter_size} px, got {size}")
    weights = np.array(MS_SSIM_POWER_FACTORS[:scales])
    return {"scales": scales, "filter_size": filter_size, "filter_sigma": 1.5,
            "power_factors": tuple(float(w) for w in weights / weights.sum())}


def ms_ssim_diversity(
    images: np.ndarray, n_pairs: int = 1000, seed: int = 0, batch_size: int = 256
) -> dict[str, Any]:
    """Mean MS-SSIM over ``n_pairs`` random pairs of distinct images (lower = more diverse).

    Pairs are (i, j) with i uniform and j uniform among the other images (drawn with
    replacement across pairs). ``tf.image.ssim_multiscale`` with max_val 2 (range [-1, 1]) and
    the settings of :func:`ms_ssim_settings`. Compare with the value of the real set: a
    generator as diverse as the data gives about the same number; near 1 means mode collapse.
    """
    array = _check_images(images)
    n = len(array)
    if n < 2 or n_pairs < 1:
        raise ValueError(f"ms_ssim_diversity needs >= 2 images and n_pairs >= 1, got {n}, {n_pairs}")
    settings = ms_ssim_settings(min(array.shape[1:3]))
    rng = np.random.default_rng(seed)
    first = rng.integers(0, n, n_pairs)
    second = (first + rng.integers(1, n, n_pairs)) % n
    scores = []
    for start in range(0, n_pairs, batch_size):
        i, j = first[start:start + batch_size], second[start:start + batch_size]
        scores.append(tf.image.ssim_multiscale(
            tf.constant(array[i]), tf.constant(array[j]), max_val=2.0,
            power_factors=settings["power_factors"], filter_size=settings["filter_size"],
            filter_sigma=settings["filter_sigma"]).numpy())
    values = np.concatenate(scores).astype(np.float64)
    return {"value": float(values.mean()), "std": float(values.std()), "n_pairs": int(n_pairs),
            "n_images": n, **settings}


# ----------------------------------------------------------------------------- precision / recall


def pixel_features(images: np.ndarray, size: int = 16, standardise: bool = True) -> np.ndarray:
    """Weight-free features: images area-resized to ``size`` x ``size``, flattened, and (default)
    standardised per image to zero mean and unit std.

    Per-image standardisation makes Euclidean distance a monotone function of the Pearson
    correlation (``|a - b|^2 = 2 D (1 - r)``) and needs no statistics of any data set, so real
    and generated features are comparable; it ignores each image's global brightness and
    contrast (SWD with ``normalise="real"`` sees those). Constant images map to zeros.
    """
    array = _check_images(images)
    small = tf.image.resize(array, (size, size), method="area").numpy()
    flat = small.reshape(len(small), -1).astype(np.float64)
    if standardise:
        flat = flat - flat.mean(axis=1, keepdims=True)
        flat /= np.maximum(flat.std(axis=1, keepdims=True), 1e-8)
    return flat


def _squared_distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise squared Euclidean distances (len(a), len(b)), clipped at 0."""
    d = (a * a).sum(axis=1)[:, None] + (b * b).sum(axis=1)[None, :] - 2.0 * a @ b.T
    return np.maximum(d, 0.0)


def _knn_radii(features: np.ndarray, k: int, chunk: int) -> np.ndarray:
    """Squared distance of each row to its k-th nearest other row."""
    radii = np.empty(len(features))
    for start in range(0, len(features), chunk):
        d = _squared_distances(features[start:start + chunk], features)
        radii[start:start + chunk] = np.partition(d, k, axis=1)[:, k]  # index 0 is the row itself
    return radii


def _coverage(query: np.ndarray, reference: np.ndarray, radii: np.ndarray, chunk: int) -> float:
    """Share of query rows inside at least one reference k-NN ball."""
    inside = 0
    for start in range(0, len(query), chunk):
        d = _squared_distances(query[start:start + chunk], reference)
        inside += int(np.any(d <= radii[None, :], axis=1).sum())
    return inside / len(query)


def precision_recall(
    real_features: np.ndarray, fake_features: np.ndarray, k: int = 3, chunk: int = 1024
) -> dict[str, Any]:
    """Improved precision and recall (Kynkaanniemi et al. 2019) with k-NN manifolds.

    Each set's manifold is the union of balls around its points with radius the distance to
    the k-th nearest neighbour in the same set. Precision = share of fake points inside the real
    manifold (fidelity); recall = share of real points inside the fake manifold (coverage).
    Works on any features, e.g. :func:`pixel_features` or :func:`inception_features`.
    """
    real = _check_features(real_features, "real_features", k + 1)
    fake = _check_features(fake_features, "fake_features", k + 1)
    if real.shape[1] != fake.shape[1]:
        raise ValueError(f"feature dimensions differ: {real.shape[1]} vs {fake.shape[1]}")
    precision = _coverage(fake, real, _knn_radii(real, k, chunk), chunk)
    recall = _coverage(real, fake, _knn_radii(fake, k, chunk), chunk)
    return {"precision": precision, "recall": recall, "k": k,
            "n_real": len(real), "n_fake": len(fake)}


# ----------------------------------------------------------------------------- memorisation


def _unit_rows(images: np.ndarray) -> np.ndarray:
    """Flattened images, centred and scaled to unit norm (float32); constant images -> zeros."""
    flat = images.reshape(len(images), -1).astype(np.float64)
    flat -= flat.mean(axis=1, keepdims=True)
    flat /= np.maximum(np.linalg.norm(flat, axis=1, keepdims=True), 1e-12)
    return flat.astype(np.float32)


def nearest_training_neighbours(
    generated: np.ndarray, training: np.ndarray, chunk: int = 256
) -> tuple[np.ndarray, np.ndarray]:
    """For each generated image, the index of the training image with the highest Pearson
    correlation over all pixels, and that correlation (float64 in [-1, 1]).

    Computed as products of centred unit-norm pixel vectors, ``chunk`` generated images at a
    time. 1.0 = identical up to brightness and contrast. Constant images score 0.
    """
    gen = _check_images(generated, "generated")
    train = _check_images(training, "training")
    if gen.shape[1:] != train.shape[1:]:
        raise ValueError(f"shapes differ: {gen.shape[1:]} vs {train.shape[1:]}")
    train_rows = _unit_rows(train)
    indices = np.empty(len(gen), np.int64)
    scores = np.empty(len(gen), np.float64)
    for start in range(0, len(gen), chunk):
        corr = _unit_rows(gen[start:start + chunk]) @ train_rows.T
        best = np.argmax(corr, axis=1)
        indices[start:start + chunk] = best
        scores[start:start + chunk] = np.clip(corr[np.arange(len(best)), best], -1.0, 1.0)
    return indices, scores


def memorisation_rate(scores: np.ndarray, threshold: float = NEAR_DUPLICATE_THRESHOLD) -> float:
    """Share of generated images whose nearest-training correlation is >= ``threshold``."""
    scores = np.asarray(scores, dtype=np.float64)
    if scores.size == 0:
        raise ValueError("scores is empty")
    return float(np.mean(scores >= threshold))


def closest_pairs(indices: np.ndarray, scores: np.ndarray, top: int = 8) -> list[dict[str, Any]]:
    """The ``top`` most similar (generated, training) pairs, highest correlation first."""
    order = np.argsort(-np.asarray(scores), kind="stable")[:top]
    return [{"generated": int(g), "training": int(indices[g]), "correlation": float(scores[g])}
            for g in order]


# ----------------------------------------------------------------------------- bundle


def nearest_images(fake: np.ndarray, real: np.ndarray, threshold: float = NEAR_DUPLICATE_THRESHOLD) -> dict[str, Any]:
    """Each fake image's nearest ``real`` image by Pearson r: the share at or above ``threshold``
    (memorisation when ``real`` is the training set), max and median r, the 5 closest pairs."""
    indices, scores = nearest_training_neighbours(fake, real)
    return {
        "memorisation_rate": memorisation_rate(scores, threshold), "threshold": threshold,
        "max_correlation": float(scores.max()), "median_correlation": float(np.median(scores)),
        "closest_pairs": closest_pairs(indices, scores, 5), "n_real": len(real), "n_fake": len(fake),
    }


def evaluate_images(
    real: np.ndarray,
    fake: np.ndarray,
    seed: int = 0,
    n_pairs: int = 1000,
    feature_size: int = 16,
    k: int = 3,
    threshold: float = NEAR_DUPLICATE_THRESHOLD,
    inception: bool = True,
    allow_download: bool = False,
    kid_subset_size: int = 1000,
    kid_subsets: int = 100,
) -> dict[str, Any]:
    """All metrics of this module for ``fake`` against ``real``, sample counts beside each value.

    Keys: ``swd`` (ProGAN SWD x1e3), ``ms_ssim_fake`` / ``ms_ssim_real`` (diversity; compare the
    two), ``precision_recall`` (on :func:`pixel_features`), ``nearest_real`` (Pearson nearest
    neighbours of fake images in ``real``; a memorisation check when ``real`` is the training
    set), and ``fid`` / ``kid`` only if InceptionV3 weights are found (downloaded only with
    ``allow_download``); otherwise ``inception`` holds the reason.
    """
    real = _check_images(real, "real")
    fake = _check_images(fake, "fake")
    n_real, n_fake = len(real), len(fake)
    result: dict[str, Any] = {"n_real": n_real, "n_fake": n_fake, "seed": seed}
    result["swd"] = sliced_wasserstein_distance(real, fake, seed=seed)
    result["ms_ssim_fake"] = ms_ssim_diversity(fake, n_pairs, seed)
    result["ms_ssim_real"] = ms_ssim_diversity(real, n_pairs, seed)
    pr = precision_recall(pixel_features(real, feature_size), pixel_features(fake, feature_size), k)
    result["precision_recall"] = {**pr, "features": PIXEL_FEATURES_DESCRIPTION.format(s=feature_size)}
    result["nearest_real"] = nearest_images(fake, real, threshold)
    if not inception:
        result["inception"] = {"available": False, "reason": "disabled (inception=False)"}
        return result
    try:
        feats_real = inception_features(real, allow_download=allow_download)
        feats_fake = inception_features(fake, allow_download=allow_download)
    except WeightsUnavailable as exc:  # a wrong file under the official name still raises
        log.warning("FID/KID skipped: %s", exc)
        result["inception"] = {"available": False, "reason": str(exc)}
        return result
    result["inception"] = {"available": True,
                           "note": "Keras InceptionV3 ImageNet features; not comparable to "
                                   "published FID/KID (different network graph and resizing)"}
    result["fid"] = {"value": frechet_distance(feats_real, feats_fake),
                     "n_real": n_real, "n_fake": n_fake}
    subset = min(kid_subset_size, n_real, n_fake)
    kid_mean, kid_std = kernel_inception_distance(feats_real, feats_fake, subset, kid_subsets, seed)
    result["kid"] = {"value": kid_mean, "std": kid_std, "subset_size": subset,
                     "n_subsets": kid_subsets, "n_real": n_real, "n_fake": n_fake}
    return result
