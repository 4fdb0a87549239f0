"""Draw the puppet of a POSE_KEYPOINT frame in a character's colours (RGB uint8).

Drawing (first person of the frame, its 18 body points; hands and face are not drawn):
* torso: filled quadrilateral shoulders-hips, plus a capsule neck-mid-hip (so it keeps a body in
  profile) and capsules along the shoulders and the hips (rounded corners), in ``torso``;
* head: filled circle, radius 0.9 x |neck - nose|, centred on the ears (their mean, or 60 % towards
  the single present ear), on the nose when no ear is present; a short neck in the head colour;
* limbs: capsules (rounded thick lines) per segment, radii proportional to the body size (neck to
  mid-hip distance) times ``limb_thickness``.
* draw order: far-side arm and leg (the side whose ear is missing while the other ear is present),
  the other legs, torso, head, the other arms.
* background: flat, or the character's static pattern (stripes or checker board, fixed to the frame).
Keypoints with c == 0 are missing: every segment touching one is skipped.
Rendering happens at ``SUPERSAMPLE`` x the output size, then an area downsample antialiases edges.
Coordinates are the frame's canvas pixels, scaled per axis to the output size.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import replace

import cv2
import numpy as np

from ..pose.schema import PoseFrame, body_keypoints
from ..pose.skeleton import (
    L_ANKLE,
    L_EAR,
    L_ELBOW,
    L_HIP,
    L_KNEE,
    L_SHOULDER,
    L_WRIST,
    NECK,
    NOSE,
    R_ANKLE,
    R_EAR,
    R_ELBOW,
    R_HIP,
    R_KNEE,
    R_SHOULDER,
    R_WRIST,
)
from .appearance import PATTERNS
from .character import BODY_PARTS, RGB, Character

logger = logging.getLogger(__name__)

SUPERSAMPLE = 4
_SHIFT = 4  # cv2 fractional bits
_TORSO_LEN = 0.32  # neck to mid-hip in the puppet's body units (see motion.py)
# radii in body units (the puppet is 1.0 tall)
_R_UPPER_ARM, _R_LOWER_ARM, _R_UPPER_LEG, _R_LOWER_LEG = 0.032, 0.027, 0.042, 0.034
_R_TORSO, _R_SHOULDERS, _R_HIPS, _R_NECK = 0.075, 0.035, 0.045, 0.03


def _fix(p: np.ndarray) -> tuple[int, int]:
    return int(round(p[0] * (1 << _SHIFT))), int(round(p[1] * (1 << _SHIFT)))


def _disc(img: np.ndarray, p: np.ndarray, r: float, colour: RGB) -> None:
    cv2.circle(img, _fix(p), max(1, int(round(r * (1 << _SHIFT)))), colour, -1, cv2.LINE_8, _SHIFT)


def _capsule(img: np.ndarray, a: np.ndarray, b: np.ndarray, r: float, colour: RGB) -> None:
    """A thick segment a-b with round caps of radius ``r`` (pixels)."""
    d = b - a
    n = float(np.hypot(*d))
    if n > 1e-6:
        off = np.array([-d[1], d[0]]) / n * r
        quad = np.array([_fix(a + off), _fix(b + off), _fix(b - off), _fix(a - off)], dtype=np.int32)
        cv2.fillConvexPoly(img, quad, colour, cv2.LINE_8, _SHIFT)
    _disc(img, a, r, colour)
    _disc(img, b, r, colour)


def _body_unit(body: np.ndarray, height: int) -> float:
    """Pixels per puppet body unit, from the torso, else the head, else the canvas height."""
    ok = body[:, 2] > 0
    hips = [body[j, :2] for j in (R_HIP, L_HIP) if ok[j]]
    if ok[NECK] and hips:
        torso = float(np.hypot(*(body[NECK, :2] - np.mean(hips, axis=0))))
        if torso > 1e-6:
            return torso / _TORSO_LEN
    if ok[NECK] and ok[NOSE]:
        head = float(np.hypot(*(body[NECK, :2] - body[NOSE, :2])))
        if head > 1e-6:
            return head / 0.085
    return 0.76 * height


def _far_side(ok: np.ndarray) -> str | None:
    """'l' or 'r' when exactly one ear is visible (profile): the side whose ear is hidden is far."""
    if ok[R_EAR] and not ok[L_EAR]:
        return "l"
    if ok[L_EAR] and not ok[R_EAR]:
        return "r"
    return None


def _draw_person(img: np.ndarray, body: np.ndarray, ch: Character, unit: float) -> None:
    """body: [18, 3] in supersampled pixels."""
    ok = body[:, 2] > 0
    xy = body[:, :2]
    th = ch.limb_thickness * unit

    def seg(a: int, b: int, r: float, colour: RGB) -> None:
        if ok[a] and ok[b]:
            _capsule(img, xy[a], xy[b], r * th, colour)

    def arm(side: str) -> None:
        s, e, w = (R_SHOULDER, R_ELBOW, R_WRIST) if side == "r" else (L_SHOULDER, L_ELBOW, L_WRIST)
        up, lo = (ch.upper_arm_right, ch.lower_arm_right) if side == "r" else (ch.upper_arm_left, ch.lower_arm_left)
        seg(e, w, _R_LOWER_ARM, lo)
        seg(s, e, _R_UPPER_ARM, up)

    def leg(side: str) -> None:
        h, k, a = (R_HIP, R_KNEE, R_ANKLE) if side == "r" else (L_HIP, L_KNEE, L_ANKLE)
        up, lo = (ch.upper_leg_right, ch.lower_leg_right) if side == "r" else (ch.upper_leg_left, ch.lower_leg_left)
        seg(k, a, _R_LOWER_LEG, lo)
        seg(h, k, _R_UPPER_LEG, up)

    far = _far_side(ok)
    near = [s for s in ("r", "l") if s != far]
    if far is not None:
        arm(far)
        leg(far)
    for side in near:
        leg(side)
    # torso
    quad = (R_SHOULDER, L_SHOULDER, L_HIP, R_HIP)
    if all(ok[j] for j in quad):
        pts = np.array([_fix(xy[j]) for j in quad], dtype=np.int32)
        cv2.fillPoly(img, [pts], ch.torso, cv2.LINE_8, _SHIFT)
    hips = [xy[j] for j in (R_HIP, L_HIP) if ok[j]]
    if ok[NECK] and hips:
        _capsule(img, xy[NECK], np.mean(hips, axis=0), _R_TORSO * unit, ch.torso)
    seg(R_SHOULDER, L_SHOULDER, _R_SHOULDERS, ch.torso)
    seg(R_HIP, L_HIP, _R_HIPS, ch.torso)
    # head
    if ok[NOSE]:
        ears = [xy[j] for j in (R_EAR, L_EAR) if ok[j]]
        if len(ears) == 2:
            centre = (ears[0] + ears[1]) / 2
        elif ears:
            centre = np.array([0.6 * ears[0][0] + 0.4 * xy[NOSE, 0], ears[0][1]])
        else:
            centre = xy[NOSE].copy()
        radius = 0.9 * float(np.hypot(*(xy[NECK] - xy[NOSE]))) if ok[NECK] else 0.075 * unit
        radius *= ch.head_scale
        radius = max(radius, 0.5)
        if ok[NECK]:
            _capsule(img, xy[NECK], centre, _R_NECK * unit, ch.head)
        _disc(img, centre, radius, ch.head)
    for side in near:
        arm(side)


def _paint_background(img: np.ndarray, character: Character, height: int) -> None:
    """The background (flat or patterned) on a supersampled canvas; the pattern is fixed to the frame."""
    img[:] = character.background
    if character.pattern == "flat" or character.pattern_colour is None:
        return
    if character.pattern not in PATTERNS:
        raise ValueError(f"pattern: expected one of {', '.join(PATTERNS)}, got {character.pattern!r}")
    half = max(1.0, character.pattern_period * height * SUPERSAMPLE / 2)  # supersampled pixels per band
    rows = (np.arange(img.shape[0]) // half).astype(int) % 2 == 1  # [H*ss]
    cols = (np.arange(img.shape[1]) // half).astype(int) % 2 == 1  # [W*ss]
    if character.pattern == "stripes_h":
        mask = np.broadcast_to(rows[:, None], img.shape[:2])
    elif character.pattern == "stripes_v":
        mask = np.broadcast_to(cols[None, :], img.shape[:2])
    else:
        mask = rows[:, None] ^ cols[None, :]
    img[mask] = character.pattern_colour


def _render_supersampled(frame: PoseFrame, character: Character, width: int | None,
                         height: int | None) -> tuple[np.ndarray, int, int]:
    """(the puppet at SUPERSAMPLE x [H*ss, W*ss, 3], width, height)."""
    cw, chh = int(frame["canvas_width"]), int(frame["canvas_height"])
    width, height = int(width or cw), int(height or chh)
    if width <= 0 or height <= 0:
        raise ValueError(f"width/height: render size must be positive, got {width}x{height}")
    ss = SUPERSAMPLE
    img = np.empty((height * ss, width * ss, 3), dtype=np.uint8)
    _paint_background(img, character, height)
    people = body_keypoints(frame)
    if people.shape[0]:
        body = people[0].copy()
        # pixel centres: output pixel i (centre at x = i) covers supersampled pixels ss*i .. ss*i + ss - 1
        body[:, 0] = body[:, 0] * (width / cw) * ss + 0.5 * (ss - 1)
        body[:, 1] = body[:, 1] * (height / chh) * ss + 0.5 * (ss - 1)
        _draw_person(img, body, character, _body_unit(body, height * ss))
    return img, width, height


def render_puppet(frame: PoseFrame, character: Character, width: int | None = None,
                  height: int | None = None) -> np.ndarray:
    """The first person of ``frame`` drawn as ``character`` -> RGB uint8 ``[H, W, 3]``.

    Default size: the frame's canvas. Pure function of its inputs.
    """
    img, width, height = _render_supersampled(frame, character, width, height)
    return cv2.resize(img, (width, height), interpolation=cv2.INTER_AREA)


def render_part_labels(frame: PoseFrame, character: Character, width: int | None = None,
                       height: int | None = None) -> np.ndarray:
    """Which body part each output pixel shows -> int8 ``[H, W]``: ``1 + BODY_PARTS.index(part)`` where the
    whole pixel is that part (as ``render_puppet`` draws ``character``, occlusion included), 0 where it is
    all background, -1 on edges (a pixel that mixes two of them)."""
    labels = replace(character, background=(0, 0, 0), pattern="flat", pattern_colour=None,
                     **{part: (k + 1, 0, 0) for k, part in enumerate(BODY_PARTS)})
    img, width, height = _render_supersampled(frame, labels, width, height)
    ss = SUPERSAMPLE
    cells = img[..., 0].reshape(height, ss, width, ss)  # [H, ss, W, ss]
    low, high = cells.min(axis=(1, 3)), cells.max(axis=(1, 3))
    return np.where(low == high, low.astype(np.int8), np.int8(-1))


def render_clip(poses: Sequence[PoseFrame], character: Character, width: int | None = None,
                height: int | None = None) -> np.ndarray:
    """Every frame -> ``[T, H, W, 3]`` uint8 (default size: the first frame's canvas)."""
    if len(poses) == 0:
        raise ValueError("poses: no frames to render")
    width = int(width or poses[0]["canvas_width"])
    height = int(height or poses[0]["canvas_height"])
    out = np.empty((len(poses), height, width, 3), dtype=np.uint8)
    for t, frame in enumerate(poses):
        out[t] = render_puppet(frame, character, width, height)
    return out
