"""Conversions from other keypoint layouts to the OpenPose layouts of POSE_KEYPOINT.

All functions take numpy arrays and return ``[N, 3]`` float64 arrays (x, y, c) in canvas
pixels, with missing points as (0, 0, 0).

MediaPipe Holistic -> OpenPose
------------------------------
* body: 33 BlazePose landmarks -> 18 OpenPose points (``MEDIAPIPE_TO_OPENPOSE_BODY``); the
  neck is the midpoint of the shoulders with confidence min(left, right). Confidence is the
  landmark's ``visibility``.
* hands: MediaPipe and OpenPose share the 21-point hand order.
* face: 468 (or 478 with iris refinement) face-mesh vertices -> 70 OpenPose face points
  (``FACE_MESH_TO_OPENPOSE70``). The picks walk MediaPipe's own contours
  (``FACEMESH_FACE_OVAL``, ``*_EYEBROW``, ``*_EYE``, ``FACEMESH_LIPS``) and are mirror
  symmetric (each left point is the mesh mirror of its right partner):

  ======  ===========================================================================
  0-16    jaw, image-left ear to chin (152) to image-right ear: evenly spaced on the oval
  17-26   upper brow contours, outer->inner (right) then inner->outer (left)
  27-30   nose bridge 168 (between the eyes), 197, 5, tip 4
  31-35   under the nose: 98, 97, subnasale 2, 326, 327
  36-47   eye corners and lids, dlib order (the usual 6-point "eye aspect ratio" picks)
  48-59   outer lips: corner 61, 40, cupid's bow 37, 0, 267, 270, corner 291, lower 321,
          314, 17, 84, 91
  60-67   inner lips: 78, 81, 13, 311, 308, 402, 14, 178
  68-69   pupils: iris centres 468 / 473 when the mesh has 478 points, else the mean of
          the six eye-contour points
  ======  ===========================================================================

COCO-WholeBody (DWPose, 133 points) -> OpenPose
-----------------------------------------------
body 0-16 (COCO-17) -> 18 with a neck, feet 17-22 dropped, face 23-90 (68 points, pupils
estimated like above), left hand 91-111, right hand 112-132.
"""

from __future__ import annotations

import numpy as np

from .skeleton import (
    FACE_LEFT_EYE,
    FACE_LEFT_PUPIL,
    FACE_RIGHT_EYE,
    FACE_RIGHT_PUPIL,
    L_SHOULDER,
    N_BODY,
    N_FACE,
    N_HAND,
    NECK,
    R_SHOULDER,
)

# OpenPose body index -> MediaPipe pose landmark index (-1: the neck, computed).
MEDIAPIPE_TO_OPENPOSE_BODY: tuple[int, ...] = (
    0, -1, 12, 14, 16, 11, 13, 15, 24, 26, 28, 23, 25, 27, 5, 2, 8, 7,
)
# OpenPose body index -> COCO-17 index (-1: the neck, computed).
COCO17_TO_OPENPOSE_BODY: tuple[int, ...] = (
    0, -1, 6, 8, 10, 5, 7, 9, 12, 14, 16, 11, 13, 15, 2, 1, 4, 3,
)

# OpenPose face index (0-67) -> MediaPipe face-mesh vertex. 68/69 (pupils) are handled apart.
FACE_MESH_TO_OPENPOSE70: tuple[int, ...] = (
    # jaw 0-16
    127, 234, 132, 58, 136, 150, 149, 148, 152, 377, 378, 379, 365, 288, 361, 454, 356,
    # right brow 17-21, left brow 22-26
    70, 63, 105, 66, 107, 336, 296, 334, 293, 300,
    # nose bridge 27-30, under the nose 31-35
    168, 197, 5, 4, 98, 97, 2, 326, 327,
    # right eye 36-41, left eye 42-47
    33, 160, 158, 133, 153, 144, 362, 385, 387, 263, 373, 380,
    # outer lips 48-59
    61, 40, 37, 0, 267, 270, 291, 321, 314, 17, 84, 91,
    # inner lips 60-67
    78, 81, 13, 311, 308, 402, 14, 178,
)
MESH_RIGHT_IRIS_CENTRE, MESH_LEFT_IRIS_CENTRE = 468, 473


def _to_pixels(xy_norm: np.ndarray, width: int, height: int) -> np.ndarray:
    """[N, 2] normalised (0..1) -> [N, 2] pixels."""
    return xy_norm * np.array([width, height], dtype=np.float64)


def drop_outside(points: np.ndarray, width: int, height: int) -> np.ndarray:
    """Mark points outside the canvas ``[0, W) x [0, H)`` as missing. [N, 3] -> new [N, 3]."""
    out = np.array(points, dtype=np.float64, copy=True)
    outside = (out[:, 0] < 0) | (out[:, 1] < 0) | (out[:, 0] >= width) | (out[:, 1] >= height)
    out[outside | (out[:, 2] <= 0)] = 0.0
    return out


def _finish(points: np.ndarray, min_confidence: float, width: int, height: int, clip: bool) -> np.ndarray:
    points[points[:, 2] < min_confidence] = 0.0
    points[:, 2] = np.clip(points[:, 2], 0.0, 1.0)
    return drop_outside(points, width, height) if clip else _zero_missing(points)


def _zero_missing(points: np.ndarray) -> np.ndarray:
    points[points[:, 2] <= 0] = 0.0
    return points


