"""DWPose inference from its exported ONNX / TorchScript files (no mmpose needed).

Two stages, as in the DWPose release:
1. person boxes: YOLOX-L (``yolox_l.onnx`` or ``yolox_l.torchscript.pt``): BGR image
   letterboxed to 640x640 (top-left, padding 114, no normalisation); raw output
   ``[1, 8400, 85]`` decoded on the stride-8/16/32 grids; score = objectness x person class;
   NMS.
2. whole-body keypoints: RTMPose-L "dw-ll_ucoco_384" (``dw-ll_ucoco_384.onnx`` or
   ``dw-ll_ucoco_384_bs5.torchscript.pt``): each box, enlarged 1.25x and widened to 3:4, is
   warped to 288x384, normalised with ImageNet mean/std in RGB; SimCC outputs
   ``[N, 133, 576]`` / ``[N, 133, 768]`` (split ratio 2) are decoded by argmax; the score of a
   point is min(max_x, max_y).
ONNX files run with OpenCV's DNN module (already a dependency); TorchScript with torch.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

logger = logging.getLogger(__name__)

DET_SIZE = 640
POSE_W, POSE_H = 288, 384
SIMCC_SPLIT = 2.0
MEAN_RGB = np.array([123.675, 116.28, 103.53], dtype=np.float32)
STD_RGB = np.array([58.395, 57.12, 57.375], dtype=np.float32)
TORCHSCRIPT_POSE_BATCH = 5  # the released TorchScript pose model was traced with batch 5


def letterbox(bgr: np.ndarray, size: int = DET_SIZE) -> tuple[np.ndarray, float]:
    """[H, W, 3] -> ([1, 3, size, size] float32, resize ratio)."""
    h, w = bgr.shape[:2]
    r = min(size / h, size / w)
    nh, nw = max(1, int(h * r)), max(1, int(w * r))
    padded = np.full((size, size, 3), 114.0, dtype=np.float32)
    padded[:nh, :nw] = cv2.resize(bgr, (nw, nh), interpolation=cv2.INTER_LINEAR)
    return np.ascontiguousarray(padded.transpose(2, 0, 1)[None]), r


def decode_yolox(raw: np.ndarray, size: int = DET_SIZE, strides: tuple[int, ...] = (8, 16, 32)) -> tuple[np.ndarray, np.ndarray]:
    """Raw YOLOX output ``[A, 5 + C]`` -> (person boxes xyxy ``[A, 4]`` in input px, scores ``[A]``)."""
    grids, steps = [], []
    for s in strides:
        n = size // s
        ys, xs = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
        grids.append(np.stack([xs, ys], axis=-1).reshape(-1, 2))
        steps.append(np.full((n * n, 1), s))
    grid, step = np.concatenate(grids).astype(np.float32), np.concatenate(steps).astype(np.float32)
    if raw.shape[0] != grid.shape[0]:
        raise ValueError(f"YOLOX output has {raw.shape[0]} anchors, expected {grid.shape[0]} for {size}x{size}")
    centre = (raw[:, :2] + grid) * step
    wh = np.exp(np.clip(raw[:, 2:4], -20, 20)) * step
    boxes = np.concatenate([centre - wh / 2, centre + wh / 2], axis=1)
    return boxes, raw[:, 4] * raw[:, 5]


def nms(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float = 0.45) -> np.ndarray:
    """Greedy non-maximum suppression -> kept indices, best first."""
    order = np.argsort(-scores)
    areas = np.prod(np.clip(boxes[:, 2:] - boxes[:, :2], 0, None), axis=1)
    keep: list[int] = []
    while order.size:
        i = int(order[0])
        keep.append(i)
        lt = np.maximum(boxes[i, :2], boxes[order[1:], :2])
        rb = np.minimum(boxes[i, 2:], boxes[order[1:], 2:])
        inter = np.prod(np.clip(rb - lt, 0, None), axis=1)
        iou = inter / np.maximum(areas[i] + areas[order[1:]] - inter, 1e-9)
        order = order[1:][iou <= iou_threshold]
    return np.asarray(keep, dtype=np.int64)


def box_to_centre_scale(box: np.ndarray, padding: float = 1.25) -> tuple[np.ndarray, np.ndarray]:
    """xyxy -> (centre [2], size [2] enlarged by ``padding`` and widened/heightened to 3:4)."""
    centre = (box[:2] + box[2:]) / 2.0
    w, h = (box[2:] - box[:2]) * padding
    aspect = POSE_W / POSE_H
    if w > h * aspect:
        h = w / aspect
    else:
        w = h * aspect
    return centre, np.array([w, h], dtype=np.float64)


def crop_person(rgb: np.ndarray, centre: np.ndarray, size: np.ndarray) -> np.ndarray:
    """Warp the box (centre, size) of ``rgb`` to ``[3, 384, 288]`` normalised float32."""
    sx, sy = POSE_W / size[0], POSE_H / size[1]
    m = np.array([[sx, 0.0, POSE_W / 2 - centre[0] * sx], [0.0, sy, POSE_H / 2 - centre[1] * sy]])
    crop = cv2.warpAffine(rgb, m, (POSE_W, POSE_H), flags=cv2.INTER_LINEAR).astype(np.float32)
    return ((crop - MEAN_RGB) / STD_RGB).transpose(2, 0, 1)


def decode_simcc(simcc_x: np.ndarray, simcc_y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``[N, K, 576]``, ``[N, K, 768]`` -> (locations ``[N, K, 2]`` in crop px, scores ``[N, K]``)."""
    x = np.argmax(simcc_x, axis=-1) / SIMCC_SPLIT
    y = np.argmax(simcc_y, axis=-1) / SIMCC_SPLIT
    scores = np.minimum(simcc_x.max(axis=-1), simcc_y.max(axis=-1))
    return np.stack([x, y], axis=-1), scores


