"""Known-answer tests for medgan_lib.metrics (phantom and synthetic arrays only; no weights).

Values measured when this file was written (32 px phantom, 200 vs 200 images, seed 0) are in
the comments next to the assertions.
"""

from __future__ import annotations


import numpy as np
import pytest

from medgan_lib import metrics as M
from medgan_lib import pretrained
from medgan_lib.phantom import make_phantom

SIZE = 32
N = 200


def _phantom(n: int, size: int, seed: int) -> np.ndarray:
    """Phantom frames as float32 (n, size, size, 1) in [-1, 1]."""
    return make_phantom(n, size, seed).images[..., None] * np.float32(2) - np.float32(1)


def _collapsed(image: np.ndarray, n: int, seed: int = 0, sigma: float = 0.01) -> np.ndarray:
    """A mode-collapsed "generator": one image repeated with tiny noise."""
    noise = np.random.default_rng(seed).normal(0, sigma, (n, *image.shape))
    return np.clip(image[None] + noise, -1, 1).astype(np.float32)


def _blur(images: np.ndarray, times: int = 2) -> np.ndarray:
    """Repeated 5x5 binomial blur of (N, H, W, C) images."""
    x = np.transpose(images, (0, 3, 1, 2))
    for _ in range(times):
        x = M._blur(x)
    return np.transpose(x, (0, 2, 3, 1))


@pytest.fixture(scope="module")
def real() -> np.ndarray:
    return _phantom(N, SIZE, seed=1)


@pytest.fixture(scope="module")
def other() -> np.ndarray:
    """Disjoint phantom sample (different seed), i.e. a perfect 'generator'."""
    return _phantom(N, SIZE, seed=2)


@pytest.fixture(scope="module")
def collapsed(other: np.ndarray) -> np.ndarray:
    return _collapsed(other[0], N)


def _with_moments(rng: np.random.Generator, n: int, mean: np.ndarray, cov: np.ndarray) -> np.ndarray:
    """n samples whose sample mean and unbiased sample covariance are exactly mean and cov."""
    z = rng.standard_normal((n, len(mean)))
    z -= z.mean(axis=0)
    z = z @ np.linalg.inv(np.linalg.cholesky(np.cov(z, rowvar=False))).T
    return z @ np.linalg.cholesky(cov).T + mean


# --- Frechet distance ---------------------------------------------------------------------


def test_frechet_identical_features_is_zero_also_rank_deficient() -> None:
    rng = np.random.default_rng(0)
    full = rng.standard_normal((500, 8)) * 3
    assert abs(M.frechet_distance(full, full)) < 1e-6
    wide = rng.standard_normal((20, 64)) * 3  # covariance of rank 19 in 64 dimensions
    assert abs(M.frechet_distance(wide, wide)) < 1e-6
    other = rng.standard_normal((20, 64)) * 3
    value = M.frechet_distance(wide, other)
    # reference through the (non-symmetric) eigenvalues of S_a S_b
    ca, cb = np.cov(wide, rowvar=False), np.cov(other, rowvar=False)
    ev = np.linalg.eigvals(ca @ cb).real
    ref = (np.sum((wide.mean(0) - other.mean(0)) ** 2) + np.trace(ca) + np.trace(cb)
           - 2 * np.sqrt(np.clip(ev, 0, None)).sum())
    assert value == pytest.approx(ref, rel=1e-6)


def test_frechet_matches_closed_form_for_gaussians() -> None:
    rng = np.random.default_rng(1)
    mu_a, mu_b = np.array([0.0, 1.0, -2.0]), np.array([1.0, 1.0, 0.0])
    var_a, var_b = np.array([1.0, 4.0, 0.25]), np.array([9.0, 1.0, 0.25])
    a = _with_moments(rng, 300, mu_a, np.diag(var_a))
    b = _with_moments(rng, 400, mu_b, np.diag(var_b))
    # diagonal: |mu_a - mu_b|^2 + sum (sigma_a - sigma_b)^2 = 5 + (4 + 1 + 0) = 10
    assert M.frechet_distance(a, b) == pytest.approx(10.0, abs=1e-8)
    # a full (non-diagonal) covariance against N(0, I): 2x2 closed form
    cov = np.array([[2.0, 0.6], [0.6, 1.0]])
    c = _with_moments(rng, 100, np.zeros(2), cov)
    d = _with_moments(rng, 100, np.zeros(2), np.eye(2))
    # tr sqrt(cov) for a 2x2 PSD matrix: sqrt(tr + 2 sqrt(det))
    expected = np.trace(cov) + 2 - 2 * np.sqrt(np.trace(cov) + 2 * np.sqrt(np.linalg.det(cov)))
    assert M.frechet_distance(c, d) == pytest.approx(expected, abs=1e-8)


def test_frechet_grows_with_shift_as_squared_norm() -> None:
    x = np.random.default_rng(2).standard_normal((400, 5))
    values = [M.frechet_distance(x, x + s) for s in (0.0, 0.5, 1.0, 2.0)]
    # same covariance, so FD = |shift|^2 = 5 s^2
    np.testing.assert_allclose(values, [0.0, 1.25, 5.0, 20.0], atol=1e-6)


