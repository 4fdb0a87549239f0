"""Pose sequences for Zizi Video: POSE_KEYPOINT schema, conversions, rendering, smoothing,
tracking, retargeting and detector backends. Pure Python/NumPy (+ cv2, scipy); never ComfyUI.

POSE_KEYPOINT is a list with one dict per frame, compatible with comfyui_controlnet_aux but
strict: canvas pixels, real confidences (0 = missing), every frame present, stable
``person_id`` per track. See ``schema`` for the exact layout.
"""

from __future__ import annotations

from .backends import BACKEND_NAMES, MissingWeightsError, PoseBackend, make_backend
from .convert import (
    coco_wholebody_to_openpose,
    mediapipe_face_to_openpose,
    mediapipe_hand_to_openpose,
    mediapipe_pose_to_openpose,
)
from .render import render_frame, render_pose_keypoint
from .retarget import retarget_pose_keypoint
from .schema import (
    PoseFrame,
    PoseKeypoint,
    array_to_person,
    body_keypoints,
    dumps_pose_json,
    empty_frame,
    export_controlnet_aux,
    frame_from_arrays,
    frame_to_arrays,
    load_pose_json,
    loads_pose_json,
    parse_frame,
    parse_pose_keypoint,
    person_to_array,
    save_pose_json,
    sequence_to_tracks,
    tracks_to_sequence,
    validate_pose_keypoint,
)
from .smooth import (
    GAP_CONFIDENCE_FACTOR,
    fill_gaps,
    one_euro_filter,
    savgol_filter_points,
    smooth_pose_keypoint,
)
from .track import assign_track_ids

__all__ = [
    "BACKEND_NAMES",
    "GAP_CONFIDENCE_FACTOR",
    "MissingWeightsError",
    "PoseBackend",
    "PoseFrame",
    "PoseKeypoint",
    "array_to_person",
    "assign_track_ids",
    "body_keypoints",
    "coco_wholebody_to_openpose",
    "dumps_pose_json",
    "empty_frame",
    "export_controlnet_aux",
    "fill_gaps",
    "frame_from_arrays",
    "frame_to_arrays",
    "load_pose_json",
    "loads_pose_json",
    "make_backend",
    "mediapipe_face_to_openpose",
    "mediapipe_hand_to_openpose",
    "mediapipe_pose_to_openpose",
    "one_euro_filter",
    "parse_frame",
    "parse_pose_keypoint",
    "person_to_array",
    "render_frame",
    "render_pose_keypoint",
    "retarget_pose_keypoint",
    "save_pose_json",
    "savgol_filter_points",
    "sequence_to_tracks",
    "smooth_pose_keypoint",
    "tracks_to_sequence",
    "validate_pose_keypoint",
]
