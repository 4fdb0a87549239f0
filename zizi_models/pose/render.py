"""Draw POSE_KEYPOINT frames as OpenPose ControlNet hint images (RGB, black background).

Drawing follows the standard OpenPose annotator used to train the OpenPose ControlNets:
per person, the 17 limbs as filled ellipses in the limb colours (``BODY_COLORS`` x 0.6), then
the 18 joints as discs in the joint colours; hands as lines in the HSV rainbow (edge i has
hue i/20) with blue joint discs; face points as white discs.

Sizes are those of the annotator at 512 px (limb half-width 4, joint radius 4, hand line 2,
hand joint radius 4, face dot radius 3) scaled by ``min(H, W) / 512 * line_scale``, at least 1.
Keypoints are mapped from the frame's canvas to the output size by scaling each axis, so a
frame can be rendered at any resolution. Keypoints with confidence <= ``min_confidence``
(default 0: only missing points) are not drawn.
"""

from __future__ import annotations

import colorsys
import math
from collections.abc import Sequence

import cv2
import numpy as np

from .schema import PoseFrame, frame_to_arrays
from .skeleton import (
    BODY_COLORS,
    BODY_LIMBS,
    BODY_SLICE,
    FACE_COLOR,
    FACE_SLICE,
    HAND_EDGES,
    HAND_JOINT_COLOR,
    HAND_LEFT_SLICE,
    HAND_RIGHT_SLICE,
    limb_color,
)

REFERENCE_SIDE = 512  # the annotator's detect resolution, where the base sizes apply
HAND_EDGE_COLORS: tuple[tuple[int, int, int], ...] = tuple(
    tuple(int(round(v * 255)) for v in colorsys.hsv_to_rgb(i / len(HAND_EDGES), 1.0, 1.0))  # type: ignore[misc]
    for i in range(len(HAND_EDGES))
)


def stroke_sizes(width: int, height: int, line_scale: float = 1.0) -> dict[str, int]:
    """Pixel sizes of the strokes for an output of ``width`` x ``height``."""
    s = min(width, height) / REFERENCE_SIDE * line_scale
    base = {"limb": 4, "joint": 4, "hand_line": 2, "hand_joint": 4, "face": 3}
    return {k: max(1, int(round(v * s))) for k, v in base.items()}


def _draw_body(canvas: np.ndarray, body: np.ndarray, sizes: dict[str, int], min_c: float) -> None:
    """body: [18, 3] in output pixels."""
    for i, (a, b) in enumerate(BODY_LIMBS):
        if body[a, 2] <= min_c or body[b, 2] <= min_c:
            continue
        (x0, y0), (x1, y1) = body[a, :2], body[b, :2]
        length = math.hypot(x1 - x0, y1 - y0)
        angle = math.degrees(math.atan2(y1 - y0, x1 - x0))
        centre = (int(round((x0 + x1) / 2)), int(round((y0 + y1) / 2)))
        poly = cv2.ellipse2Poly(centre, (int(round(length / 2)), sizes["limb"]), int(round(angle)), 0, 360, 1)
        cv2.fillConvexPoly(canvas, poly, limb_color(i))
    for j, colour in enumerate(BODY_COLORS):
        if body[j, 2] > min_c:
            centre = (int(round(body[j, 0])), int(round(body[j, 1])))
            cv2.circle(canvas, centre, sizes["joint"], colour, thickness=-1)


def _draw_hand(canvas: np.ndarray, hand: np.ndarray, sizes: dict[str, int], min_c: float) -> None:
    """hand: [21, 3] in output pixels."""
    pts = np.round(hand[:, :2]).astype(np.int64)
    for i, (a, b) in enumerate(HAND_EDGES):
        if hand[a, 2] > min_c and hand[b, 2] > min_c:
            cv2.line(canvas, tuple(map(int, pts[a])), tuple(map(int, pts[b])), HAND_EDGE_COLORS[i], sizes["hand_line"])
    for j in range(hand.shape[0]):
        if hand[j, 2] > min_c:
            cv2.circle(canvas, tuple(map(int, pts[j])), sizes["hand_joint"], HAND_JOINT_COLOR, thickness=-1)


def _draw_face(canvas: np.ndarray, face: np.ndarray, sizes: dict[str, int], min_c: float) -> None:
    """face: [70, 3] in output pixels."""
    pts = np.round(face[:, :2]).astype(np.int64)
    for j in range(face.shape[0]):
        if face[j, 2] > min_c:
            cv2.circle(canvas, tuple(map(int, pts[j])), sizes["face"], FACE_COLOR, thickness=-1)


def render_frame(
    frame: PoseFrame,
    width: int | None = None,
    height: int | None = None,
    draw_body: bool = True,
    draw_hands: bool = True,
    draw_face: bool = True,
    line_scale: float = 1.0,
    min_confidence: float = 0.0,
) -> np.ndarray:
    """One strict POSE_KEYPOINT frame -> RGB uint8 image ``[H, W, 3]`` (default: canvas size)."""
    cw, ch = int(frame["canvas_width"]), int(frame["canvas_height"])
    width, height = int(width or cw), int(height or ch)
    if width <= 0 or height <= 0:
        raise ValueError(f"render size must be positive, got {width}x{height}")
    canvas = np.zeros((height, width, 3), dtype=np.uint8)
    _ids, people = frame_to_arrays(frame)  # [P, 130, 3]
    if people.shape[0] == 0:
        return canvas
    people[..., 0] *= width / cw
    people[..., 1] *= height / ch
    sizes = stroke_sizes(width, height, line_scale)
    for pts in people:
        if draw_body:
            _draw_body(canvas, pts[BODY_SLICE], sizes, min_confidence)
        if draw_hands:
            _draw_hand(canvas, pts[HAND_LEFT_SLICE], sizes, min_confidence)
            _draw_hand(canvas, pts[HAND_RIGHT_SLICE], sizes, min_confidence)
        if draw_face:
            _draw_face(canvas, pts[FACE_SLICE], sizes, min_confidence)
    return canvas


def render_pose_keypoint(
    frames: Sequence[PoseFrame],
    width: int | None = None,
    height: int | None = None,
    draw_body: bool = True,
    draw_hands: bool = True,
    draw_face: bool = True,
    line_scale: float = 1.0,
    min_confidence: float = 0.0,
    as_float: bool = False,
) -> np.ndarray:
    """Every frame -> ``[F, H, W, 3]`` (uint8, or float32 in 0..1 with ``as_float`` for IMAGE).

    Without ``width``/``height`` the first frame's canvas size is used for all frames.
    """
    if len(frames) == 0:
        raise ValueError("render_pose_keypoint: no frames to render")
    width = int(width or frames[0]["canvas_width"])
    height = int(height or frames[0]["canvas_height"])
    out = np.zeros((len(frames), height, width, 3), dtype=np.float32 if as_float else np.uint8)
    for t, frame in enumerate(frames):
        img = render_frame(frame, width, height, draw_body, draw_hands, draw_face, line_scale, min_confidence)
        out[t] = img.astype(np.float32) / 255.0 if as_float else img
    return out
