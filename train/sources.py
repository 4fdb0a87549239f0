"""Preprocessing inputs: find videos and frame folders, decode them at a target fps, crop and resize.

A source is a video file (mp4/webm/mov/mkv/avi/m4v, decoded with zizi_models.video_io / PyAV) or a
folder of image frames (png/jpg/webp/bmp, sorted by name, at `frames_fps`). Frames are resampled to
`fps` by nearest earlier frame (real frames only, never interpolated), the first `trim_head` and last
`trim_tail` seconds are dropped, each frame is centre-cropped to a square and resized to `size`.
Decoding streams: only the frames of the clip being built are in memory.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from einops import rearrange

from zizi_models.video_io import iter_video_frames, probe_video

VIDEO_SUFFIXES = (".mp4", ".webm", ".mov", ".mkv", ".avi", ".m4v")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp")


@dataclass(frozen=True)
class Source:
    path: Path
    rel: str  # path relative to the input folder (the source's name in the index)
    kind: str  # "video" | "frames"

    @property
    def slug(self) -> str:
        stem = "".join(c if c.isalnum() or c in "-_" else "_" for c in Path(self.rel).stem)[:40] or "clip"
        return f"{stem}-{hashlib.sha1(self.rel.encode()).hexdigest()[:8]}"

    def caption(self, default: str) -> str:
        """`<video stem>.txt` next to a video, `caption.txt` inside a frame folder, else `default`."""
        sidecar = self.path.with_suffix(".txt") if self.kind == "video" else self.path / "caption.txt"
        return sidecar.read_text().strip() if sidecar.is_file() else default


def _images(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def find_sources(input_path: str | Path) -> list[Source]:
    """Every video file and frame folder under `input_path` (or the one video it names), sorted."""
    root = Path(input_path)
    if root.is_file():
        return [Source(root, root.name, "video")]
    if not root.is_dir():
        raise FileNotFoundError(f"preprocess input {root} does not exist")
    found = []
    for path in sorted(root.rglob("*")):
        if path.is_file() and path.suffix.lower() in VIDEO_SUFFIXES:
            found.append(Source(path, path.relative_to(root).as_posix(), "video"))
        elif path.is_dir() and _images(path):
            found.append(Source(path, path.relative_to(root).as_posix(), "frames"))
    if not found and _images(root):
        found.append(Source(root, ".", "frames"))
    return found


def _resample(timestamps: Iterator[tuple[float, object]], fps: float, start: float, end: float | None):
    """Keep, for every tick start + k / fps, the first item whose time reaches it (video_io's rule)."""
    next_tick = start
    for t, item in timestamps:
        if t + 1e-6 < start:
            continue
        if end is not None and t > end + 1e-6:
            break
        if t + 1e-6 < next_tick:
            continue
        next_tick = start + (math.floor((t - start) * fps + 1e-6) + 1) / fps
        yield t, item


def iter_frames(source: Source, fps: float, trim_head: float, trim_tail: float, frames_fps: float) -> Iterator[np.ndarray]:
    """RGB uint8 [H, W, 3] frames of `source` at `fps`, trimmed. Raises ValueError if unreadable."""
    if source.kind == "video":
        info = probe_video(source.path)
        end = info.duration_s - trim_tail if info.duration_s > 0 else None
        if end is not None and end <= trim_head:
            raise ValueError(f"{info.duration_s:.2f} s long, nothing left after trimming {trim_head} + {trim_tail} s")
        for _, frame in iter_video_frames(source.path, fps, start_s=trim_head, end_s=end):
            yield frame
        return
    from PIL import Image

    images = _images(source.path)
    duration = len(images) / frames_fps
    end = duration - trim_tail - 0.5 / frames_fps
    for _, image in _resample(((i / frames_fps, p) for i, p in enumerate(images)), fps, trim_head, end):
        with Image.open(image) as handle:
            yield np.asarray(handle.convert("RGB"))


def crop_resize(frames: np.ndarray, size: int) -> np.ndarray:
    """[F, H, W, 3] uint8 -> centre square crop -> [F, size, size, 3] uint8 (antialiased bicubic)."""
    height, width = frames.shape[1:3]
    side = min(height, width)
    top, left = (height - side) // 2, (width - side) // 2
    square = frames[:, top : top + side, left : left + side]
    if side == size:
        return np.ascontiguousarray(square)
    x = rearrange(torch.from_numpy(square.copy()), "f h w c -> f c h w").float()  # copy: frames may be read-only
    x = F.interpolate(x, size=(size, size), mode="bicubic", antialias=True, align_corners=False)
    return rearrange(x.round().clamp(0, 255).to(torch.uint8), "f c h w -> f h w c").numpy()


def iter_clips(source: Source, fps: float, size: int, trim_head: float, trim_tail: float, frames_fps: float,
               clip_frames: int, min_frames: int, stats: dict | None = None) -> Iterator[tuple[int, np.ndarray]]:
    """(start frame, [F, size, size, 3] uint8) for consecutive non-overlapping clips of <= clip_frames
    frames; a last clip shorter than min_frames is dropped. `stats["frames"]` gets the frame count."""
    stats = stats if stats is not None else {}
    stats["frames"] = 0
    buffer: list[np.ndarray] = []
    start = 0
    for frame in iter_frames(source, fps, trim_head, trim_tail, frames_fps):
        buffer.append(crop_resize(frame[None], size)[0])  # frames are cropped one by one (sizes may vary)
        stats["frames"] += 1
        if len(buffer) == clip_frames:
            yield start, np.stack(buffer)
            start += len(buffer)
            buffer = []
    if len(buffer) >= min_frames:
        yield start, np.stack(buffer)
