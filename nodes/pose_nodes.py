"""Pose nodes: extract POSE_KEYPOINT from frames, smooth, retarget, render, save and load it.

POSE_KEYPOINT follows ``zizi_models.pose.schema``: one dict per frame, canvas pixels, real
confidences, a stable ``person_id``. Every node that takes a POSE_KEYPOINT reads it leniently
(``parse_pose_keypoint``), so values from other packs in normalised units are detected and
converted to pixels; every node returns the strict form.
"""

from __future__ import annotations

import json
import logging
import os
from typing import Any

import torch

from ..zizi_models.pose import (
    BACKEND_NAMES,
    MissingWeightsError,
    PoseKeypoint,
    export_controlnet_aux,
    fill_gaps,
    loads_pose_json,
    retarget_pose_keypoint,
    save_pose_json,
    smooth_pose_keypoint,
)
from .comfy import folders, runtime
from .pose_common import (
    MAX_RENDER_SIDE,
    SMOOTH_METHODS,
    file_digest,
    image_batch,
    keep_parts,
    read_pose_input,
    render_batch,
    render_size,
    smoothing_problem,
)
from .pose_detector import DETECTORS, DetectorSettings

log = logging.getLogger(__name__)

CATEGORY = "Zizi Video/pose"
SAVE_FORMATS = ("zizi", "controlnet_aux")
UNITS = ("auto", "pixels", "normalized")


# ----------------------------------------------------------------------------- nodes


class ZiziPoseExtract:
    """IMAGE batch -> POSE_KEYPOINT (+ the OpenPose rendering), one detector reused across runs."""

    CATEGORY = CATEGORY
    RETURN_TYPES = ("POSE_KEYPOINT", "IMAGE")
    RETURN_NAMES = ("pose_keypoint", "pose_image")
    FUNCTION = "extract"
    DESCRIPTION = (
        "Detects body, hand and face keypoints in every frame. Outputs POSE_KEYPOINT in the input's pixels "
        "(empty 'people' where nobody is found) and the OpenPose rendering at the input size. MediaPipe runs "
        "offline; OpenPose/DWPose need their weight files in ComfyUI/models/pose (nothing is downloaded)."
    )

    @classmethod
    def INPUT_TYPES(cls) -> dict:
        return {
            "required": {
                "images": ("IMAGE", {"tooltip": "Frames [F, H, W, C]; grey (C=1), RGB or RGBA (composited over white)."}),
                "backend": (list(BACKEND_NAMES), {"default": "mediapipe", "tooltip":
                            "mediapipe: built in, offline, one person. openpose / dwpose: several people; their "
                            "weights must be in ComfyUI/models/pose."}),
                "detect_resolution": ("INT", {"default": 512, "min": 128, "max": 4096, "step": 64, "tooltip":
                                      "Detection runs on a resized copy (mediapipe: longer side at most this, tiny "
                                      "frames upscaled; openpose: shorter side; dwpose: fixed model sizes). "
                                      "Keypoints are always reported in the input's pixels."}),
                "include_hands": ("BOOLEAN", {"default": True, "tooltip": "Detect and draw hand keypoints."}),
                "include_face": ("BOOLEAN", {"default": True, "tooltip": "Detect and draw face keypoints."}),
                "mode": (["video", "images"], {"default": "video", "tooltip":
                         "video: the frames are one clip (MediaPipe tracks between frames, people keep their "
                         "person_id). images: every frame is detected on its own."}),
                "line_scale": ("FLOAT", {"default": 1.0, "min": 0.1, "max": 10.0, "step": 0.1, "tooltip":
                               "Stroke width of the rendering relative to the OpenPose annotator at 512 px."}),
            }
        }

    def extract(self, images: torch.Tensor, backend: str, detect_resolution: int, include_hands: bool,
                include_face: bool, mode: str, line_scale: float) -> tuple[PoseKeypoint, torch.Tensor]:
        images = image_batch(images, "images")
        if backend not in BACKEND_NAMES:
            raise ValueError(f"backend: expected one of {list(BACKEND_NAMES)}, got {backend!r}")
        settings = DetectorSettings(
            backend=backend,
            detect_resolution=int(detect_resolution),
            include_hands=bool(include_hands),
            include_face=bool(include_face),
            video=mode == "video",
            device=runtime.torch_device(),
            weight_dirs=() if backend == "mediapipe" else tuple(
                str(p) for p in folders.model_folder_paths(folders.POSE_MODEL_FOLDER)
            ),
        )
        runtime.throw_if_interrupted()
        try:
            detector = DETECTORS.acquire(settings)
        except (MissingWeightsError, ImportError) as err:
            raise type(err)(f"backend {backend!r}: {err}") from err

        count = images.shape[0]
        progress = runtime.progress_bar(count)

        interrupted = False

        def on_frame(done: int) -> None:
            nonlocal interrupted
            try:  # ComfyUI's progress hook raises the interrupt too
                progress.update_absolute(done + 1)
                runtime.throw_if_interrupted()  # Cancel / POST /interrupt stops between frames
            except BaseException:
                interrupted = True
                raise

        try:
            frames = detector.detect(images, on_frame)
        except Exception:
            # an interrupt leaves the detector usable (each detect() starts afresh); any other failure
            # may have left it in an unknown state: drop it, the next run builds a new one
            if not interrupted:
                DETECTORS.release("detection failed")
            raise
        frames = keep_parts(frames, include_hands, include_face)
        found = sum(1 for f in frames if f["people"])
        log.info("pose: %d of %d frames with people (%s, %dx%d)", found, count, backend,
                 images.shape[2], images.shape[1])
        # the progress bar counts detected frames only; rendering is fast
        rendered = render_batch(frames, int(images.shape[2]), int(images.shape[1]), progress=False,
                                draw_hands=include_hands, draw_face=include_face, line_scale=line_scale)
        return (frames, rendered)


