"""Input normalisation for pose backends: any image batch -> list of RGB uint8 frames."""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np


def to_rgb_uint8(frame: Any) -> np.ndarray:
    """One image -> contiguous RGB uint8 ``[H, W, 3]``.

    Accepts ``[H, W]`` / ``[H, W, 1]`` grey, ``[H, W, 3]`` RGB and ``[H, W, 4]`` RGBA
    (composited over white, like controlnet_aux); uint8 0..255, float 0..1 (ComfyUI IMAGE)
    or bool.
    """
    arr = np.asarray(frame)
    if arr.dtype == np.bool_:
        arr = arr.astype(np.uint8) * 255
    elif np.issubdtype(arr.dtype, np.floating):
        arr = np.clip(np.nan_to_num(arr) * 255.0 + 0.5, 0, 255).astype(np.uint8)
    elif arr.dtype != np.uint8:
        arr = np.clip(arr, 0, 255).astype(np.uint8)
    if arr.ndim == 2:
        arr = arr[:, :, None]
    if arr.ndim != 3 or arr.shape[2] not in (1, 3, 4) or arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ValueError(f"expected an image [H, W], [H, W, 1], [H, W, 3] or [H, W, 4], got shape {list(arr.shape)}")
    if arr.shape[2] == 1:
        arr = np.repeat(arr, 3, axis=2)
    elif arr.shape[2] == 4:
        alpha = arr[:, :, 3:4].astype(np.float32) / 255.0
        rgb = arr[:, :, :3].astype(np.float32) * alpha + 255.0 * (1.0 - alpha)
        arr = np.clip(rgb + 0.5, 0, 255).astype(np.uint8)
    return np.ascontiguousarray(arr)


def as_frame_list(frames: Any) -> list[np.ndarray]:
    """A batch ``[F, H, W(, C)]``, a single image ``[H, W(, C)]`` or a list of images -> frames.

    A 3-D array whose last axis is 1, 3 or 4 is one image; any other 3-D array is a batch of
    grey frames. Torch tensors are moved to the CPU.
    """
    if hasattr(frames, "detach"):
        frames = frames.detach().cpu().numpy()
    if isinstance(frames, list | tuple):
        return [to_rgb_uint8(f) for f in frames]
    arr = np.asarray(frames)
    if arr.ndim == 2 or (arr.ndim == 3 and arr.shape[-1] in (1, 3, 4)):
        return [to_rgb_uint8(arr)]
    if arr.ndim in (3, 4):
        return [to_rgb_uint8(f) for f in arr]
    raise ValueError(f"expected frames [F, H, W, C], [F, H, W] or one image, got shape {list(arr.shape)}")


def detection_scale(height: int, width: int, max_side: int | None, min_side: int | None) -> float:
    """Factor to resize an image so its longer side lies in [min_side, max_side] (1.0 if it does)."""
    longer = max(height, width)
    if max_side and longer > max_side:
        return max_side / longer
    if min_side and longer < min_side:
        return min_side / longer
    return 1.0


def resize_for_detection(img: np.ndarray, max_side: int | None, min_side: int | None) -> tuple[np.ndarray, float]:
    """img [H, W, 3] -> (resized copy or img itself, scale factor applied)."""
    h, w = img.shape[:2]
    s = detection_scale(h, w, max_side, min_side)
    if s == 1.0:
        return img, 1.0
    size = (max(1, int(round(w * s))), max(1, int(round(h * s))))
    interp = cv2.INTER_AREA if s < 1.0 else cv2.INTER_LINEAR
    return cv2.resize(img, size, interpolation=interp), s
