"""OpenPose and DWPose backends built from weight files in a LOCAL directory.

Nothing is fetched from a model hub: the caller passes the directory (e.g. ComfyUI's
``models/...`` folder or comfyui_controlnet_aux's ``ckpts``), which is searched a few levels
deep for the exact file names below. Missing files raise ``MissingWeightsError`` naming the
files and the directory.

OpenPose (controlnet-aux 0.0.10 ``open_pose.Body`` / ``Hand`` / ``Face`` networks):
``body_pose_model.pth``, ``hand_pose_model.pth`` (hands), ``facenet.pth`` (face), loaded with
``torch.load`` (weights only). controlnet-aux's ``OpenposeDetector.detect_poses`` drops the
body scores and can lose face points, so the glue here is ours: body confidences are the
part heatmap peaks, face confidences the face heatmap peaks (threshold 0.05), hand points
found by the hand network get confidence 1 (it exposes no score).

DWPose: controlnet-aux 0.0.10's ``DWposeDetector`` runs through mmpose/mmdet/mmcv (not
dependencies of this pack) with ``yolox_l_8x8_300e_coco_20211126_140236-d3bd2b23.pth`` and
``dw-ll_ucoco_384.pth``. The usual ComfyUI files are the ONNX / TorchScript exports
(``yolox_l.onnx`` or ``yolox_l.torchscript.pt`` + ``dw-ll_ucoco_384.onnx`` or
``dw-ll_ucoco_384_bs5.torchscript.pt``), which ``dwpose_runner`` runs without mmpose;
engine "auto" prefers them and falls back to the mmpose route when only the ``.pth`` files
are there.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal, NamedTuple

import cv2
import numpy as np

from ..convert import COCO17_TO_OPENPOSE_BODY, coco_wholebody_to_openpose, drop_outside
from ..schema import PoseFrame, PoseKeypoint, array_to_person, empty_frame
from ..skeleton import (
    BODY_SLICE,
    FACE_SLICE,
    HAND_LEFT_SLICE,
    HAND_RIGHT_SLICE,
    K_ALL,
    L_EAR,
    L_ELBOW,
    L_EYE,
    L_SHOULDER,
    L_WRIST,
    N_BODY,
    N_FACE,
    N_HAND,
    NOSE,
    R_EAR,
    R_ELBOW,
    R_EYE,
    R_SHOULDER,
    R_WRIST,
)
from ..track import assign_track_ids
from .base import FrameCallback, PoseBackend
from .weights import MAX_DEPTH, MissingWeightsError, expected_names, find_weights

# controlnet-aux is an optional install (not in requirements.txt); one line when it is missing.
CONTROLNET_AUX_MISSING = (
    "the {backend} pose backend needs controlnet-aux, an optional install: "
    "`pip install --no-deps controlnet-aux==0.0.10 timm huggingface_hub scikit-image` "
    "with the Python that runs ComfyUI (or use backend 'mediapipe'); import failed: {error}"
)

logger = logging.getLogger(__name__)

OPENPOSE_FILES: dict[str, tuple[str, ...]] = {
    "body": ("body_pose_model.pth",),
    "hand": ("hand_pose_model.pth",),
    "face": ("facenet.pth",),
}
DWPOSE_FILES: dict[str, tuple[str, ...]] = {
    "det": ("yolox_l.onnx", "yolox_l.torchscript.pt"),
    "pose": ("dw-ll_ucoco_384.onnx", "dw-ll_ucoco_384_bs5.torchscript.pt"),
}
DWPOSE_MM_FILES: dict[str, tuple[str, ...]] = {
    "det": ("yolox_l_8x8_300e_coco_20211126_140236-d3bd2b23.pth",),
    "pose": ("dw-ll_ucoco_384.pth",),
}
FACE_HEATMAP_THRESHOLD = 0.05


# ----------------------------------------------------------------------------- OpenPose glue


def openpose_bodies(candidate: np.ndarray, subset: np.ndarray) -> np.ndarray:
    """controlnet-aux ``Body`` output -> ``[P, 18, 3]`` (x, y, score) in the image it saw.

    candidate: ``[M, 4]`` (x, y, score, id) peaks; subset: ``[P, 20]``, columns 0-17 index
    ``candidate`` (-1: missing), 18 total score, 19 part count.
    """
    subset = np.asarray(subset, dtype=np.float64).reshape(-1, 20)
    candidate = np.asarray(candidate, dtype=np.float64).reshape(-1, 4)
    out = np.zeros((subset.shape[0], N_BODY, 3), dtype=np.float64)
    for p, row in enumerate(subset):
        for j, k in enumerate(row[:N_BODY].astype(np.int64)):
            if k >= 0:
                out[p, j] = (candidate[k, 0], candidate[k, 1], np.clip(candidate[k, 2], 1e-3, 1.0))
    return out


def hand_boxes(body: np.ndarray, width: int, height: int, min_size: int = 20) -> list[tuple[int, int, int, bool]]:
    """OpenPose's hand box heuristic: square boxes (x, y, side, is_left) beyond each wrist.

    The box centre is the wrist pushed a third of the forearm further, its side 1.5x the
    larger of the forearm and 0.9x the upper arm; clipped to the image; skipped below ``min_size``.
    """
    boxes = []
    for shoulder, elbow, wrist, is_left in ((L_SHOULDER, L_ELBOW, L_WRIST, True), (R_SHOULDER, R_ELBOW, R_WRIST, False)):
        if min(body[shoulder, 2], body[elbow, 2], body[wrist, 2]) <= 0:
            continue
        s, e, w = body[shoulder, :2], body[elbow, :2], body[wrist, :2]
        centre = w + 0.33 * (w - e)
        side = 1.5 * max(np.linalg.norm(w - e), 0.9 * np.linalg.norm(e - s))
        box = _square_box(centre, side, width, height)
        if box is not None and box[2] >= min_size:
            boxes.append((*box, is_left))
    return boxes


def face_box(body: np.ndarray, width: int, height: int, min_size: int = 20) -> tuple[int, int, int] | None:
    """Square face box centred on the nose, sized from the eyes (x3) and ears (x1.5), or None."""
    if body[NOSE, 2] <= 0:
        return None
    nose = body[NOSE, :2]
    half = 0.0
    for idx, factor in ((R_EYE, 3.0), (L_EYE, 3.0), (R_EAR, 1.5), (L_EAR, 1.5)):
        if body[idx, 2] > 0:
            half = max(half, factor * float(np.max(np.abs(body[idx, :2] - nose))))
    box = _square_box(nose, 2.0 * half, width, height) if half > 0 else None
    return box if box is not None and box[2] >= min_size else None


def _square_box(centre: np.ndarray, side: float, width: int, height: int) -> tuple[int, int, int] | None:
    x0, y0 = max(0.0, centre[0] - side / 2), max(0.0, centre[1] - side / 2)
    side = min(side, width - x0, height - y0)
    return (int(x0), int(y0), int(side)) if side > 0 else None


def face_peaks(heatmaps: np.ndarray, threshold: float = FACE_HEATMAP_THRESHOLD) -> np.ndarray:
    """Face heatmaps ``[>=70, h, w]`` -> ``[70, 3]`` (x, y, peak value) in crop px; weak parts missing."""
    out = np.zeros((N_FACE, 3), dtype=np.float64)
    for k in range(N_FACE):
        hm = heatmaps[k]
        flat = int(np.argmax(hm))
        peak = float(hm.reshape(-1)[flat])
        if peak > threshold:
            y, x = divmod(flat, hm.shape[1])
            out[k] = (x, y, min(peak, 1.0))
    return out


class OpenPoseModels(NamedTuple):
    """Callables with controlnet-aux's interfaces (BGR uint8 in)."""

    body: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]  # image -> (candidate, subset)
    hand: Callable[[np.ndarray], np.ndarray] | None  # crop -> peaks [21, 2], (0, 0) = missing
    face: Callable[[np.ndarray], np.ndarray] | None  # crop -> heatmaps [71, h, w]


