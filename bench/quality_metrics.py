"""bench/quality.py's metrics: per-frame PSNR / SSIM, flicker, identity error and early / late windows (pure
numpy + skimage).

Frames are [T, H, W, C], uint8 0..255 or float 0..1; definitions in bench/quality.py's docstring.
Unit-tested in tests/unit/test_quality_metrics.py.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

EARLY_WINDOW = (5, 15)  # inclusive frame range averaged for "PSNR at frame 10"
LATE_FRAMES = 11  # the last 11 frames are averaged for "PSNR at the end" (229..239 for 240 frames)


def as_float(video: np.ndarray) -> np.ndarray:
    """uint8 0..255 -> float64 0..1; floats are taken as 0..1 already."""
    video = np.asarray(video)
    if video.dtype == np.uint8:
        return video.astype(np.float64) / 255.0
    return video.astype(np.float64)


def _check_pair(pred: np.ndarray, target: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    pred, target = as_float(pred), as_float(target)
    if pred.shape != target.shape or pred.ndim != 4:
        raise ValueError(f"videos must both be [T, H, W, C] of the same shape, got {pred.shape} and {target.shape}")
    return pred, target


def psnr_per_frame(pred: np.ndarray, target: np.ndarray) -> np.ndarray:
    """[T] PSNR in dB with data range 1 (inf where a frame is identical)."""
    pred, target = _check_pair(pred, target)
    mse = ((pred - target) ** 2).mean(axis=(1, 2, 3))
    with np.errstate(divide="ignore"):
        return np.where(mse == 0, np.inf, 10.0 * np.log10(1.0 / np.maximum(mse, 1e-300)))


def ssim_per_frame(pred: np.ndarray, target: np.ndarray) -> np.ndarray:
    """[T] SSIM (skimage defaults: 7x7 uniform window; colour channels averaged), 1.0 for identical frames."""
    from skimage.metrics import structural_similarity

    pred, target = _check_pair(pred, target)
    return np.array([structural_similarity(p, t, channel_axis=-1, data_range=1.0) for p, t in zip(pred, target, strict=True)])


def frame_change(video: np.ndarray) -> np.ndarray:
    """[T-1] D(t) = mean |x[t+1] - x[t]| over pixels and channels, in 8-bit grey levels."""
    video = as_float(video)
    return np.abs(np.diff(video, axis=0)).mean(axis=(1, 2, 3)) * 255.0


def flicker_per_transition(pred: np.ndarray, target: np.ndarray) -> np.ndarray:
    """[T-1] excess change max(0, D(pred, t) - D(target, t)) in grey levels: 0 for the true motion itself."""
    pred, target = _check_pair(pred, target)
    return np.maximum(frame_change(pred) - frame_change(target), 0.0)


def flicker(pred: np.ndarray, target: np.ndarray) -> float:
    """Mean excess frame-to-frame change over all transitions (grey levels, 0..255)."""
    return float(flicker_per_transition(pred, target).mean())


MIN_PART_PIXELS = 4  # a body part counts in a frame's identity error when this many whole pixels show it


def identity_error_per_frame(video: np.ndarray, labels: np.ndarray, colours: np.ndarray,
                             min_pixels: int = MIN_PART_PIXELS) -> np.ndarray:
    """[T] identity error in 8-bit levels: for each body part p with at least ``min_pixels`` pixels in
    ``labels[t] == p + 1`` (``render_part_labels`` of the known pose: the pixels wholly that part), the RGB
    distance between the video's mean colour there and the part's true colour ``colours[p]`` (the first
    frame's, 0..255); the frame's error is the mean over those parts (NaN when no part is visible)."""
    video = as_float(video) * 255.0
    labels, colours = np.asarray(labels), np.asarray(colours, dtype=np.float64)
    if labels.shape != video.shape[:3]:
        raise ValueError(f"labels must be [T, H, W] = {video.shape[:3]}, got {labels.shape}")
    out = np.full(len(video), np.nan)
    for t in range(len(video)):
        errors = []
        for p, colour in enumerate(colours):
            region = labels[t] == p + 1
            if region.sum() >= min_pixels:
                errors.append(float(np.linalg.norm(video[t][region].mean(axis=0) - colour)))
        if errors:
            out[t] = float(np.mean(errors))
    return out


def window_mean(values: np.ndarray, first: int, last: int) -> float:
    """Mean of values[first..last] (inclusive), clipped to the array."""
    first, last = max(0, first), min(len(values) - 1, last)
    if last < first:
        return math.nan
    return float(np.nanmean(values[first:last + 1]))


def late_window(frames: int) -> tuple[int, int]:
    return max(0, frames - LATE_FRAMES), frames - 1


@dataclass
class Result:
    name: str  # "snr 0.66, interp on"
    snr: float | None  # None: the VAE round-trip reference
    interpolate: bool | None
    psnr: np.ndarray
    ssim: np.ndarray
    flicker: np.ndarray
    seconds: float = 0.0
    extra: dict = field(default_factory=dict)
    identity: np.ndarray | None = None  # [T] identity_error_per_frame, when the truth's part labels are known

    def summary(self) -> dict:
        n = len(self.psnr)
        early, late = EARLY_WINDOW, late_window(n)
        finite = np.where(np.isfinite(self.psnr), self.psnr, 100.0)
        return {
            "psnr_mean": float(finite[1:].mean()) if n > 1 else float(finite.mean()),
            "ssim_mean": float(self.ssim[1:].mean()) if n > 1 else float(self.ssim.mean()),
            "psnr_early": window_mean(finite, *early),
            "psnr_late": window_mean(finite, *late),
            "ssim_early": window_mean(self.ssim, *early),
            "ssim_late": window_mean(self.ssim, *late),
            "flicker": float(self.flicker.mean()) if len(self.flicker) else 0.0,
            **self._identity_summary(),
        }

    def _identity_summary(self) -> dict:
        if self.identity is None:
            return {}
        n = len(self.identity)
        early, late = window_mean(self.identity, *EARLY_WINDOW), window_mean(self.identity, *late_window(n))
        return {"identity_mean": float(np.nanmean(self.identity[1:])) if n > 1 else float(np.nanmean(self.identity)),
                "identity_early": early, "identity_late": late,
                "identity_ratio": late / early if early > 0 else math.nan}


def evaluate(name: str, snr, interpolate, video: np.ndarray, truth: np.ndarray, seconds: float = 0.0,
             labels: np.ndarray | None = None, colours: np.ndarray | None = None) -> Result:
    identity = None if labels is None else identity_error_per_frame(video, labels, colours)
    return Result(name, snr, interpolate, psnr_per_frame(video, truth), ssim_per_frame(video, truth),
                  flicker_per_transition(video, truth), seconds, identity=identity)