# --- KID ----------------------------------------------------------------------------------


def test_kid_near_zero_for_one_distribution_and_large_for_shifted() -> None:
    rng = np.random.default_rng(3)
    x, y = rng.standard_normal((600, 16)), rng.standard_normal((600, 16))
    z = rng.standard_normal((600, 16)) + 0.3
    null_mean, null_std = M.kernel_inception_distance(x, y, subset_size=200, n_subsets=50)
    shift_mean, shift_std = M.kernel_inception_distance(x, z, subset_size=200, n_subsets=50)
    # measured: null -0.0039 +- 0.0077, shifted 0.29 +- 0.046
    assert null_std > 0
    assert abs(null_mean) < 2 * null_std
    assert shift_mean > 10 * null_std and shift_mean > 5 * shift_std
    assert M.kernel_inception_distance(x, y, 200, 50, seed=0) == (null_mean, null_std)


# --- SWD ----------------------------------------------------------------------------------


def test_swd_resolutions_stop_at_16_px() -> None:
    assert M.swd_resolutions(64) == [64, 32, 16]
    assert M.swd_resolutions(32) == [32, 16]
    assert M.swd_resolutions(28) == [28]
    assert M.swd_resolutions(256) == [256, 128, 64, 32, 16]


def test_swd_small_for_same_distribution_large_for_shift_blur_collapse(
    real: np.ndarray, other: np.ndarray, collapsed: np.ndarray
) -> None:
    same = M.sliced_wasserstein_distance(real, other)
    shifted = M.sliced_wasserstein_distance(real, np.clip(other + 0.3, -1, 1))
    blurred = M.sliced_wasserstein_distance(real, _blur(other))
    mode = M.sliced_wasserstein_distance(real, collapsed)
    # measured (x1e3, levels 32/16 px): same 28 [20, 36]; shift 276 [36, 515];
    # blur 330 [499, 161]; collapsed 238 [86, 390]
    assert same["resolutions"] == [32, 16] and len(same["per_level"]) == 2
    assert same["n_real"] == same["n_fake"] == N and same["patches_per_set"] == 128 * N
    assert same["value"] == pytest.approx(np.mean(same["per_level"]))
    assert same["value"] < 50
    for worse in (shifted, blurred, mode):
        assert worse["value"] > 4 * same["value"]
    assert blurred["per_level"][0] > 10 * same["per_level"][0]  # detail lost at 32 px
    assert shifted["per_level"][-1] > 10 * same["per_level"][-1]  # intensity in the low-pass


def test_swd_progan_normalisation_ignores_intensity_shift_and_is_deterministic(
    real: np.ndarray, other: np.ndarray
) -> None:
    a, b = real[:100], other[:100]
    kwargs = dict(patches_per_image=64, normalise="each")
    same = M.sliced_wasserstein_distance(a, b, **kwargs)
    shifted = M.sliced_wasserstein_distance(a, np.clip(b + 0.3, -1, 1), **kwargs)
    # per-set standardisation (ProGAN exact) removes most of a global brightness change
    assert shifted["value"] < 2 * same["value"]
    again = M.sliced_wasserstein_distance(a, b, **kwargs)
    assert again["per_level"] == same["per_level"]
    assert M.sliced_wasserstein_distance(a, b, seed=1, **kwargs)["per_level"] != same["per_level"]


def test_swd_works_at_28_px_with_one_level() -> None:
    real, fake = _phantom(100, 28, 1), _phantom(80, 28, 2)
    same = M.sliced_wasserstein_distance(real, fake, patches_per_image=32)
    mode = M.sliced_wasserstein_distance(real, _collapsed(fake[0], 80), patches_per_image=32)
    assert same["resolutions"] == [28] and same["patches_per_set"] == 32 * 80
    assert same["n_real"] == 100 and same["n_fake"] == 80
    # measured: same 41, collapsed 306 (the same-distribution floor grows as samples shrink:
    # 86 with 40 fake images)
    assert 0 < same["value"] < mode["value"] / 4


# --- MS-SSIM ------------------------------------------------------------------------------


def test_ms_ssim_settings_fit_small_images() -> None:
    s28, s64, s256 = M.ms_ssim_settings(28), M.ms_ssim_settings(64), M.ms_ssim_settings(256)
    assert (s28["scales"], s28["filter_size"]) == (3, 7)
    assert (s64["scales"], s64["filter_size"]) == (4, 7)
    assert (s256["scales"], s256["filter_size"]) == (5, 11)
    np.testing.assert_allclose(s256["power_factors"], M.MS_SSIM_POWER_FACTORS, rtol=1e-3)
    assert sum(s28["power_factors"]) == pytest.approx(1.0)


