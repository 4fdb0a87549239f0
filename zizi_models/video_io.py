"""Video files <-> frame arrays, through PyAV. Used by the nodes, the trainer's preprocessing and the demo.

Frames are ``uint8`` RGB arrays ``[F, H, W, 3]`` (time first). Writing is streaming: a
:class:`VideoWriter` takes batches of frames as they are produced, so a long video never has to be
held in memory.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

log = logging.getLogger(__name__)

# container suffix -> (codec, pixel format, extra codec options)
VIDEO_FORMATS: dict[str, tuple[str, str, dict[str, str]]] = {
    "mp4": ("libx264", "yuv420p", {"crf": "17", "preset": "medium"}),
    "webm": ("libvpx-vp9", "yuv420p", {"crf": "24", "b": "0"}),
}


@dataclass(frozen=True)
class VideoInfo:
    fps: float
    width: int
    height: int
    frame_count: int  # as reported by the container; may be 0 when unknown
    duration_s: float


def _open_for_reading(path: str | Path) -> av.container.InputContainer:
    try:
        return av.open(str(path))
    except av.error.FFmpegError as e:
        raise ValueError(f"{path}: not a readable video file ({e})") from e


def probe_video(path: str | Path) -> VideoInfo:
    """Read a video's stream properties without decoding frames."""
    with _open_for_reading(path) as container:
        if not container.streams.video:
            raise ValueError(f"{path}: the file has no video stream")
        stream = container.streams.video[0]
        fps = float(stream.average_rate or stream.guessed_rate or 0) or 0.0
        duration = float(stream.duration * stream.time_base) if stream.duration else 0.0
        if not duration and container.duration:
            duration = container.duration / av.time_base
        return VideoInfo(fps, stream.codec_context.width, stream.codec_context.height, stream.frames, duration)


def iter_video_frames(
    path: str | Path,
    target_fps: float | None = None,
    start_s: float = 0.0,
    end_s: float | None = None,
) -> Iterator[tuple[float, np.ndarray]]:
    """Yield ``(timestamp_s, frame [H, W, 3] uint8)``, resampled to ``target_fps`` by nearest frame.

    Resampling keeps, for every output tick ``start_s + k / target_fps``, the first decoded frame whose
    timestamp reaches that tick; frames are never interpolated, so outputs are real frames.
    """
    if target_fps is not None and target_fps <= 0:
        raise ValueError(f"target_fps must be > 0, got {target_fps}")
    with _open_for_reading(path) as container:
        if not container.streams.video:
            raise ValueError(f"{path}: the file has no video stream")
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        next_tick = start_s
        for frame in container.decode(stream):
            t = float(frame.time) if frame.time is not None else 0.0
            if t + 1e-6 < start_s:
                continue
            if end_s is not None and t > end_s + 1e-6:
                break
            if target_fps is not None:
                if t + 1e-6 < next_tick:
                    continue
                # the next tick strictly after this frame: a slow source never yields a frame twice
                next_tick = start_s + (math.floor((t - start_s) * target_fps + 1e-6) + 1) / target_fps
            yield t, frame.to_ndarray(format="rgb24")


def read_video(
    path: str | Path,
    target_fps: float | None = None,
    start_s: float = 0.0,
    end_s: float | None = None,
    max_frames: int | None = None,
) -> tuple[np.ndarray, float]:
    """Decode a video into ``[F, H, W, 3]`` uint8 frames; returns the frames and their fps."""
    frames = []
    for _, frame in iter_video_frames(path, target_fps, start_s, end_s):
        frames.append(frame)
        if max_frames is not None and len(frames) >= max_frames:
            break
    if not frames:
        raise ValueError(f"{path}: no frames decoded (start_s={start_s}, end_s={end_s})")
    fps = target_fps if target_fps is not None else probe_video(path).fps
    return np.stack(frames), fps