class ZiziPoseSmooth:
    """Temporal clean-up: fill short dropouts, then One-Euro or Savitzky-Golay smoothing per track."""

    CATEGORY = CATEGORY
    RETURN_TYPES = ("POSE_KEYPOINT",)
    RETURN_NAMES = ("pose_keypoint",)
    FUNCTION = "smooth"
    DESCRIPTION = (
        "Fills keypoint dropouts of up to max_gap frames (linear, confidence halved), then smooths every "
        "person track. one_euro: adaptive, little lag on fast moves. savgol: offline polynomial fit."
    )

    @classmethod
    def INPUT_TYPES(cls) -> dict:
        return {
            "required": {
                "pose_keypoint": ("POSE_KEYPOINT",),
                "method": (list(SMOOTH_METHODS), {"default": "one_euro"}),
                "fps": ("FLOAT", {"default": 30.0, "min": 0.1, "max": 240.0, "step": 0.5, "tooltip":
                        "Frame rate of the sequence (One-Euro works in seconds); wire the video's fps here."}),
                "min_cutoff": ("FLOAT", {"default": 1.0, "min": 0.001, "max": 100.0, "step": 0.05, "tooltip":
                               "one_euro: cutoff in Hz when still; lower = smoother, more lag."}),
                "beta": ("FLOAT", {"default": 5.0, "min": 0.0, "max": 1000.0, "step": 0.1, "tooltip":
                         "one_euro: how fast the cutoff rises with speed (speed in canvas sizes per second)."}),
                "d_cutoff": ("FLOAT", {"default": 1.0, "min": 0.001, "max": 100.0, "step": 0.05, "tooltip":
                             "one_euro: cutoff in Hz of the speed estimate."}),
                "window": ("INT", {"default": 7, "min": 3, "max": 301, "step": 1, "tooltip":
                           "savgol: window length in frames (odd, > polyorder)."}),
                "polyorder": ("INT", {"default": 2, "min": 0, "max": 10, "tooltip": "savgol: polynomial order."}),
                "max_gap": ("INT", {"default": 5, "min": 0, "max": 10000, "tooltip":
                            "Fill dropouts of at most this many frames between two detections; 0 = no filling."}),
            }
        }

    @classmethod
    def VALIDATE_INPUTS(cls, method: str = "one_euro", window: int = 7, polyorder: int = 2) -> bool | str:
        # no **kwargs: ComfyUI still checks the other inputs against their declared ranges; defaults
        # because linked inputs are not passed at validation time (smooth() checks them again)
        return smoothing_problem(method, window, polyorder) or True

    def smooth(self, pose_keypoint: Any, method: str, fps: float, min_cutoff: float, beta: float, d_cutoff: float,
               window: int, polyorder: int, max_gap: int) -> tuple[PoseKeypoint]:
        problem = smoothing_problem(method, window, polyorder)
        if problem:
            raise ValueError(problem)
        if not fps > 0:
            raise ValueError(f"fps: expected the frame rate of the sequence (> 0), got {fps}")
        frames = read_pose_input(pose_keypoint, "pose_keypoint")
        if max_gap > 0:
            frames = fill_gaps(frames, max_gap)
        try:
            frames = smooth_pose_keypoint(frames, method, fps=fps, min_cutoff=min_cutoff, beta=beta,
                                          d_cutoff=d_cutoff, window=window, polyorder=polyorder)
        except ValueError as err:
            raise ValueError(f"method {method!r}: {err}") from err
        return (frames,)


