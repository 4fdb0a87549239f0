"""Temporal clean-up of pose sequences: One-Euro / Savitzky-Golay smoothing and gap filling.

Everything runs per person track (``person_id``) and per keypoint. Missing points (c = 0)
are never invented by the smoothers and never pull a track towards (0, 0).

Array functions work on ``[F, N, 3]`` (frames, points, x/y/c); the ``*_pose_keypoint``
functions take and return POSE_KEYPOINT lists (inputs are not modified).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from typing import Literal

import numpy as np

from .schema import PoseFrame, PoseKeypoint, canvas_sizes, sequence_to_tracks, tracks_to_sequence
from .skeleton import K_ALL

logger = logging.getLogger(__name__)

# A filled point's confidence is min(confidence before, confidence after) * GAP_CONFIDENCE_FACTOR,
# so interpolated points stay distinguishable from detections (and below typical thresholds).
GAP_CONFIDENCE_FACTOR = 0.5


def _alpha(dt: np.ndarray, cutoff: np.ndarray) -> np.ndarray:
    """Exponential smoothing factor for a first-order low-pass at ``cutoff`` Hz, step ``dt`` s."""
    tau = 1.0 / (2.0 * math.pi * cutoff)
    return 1.0 / (1.0 + tau / dt)


def one_euro_filter(
    points: np.ndarray,
    fps: float = 30.0,
    min_cutoff: float = 1.0,
    beta: float = 5.0,
    d_cutoff: float = 1.0,
    scale: float | np.ndarray = 1.0,
    reset_gap: int = 10,
) -> np.ndarray:
    """One-Euro filter (Casiez et al., CHI 2012) along axis 0 of ``points`` ``[F, N, 3]``.

    Positions are divided by ``scale`` (a number or one per frame, ``[F]``; use the canvas'
    longer side) before filtering, so ``beta`` is in 1 / (canvas sizes per second) and the
    defaults do not depend on the resolution. The cutoff of each point is
    ``min_cutoff + beta * |speed|`` Hz with the speed low-passed at ``d_cutoff`` Hz.
    A missing point stays missing; the filter state carries over gaps (with the real time
    step) and restarts after ``reset_gap`` missing frames or more.
    Returns a new ``[F, N, 3]`` array; confidences are unchanged.
    """
    pts = np.asarray(points, dtype=np.float64)
    n_frames = pts.shape[0]
    out = pts.copy()
    if n_frames == 0:
        return out
    scale_t = np.broadcast_to(np.asarray(scale, dtype=np.float64), (n_frames,))
    valid = pts[..., 2] > 0  # [F, N]
    x_hat = np.zeros(pts.shape[1:2] + (2,))  # [N, 2] filtered position (scaled units)
    dx_hat = np.zeros_like(x_hat)  # [N, 2] filtered velocity (scaled units / s)
    last = np.full(pts.shape[1], -(10**9), dtype=np.int64)  # [N] frame of the last valid sample
    for t in range(n_frames):
        v = valid[t]
        if not v.any():
            continue
        x = pts[t, :, :2] / scale_t[t]
        gap = t - last
        restart = v & (gap > reset_gap)
        upd = v & ~restart
        x_hat[restart], dx_hat[restart] = x[restart], 0.0
        if upd.any():
            dt = (gap[upd] / fps)[:, None]  # [U, 1]
            dx = (x[upd] - x_hat[upd]) / dt
            a_d = _alpha(dt, np.full_like(dt, d_cutoff))
            dx_hat[upd] = a_d * dx + (1.0 - a_d) * dx_hat[upd]
            cutoff = min_cutoff + beta * np.linalg.norm(dx_hat[upd], axis=1, keepdims=True)
            a = _alpha(dt, cutoff)
            x_hat[upd] = a * x[upd] + (1.0 - a) * x_hat[upd]
        last[v] = t
        out[t, v, :2] = x_hat[v] * scale_t[t]
    return out


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """[F] bool -> list of (start, stop) of the True runs."""
    padded = np.concatenate([[False], mask, [False]]).astype(np.int8)
    edges = np.flatnonzero(np.diff(padded))
    return list(zip(edges[0::2].tolist(), edges[1::2].tolist(), strict=True))


def savgol_filter_points(points: np.ndarray, window: int = 7, polyorder: int = 2) -> np.ndarray:
    """Savitzky-Golay smoothing along axis 0 of ``[F, N, 3]``, on each run of present frames.

    Runs shorter than ``window`` use the largest odd window that fits (> ``polyorder``) or are
    left as they are. Returns a new array; confidences are unchanged.
    """
    from scipy.signal import savgol_filter  # local: scipy is only needed for this option

    if window < 3 or window % 2 == 0 or polyorder >= window:
        raise ValueError(f"Savitzky-Golay: need an odd window >= 3 and polyorder < window, got {window}, {polyorder}")
    pts = np.asarray(points, dtype=np.float64)
    out = pts.copy()
    valid = pts[..., 2] > 0  # [F, N]
    full = valid.all(axis=0)  # points present in every frame: one vectorised call
    if full.any() and pts.shape[0] >= window:
        out[:, full, :2] = savgol_filter(pts[:, full, :2], window, polyorder, axis=0, mode="interp")
    for n in np.flatnonzero(~full | (pts.shape[0] < window)):
        for start, stop in _runs(valid[:, n]):
            length = stop - start
            w = min(window, length if length % 2 else length - 1)
            if w <= polyorder or w < 3:
                continue
            out[start:stop, n, :2] = savgol_filter(pts[start:stop, n, :2], w, polyorder, axis=0, mode="interp")
    return out


def fill_gaps_array(points: np.ndarray, max_gap: int = 5) -> np.ndarray:
    """Linearly interpolate missing runs of at most ``max_gap`` frames between two present frames.

    points: ``[F, N, 3]``. A filled point gets confidence
    ``min(c_before, c_after) * GAP_CONFIDENCE_FACTOR``. Gaps at the start/end of the sequence
    or longer than ``max_gap`` stay missing. Returns a new array.
    """
    pts = np.asarray(points, dtype=np.float64)
    out = pts.copy()
    n_frames = pts.shape[0]
    if n_frames < 3 or max_gap <= 0:
        return out
    valid = pts[..., 2] > 0  # [F, N]
    t = np.arange(n_frames)[:, None]  # [F, 1]
    prev = np.maximum.accumulate(np.where(valid, t, -1), axis=0)  # last present frame <= t
    nxt = np.minimum.accumulate(np.where(valid, t, n_frames)[::-1], axis=0)[::-1]  # first present >= t
    fill = ~valid & (prev >= 0) & (nxt < n_frames) & ((nxt - prev - 1) <= max_gap)
    if not fill.any():
        return out
    fi, ni = np.nonzero(fill)
    p, q = prev[fi, ni], nxt[fi, ni]
    w = ((fi - p) / (q - p))[:, None]
    out[fi, ni, :2] = (1.0 - w) * pts[p, ni, :2] + w * pts[q, ni, :2]
    out[fi, ni, 2] = np.minimum(pts[p, ni, 2], pts[q, ni, 2]) * GAP_CONFIDENCE_FACTOR
    return out


def _apply_per_track(
    frames: Sequence[PoseFrame], fn: Callable[[np.ndarray, np.ndarray], np.ndarray]
) -> PoseKeypoint:
    """Run ``fn([F, T*130, 3], sizes [F]) -> [F, T*130, 3]`` over all tracks of a sequence."""
    ids, tracks = sequence_to_tracks(frames)  # [F, T, 130, 3]
    sizes = canvas_sizes(frames)
    if not ids:
        return tracks_to_sequence(ids, tracks, sizes)
    n_frames = tracks.shape[0]
    flat = tracks.reshape(n_frames, len(ids) * K_ALL, 3)
    longer = np.array([max(w, h) for w, h in sizes], dtype=np.float64)
    result = fn(flat, longer).reshape(tracks.shape)
    return tracks_to_sequence(ids, result, sizes)


def fill_gaps(frames: Sequence[PoseFrame], max_gap: int = 5) -> PoseKeypoint:
    """Fill dropouts of up to ``max_gap`` frames per person and keypoint (see ``fill_gaps_array``)."""
    return _apply_per_track(frames, lambda pts, _s: fill_gaps_array(pts, max_gap))


def smooth_pose_keypoint(
    frames: Sequence[PoseFrame],
    method: Literal["one_euro", "savgol", "none"] = "one_euro",
    fps: float = 30.0,
    min_cutoff: float = 1.0,
    beta: float = 5.0,
    d_cutoff: float = 1.0,
    window: int = 7,
    polyorder: int = 2,
) -> PoseKeypoint:
    """Smooth every person track of a POSE_KEYPOINT sequence.

    ``one_euro`` (causal, adaptive: little lag on fast moves) uses ``fps``, ``min_cutoff``,
    ``beta`` and ``d_cutoff`` with positions in canvas units (see ``one_euro_filter``);
    ``savgol`` (non-causal, offline) uses ``window`` and ``polyorder``.
    """
    if method == "one_euro":
        def fn(pts, longer):
            return one_euro_filter(pts, fps, min_cutoff, beta, d_cutoff, scale=longer)
    elif method == "savgol":
        def fn(pts, _longer):
            return savgol_filter_points(pts, window, polyorder)
    elif method == "none":
        def fn(pts, _longer):
            return pts
    else:
        raise ValueError(f"smoothing method: expected 'one_euro', 'savgol' or 'none', got {method!r}")
    return _apply_per_track(frames, fn)
