"""Pose detectors behind one interface: ``PoseBackend.detect(frames, on_frame) -> POSE_KEYPOINT``.

Backends import their heavy dependencies (mediapipe, controlnet_aux, torch) only when built.
"""

from __future__ import annotations

from typing import Any

from .base import FrameCallback, PoseBackend
from .image import as_frame_list, to_rgb_uint8
from .weights import MissingWeightsError, find_weights

BACKEND_NAMES = ("mediapipe", "openpose", "dwpose")


def make_backend(name: str, **kwargs: Any) -> PoseBackend:
    """Build a backend by name: "mediapipe" (default, offline), "openpose" or "dwpose" (need ``weights_dir``)."""
    if name == "mediapipe":
        from .mediapipe_backend import MediaPipeBackend

        return MediaPipeBackend(**kwargs)
    if name == "openpose":
        from .controlnet_aux_backend import OpenPoseBackend

        return OpenPoseBackend(**kwargs)
    if name == "dwpose":
        from .controlnet_aux_backend import DWPoseBackend

        return DWPoseBackend(**kwargs)
    raise ValueError(f"unknown pose backend {name!r}; expected one of {BACKEND_NAMES}")


__all__ = [
    "BACKEND_NAMES",
    "FrameCallback",
    "MissingWeightsError",
    "PoseBackend",
    "as_frame_list",
    "find_weights",
    "make_backend",
    "to_rgb_uint8",
]
