"""Landmark heatmaps: encoding and the decoding rule."""
import numpy as np
import pytest

from medgan_lib.landmarks import (
    DEFAULT_SIGMA,
    decode_heatmaps,
    encode_heatmaps,
    phantom_heatmap_channels,
    stack_landmarks,
    to_signed,
    to_unit,
    unstack_landmarks,
)
from medgan_lib.phantom import LANDMARK_NAMES, make_phantom

SIZE = 64


def test_round_trip_anywhere_including_borders():
    rng = np.random.default_rng(0)
    inner = rng.uniform(-0.5, SIZE - 0.5, size=(200, 3, 2))
    edges = np.array([[0.0, 0.0], [-0.49, 31.3], [63.49, 63.49], [63.0, 0.2], [10.7, -0.3], [0.4, 62.8]])
    border = np.broadcast_to(edges[None], (1, *edges.shape))
    for xy in (inner, border):
        present = np.ones(xy.shape[:2], bool)
        decoded, found, peak = decode_heatmaps(encode_heatmaps(xy, present, SIZE))
        assert found.all()
        error = np.abs(decoded - xy).max()
        assert error < 0.5, error
        assert error < 0.05  # the log-parabola is exact for a Gaussian up to float32 rounding


def test_round_trip_through_generator_range():
    xy = np.array([[[5.3, 60.1], [33.8, 2.2]]])
    maps = to_unit(to_signed(encode_heatmaps(xy, np.ones((1, 2), bool), SIZE)))
    np.testing.assert_allclose(decode_heatmaps(maps)[0], xy, atol=0.05)
    assert to_signed(np.zeros((1, 1))).item() == -1.0 and to_signed(np.ones((1, 1))).item() == 1.0


def test_absent_and_outside_landmarks_decode_as_absent():
    xy = np.array([[[np.nan, np.nan], [20.0, 20.0], [70.0, 10.0], [30.0, 30.0]]])
    present = np.array([[False, False, True, True]])
    maps = encode_heatmaps(xy, present, SIZE)
    assert np.all(maps[..., :3] == 0.0)
    _, found, peak = decode_heatmaps(maps)
    assert found.tolist() == [[False, False, False, True]]
    assert peak[0, 3] == pytest.approx(1.0, abs=1e-6)


def test_noisy_heatmap_stays_near_argmax():
    maps = encode_heatmaps(np.array([[[40.2, 12.7]]]), np.ones((1, 1), bool), SIZE)
    noisy = np.clip(maps + np.random.default_rng(1).normal(0, 0.05, maps.shape), 0, 1)
    xy, found, _ = decode_heatmaps(noisy)
    assert found.all() and np.abs(xy - [40.2, 12.7]).max() < 1.0


def test_batch_shapes_and_sigma():
    xy = np.random.default_rng(2).uniform(5, 55, size=(7, 5, 2))
    maps = encode_heatmaps(xy, np.ones((7, 5), bool), SIZE)
    assert maps.shape == (7, SIZE, SIZE, 5) and maps.dtype == np.float32
    assert 0.0 <= maps.min() and maps.max() <= 1.0
    decoded, found, peak = decode_heatmaps(maps)
    assert decoded.shape == (7, 5, 2) and found.shape == (7, 5) and peak.shape == (7, 5)
    # one pixel away along x from an integer landmark the value is exp(-1 / (2 sigma^2))
    one = encode_heatmaps(np.array([[[20.0, 20.0]]]), np.ones((1, 1), bool), SIZE)
    assert one[0, 20, 21, 0] == pytest.approx(np.exp(-1 / (2 * DEFAULT_SIGMA**2)), rel=1e-5)
    with pytest.raises(ValueError):
        encode_heatmaps(xy[0], np.ones(5, bool), SIZE)


def test_phantom_landmarks_round_trip():
    phantom = make_phantom(12, SIZE, seed=4)
    xy, present = stack_landmarks(phantom.landmarks)
    assert present[:, 0].all() and not present[:, LANDMARK_NAMES.index("valve_center")].all()
    channels = phantom_heatmap_channels(
        {"landmarks": {k: v.tolist() for k, v in phantom.landmarks.items()}}, SIZE)
    assert channels.shape == (12, SIZE, SIZE, len(LANDMARK_NAMES)) and channels.min() == -1.0
    decoded, found, _ = decode_heatmaps(to_unit(channels))
    np.testing.assert_array_equal(found, present)
    assert np.abs(decoded - xy)[present].max() < 0.5
    back = unstack_landmarks(decoded, found)
    assert np.isnan(back["valve_center"]).any(axis=1).tolist() == (~present[:, 1]).tolist()
    with pytest.raises(ValueError, match="no landmarks"):
        phantom_heatmap_channels({}, SIZE)
