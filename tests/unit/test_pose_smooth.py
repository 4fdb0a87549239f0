"""One-Euro / Savitzky-Golay smoothing and gap filling, measured on synthetic tracks."""

import numpy as np
import pytest

from zizi_models.pose.schema import frame_from_arrays, frame_to_arrays
from zizi_models.pose.skeleton import K_ALL
from zizi_models.pose.smooth import (
    GAP_CONFIDENCE_FACTOR,
    fill_gaps,
    fill_gaps_array,
    one_euro_filter,
    savgol_filter_points,
    smooth_pose_keypoint,
)

FPS, CANVAS = 30.0, 512


def _track(x: np.ndarray, y: float = 256.0) -> np.ndarray:
    """[F] x positions -> [F, 1, 3] points."""
    return np.stack([x, np.full_like(x, y), np.ones_like(x)], -1)[:, None]


def _jitter(x: np.ndarray) -> float:
    return float(np.std(np.diff(x)))


def test_one_euro_reduces_jitter_at_least_3x():
    rng = np.random.default_rng(0)
    x = 256.0 + rng.normal(0.0, 2.0, 300)  # still point, 2 px detector noise
    out = one_euro_filter(_track(x), FPS, scale=CANVAS)[:, 0, 0]
    factor = _jitter(x) / _jitter(out)
    assert factor >= 3.0, f"jitter only reduced {factor:.1f}x"
    assert abs(out.mean() - 256.0) < 0.5  # no drift


def test_one_euro_lags_fast_moves_by_at_most_2_frames():
    ramp = 100.0 + 10.0 * np.arange(40)  # 300 px/s across a 512 canvas: a fast dance move
    out = one_euro_filter(_track(ramp), FPS, scale=CANVAS)[:, 0, 0]
    lag_frames = (ramp[-10:] - out[-10:]).mean() / 10.0
    assert 0.0 <= lag_frames <= 2.0, lag_frames
    step = np.where(np.arange(40) < 20, 200.0, 300.0)  # a 100 px jump
    out = one_euro_filter(_track(step), FPS, scale=CANVAS)[:, 0, 0]
    settled = int(np.argmax(np.abs(out[20:] - 300.0) < 10.0))
    assert settled <= 3, f"step reached 90% after {settled} frames"


def test_one_euro_is_resolution_independent_and_keeps_missing_points():
    rng = np.random.default_rng(1)
    x = 256.0 + rng.normal(0.0, 2.0, 60)
    pts = _track(x)
    pts[10:13] = 0.0  # dropout
    out = one_euro_filter(pts, FPS, scale=CANVAS)
    assert np.all(out[10:13] == 0.0)
    assert np.all(np.abs(out[13:, 0, 0] - 256.0) < 10.0), "no pull towards (0, 0) after a gap"
    big = one_euro_filter(pts * [4.0, 4.0, 1.0], FPS, scale=4 * CANVAS)
    np.testing.assert_allclose(big[..., :2], out[..., :2] * 4.0, rtol=1e-9, atol=1e-9)


def test_savgol_reduces_jitter_without_lag_on_a_ramp():
    rng = np.random.default_rng(2)
    ramp = 100.0 + 5.0 * np.arange(60)
    noisy = ramp + rng.normal(0.0, 2.0, 60)
    out = savgol_filter_points(_track(noisy), window=9, polyorder=2)[:, 0, 0]
    assert _jitter(noisy - ramp) / _jitter(out - ramp) >= 2.0
    clean = savgol_filter_points(_track(ramp), window=9, polyorder=2)[:, 0, 0]
    np.testing.assert_allclose(clean, ramp, atol=1e-6)  # a polynomial of order <= 2 is kept exactly
    with pytest.raises(ValueError, match="odd window"):
        savgol_filter_points(_track(ramp), window=8)


def test_fill_gaps_interpolates_short_dropouts_only():
    x = 10.0 * np.arange(20)
    pts = _track(x)
    pts[:, 0, 2] = 0.8
    pts[5:8] = 0.0  # 3-frame gap: filled
    pts[10:16] = 0.0  # 6-frame gap: too long for max_gap=5
    pts[0] = 0.0  # leading gap: nothing to interpolate from
    out = fill_gaps_array(pts, max_gap=5)
    np.testing.assert_allclose(out[5:8, 0, 0], x[5:8])
    np.testing.assert_allclose(out[5:8, 0, 2], 0.8 * GAP_CONFIDENCE_FACTOR)
    assert np.all(out[10:16] == 0.0) and np.all(out[0] == 0.0)
    np.testing.assert_allclose(out[8:10], pts[8:10])


def test_sequence_level_smoothing_and_gap_filling_per_person():
    rng = np.random.default_rng(3)
    frames = []
    for t in range(30):
        a = np.zeros((K_ALL, 3))
        a[:18] = (100.0 + rng.normal(0, 2), 200.0 + rng.normal(0, 2), 0.9)
        b = np.zeros((K_ALL, 3))
        b[:18] = (400.0 + 2.0 * t, 300.0, 0.7)
        people, ids = ([a, b], [3, 8]) if not 10 <= t < 12 else ([a], [3])  # person 8 missing 2 frames
        frames.append(frame_from_arrays(ids, np.stack(people), 512, 512))
    filled = fill_gaps(frames, max_gap=3)
    assert [p["person_id"] for p in filled[10]["people"]] == [3, 8]
    np.testing.assert_allclose(frame_to_arrays(filled[11])[1][1, 0], [422.0, 300.0, 0.35])
    smoothed = smooth_pose_keypoint(filled, method="one_euro", fps=FPS)
    xs = np.array([frame_to_arrays(f)[1][0, 0, 0] for f in smoothed])
    raw = np.array([frame_to_arrays(f)[1][0, 0, 0] for f in filled])
    assert _jitter(xs) < _jitter(raw) / 2
    assert frame_to_arrays(smoothed[0])[1][0, 20, 2] == 0.0  # missing hand stays missing
    sg = smooth_pose_keypoint(filled, method="savgol", window=5, polyorder=2)
    assert len(sg) == 30 and frames[0]["people"][0]["pose_keypoints_2d"] != sg[0]["people"][0]["pose_keypoints_2d"]
    with pytest.raises(ValueError, match="smoothing method"):
        smooth_pose_keypoint(frames, method="kalman")
