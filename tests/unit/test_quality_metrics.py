"""bench/quality_metrics.py (the metrics of bench/quality.py) on synthetic videos: identical frames, a known noise level, flicker vs true motion."""

from __future__ import annotations

import importlib.util
import math
import sys
from pathlib import Path

import numpy as np
import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"


def load_bench_module(name: str):
    spec = importlib.util.spec_from_file_location(f"bench_{name}", BENCH / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is created
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def quality():
    yield load_bench_module("quality_metrics")
    sys.modules.pop("bench_quality_metrics", None)


@pytest.fixture(scope="module")
def bench_script():
    yield load_bench_module("quality")
    sys.modules.pop("bench_quality", None)


def moving_square(frames: int = 12, size: int = 32) -> np.ndarray:
    """A white square sliding right one pixel per frame on a grey background: float [T, S, S, 3]."""
    video = np.full((frames, size, size, 3), 0.4)
    for t in range(frames):
        video[t, 8:16, 4 + t:12 + t] = 1.0
    return video


def test_identical_videos_score_perfectly(quality) -> None:
    video = moving_square()
    assert np.all(np.isinf(quality.psnr_per_frame(video, video)))
    np.testing.assert_allclose(quality.ssim_per_frame(video, video), 1.0)
    assert quality.flicker(video, video) == 0.0


def test_psnr_matches_a_known_noise_level(quality) -> None:
    truth = np.full((4, 16, 16, 3), 0.5)
    sigma = 0.05  # +-sigma everywhere: MSE = sigma^2 exactly
    signs = np.where(np.random.default_rng(0).random(truth.shape) < 0.5, -1.0, 1.0)
    psnr = quality.psnr_per_frame(truth + sigma * signs, truth)
    np.testing.assert_allclose(psnr, 10 * math.log10(1 / sigma**2), rtol=1e-9)  # 26.02 dB
    # uint8 frames are read as 0..255
    as_uint8 = quality.psnr_per_frame((truth * 255).astype(np.uint8), (truth * 255 + 2).astype(np.uint8))
    np.testing.assert_allclose(as_uint8, 10 * math.log10(255**2 / 4), rtol=1e-9)


def test_ssim_drops_with_noise(quality) -> None:
    truth = moving_square()
    rng = np.random.default_rng(1)
    light = quality.ssim_per_frame(np.clip(truth + rng.normal(0, 0.02, truth.shape), 0, 1), truth)
    heavy = quality.ssim_per_frame(np.clip(truth + rng.normal(0, 0.2, truth.shape), 0, 1), truth)
    assert np.all(light < 1.0) and np.all(heavy < light)


def test_flicker_sees_excess_change_not_true_motion(quality) -> None:
    truth = moving_square()
    # the true motion itself: zero, although consecutive frames differ
    assert quality.frame_change(truth).min() > 0
    assert quality.flicker(truth, truth) == 0.0
    # a static video with per-frame brightness flicker, against a static truth: positive, about the flicker size
    static = np.full((10, 16, 16, 3), 0.5)
    flickering = static + np.where(np.arange(10) % 2, 0.02, -0.02)[:, None, None, None]
    per_transition = quality.flicker_per_transition(flickering, static)
    np.testing.assert_allclose(per_transition, 0.04 * 255)
    # the same flicker on top of the true motion also shows, the motion itself does not add to it
    moving_flicker = truth + np.where(np.arange(len(truth)) % 2, 0.02, -0.02)[:, None, None, None]
    assert quality.flicker(moving_flicker, truth) > 0.5 * 0.04 * 255
    # a frozen video (drift, not flicker) scores 0: PSNR measures that
    frozen = np.repeat(truth[:1], len(truth), axis=0)
    assert quality.flicker(frozen, truth) == 0.0


def test_summary_windows_and_shapes(quality, bench_script) -> None:
    values = np.arange(240, dtype=float)
    assert quality.window_mean(values, 5, 15) == 10.0
    assert quality.late_window(240) == (229, 239)
    assert quality.window_mean(values, *quality.late_window(240)) == 234.0
    truth = moving_square(frames=20)
    result = quality.evaluate("x", 1.0, True, np.clip(truth + 0.01, 0, 1), truth)
    assert result.psnr.shape == (20,) and result.ssim.shape == (20,) and result.flicker.shape == (19,)
    summary = result.summary()
    assert summary["psnr_early"] == pytest.approx(quality.window_mean(result.psnr, 5, 15))
    with pytest.raises(ValueError, match="same shape"):
        quality.psnr_per_frame(truth, truth[:-1])
    assert bench_script.parse_snrs("off, 0.33,2") == [10000.0, 0.33, 2.0]


def puppet_truth(frames: int = 6):
    """A held-out puppet clip with its part labels and true part colours."""
    from zizi_models.puppet import demo_clip, random_appearance, render_part_labels

    clip = demo_clip(frames, 64, seed=0, appearance_seed=1)
    character = random_appearance(1, "unseen")
    labels = np.stack([render_part_labels(pose, character, 64, 64) for pose in clip.poses])
    return clip.frames, labels, np.array(character.body_colours(), dtype=float)


def test_identity_error_is_zero_on_the_truth_and_measures_a_part_colour_shift(quality) -> None:
    truth, labels, colours = puppet_truth()
    np.testing.assert_allclose(quality.identity_error_per_frame(truth, labels, colours), 0.0, atol=1e-9)
    # the torso (part 1) repainted 30 levels redder: that part's error is 30, the frame's 30 / visible parts
    shifted = truth.astype(np.float64)
    torso = labels == 2
    shifted[..., 0][torso] = np.clip(shifted[..., 0][torso] + 30, 0, 255)
    assert np.all(colours[1, 0] + 30 <= 255)  # no clipping for this character
    visible = np.array([sum((labels[t] == p + 1).sum() >= quality.MIN_PART_PIXELS for p in range(len(colours)))
                        for t in range(len(truth))])
    error = quality.identity_error_per_frame(shifted.astype(np.uint8), labels, colours)
    np.testing.assert_allclose(error, 30.0 / visible, rtol=1e-6)
    # every part the colour of the background: the mean RGB distance of the parts to that colour
    flat = np.broadcast_to(truth[:, :1, :1], truth.shape)
    expected = np.linalg.norm(colours - truth[0, 0, 0].astype(float), axis=1)
    assert quality.identity_error_per_frame(flat, labels, colours)[0] == pytest.approx(
        np.mean([expected[p] for p in range(len(colours)) if (labels[0] == p + 1).sum() >= quality.MIN_PART_PIXELS]))


def test_identity_error_skips_parts_too_small_to_see(quality) -> None:
    truth, labels, colours = puppet_truth(frames=1)
    none = np.zeros_like(labels)  # nothing but background
    assert np.isnan(quality.identity_error_per_frame(truth, none, colours)[0])
    with pytest.raises(ValueError, match="labels must be"):
        quality.identity_error_per_frame(truth, labels[:, :8], colours)
    result = quality.evaluate("x", 1.0, True, truth, truth, labels=labels, colours=colours)
    assert result.summary()["identity_mean"] == pytest.approx(0.0)