class ZiziPoseRetarget:
    """Driving pose sequence -> the same motion with the reference's body proportions."""

    CATEGORY = CATEGORY
    RETURN_TYPES = ("POSE_KEYPOINT",)
    RETURN_NAMES = ("pose_keypoint",)
    FUNCTION = "retarget"
    DESCRIPTION = (
        "Keeps every bone direction of the driving poses and gives the bones the lengths of the reference "
        "person (first frame of reference); the motion starts on the reference's neck. Output canvas = reference canvas."
    )

    @classmethod
    def INPUT_TYPES(cls) -> dict:
        return {
            "required": {
                "driving": ("POSE_KEYPOINT", {"tooltip": "The motion (e.g. a dancer's extracted poses)."}),
                "reference": ("POSE_KEYPOINT", {"tooltip": "The target body: its FIRST frame is used."}),
                "driving_person_id": ("INT", {"default": -1, "min": -1, "max": 1 << 20, "tooltip":
                                      "Person to retarget; -1 = the smallest person_id present."}),
                "reference_person_id": ("INT", {"default": -1, "min": -1, "max": 1 << 20, "tooltip":
                                        "Reference person; -1 = the smallest person_id in its first frame."}),
                "keep_others": ("BOOLEAN", {"default": True, "tooltip":
                                "Keep the other driving people (moved and scaled with the global map)."}),
            }
        }

    def retarget(self, driving: Any, reference: Any, driving_person_id: int, reference_person_id: int,
                 keep_others: bool) -> tuple[PoseKeypoint]:
        drv = read_pose_input(driving, "driving")
        ref = read_pose_input(reference, "reference")[0]
        ref_ids = sorted(int(p["person_id"]) for p in ref["people"])
        drv_ids = sorted({int(p["person_id"]) for f in drv for p in f["people"]})
        if not ref_ids:
            raise ValueError("reference: its first frame has no person; expected a pose with at least one person")
        if not drv_ids:
            raise ValueError("driving: no frame has a person; expected poses with at least one person")
        if reference_person_id >= 0 and reference_person_id not in ref_ids:
            raise ValueError(f"reference_person_id: {reference_person_id} is not in reference's first frame (ids: {ref_ids})")
        if driving_person_id >= 0 and driving_person_id not in drv_ids:
            raise ValueError(f"driving_person_id: {driving_person_id} is not in driving (ids: {drv_ids})")
        try:
            out = retarget_pose_keypoint(
                drv, ref,
                driving_person_id=driving_person_id if driving_person_id >= 0 else None,
                reference_person_id=reference_person_id if reference_person_id >= 0 else None,
                keep_others=keep_others,
            )
        except ValueError as err:
            raise ValueError(f"driving: {err}") from err
        return (out,)