def _body_with_neck(src: np.ndarray, index_map: tuple[int, ...]) -> np.ndarray:
    """src [N, 3] pixels+conf, OpenPose->src index map -> [18, 3] with a computed neck."""
    out = np.zeros((N_BODY, 3), dtype=np.float64)
    for op_idx, src_idx in enumerate(index_map):
        if src_idx >= 0:
            out[op_idx] = src[src_idx]
    right, left = out[R_SHOULDER], out[L_SHOULDER]
    out[NECK, :2] = (right[:2] + left[:2]) / 2.0
    out[NECK, 2] = min(right[2], left[2])
    return out


def mediapipe_pose_to_openpose(
    landmarks: np.ndarray, width: int, height: int, min_confidence: float = 0.5, clip: bool = True
) -> np.ndarray:
    """MediaPipe pose landmarks ``[33, >=3]`` (x, y normalised; column 2 = visibility) -> ``[18, 3]``.

    Points with visibility < ``min_confidence`` (and, with ``clip``, points outside the canvas)
    are missing; the neck is missing when either shoulder is.
    """
    lm = np.asarray(landmarks, dtype=np.float64)
    if lm.ndim != 2 or lm.shape[0] != 33 or lm.shape[1] < 3:
        raise ValueError(f"MediaPipe pose landmarks: expected shape [33, >=3], got {list(lm.shape)}")
    src = np.concatenate([_to_pixels(lm[:, :2], width, height), lm[:, 2:3]], axis=1)
    out = _body_with_neck(src, MEDIAPIPE_TO_OPENPOSE_BODY)
    # the neck inherits the shoulders' threshold: compute before thresholding, then threshold
    return _finish(out, min_confidence, width, height, clip)


def mediapipe_hand_to_openpose(
    landmarks: np.ndarray, width: int, height: int, confidence: float = 1.0, clip: bool = True
) -> np.ndarray:
    """MediaPipe hand landmarks ``[21, >=2]`` (normalised) -> ``[21, 3]`` with confidence ``confidence``."""
    lm = np.asarray(landmarks, dtype=np.float64)
    if lm.ndim != 2 or lm.shape[0] != N_HAND or lm.shape[1] < 2:
        raise ValueError(f"MediaPipe hand landmarks: expected shape [21, >=2], got {list(lm.shape)}")
    out = np.zeros((N_HAND, 3), dtype=np.float64)
    out[:, :2] = _to_pixels(lm[:, :2], width, height)
    out[:, 2] = confidence
    return _finish(out, 1e-9, width, height, clip)


def add_pupils(face: np.ndarray) -> np.ndarray:
    """Fill face points 68/69 (pupils) with the eye-contour centres where all six points exist.

    face: [70, 3] (modified in place and returned); confidence = min over the contour.
    """
    for pupil, contour in ((FACE_RIGHT_PUPIL, FACE_RIGHT_EYE), (FACE_LEFT_PUPIL, FACE_LEFT_EYE)):
        pts = face[list(contour)]
        if face[pupil, 2] <= 0 and np.all(pts[:, 2] > 0):
            face[pupil, :2] = pts[:, :2].mean(axis=0)
            face[pupil, 2] = pts[:, 2].min()
    return face


def mediapipe_face_to_openpose(
    landmarks: np.ndarray, width: int, height: int, confidence: float = 1.0, clip: bool = True
) -> np.ndarray:
    """MediaPipe face mesh ``[468 or 478, >=2]`` (normalised) -> OpenPose face ``[70, 3]``."""
    lm = np.asarray(landmarks, dtype=np.float64)
    if lm.ndim != 2 or lm.shape[0] not in (468, 478) or lm.shape[1] < 2:
        raise ValueError(f"MediaPipe face mesh: expected shape [468 or 478, >=2], got {list(lm.shape)}")
    xy = _to_pixels(lm[:, :2], width, height)
    out = np.zeros((N_FACE, 3), dtype=np.float64)
    out[:68, :2] = xy[list(FACE_MESH_TO_OPENPOSE70)]
    out[:68, 2] = confidence
    if lm.shape[0] == 478:
        out[FACE_RIGHT_PUPIL, :2] = xy[MESH_RIGHT_IRIS_CENTRE]
        out[FACE_LEFT_PUPIL, :2] = xy[MESH_LEFT_IRIS_CENTRE]
        out[68:, 2] = confidence
    else:
        add_pupils(out)
    return _finish(out, 1e-9, width, height, clip)


def coco_wholebody_to_openpose(
    keypoints: np.ndarray, scores: np.ndarray, min_confidence: float = 0.3
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """One COCO-WholeBody person (DWPose) -> (body [18,3], left hand [21,3], right hand [21,3], face [70,3]).

    keypoints: [133, 2] pixels; scores: [133] (clipped to [0, 1]); points below
    ``min_confidence`` are missing.
    """
    kp = np.asarray(keypoints, dtype=np.float64).reshape(-1, 2)
    sc = np.clip(np.asarray(scores, dtype=np.float64).reshape(-1), 0.0, 1.0)
    if kp.shape[0] != 133 or sc.shape[0] != 133:
        raise ValueError(f"COCO-WholeBody: expected 133 keypoints and scores, got {kp.shape[0]} and {sc.shape[0]}")
    src = np.concatenate([kp, sc[:, None]], axis=1)
    src[src[:, 2] < min_confidence] = 0.0
    body = _zero_missing(_body_with_neck(src, COCO17_TO_OPENPOSE_BODY))
    face = np.zeros((N_FACE, 3), dtype=np.float64)
    face[:68] = src[23:91]
    face = add_pupils(face)
    return body, src[91:112].copy(), src[112:133].copy(), face