def crop_to_image(locs: np.ndarray, centre: np.ndarray, size: np.ndarray) -> np.ndarray:
    """Crop pixel locations ``[K, 2]`` -> image pixels."""
    return locs / np.array([POSE_W, POSE_H]) * size + centre - size / 2.0


def _onnx_model(path: Path) -> Callable[[np.ndarray], list[np.ndarray]]:
    net = cv2.dnn.readNetFromONNX(str(path))
    names = net.getUnconnectedOutLayersNames()

    def run(blob: np.ndarray) -> list[np.ndarray]:
        net.setInput(blob)
        return list(net.forward(names))

    return run


def _torchscript_model(path: Path, device: str, batch: int | None) -> Callable[[np.ndarray], list[np.ndarray]]:
    import torch

    module = torch.jit.load(str(path), map_location=device).eval()

    def forward(blob: np.ndarray) -> list[np.ndarray]:
        with torch.inference_mode():
            out = module(torch.from_numpy(blob).to(device))
        outs = out if isinstance(out, list | tuple) else [out]
        return [o.float().cpu().numpy() for o in outs]

    def run(blob: np.ndarray) -> list[np.ndarray]:
        if not batch:
            return forward(blob)
        parts = []
        for i in range(0, blob.shape[0], batch):  # a traced model only takes its batch size
            part = blob[i : i + batch]
            n = part.shape[0]
            if n < batch:
                part = np.concatenate([part, np.zeros((batch - n,) + part.shape[1:], dtype=part.dtype)])
            parts.append([o[:n] for o in forward(part)])
        return [np.concatenate([p[k] for p in parts]) for k in range(len(parts[0]))]

    return run


def load_model(path: Path, device: str = "cpu", batch: int | None = None) -> Callable[[np.ndarray], list[np.ndarray]]:
    """``.onnx`` (OpenCV DNN, CPU) or TorchScript file -> ``fn(blob) -> list of output arrays``."""
    return _onnx_model(path) if path.suffix == ".onnx" else _torchscript_model(path, device, batch)


class DWPoseRunner:
    """Person detection + whole-body keypoints on one image."""

    def __init__(
        self,
        det: Callable[[np.ndarray], list[np.ndarray]],
        pose: Callable[[np.ndarray], list[np.ndarray]],
        box_threshold: float = 0.3,
        nms_threshold: float = 0.45,
    ) -> None:
        self.det, self.pose = det, pose
        self.box_threshold, self.nms_threshold = box_threshold, nms_threshold

    @classmethod
    def from_files(cls, det_path: Path, pose_path: Path, device: str = "cpu") -> DWPoseRunner:
        batch = TORCHSCRIPT_POSE_BATCH if "bs5" in pose_path.name else None
        return cls(load_model(det_path, device), load_model(pose_path, device, batch))

    def boxes(self, rgb: np.ndarray) -> np.ndarray:
        """RGB uint8 ``[H, W, 3]`` -> person boxes xyxy ``[N, 4]`` in image px, best first."""
        blob, ratio = letterbox(np.ascontiguousarray(rgb[:, :, ::-1]))
        raw = self.det(blob)[0]
        raw = raw.reshape(-1, raw.shape[-1])  # [8400, 85]: box 4, objectness, 80 COCO classes
        boxes, scores = decode_yolox(raw)
        ok = scores > self.box_threshold
        boxes, scores = boxes[ok] / ratio, scores[ok]
        return boxes[nms(boxes, scores, self.nms_threshold)] if len(boxes) else np.zeros((0, 4))

    def __call__(self, rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """RGB uint8 image -> (keypoints ``[N, 133, 2]`` image px, scores ``[N, 133]``)."""
        boxes = self.boxes(rgb)
        if len(boxes) == 0:
            return np.zeros((0, 133, 2)), np.zeros((0, 133))
        geoms = [box_to_centre_scale(b) for b in boxes]
        batch = np.stack([crop_person(rgb, c, s) for c, s in geoms]).astype(np.float32)  # [N, 3, 384, 288]
        outs = self.pose(batch)
        sx, sy = sorted(outs[:2], key=lambda a: a.shape[-1])  # x bins (576) < y bins (768)
        locs, scores = decode_simcc(sx, sy)
        kps = np.stack([crop_to_image(locs[i], c, s) for i, (c, s) in enumerate(geoms)])
        return kps, scores