class ZiziPoseRender:
    """POSE_KEYPOINT -> OpenPose ControlNet hint images at any size."""

    CATEGORY = CATEGORY
    RETURN_TYPES = ("IMAGE",)
    RETURN_NAMES = ("pose_image",)
    FUNCTION = "render"
    DESCRIPTION = "Draws every frame like the OpenPose annotator (black background); keypoints are scaled from each frame's canvas."

    @classmethod
    def INPUT_TYPES(cls) -> dict:
        return {
            "required": {
                "pose_keypoint": ("POSE_KEYPOINT",),
                "width": ("INT", {"default": 0, "min": 0, "max": MAX_RENDER_SIDE, "step": 1, "tooltip":
                          "0 = the canvas width (or keep the canvas aspect ratio if height is set)."}),
                "height": ("INT", {"default": 0, "min": 0, "max": MAX_RENDER_SIDE, "step": 1, "tooltip":
                           "0 = the canvas height (or keep the canvas aspect ratio if width is set)."}),
                "draw_body": ("BOOLEAN", {"default": True}),
                "draw_hands": ("BOOLEAN", {"default": True}),
                "draw_face": ("BOOLEAN", {"default": True}),
                "line_scale": ("FLOAT", {"default": 1.0, "min": 0.1, "max": 10.0, "step": 0.1, "tooltip":
                               "Stroke width relative to the OpenPose annotator at 512 px."}),
                "min_confidence": ("FLOAT", {"default": 0.0, "min": 0.0, "max": 1.0, "step": 0.01, "tooltip":
                                   "Draw only keypoints with a confidence above this (0: every present point)."}),
            }
        }

    def render(self, pose_keypoint: Any, width: int, height: int, draw_body: bool, draw_hands: bool, draw_face: bool,
               line_scale: float, min_confidence: float) -> tuple[torch.Tensor]:
        frames = read_pose_input(pose_keypoint, "pose_keypoint")
        out_w, out_h = render_size(frames, width, height)
        return (render_batch(frames, out_w, out_h, draw_body=draw_body, draw_hands=draw_hands, draw_face=draw_face,
                             line_scale=line_scale, min_confidence=min_confidence),)


class ZiziPoseSave:
    """POSE_KEYPOINT -> a JSON file in ComfyUI's output folder."""

    CATEGORY = CATEGORY
    RETURN_TYPES = ()
    OUTPUT_NODE = True
    FUNCTION = "save"
    DESCRIPTION = (
        "Saves the poses as JSON. zizi: pixels, real confidences, person_id, 'units': 'pixels'. controlnet_aux: "
        "normalised coordinates, confidence 1 for present points, null for absent parts (what that pack reads back)."
    )

    @classmethod
    def INPUT_TYPES(cls) -> dict:
        return {
            "required": {
                "pose_keypoint": ("POSE_KEYPOINT",),
                "filename_prefix": ("STRING", {"default": "zizi/pose"}),
                "format": (list(SAVE_FORMATS), {"default": "zizi"}),
            }
        }

    def save(self, pose_keypoint: Any, filename_prefix: str, format: str) -> dict:
        frames = read_pose_input(pose_keypoint, "pose_keypoint")
        if format not in SAVE_FORMATS:
            raise ValueError(f"format: expected one of {list(SAVE_FORMATS)}, got {format!r}")
        folder, stem, counter, subfolder = folders.save_path(
            filename_prefix, int(frames[0]["canvas_width"]), int(frames[0]["canvas_height"])
        )
        filename = f"{stem}_{counter:05}_.json"
        path = folder / filename
        if format == "zizi":
            save_pose_json(frames, path)
        else:
            tmp = path.with_name(path.name + ".tmp")
            tmp.write_text(json.dumps(export_controlnet_aux(frames)), encoding="utf-8")
            os.replace(tmp, path)
        people = sum(len(f["people"]) for f in frames)
        log.info("saved %d pose frames (%d people in all, %s format) to %s", len(frames), people, format, path)
        return {"ui": {"pose_json": [{"filename": filename, "subfolder": subfolder, "type": "output"}]}}


