"""Tests for the procedural X-ray aortography phantom."""

import json

import numpy as np
import pytest

from medgan_lib.phantom import (
    INT_PARAM_RANGES,
    LANDMARK_NAMES,
    PARAM_RANGES,
    PhantomSet,
    make_phantom,
    phantom_landmarks,
    render_phantom_image,
    sample_phantom_params,
)


@pytest.fixture(scope="module")
def batch() -> PhantomSet:
    return make_phantom(200, size=64, seed=3)


def test_deterministic_by_seed():
    a = make_phantom(6, size=48, seed=11)
    b = make_phantom(6, size=48, seed=11)
    np.testing.assert_array_equal(a.images, b.images)
    assert a.params == b.params
    for name in LANDMARK_NAMES:
        np.testing.assert_array_equal(a.landmarks[name], b.landmarks[name])


def test_image_i_does_not_depend_on_n():
    small = make_phantom(3, size=40, seed=5)
    large = make_phantom(12, size=40, seed=5)
    np.testing.assert_array_equal(small.images, large.images[:3])
    assert small.params == large.params[:3]


def test_different_seeds_differ():
    a = make_phantom(4, size=32, seed=0)
    b = make_phantom(4, size=32, seed=1)
    assert all(np.abs(a.images[i] - b.images[i]).mean() > 0.02 for i in range(4))


@pytest.mark.parametrize("size", [28, 64, 256])
def test_dtype_shape_range(size):
    s = make_phantom(3, size=size, seed=2)
    assert s.images.dtype == np.float32
    assert s.images.shape == (3, size, size)
    assert np.isfinite(s.images).all()
    assert s.images.min() >= 0.0 and s.images.max() <= 1.0
    for name in LANDMARK_NAMES:
        assert s.landmarks[name].shape == (3, 2) and s.landmarks[name].dtype == np.float32


def test_uses_dynamic_range(batch):
    lo, hi = np.percentile(batch.images, [1, 99], axis=(1, 2))
    assert np.all(hi - lo > 0.5), "every frame should span most of [0, 1]"


def test_diversity_across_images(batch):
    per_pixel_std = batch.images.std(axis=0)
    assert per_pixel_std.mean() > 0.1
    assert per_pixel_std.min() > 0.02


def test_landmarks_inside_image(batch):
    size = batch.images.shape[-1]
    for name in LANDMARK_NAMES:
        xy = batch.landmarks[name]
        present = ~np.isnan(xy).any(axis=1)
        assert np.all((xy[present] >= 0) & (xy[present] <= size - 1)), name
    for name in ("pigtail_tip", "aortic_root_center", "annulus_left", "annulus_right"):
        assert not np.isnan(batch.landmarks[name]).any(), name
    assert np.all(batch.landmarks["annulus_left"][:, 0] <= batch.landmarks["annulus_right"][:, 0])


def test_pigtail_tip_on_dark_region(batch):
    for img, (x, y) in zip(batch.images, batch.landmarks["pigtail_tip"]):
        c, r = int(round(x)), int(round(y))
        local = img[max(r - 1, 0) : r + 2, max(c - 1, 0) : c + 2].mean()
        assert local < np.median(img) - 0.15


def test_valve_fraction_matches_probability():
    for prob in (0.2, 0.5):
        s = make_phantom(400, size=28, seed=7, valve_probability=prob)
        present = np.array([p["valve_present"] for p in s.params])
        assert abs(present.mean() - prob) < 0.08
        np.testing.assert_array_equal(np.isnan(s.landmarks["valve_center"]).any(axis=1), ~present)
    assert not any(p["valve_present"] for p in make_phantom(30, size=28, valve_probability=0.0).params)


def test_valve_frame_is_drawn_dark_at_valve_center():
    params = next(p for p in make_phantom(20, size=64, seed=1).params if p["valve_present"])
    (x, y) = phantom_landmarks(params, 64)["valve_center"].round().astype(int)
    with_valve = render_phantom_image(params, 64)[y - 3 : y + 4, x - 3 : x + 4].mean()
    without = render_phantom_image({**params, "valve_present": False}, 64)[y - 3 : y + 4, x - 3 : x + 4].mean()
    assert with_valve < without - 0.05


def test_params_json_serialisable_and_in_range(batch):
    for p in batch.params:
        assert json.loads(json.dumps(p)) == p
        for name, (lo, hi) in {**PARAM_RANGES, **INT_PARAM_RANGES}.items():
            assert lo <= p[name] <= hi, name
        assert isinstance(p["valve_present"], bool) and isinstance(p["noise_seed"], int)


def test_render_reproduces_images(batch):
    for i in (0, 1, 57, 199):
        np.testing.assert_array_equal(render_phantom_image(batch.params[i], 64), batch.images[i])
    for name in LANDMARK_NAMES:
        np.testing.assert_array_equal(phantom_landmarks(batch.params[57], 64)[name], batch.landmarks[name][57])


def test_sampler_is_driven_by_rng():
    a = sample_phantom_params(np.random.default_rng(0))
    b = sample_phantom_params(np.random.default_rng(0))
    c = sample_phantom_params(np.random.default_rng(1))
    assert a == b and a != c
    with pytest.raises(ValueError):
        sample_phantom_params(np.random.default_rng(0), valve_probability=1.5)


def test_landmarks_scale_with_size():
    p = make_phantom(1, size=32, seed=9).params[0]
    small, large = phantom_landmarks(p, 32), phantom_landmarks(p, 256)
    np.testing.assert_allclose((small["aortic_root_center"] + 0.5) * 8, large["aortic_root_center"] + 0.5, rtol=1e-5)
