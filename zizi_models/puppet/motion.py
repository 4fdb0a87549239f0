"""Synthetic motions of a 3D stick puppet, returned as strict POSE_KEYPOINT sequences.

Conventions
-----------
* Body units: the standing puppet is 1.0 tall (ground at y = 0, top of the head at y = 1).
  Body frame: X = the subject's left, Y = up, Z = forward (towards the camera at yaw 0).
* Joint angles are radians. Yaw turns the body about the vertical axis: yaw 0 faces the camera
  (the subject's right on the image left), +pi/2 faces image-right (the left side is then far).
* Orthographic projection: image x = cx(t) + s * x, image y = ground - s * y, with s = 0.76 * H
  (smaller when the motion would not fit) and ground at 0.9 * H, so the drawn puppet is about 76 % of
  the frame height. The lowest ankle is planted on the ground every frame. cx(t) follows the motion's
  slow drift inside the horizontal room left by the motion's widest pose (the puppet never leaves the
  frame, also as drawn by ``render_puppet``).
* Periods at speed 1: walk stride 24 frames, dance 32, turn 96 per full turn, idle 48 (breathing).
* Body points are always present (c = 1). Eyes and ears are present only when they face the camera
  (the far ear disappears in profile, the eyes from behind). Hands and face lists are all missing.
"""

from __future__ import annotations

import logging
import math
import numbers
from dataclasses import dataclass

import numpy as np

from ..pose.schema import PoseFrame, frame_from_arrays
from ..pose.skeleton import BODY_SLICE, K_ALL

logger = logging.getLogger(__name__)

MOTIONS: tuple[str, ...] = ("walk", "dance", "turn", "idle")
PERIODS = {"walk": 24.0, "dance": 32.0, "turn": 96.0, "idle": 48.0}
PARAMS: tuple[str, ...] = (
    "yaw", "lean", "bow", "sway", "tilt", "breathe", "drift",
    "r_sh_pitch", "r_sh_abd", "r_elbow", "l_sh_pitch", "l_sh_abd", "l_elbow",
    "r_hip_pitch", "r_hip_abd", "r_knee", "l_hip_pitch", "l_hip_abd", "l_knee",
)
_P = {name: i for i, name in enumerate(PARAMS)}
BODY_HEIGHT_FRACTION = 0.76
GROUND_FRACTION = 0.9
WALK_YAW = 1.31  # ~75 degrees: three-quarter profile, so the strides show
BLEND_FRAMES = 12
_PAD = 0.09  # body units kept clear around every keypoint (drawn head and limb radii)
_ANKLE_Y = 0.04
_LEG = (0.24, 0.24)
_ARM = (0.16, 0.15)
_TAU = 2.0 * math.pi


@dataclass(frozen=True)
class _Jitter:
    phase: float
    amp: float
    direction: float
    drift_phase: float
    yaw: float


def _jitter(seed: int) -> _Jitter:
    rng = np.random.default_rng([abs(int(seed)), int(seed < 0)])
    return _Jitter(
        phase=float(rng.uniform(0, _TAU)), amp=float(rng.uniform(0.85, 1.15)),
        direction=float(rng.choice([-1.0, 1.0])), drift_phase=float(rng.uniform(0, _TAU)),
        yaw=float(rng.uniform(-0.1, 0.1)),
    )


def _base_yaw(kind: str, j: _Jitter) -> float:
    return j.yaw + (j.direction * WALK_YAW if kind == "walk" else 0.0)