class ZiziPoseLoad:
    """A POSE_KEYPOINT JSON file from ComfyUI's input folder (ours, controlnet_aux's or OpenPose's)."""

    CATEGORY = CATEGORY
    RETURN_TYPES = ("POSE_KEYPOINT", "INT")
    RETURN_NAMES = ("pose_keypoint", "frame_count")
    FUNCTION = "load"
    DESCRIPTION = (
        "Loads poses from a JSON file in ComfyUI's input folder: a list of frames or one frame, in pixels or "
        "normalised units (auto: the file's 'units' key, else normalised when every coordinate is <= 1)."
    )

    @classmethod
    def INPUT_TYPES(cls) -> dict:
        return {
            "required": {
                "pose_json": (folders.list_input_files_with_suffix({".json"}), {"tooltip":
                              "A .json file in ComfyUI's input folder."}),
                "units": (list(UNITS), {"default": "auto", "tooltip":
                          "auto: detect; pixels / normalized: force (normalized is multiplied by the canvas size)."}),
            }
        }

    @classmethod
    def IS_CHANGED(cls, pose_json: str, **_: object) -> str:
        return file_digest(folders.resolve_input_file(pose_json, "pose_json"))

    @classmethod
    def VALIDATE_INPUTS(cls, pose_json: str | None = None) -> bool | str:
        if pose_json is None:  # linked: checked when it runs
            return True
        try:
            folders.resolve_input_file(pose_json, "pose_json")
        except (FileNotFoundError, ValueError) as err:
            return str(err)
        return True

    def load(self, pose_json: str, units: str) -> tuple[PoseKeypoint, int]:
        path = folders.resolve_input_file(pose_json, "pose_json")
        if units not in UNITS:
            raise ValueError(f"units: expected one of {list(UNITS)}, got {units!r}")
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError as err:
            raise ValueError(f"pose_json: {pose_json!r} is not UTF-8 text: {err}") from err
        try:
            frames = loads_pose_json(text, units)  # type: ignore[arg-type]
        except ValueError as err:
            raise ValueError(f"pose_json: {pose_json!r}: {err}") from err
        if not frames:
            raise ValueError(f"pose_json: {pose_json!r} holds no frames; expected a list with one dict per frame")
        log.info("loaded %d pose frames from %s", len(frames), path.name)
        return (frames, len(frames))


NODE_CLASS_MAPPINGS = {
    "ZiziPoseExtract": ZiziPoseExtract,
    "ZiziPoseSmooth": ZiziPoseSmooth,
    "ZiziPoseRetarget": ZiziPoseRetarget,
    "ZiziPoseRender": ZiziPoseRender,
    "ZiziPoseSave": ZiziPoseSave,
    "ZiziPoseLoad": ZiziPoseLoad,
}
NODE_DISPLAY_NAME_MAPPINGS = {
    "ZiziPoseExtract": "Zizi Pose Extract",
    "ZiziPoseSmooth": "Zizi Pose Smooth",
    "ZiziPoseRetarget": "Zizi Pose Retarget",
    "ZiziPoseRender": "Zizi Pose Render",
    "ZiziPoseSave": "Zizi Pose Save",
    "ZiziPoseLoad": "Zizi Pose Load",
}