def test_ms_ssim_near_one_for_collapse_lower_for_phantom(
    real: np.ndarray, collapsed: np.ndarray
) -> None:
    diverse = M.ms_ssim_diversity(real, n_pairs=300, seed=0)
    mode = M.ms_ssim_diversity(collapsed, n_pairs=300, seed=0)
    # measured: phantom 0.20 (std 0.20), collapsed 0.9997
    assert mode["value"] > 0.99
    assert diverse["value"] < 0.5
    assert diverse["n_pairs"] == 300 and diverse["n_images"] == N
    small = M.ms_ssim_diversity(_phantom(20, 28, 3), n_pairs=20, seed=0)  # 28 px runs
    assert small["scales"] == 3 and 0 < small["value"] < 0.6


# --- precision / recall -------------------------------------------------------------------


def test_precision_recall_high_for_same_and_recall_drops_for_collapse(
    real: np.ndarray, other: np.ndarray, collapsed: np.ndarray
) -> None:
    f_real, f_other = M.pixel_features(real), M.pixel_features(other)
    assert f_real.shape == (N, 16 * 16)
    np.testing.assert_allclose(f_real.mean(axis=1), 0, atol=1e-9)
    np.testing.assert_allclose(f_real.std(axis=1), 1, atol=1e-9)
    same = M.precision_recall(f_real, f_other, k=3)
    mode = M.precision_recall(f_real, M.pixel_features(collapsed), k=3)
    # measured: same P 0.88 R 0.91; collapsed P 1.00 R 0.00
    assert same["precision"] > 0.7 and same["recall"] > 0.7
    assert mode["recall"] < 0.05
    assert mode["precision"] > 0.9
    assert same["n_real"] == same["n_fake"] == N and same["k"] == 3


def test_precision_recall_known_geometry() -> None:
    # real on a line 0..9 (k=1 radius 1); fake covers 0..4: all fakes inside, reals 0..4 covered
    real = np.arange(10.0)[:, None]
    fake = np.arange(0.0, 4.5, 0.5)[:, None]  # 0, 0.5, ..., 4: k=1 radius 0.5
    result = M.precision_recall(real, fake, k=1)
    assert result["precision"] == 1.0
    assert result["recall"] == pytest.approx(0.5)


# --- memorisation -------------------------------------------------------------------------


def test_memorisation_finds_planted_copies(real: np.ndarray, other: np.ndarray) -> None:
    generated = other[:40].copy()
    exact_at, noisy_at = np.arange(0, 10), np.arange(20, 30)
    exact_src, noisy_src = np.arange(100, 110), np.arange(150, 160)
    generated[exact_at] = real[exact_src]
    noise = np.random.default_rng(5).normal(0, 0.05, generated[noisy_at].shape)
    generated[noisy_at] = np.clip(real[noisy_src] + noise, -1, 1)
    indices, scores = M.nearest_training_neighbours(generated, real, chunk=16)
    np.testing.assert_array_equal(indices[exact_at], exact_src)
    np.testing.assert_array_equal(indices[noisy_at], noisy_src)
    assert np.all(scores[exact_at] > 0.9999)
    assert np.all(scores[noisy_at] > 0.98)  # measured ~0.99
    assert M.memorisation_rate(scores, 0.95) == pytest.approx(20 / 40)
    top = M.closest_pairs(indices, scores, top=10)
    assert {p["generated"] for p in top} == set(exact_at)
    assert all(p["training"] == p["generated"] + 100 for p in top)


def test_phantom_vs_phantom_is_not_memorised(real: np.ndarray, other: np.ndarray) -> None:
    _, scores = M.nearest_training_neighbours(other, real)
    # measured: max 0.85, median 0.71
    assert scores.max() < 0.95
    assert M.memorisation_rate(scores, 0.95) == 0.0


# --- Inception / bundle -------------------------------------------------------------------


def test_inception_features_raise_offline(offline: None) -> None:
    images = np.zeros((2, 32, 32, 1), np.float32)
    with pytest.raises(pretrained.WeightsUnavailable, match="inception_v3"):
        M.inception_features(images)
    with pytest.raises(pretrained.WeightsUnavailable):
        M.inception_features(images, allow_download=True)


def test_evaluate_images_offline_reports_counts_and_skips_fid(
    offline: None, real: np.ndarray, other: np.ndarray
) -> None:
    result = M.evaluate_images(real[:60], other[:50], seed=0, n_pairs=40)
    assert result["n_real"] == 60 and result["n_fake"] == 50
    for key in ("swd", "precision_recall", "nearest_real"):
        assert result[key]["n_real"] == 60 and result[key]["n_fake"] == 50, key
    assert result["ms_ssim_fake"]["n_images"] == 50 and result["ms_ssim_real"]["n_images"] == 60
    assert result["ms_ssim_fake"]["n_pairs"] == 40
    assert result["nearest_real"]["memorisation_rate"] == 0.0
    assert "fid" not in result and "kid" not in result
    assert result["inception"]["available"] is False
    assert "InceptionV3" in result["inception"]["reason"]