def _track(kind: str, t: np.ndarray, speed: float, j: _Jitter, yaw0: float) -> np.ndarray:
    """Joint angles ``[T, len(PARAMS)]`` of one motion kind at (local) frame times ``t``."""
    out = np.zeros((t.size, len(PARAMS)))
    p = _TAU * speed * t / PERIODS[kind] + j.phase
    a = j.amp
    v: dict[str, np.ndarray | float] = {}
    if kind == "idle":
        v = dict(yaw=yaw0 + 0.08 * np.sin(p / 2), breathe=0.006 * np.sin(p), sway=0.012 * np.sin(p / 2),
                 lean=-0.02 * np.sin(p / 2), tilt=0.04 * np.sin(p / 2 + 1), r_sh_abd=0.12 + 0.03 * np.sin(p),
                 l_sh_abd=0.12 + 0.03 * np.sin(p), r_sh_pitch=0.05 * np.sin(p / 2), l_sh_pitch=0.05 * np.sin(p / 2),
                 r_elbow=0.15, l_elbow=0.15, r_hip_abd=0.05, l_hip_abd=0.05,
                 drift=0.1 * np.sin(p / 4 + j.drift_phase))
        v["r_knee"] = v["l_knee"] = 0.05 + 0.03 * (1 + np.sin(p)) / 2
    elif kind == "walk":
        s, c = np.sin(p), np.cos(p)
        v = dict(yaw=yaw0, bow=0.06, sway=0.01 * s, breathe=0.003 * np.cos(2 * p),
                 r_hip_pitch=0.45 * a * s, l_hip_pitch=-0.45 * a * s,
                 r_knee=0.1 + 0.7 * a * ((1 + c) / 2) ** 2, l_knee=0.1 + 0.7 * a * ((1 - c) / 2) ** 2,
                 r_sh_pitch=-0.36 * a * s, l_sh_pitch=0.36 * a * s, r_sh_abd=0.1, l_sh_abd=0.1,
                 r_elbow=0.3 + 0.3 * (0.5 - 0.5 * s), l_elbow=0.3 + 0.3 * (0.5 + 0.5 * s),
                 drift=np.sin(_TAU * speed * t / 240.0 + j.drift_phase))
    elif kind == "dance":
        s = np.sin(p)
        knee = 0.15 + 0.45 * a * (0.5 + 0.5 * np.sin(2 * p))
        v = dict(yaw=yaw0 + 0.25 * a * s, sway=0.05 * a * s, lean=-0.12 * s, tilt=0.12 * s,
                 r_sh_abd=0.3 + 1.8 * a * (0.5 + 0.5 * s), l_sh_abd=0.3 + 1.8 * a * (0.5 - 0.5 * s),
                 r_sh_pitch=0.2 * np.sin(2 * p), l_sh_pitch=-0.2 * np.sin(2 * p),
                 r_elbow=0.4 + 0.5 * (0.5 + 0.5 * np.cos(p)), l_elbow=0.4 + 0.5 * (0.5 - 0.5 * np.cos(p)),
                 r_knee=knee, l_knee=knee, r_hip_pitch=0.5 * knee, l_hip_pitch=0.5 * knee,
                 r_hip_abd=0.12, l_hip_abd=0.12, drift=0.3 * np.sin(p / 8 + j.drift_phase))
    elif kind == "turn":
        q = _TAU * speed * t / PERIODS["walk"] + j.phase  # stepping round while turning
        rk = 0.08 + 0.4 * a * ((1 + np.sin(q)) / 2) ** 4
        lk = 0.08 + 0.4 * a * ((1 - np.sin(q)) / 2) ** 4
        v = dict(yaw=yaw0 + j.direction * _TAU * speed * t / PERIODS["turn"],
                 r_sh_abd=0.35 + 0.1 * np.sin(q), l_sh_abd=0.35 - 0.1 * np.sin(q),
                 r_sh_pitch=0.1 * np.sin(q), l_sh_pitch=-0.1 * np.sin(q), r_elbow=0.3, l_elbow=0.3,
                 r_knee=rk, l_knee=lk, r_hip_pitch=0.5 * rk, l_hip_pitch=0.5 * lk, r_hip_abd=0.06,
                 l_hip_abd=0.06, drift=0.2 * np.sin(_TAU * speed * t / 192.0 + j.drift_phase))
    for name, value in v.items():
        out[:, _P[name]] = value
    return out


def _dir(side: float, abd: np.ndarray, pitch: np.ndarray) -> np.ndarray:
    """Unit limb direction: hanging down, abducted outwards by ``abd``, swung forwards by ``pitch``."""
    return np.stack([side * np.sin(abd), -np.cos(abd) * np.cos(pitch), np.cos(abd) * np.sin(pitch)], -1)


def _rot(v: np.ndarray, roll: np.ndarray, bow: np.ndarray) -> np.ndarray:
    """Rotate vectors [T, 3] forwards about X by ``bow``, then about Z (sideways) by ``roll``."""
    x, y, z = v[:, 0], v[:, 1] * np.cos(bow) - v[:, 2] * np.sin(bow), v[:, 1] * np.sin(bow) + v[:, 2] * np.cos(bow)
    return np.stack([x * np.cos(roll) - y * np.sin(roll), x * np.sin(roll) + y * np.cos(roll), z], -1)