def load_openpose_models(
    weights_dir: str | os.PathLike[str] | None, include_hands: bool = True, include_face: bool = True, device: str = "cpu"
) -> OpenPoseModels:
    """Build controlnet-aux's OpenPose networks from local files (``OPENPOSE_FILES``)."""
    required = {"body": OPENPOSE_FILES["body"]}
    if include_hands:
        required["hand"] = OPENPOSE_FILES["hand"]
    if include_face:
        required["face"] = OPENPOSE_FILES["face"]
    paths = find_weights(weights_dir, required, "OpenPose")
    try:  # slow import (~10 s): only when really used
        from controlnet_aux.open_pose.body import Body
        from controlnet_aux.open_pose.face import Face
        from controlnet_aux.open_pose.hand import Hand
    except ImportError as err:
        raise ImportError(CONTROLNET_AUX_MISSING.format(backend="OpenPose", error=err)) from err

    body = Body(str(paths["body"])).to(device)
    hand = Hand(str(paths["hand"])).to(device) if include_hands else None
    face = Face(str(paths["face"])).to(device) if include_face else None
    return OpenPoseModels(body, hand, face)


class OpenPoseBackend(PoseBackend):
    """controlnet-aux OpenPose (body 18 + hands + face, several people)."""

    name = "openpose"

    def __init__(
        self,
        weights_dir: str | os.PathLike[str] | None = None,
        include_hands: bool = True,
        include_face: bool = True,
        device: str = "cpu",
        detect_resolution: int | None = 512,
        track: bool = True,
        models: OpenPoseModels | None = None,
    ) -> None:
        """detect_resolution: the shorter side is resized to this before detection (None: as is)."""
        self.models = models or load_openpose_models(weights_dir, include_hands, include_face, device)
        self.include_hands = include_hands and self.models.hand is not None
        self.include_face = include_face and self.models.face is not None
        self.detect_resolution = detect_resolution
        self.track = track

    def detect(self, frames: Any, on_frame: FrameCallback | None = None) -> PoseKeypoint:
        """Per-frame detection, then stable ids across frames (``assign_track_ids``) if ``track``."""
        out = super().detect(frames, on_frame)
        return assign_track_ids(out) if self.track else out

    def detect_frame(self, frame: np.ndarray) -> PoseFrame:
        h, w = frame.shape[:2]
        scale = self.detect_resolution / min(h, w) if self.detect_resolution else 1.0
        img = frame if scale == 1.0 else cv2.resize(
            frame, (max(1, round(w * scale)), max(1, round(h * scale))),
            interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC,
        )
        bgr = np.ascontiguousarray(img[:, :, ::-1])
        dh, dw = bgr.shape[:2]
        candidate, subset = self.models.body(bgr)
        out = empty_frame(w, h)
        for pid, body in enumerate(openpose_bodies(candidate, subset)):
            pts = np.zeros((K_ALL, 3), dtype=np.float64)  # [130, 3] in detection px
            pts[BODY_SLICE] = body
            if self.include_hands:
                for x, y, side, is_left in hand_boxes(body, dw, dh):
                    peaks = np.asarray(self.models.hand(bgr[y : y + side, x : x + side]), dtype=np.float64)
                    found = np.any(peaks > 0, axis=1)
                    hand = np.zeros((N_HAND, 3))
                    hand[found] = np.concatenate([peaks[found] + (x, y), np.ones((found.sum(), 1))], axis=1)
                    pts[HAND_LEFT_SLICE if is_left else HAND_RIGHT_SLICE] = hand
            if self.include_face:
                box = face_box(body, dw, dh)
                if box is not None:
                    x, y, side = box
                    face = face_peaks(np.asarray(self.models.face(bgr[y : y + side, x : x + side])))
                    face[face[:, 2] > 0, :2] += (x, y)
                    pts[FACE_SLICE] = face
            pts[:, :2] *= (w / dw, h / dh)  # back to the original frame's pixels
            pts = drop_outside(pts, w, h)
            if np.any(pts[:, 2] > 0):
                out["people"].append(array_to_person(pts, pid))
        return out