def to_uint8_frames(frames: np.ndarray) -> np.ndarray:
    """Accept float frames in 0..1 or uint8 frames, ``[F, H, W, 3]`` or ``[H, W, 3]``; return uint8 ``[F, H, W, 3]``."""
    array = np.asarray(frames)
    if array.ndim == 3:
        array = array[None]
    if array.ndim != 4 or array.shape[-1] != 3:
        raise ValueError(f"frames must be [F, H, W, 3] RGB, got shape {tuple(array.shape)}")
    if array.dtype == np.uint8:
        return array
    return (np.clip(array.astype(np.float32), 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


class VideoWriter:
    """Streaming encoder: ``with VideoWriter(path, fps) as w: w.write(batch)`` for each batch of frames.

    The frame size is fixed by the first batch. ``mp4`` (H.264) and the yuv420p pixel format need even
    sizes, so odd widths/heights are padded by one edge pixel (recorded in ``self.padded``).
    """

    def __init__(self, path: str | Path, fps: float, video_format: str | None = None) -> None:
        self.path = Path(path)
        fmt = (video_format or self.path.suffix.lstrip(".")).lower()
        if fmt not in VIDEO_FORMATS:
            raise ValueError(f"unsupported video format {fmt!r}; expected one of {sorted(VIDEO_FORMATS)}")
        if fps <= 0:
            raise ValueError(f"fps must be > 0, got {fps}")
        self.format = fmt
        self.fps = fps
        self.frames_written = 0
        self.padded = False
        self._container = None
        self._stream = None
        self._size: tuple[int, int] | None = None

    def _open(self, height: int, width: int) -> None:
        codec, pix_fmt, options = VIDEO_FORMATS[self.format]
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._container = av.open(str(self.path), mode="w")
        rate = Fraction(self.fps).limit_denominator(1001)
        self._stream = self._container.add_stream(codec, rate=rate, options=dict(options))
        self._stream.width = width + (width % 2)
        self._stream.height = height + (height % 2)
        self._stream.pix_fmt = pix_fmt
        self.padded = (width % 2, height % 2) != (0, 0)
        self._size = (height, width)

    def write(self, frames: np.ndarray) -> None:
        batch = to_uint8_frames(frames)
        if self._container is None:
            self._open(batch.shape[1], batch.shape[2])
        if batch.shape[1:3] != self._size:
            raise ValueError(f"frame size changed from {self._size} to {batch.shape[1:3]} within one video")
        if self.padded:
            pad_h, pad_w = self._stream.height - batch.shape[1], self._stream.width - batch.shape[2]
            batch = np.pad(batch, ((0, 0), (0, pad_h), (0, pad_w), (0, 0)), mode="edge")
        for image in batch:
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24")
            for packet in self._stream.encode(frame):
                self._container.mux(packet)
        self.frames_written += len(batch)

    def close(self) -> None:
        if self._container is None:
            return
        for packet in self._stream.encode(None):
            self._container.mux(packet)
        self._container.close()
        self._container = None

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def resize_and_crop(frames: np.ndarray, width: int, height: int) -> np.ndarray:
    """Scale ``[F, H, W, 3]`` frames to cover ``width x height`` and centre-crop to exactly that size."""
    import cv2

    _, src_h, src_w, _ = frames.shape
    scale = max(width / src_w, height / src_h)
    new_w, new_h = max(width, round(src_w * scale)), max(height, round(src_h * scale))
    interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC
    top, left = (new_h - height) // 2, (new_w - width) // 2
    out = np.empty((len(frames), height, width, 3), dtype=frames.dtype)
    for i, frame in enumerate(frames):
        out[i] = cv2.resize(frame, (new_w, new_h), interpolation=interpolation)[top : top + height, left : left + width]
    return out


def write_video(path: str | Path, frames: np.ndarray, fps: float, video_format: str | None = None) -> Path:
    """Encode a whole ``[F, H, W, 3]`` batch (float 0..1 or uint8) into ``path``."""
    with VideoWriter(path, fps, video_format) as writer:
        writer.write(frames)
    return Path(path)