def _forward_kinematics(q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Joint angles [T, P] -> (18 body points [T, 18, 3] in body units after yaw, present mask [T, 18])."""
    T = q.shape[0]
    g = {name: q[:, i] for i, name in enumerate(PARAMS)}
    zero = np.zeros(T)

    def vec(x: float | np.ndarray, y: float | np.ndarray, z: float | np.ndarray) -> np.ndarray:
        return np.stack([zero + x, zero + y, zero + z], -1)

    torso = lambda v: _rot(v, g["lean"], g["bow"])  # noqa: E731
    head_r = lambda v: _rot(_rot(v, g["tilt"], zero), g["lean"], g["bow"])  # noqa: E731
    pelvis = vec(g["sway"], 1.0 - 0.48, 0.0)
    neck = pelvis + torso(vec(0.0, 0.32, 0.0))
    head = neck + head_r(vec(0.0, 0.085, 0.0))
    pts = np.zeros((T, 18, 3))
    pts[:, 0] = head + head_r(vec(0.0, -0.005, 0.04))
    pts[:, 1] = neck
    for side, sh, el, wr, hip, kn, an, eye, ear, pre in (
        (-1.0, 2, 3, 4, 8, 9, 10, 14, 16, "r_"), (1.0, 5, 6, 7, 11, 12, 13, 15, 17, "l_"),
    ):
        pts[:, sh] = neck + torso(vec(side * 0.13, -0.02 + g["breathe"], 0.0))
        pts[:, el] = pts[:, sh] + _ARM[0] * torso(_dir(side, g[pre + "sh_abd"], g[pre + "sh_pitch"]))
        pitch = g[pre + "sh_pitch"] + g[pre + "elbow"]
        pts[:, wr] = pts[:, el] + _ARM[1] * torso(_dir(side, g[pre + "sh_abd"], pitch))
        # the pelvis sways sideways while the feet stay put: compensate with hip abduction
        abd = g[pre + "hip_abd"] - side * np.arcsin(np.clip(g["sway"] / sum(_LEG), -1, 1))
        pts[:, hip] = pelvis + vec(side * 0.09, 0.0, 0.0)
        pts[:, kn] = pts[:, hip] + _LEG[0] * _dir(side, abd, g[pre + "hip_pitch"])
        pts[:, an] = pts[:, kn] + _LEG[1] * _dir(side, abd, g[pre + "hip_pitch"] - g[pre + "knee"])
        pts[:, eye] = head + head_r(vec(side * 0.03, 0.012, 0.06))
        pts[:, ear] = head + head_r(vec(side * 0.07, 0.0, -0.005))
    cy, sy = np.cos(g["yaw"])[:, None], np.sin(g["yaw"])[:, None]
    x, z = pts[..., 0] * cy + pts[..., 2] * sy, -pts[..., 0] * sy + pts[..., 2] * cy
    pts[..., 0], pts[..., 2] = x, z
    present = np.ones((T, 18), dtype=bool)
    head_z = (-head[:, 0] * sy[:, 0] + head[:, 2] * cy[:, 0])[:, None]
    rel_z = z - head_z
    present[:, [14, 15]] = rel_z[:, [14, 15]] > 0.02
    present[:, [16, 17]] = rel_z[:, [16, 17]] > -0.035
    pts[:, :, 1] += _ANKLE_Y - np.minimum(pts[:, 10, 1], pts[:, 13, 1])[:, None]  # plant the lowest foot
    return pts, present


def _to_frames(q: np.ndarray, width: int, height: int) -> list[PoseFrame]:
    """Joint angles -> pixel keypoints placed inside the frame -> strict POSE_KEYPOINT frames."""
    pts, present = _forward_kinematics(q)
    xs = np.where(present, pts[..., 0], np.nan)
    ys = np.where(present, pts[..., 1], np.nan)
    xmin, xmax = float(np.nanmin(xs)) - _PAD, float(np.nanmax(xs)) + _PAD
    top = float(np.nanmax(ys)) + _PAD
    margin = 1.0
    ground = GROUND_FRACTION * height
    scale = min(BODY_HEIGHT_FRACTION * height, (ground - margin) / top, (width - 2 * margin) / (xmax - xmin))
    lo, hi = margin - scale * xmin, width - margin - scale * xmax
    centre, half = (lo + hi) / 2, max(0.0, (hi - lo) / 2)
    cx = centre + half * np.clip(q[:, _P["drift"]], -1.0, 1.0)
    arr = np.zeros((q.shape[0], K_ALL, 3))
    body = arr[:, BODY_SLICE]
    body[..., 0] = cx[:, None] + scale * pts[..., 0]
    body[..., 1] = ground - scale * pts[..., 1]
    body[..., 2] = 1.0
    body[~present] = 0.0
    return [frame_from_arrays([0], arr[t][None], width, height) for t in range(q.shape[0])]


def _check(frames: int, width: int, height: int, speed: float = 1.0, kind: str = "walk") -> None:
    if kind not in MOTIONS:
        raise ValueError(f"kind: unknown motion {kind!r}; valid values: {', '.join(MOTIONS)}")
    if isinstance(frames, bool) or not isinstance(frames, int | np.integer) or frames < 1:
        raise ValueError(f"frames: expected an int >= 1, got {frames!r}")
    for name, value in (("width", width), ("height", height)):
        if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 16:
            raise ValueError(f"{name}: expected an int >= 16 (pixels), got {value!r}")
    if isinstance(speed, bool) or not isinstance(speed, numbers.Real) or not math.isfinite(speed) or speed <= 0:
        raise ValueError(f"speed: expected a finite number > 0 (typically 0.5..2.0), got {speed!r}")


def generate_motion(kind: str, frames: int, width: int, height: int, speed: float = 1.0,
                    seed: int = 0) -> list[PoseFrame]:
    """``frames`` frames of one motion kind (see ``MOTIONS``) on a ``width`` x ``height`` canvas.

    ``speed`` scales the phase rate; ``seed`` jitters phase, amplitude, facing and drift. Same
    arguments, same output.
    """
    _check(frames, width, height, speed, kind)
    j = _jitter(seed)
    q = _track(kind, np.arange(int(frames), dtype=np.float64), float(speed), j, _base_yaw(kind, j))
    logger.debug("generated %d frames of %s at speed %.2f (seed %d)", frames, kind, speed, seed)
    return _to_frames(q, int(width), int(height))


def _smoothstep(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3 - 2 * x)


def mixed_plan(frames: int, seed: int) -> list[tuple[str, int, float, int]]:
    """Segments (kind, start frame, speed, seed) of ``mixed_motion``: idle first, then shuffled rounds
    of walk, dance, turn and idle; a turn segment lasts exactly one full turn."""
    rng = np.random.default_rng([abs(int(seed)), int(seed < 0), 7])
    plan: list[tuple[str, int, float, int]] = []
    start, order = 0, ["idle"]
    while start < frames:
        if not order:
            order = [MOTIONS[i] for i in rng.permutation(len(MOTIONS))]
            if order[0] == plan[-1][0]:
                order.append(order.pop(0))
        kind = order.pop(0)
        speed = round(float(rng.uniform(0.75, 1.5)), 2)
        length = round(PERIODS["turn"] / speed) if kind == "turn" else int(rng.integers(48, 81))
        plan.append((kind, start, speed, int(rng.integers(0, 2**31 - 1))))
        start += length
    return plan


def mixed_motion(frames: int, width: int, height: int, seed: int = 0) -> list[PoseFrame]:
    """A long sequence chaining motion kinds (see ``mixed_plan``), joint angles blended over
    ``BLEND_FRAMES`` frames at each change; yaw is unwrapped so turns never spin back."""
    _check(frames, width, height)
    t = np.arange(int(frames), dtype=np.float64)
    q = np.zeros((t.size, len(PARAMS)))
    plan = mixed_plan(int(frames), seed)
    prev_yaw = 0.0
    for k, (kind, start, speed, sub_seed) in enumerate(plan):
        j = _jitter(sub_seed)
        base = _base_yaw(kind, j)
        if k == 0:
            yaw0 = base
        elif kind == "turn":
            yaw0 = prev_yaw
        else:
            yaw0 = base + _TAU * round((prev_yaw - base) / _TAU)
        nxt = plan[k + 1][1] if k + 1 < len(plan) else t.size
        stop = min(t.size, nxt + BLEND_FRAMES)  # later frames belong to the next segment alone
        seg = _track(kind, t[start:stop] - start, speed, j, yaw0)
        w = 1.0 if k == 0 else _smoothstep((t[start:stop] - start) / BLEND_FRAMES)[:, None]
        q[start:stop] = (1 - w) * q[start:stop] + w * seg
        if nxt < t.size:
            prev_yaw = float(seg[nxt - start, _P["yaw"]])
    return _to_frames(q, int(width), int(height))
