"""Stable person ids across frames: Hungarian matching on mean keypoint distance.

Each frame's people are matched to the live tracks (people seen in the last ``max_age``
frames, at their last known keypoints) by minimising the summed cost, where the cost of a
pair is the mean distance between the body keypoints present in both, divided by the canvas
diagonal. Pairs with no common keypoint or a cost above ``max_distance`` never match.
Unmatched people start new tracks; ids are allocated in increasing order and never reused.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np

from .schema import PoseFrame, PoseKeypoint, frame_from_arrays, frame_to_arrays
from .skeleton import BODY_SLICE, FACE_SLICE

logger = logging.getLogger(__name__)

_NO_MATCH = 1e6


def pose_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Mean pixel distance between the keypoints present in both ``[K, 3]`` arrays (inf if none)."""
    both = (a[:, 2] > 0) & (b[:, 2] > 0)
    if not both.any():
        return float("inf")
    return float(np.linalg.norm(a[both, :2] - b[both, :2], axis=1).mean())


def _mean_distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """[P, K, 3] x [L, K, 3] -> [P, L] mean distance over the points present in both (inf if none)."""
    both = (a[:, None, :, 2] > 0) & (b[None, :, :, 2] > 0)  # [P, L, K]
    dist = np.linalg.norm(a[:, None, :, :2] - b[None, :, :, :2], axis=-1)  # [P, L, K]
    count = both.sum(-1)
    total = np.where(both, dist, 0.0).sum(-1)
    return np.where(count > 0, total / np.maximum(count, 1), np.inf)


def _cost_matrix(people: np.ndarray, tracks: np.ndarray) -> np.ndarray:
    """[P, 130, 3] x [L, 130, 3] -> [P, L]: body distance, or face distance when no common body point."""
    body = _mean_distances(people[:, BODY_SLICE], tracks[:, BODY_SLICE])
    face = _mean_distances(people[:, FACE_SLICE], tracks[:, FACE_SLICE])
    return np.where(np.isfinite(body), body, face)


def assign_track_ids(
    frames: Sequence[PoseFrame], max_distance: float = 0.1, max_age: int = 30
) -> PoseKeypoint:
    """Return a copy of ``frames`` whose ``person_id`` values follow people through time.

    max_distance: largest mean keypoint distance for a match, as a fraction of the canvas
    diagonal. max_age: frames a track may go unseen before it is retired (its id is never
    given to anyone else). Input ids are ignored.
    """
    from scipy.optimize import linear_sum_assignment  # local: keeps `import zizi_models.pose` light

    tracks: dict[int, tuple[np.ndarray, int]] = {}  # id -> (last keypoints [130, 3], last frame)
    next_id = 0
    out: PoseKeypoint = []
    for t, frame in enumerate(frames):
        _ids, people = frame_to_arrays(frame)  # [P, 130, 3]
        people = people[np.any(people[..., 2] > 0, axis=1)]  # nobody without a single keypoint
        diag = float(np.hypot(frame["canvas_width"], frame["canvas_height"]))
        for tid in [k for k, (_, seen) in tracks.items() if t - seen > max_age]:
            del tracks[tid]
        live = sorted(tracks)
        assigned: list[int | None] = [None] * len(people)
        if live and len(people):
            dist = _cost_matrix(people, np.stack([tracks[tid][0] for tid in live])) / diag  # [P, L]
            cost = np.where(dist <= max_distance, dist, _NO_MATCH)
            rows, cols = linear_sum_assignment(cost)
            for i, j in zip(rows, cols, strict=True):
                if cost[i, j] < _NO_MATCH:
                    assigned[i] = live[j]
        new_ids: list[int] = []
        for i, tid in enumerate(assigned):
            if tid is None:
                tid, next_id = next_id, next_id + 1
                logger.debug("frame %d: new track %d", t, tid)
            new_ids.append(tid)
            if tid in tracks:  # remember the last known position of points missing now
                prev = tracks[tid][0]
                tracks[tid] = (np.where(people[i][:, 2:3] > 0, people[i], prev), t)
            else:
                tracks[tid] = (people[i], t)
        order = np.argsort(new_ids, kind="stable")
        out.append(
            frame_from_arrays([new_ids[k] for k in order], people[order], frame["canvas_width"], frame["canvas_height"])
        )
    return out

