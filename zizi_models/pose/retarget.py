"""Retarget a driving pose sequence to the body proportions of a reference pose.

Given a driving sequence (e.g. a dancer) and a reference frame (e.g. the target character's
first frame), every body bone of the kinematic tree rooted at the neck (``BODY_TREE``) keeps
its direction from the driving pose and gets the length

    |driving bone at frame t| * L_ref / L_drv,

where L_ref is the bone's length in the reference and L_drv its length in the first driving
frame where the person has a neck (the median over the sequence when missing there). So at
that frame every bone has exactly its reference length, and foreshortening later in the
sequence is kept. Bones missing in the reference use the global scale ``s`` = median of the
per-bone ratios L_ref / L_drv (``s`` falls back to the ratio of body heights, then to 1).

The root (neck) moves as ``ref_root + s * (driving_neck(t) - driving_neck(t0))``: it starts on
the reference's neck and follows the driving motion, scaled. Hands stay attached to their
wrist and the face to the nose: translated with them and scaled by ``s``. A point whose
parent is missing is placed by the global map ``ref_root + s * (p - driving_neck(t0))``.
The output canvas is the reference canvas.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Sequence

import numpy as np

from .schema import PoseFrame, PoseKeypoint, frame_to_arrays, sequence_to_tracks, tracks_to_sequence
from .skeleton import (
    BODY_SLICE,
    BODY_TREE,
    FACE_SLICE,
    HAND_LEFT_SLICE,
    HAND_RIGHT_SLICE,
    L_WRIST,
    NECK,
    NOSE,
    R_WRIST,
)

logger = logging.getLogger(__name__)


def bone_lengths(body: np.ndarray) -> np.ndarray:
    """body ``[..., 18, 3]`` -> ``[..., n_bones]`` lengths of ``BODY_TREE`` bones (NaN if missing)."""
    parents = [p for p, _ in BODY_TREE]
    children = [c for _, c in BODY_TREE]
    a, b = body[..., parents, :], body[..., children, :]
    length = np.linalg.norm(b[..., :2] - a[..., :2], axis=-1)
    return np.where((a[..., 2] > 0) & (b[..., 2] > 0), length, np.nan)


def _root(body: np.ndarray) -> np.ndarray | None:
    """Neck position ``[2]``, else the mean of the present body points, else None."""
    if body[NECK, 2] > 0:
        return body[NECK, :2].copy()
    present = body[:, 2] > 0
    return body[present, :2].mean(axis=0) if present.any() else None


def _height(body: np.ndarray) -> float:
    present = body[body[:, 2] > 0]
    return float(np.ptp(present[:, 1])) if present.shape[0] >= 2 else 0.0


def _pick(ids: list[int], wanted: int | None, what: str) -> int:
    if not ids:
        raise ValueError(f"retarget: the {what} has no person")
    if wanted is None:
        return 0
    if wanted not in ids:
        raise ValueError(f"retarget: {what} person_id {wanted} not found (ids present: {ids})")
    return ids.index(wanted)


def retarget_pose_keypoint(
    driving: Sequence[PoseFrame],
    reference: PoseFrame,
    driving_person_id: int | None = None,
    reference_person_id: int | None = None,
    keep_others: bool = True,
) -> PoseKeypoint:
    """Map one driving person onto the reference person's proportions (see module docstring).

    driving_person_id / reference_person_id: default to the smallest id present. Other driving
    people are kept (``keep_others``) through the global map only, or dropped.
    """
    ref_ids, ref_people = frame_to_arrays(reference)  # [R, 130, 3]
    order = np.argsort(ref_ids)
    ref = ref_people[order][_pick(sorted(ref_ids), reference_person_id, "reference frame")]
    ids, tracks = sequence_to_tracks(driving)  # [F, T, 130, 3]
    col = _pick(ids, driving_person_id, "driving sequence")
    drv = tracks[:, col]  # [F, 130, 3]
    ref_body, drv_body = ref[BODY_SLICE], drv[:, BODY_SLICE]

    has_neck = np.flatnonzero(drv_body[:, NECK, 2] > 0)
    has_any = np.flatnonzero(np.any(drv_body[:, :, 2] > 0, axis=1))
    if has_any.size == 0:
        raise ValueError("retarget: the driving person has no body keypoint in any frame")
    t0 = int(has_neck[0]) if has_neck.size else int(has_any[0])
    root0 = _root(drv_body[t0])
    ref_root = _root(ref_body)
    if ref_root is None:
        raise ValueError("retarget: the reference person has no body keypoint")

    lengths = bone_lengths(drv_body)  # [F, B]
    l_drv = lengths[t0].copy()
    with warnings.catch_warnings():  # all-NaN columns (bones never seen) are expected
        warnings.simplefilter("ignore", RuntimeWarning)
        median = np.nanmedian(lengths, axis=0)
    l_drv = np.where(np.isnan(l_drv), median, l_drv)
    l_ref = bone_lengths(ref_body)
    ratio = l_ref / np.where(l_drv > 1e-6, l_drv, np.nan)
    known = np.isfinite(ratio)
    if known.any():
        s = float(np.median(ratio[known]))
    else:
        h_drv, h_ref = _height(drv_body[t0]), _height(ref_body)
        s = h_ref / h_drv if h_drv > 1e-6 and h_ref > 1e-6 else 1.0
    ratio = np.where(known, ratio, s)
    logger.debug("retarget: global scale %.3f, per-bone ratios %s", s, np.round(ratio, 3))

    def global_map(xy: np.ndarray) -> np.ndarray:
        return ref_root + s * (xy - root0)

    out = np.zeros_like(tracks)  # [F, T, 130, 3]
    for t in range(drv.shape[0]):
        src = drv[t]
        res = np.zeros_like(src)
        body_src, body_res = src[BODY_SLICE], res[BODY_SLICE]
        if body_src[NECK, 2] > 0:
            body_res[NECK] = (*global_map(body_src[NECK, :2]), body_src[NECK, 2])
        for b, (p, c) in enumerate(BODY_TREE):
            if body_src[c, 2] <= 0:
                continue
            if body_src[p, 2] > 0 and body_res[p, 2] > 0:
                body_res[c, :2] = body_res[p, :2] + (body_src[c, :2] - body_src[p, :2]) * ratio[b]
            else:
                body_res[c, :2] = global_map(body_src[c, :2])
            body_res[c, 2] = body_src[c, 2]
        for sl, anchor in ((HAND_LEFT_SLICE, L_WRIST), (HAND_RIGHT_SLICE, R_WRIST), (FACE_SLICE, NOSE)):
            part, present = src[sl], src[sl, 2] > 0
            if not present.any():
                continue
            if body_src[anchor, 2] > 0:
                moved = body_res[anchor, :2] + s * (part[present, :2] - body_src[anchor, :2])
            else:
                moved = global_map(part[present, :2])
            res[sl][present] = np.concatenate([moved, part[present, 2:3]], axis=1)
        out[t, col] = res
        if keep_others:
            for k in range(tracks.shape[1]):
                if k != col:
                    present = tracks[t, k, :, 2] > 0
                    out[t, k, present, :2] = global_map(tracks[t, k, present, :2])
                    out[t, k, present, 2] = tracks[t, k, present, 2]
    kept = list(range(len(ids))) if keep_others else [col]
    size = (int(reference["canvas_width"]), int(reference["canvas_height"]))
    return tracks_to_sequence([ids[k] for k in kept], out[:, kept], size)