# ----------------------------------------------------------------------------- DWPose


def mm_dwpose_to_coco133(keypoints: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """controlnet-aux ``Wholebody`` output for one person (134 points: OpenPose-ordered body with
    a neck, feet, face, hands) -> COCO-WholeBody ``[133, 2]``, ``[133]``."""
    kp = np.asarray(keypoints, dtype=np.float64).reshape(134, 2)
    sc = np.asarray(scores, dtype=np.float64).reshape(134)
    kp133, sc133 = np.zeros((133, 2)), np.zeros(133)
    for op_idx, coco_idx in enumerate(COCO17_TO_OPENPOSE_BODY):
        if coco_idx >= 0:
            kp133[coco_idx], sc133[coco_idx] = kp[op_idx], sc[op_idx]
    kp133[17:], sc133[17:] = kp[18:], sc[18:]
    return kp133, sc133


def _load_dwpose(weights_dir: Any, engine: str, device: str) -> Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """-> fn(rgb) -> (COCO-WholeBody keypoints [N, 133, 2] px, scores [N, 133])."""
    from .dwpose_runner import DWPoseRunner

    found: dict[str, dict[str, Any]] = {}
    errors: dict[str, MissingWeightsError] = {}
    for kind, files in (("exported", DWPOSE_FILES), ("mmpose", DWPOSE_MM_FILES)):
        if engine in ("auto", kind):
            try:
                found[kind] = find_weights(weights_dir, files, f"DWPose ({kind})")
            except MissingWeightsError as err:
                errors[kind] = err
    if "exported" in found:
        return DWPoseRunner.from_files(found["exported"]["det"], found["exported"]["pose"], device)
    if "mmpose" not in found:
        if engine != "auto":
            raise errors[engine]
        if not weights_dir:
            where = "(no weights directory given)"
        elif not Path(weights_dir).expanduser().is_dir():
            where = f"(weights directory {str(weights_dir)!r} does not exist)"
        else:
            where = f"in {str(Path(weights_dir).expanduser().resolve())!r}"
        raise MissingWeightsError(
            f"DWPose: weight files not found {where}, searched {MAX_DEPTH} levels deep; expected either the "
            f"exported models ({expected_names(DWPOSE_FILES)}) or the mmpose checkpoints, which also need "
            f"mmpose/mmdet/mmcv ({expected_names(DWPOSE_MM_FILES)}). Nothing is downloaded at run time."
        )
    paths = found["mmpose"]
    try:
        import mmpose  # noqa: F401
        from controlnet_aux.dwpose.wholebody import Wholebody
    except ImportError as err:
        if getattr(err, "name", None) == "controlnet_aux" or "controlnet_aux" in str(err):
            raise ImportError(CONTROLNET_AUX_MISSING.format(backend="DWPose (.pth checkpoints)", error=err)) from err
        raise ImportError(
            "DWPose .pth checkpoints need mmpose>=1.1, mmdet>=3.1 and mmcv>=2.0.1 (controlnet-aux 0.0.10's "
            f"DWposeDetector); install them or use the ONNX/TorchScript files {dict(DWPOSE_FILES)}"
        ) from err
    model = Wholebody(det_ckpt=str(paths["det"]), pose_ckpt=str(paths["pose"]), device=device)

    def run(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        kps, scs = model(np.ascontiguousarray(rgb[:, :, ::-1]))
        pairs = [mm_dwpose_to_coco133(k, s) for k, s in zip(kps, scs, strict=True)]
        return np.array([p[0] for p in pairs]).reshape(-1, 133, 2), np.array([p[1] for p in pairs]).reshape(-1, 133)

    return run


class DWPoseBackend(PoseBackend):
    """DWPose whole-body (COCO-WholeBody 133 -> OpenPose body/hands/face), several people."""

    name = "dwpose"

    def __init__(
        self,
        weights_dir: str | os.PathLike[str] | None = None,
        device: str = "cpu",
        min_confidence: float = 0.3,
        engine: Literal["auto", "exported", "mmpose"] = "auto",
        track: bool = True,
        model: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]] | None = None,
    ) -> None:
        """engine: "exported" (ONNX or TorchScript files), "mmpose" (.pth + mmpose) or "auto" (the first
        found, in that order); ``model`` injects a ready callable instead."""
        self.model = model or _load_dwpose(weights_dir, engine, device)
        self.min_confidence = min_confidence
        self.track = track

    def detect(self, frames: Any, on_frame: FrameCallback | None = None) -> PoseKeypoint:
        """Per-frame detection, then stable ids across frames (``assign_track_ids``) if ``track``."""
        out = super().detect(frames, on_frame)
        return assign_track_ids(out) if self.track else out

    def detect_frame(self, frame: np.ndarray) -> PoseFrame:
        h, w = frame.shape[:2]
        keypoints, scores = self.model(frame)
        out = empty_frame(w, h)
        for pid, (kp, sc) in enumerate(zip(keypoints, scores, strict=True)):
            body, lhand, rhand, face = coco_wholebody_to_openpose(kp, sc, self.min_confidence)
            pts = drop_outside(np.concatenate([body, lhand, rhand, face]), w, h)  # [130, 3]
            if np.any(pts[:, 2] > 0):
                out["people"].append(array_to_person(pts, pid))
        return out
