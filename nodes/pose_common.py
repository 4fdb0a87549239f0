"""Helpers of the pose nodes: reading POSE_KEYPOINT and IMAGE inputs, rendering batches, checks."""

from __future__ import annotations

import hashlib
import os
from typing import Any

import psutil
import torch

from ..zizi_models.pose import (
    PoseKeypoint,
    frame_from_arrays,
    frame_to_arrays,
    parse_pose_keypoint,
    render_frame,
)
from ..zizi_models.pose.skeleton import FACE_SLICE, HAND_LEFT_SLICE, HAND_RIGHT_SLICE
from .comfy import runtime

SMOOTH_METHODS = ("one_euro", "savgol", "none")


def read_pose_input(value: Any, input_name: str) -> PoseKeypoint:
    """A POSE_KEYPOINT input (ours or another pack's, pixels or normalised) -> strict frames."""
    try:
        frames = parse_pose_keypoint(value, units="auto")
    except ValueError as err:
        raise ValueError(f"{input_name}: {err}") from err
    if not frames:
        raise ValueError(f"{input_name}: no frames; expected a POSE_KEYPOINT list with one dict per frame")
    return frames


def image_batch(images: torch.Tensor, input_name: str) -> torch.Tensor:
    """Check an IMAGE input: ``[F, H, W, C]`` with C = 1 (grey), 3 (RGB) or 4 (RGBA); ``[F, H, W]`` is grey."""
    if not isinstance(images, torch.Tensor):
        raise ValueError(f"{input_name}: expected an IMAGE tensor, got {type(images).__name__}")
    if images.ndim == 3:
        images = images.unsqueeze(-1)
    if images.ndim != 4 or images.shape[-1] not in (1, 3, 4) or min(images.shape[1:3]) == 0:
        raise ValueError(
            f"{input_name}: expected an IMAGE batch [frames, height, width, channels] with 1, 3 or 4 channels, "
            f"got shape {tuple(images.shape)}"
        )
    if images.shape[0] == 0:
        raise ValueError(f"{input_name}: the IMAGE batch has no frames")
    return images


def keep_parts(frames: PoseKeypoint, hands: bool, face: bool) -> PoseKeypoint:
    """Drop hands and/or face keypoints (people left with no keypoint are dropped)."""
    if hands and face:
        return frames
    out = []
    for frame in frames:
        ids, people = frame_to_arrays(frame)  # [P, 130, 3]
        if not hands:
            people[:, HAND_LEFT_SLICE] = 0.0
            people[:, HAND_RIGHT_SLICE] = 0.0
        if not face:
            people[:, FACE_SLICE] = 0.0
        out.append(frame_from_arrays(ids, people, frame["canvas_width"], frame["canvas_height"]))
    return out


MAX_RENDER_SIDE = 8192  # pixels per side of a rendered pose image (the widgets' max and canvas-sized renders)


def _output_size(cw: int, ch: int, width: int, height: int) -> tuple[int, int]:
    if width and height:
        return width, height
    if width:
        return width, max(1, round(width * ch / cw))
    if height:
        return max(1, round(height * cw / ch)), height
    return cw, ch


def render_size(frames: PoseKeypoint, width: int, height: int) -> tuple[int, int]:
    """Output size: 0 x 0 -> the first frame's canvas; one side 0 -> keep the canvas aspect ratio.

    Refuses (ValueError naming the inputs) a size over MAX_RENDER_SIDE per side, and a batch that would not
    fit in the memory the machine has available, before anything is allocated.
    """
    cw, ch = int(frames[0]["canvas_width"]), int(frames[0]["canvas_height"])
    out_w, out_h = _output_size(cw, ch, width, height)
    for name, side, given in (("width", out_w, width), ("height", out_h, height)):
        if side > MAX_RENDER_SIDE:
            source = f"{name} {given}" if given else f"the pose canvas ({cw} x {ch}) gives {name} {side}"
            raise ValueError(f"{name}: {source}, over the {MAX_RENDER_SIDE} pixel limit per side; set width/height "
                             f"to the size you need (at most {MAX_RENDER_SIDE})")
    needed = len(frames) * out_w * out_h * 3 * 4  # float32 IMAGE
    available = psutil.virtual_memory().available
    if needed > available:
        raise ValueError(f"pose_keypoint: {len(frames)} frames at {out_w} x {out_h} need {needed / 2**30:.1f} GiB, "
                         f"{available / 2**30:.1f} GiB available; render smaller (width/height) or fewer frames")
    return out_w, out_h


def render_batch(frames: PoseKeypoint, width: int, height: int, progress: bool = True, **options: Any) -> torch.Tensor:
    """Render every frame to an IMAGE ``[F, height, width, 3]``, checking for interrupt between frames."""
    bar = runtime.progress_bar(len(frames)) if progress else None
    out = torch.empty((len(frames), height, width, 3), dtype=torch.float32)
    for t, frame in enumerate(frames):
        runtime.throw_if_interrupted()
        out[t] = torch.from_numpy(render_frame(frame, width, height, **options)).float().div_(255.0)
        if bar is not None:
            bar.update_absolute(t + 1)
    return out


def smoothing_problem(method: str, window: int, polyorder: int) -> str | None:
    """One-line description of what is wrong with the smoothing settings, or None."""
    if method not in SMOOTH_METHODS:
        return f"method: expected one of {list(SMOOTH_METHODS)}, got {method!r}"
    if method == "savgol" and (window < 3 or window % 2 == 0 or not 0 <= polyorder < window):
        return f"window: expected an odd number >= 3 and greater than polyorder (got window {window}, polyorder {polyorder})"
    return None


def file_digest(path: os.PathLike[str] | str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


