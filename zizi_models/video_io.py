"""Video files <-> frame arrays, through PyAV. Used by the nodes, the trainer's preprocessing and the demo.

Frames are ``uint8`` RGB arrays ``[F, H, W, 3]`` (time first). Writing is streaming: a
:class:`VideoWriter` takes batches of frames as they are produced, so a long video never has to be
held in memory.
"""

from __future__ import annotations

import io
import logging
import math
import struct
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

    An ``mp4`` is written as a fragmented mp4, one fragment per ``write()`` starting on a keyframe, each on
    disk (complete) when ``write()`` returns: a process killed mid-stream (SIGKILL, out of memory) leaves a
    file that decodes up to the last finished batch. ``close()`` appends the fragment index, so a closed
    file reports its full duration. ``webm`` is written by one muxer and is only complete once closed.
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
        self._sink: _Mp4Fragments | _SingleMuxer | None = None
        self._size: tuple[int, int] | None = None
        self._padded_size: tuple[int, int] | None = None

    def _open(self, height: int, width: int) -> None:
        codec, pix_fmt, options = VIDEO_FORMATS[self.format]
        self.path.parent.mkdir(parents=True, exist_ok=True)
        rate = Fraction(self.fps).limit_denominator(1001)
        self._padded_size = (height + height % 2, width + width % 2)
        self.padded = self._padded_size != (height, width)
        self._size = (height, width)
        sink = _Mp4Fragments if self.format == "mp4" else _SingleMuxer
        self._sink = sink(self.path, codec, pix_fmt, dict(options), rate, *self._padded_size)

    def write(self, frames: np.ndarray) -> None:
        batch = to_uint8_frames(frames)
        if not len(batch):
            return
        if self._sink is None:
            self._open(batch.shape[1], batch.shape[2])
        if batch.shape[1:3] != self._size:
            raise ValueError(f"frame size changed from {self._size} to {batch.shape[1:3]} within one video")
        if self.padded:
            pad_h, pad_w = self._padded_size[0] - batch.shape[1], self._padded_size[1] - batch.shape[2]
            batch = np.pad(batch, ((0, 0), (0, pad_h), (0, pad_w), (0, 0)), mode="edge")
        pix_fmt = VIDEO_FORMATS[self.format][1]
        # converted here, not inside encode(): there the conversion made the output vary from run to run once
        # the process had decoded an mp4 (PyAV 18.1, FFmpeg 8); frame.reformat() is repeatable
        self._sink.write([av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24").reformat(format=pix_fmt)
                          for image in batch])
        self.frames_written += len(batch)

    def close(self) -> None:
        if self._sink is None:
            return
        sink, self._sink = self._sink, None
        sink.close()

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _SingleMuxer:
    """One PyAV output container for the whole video (webm): complete only once closed."""

    def __init__(self, path: Path, codec: str, pix_fmt: str, options: dict[str, str], rate: Fraction,
                 height: int, width: int) -> None:
        self._container = av.open(str(path), mode="w")
        self._stream = self._container.add_stream(codec, rate=rate, options=options)
        self._stream.width, self._stream.height, self._stream.pix_fmt = width, height, pix_fmt

    def write(self, frames: list[av.VideoFrame]) -> None:
        for frame in frames:
            self._container.mux(self._stream.encode(frame))

    def close(self) -> None:
        self._container.mux(self._stream.encode(None))
        self._container.close()


def _boxes(data: bytes) -> Iterator[tuple[bytes, int, int]]:
    """``(type, start, end)`` of the ISO-BMFF boxes laid end to end in ``data``."""
    pos = 0
    while pos + 8 <= len(data):
        size, kind = struct.unpack_from(">I4s", data, pos)
        if size == 1:
            size = struct.unpack_from(">Q", data, pos + 8)[0]
        if size < 8 or pos + size > len(data):
            raise ValueError(f"malformed mp4 box {kind!r} of {size} bytes at {pos}")
        yield kind, pos, pos + size
        pos += size


def _box(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I4s", 8 + len(payload), kind) + payload


class _Mp4Fragments:
    """H.264 in a fragmented mp4 written one fragment per batch, each complete on disk when ``write`` returns.

    Each batch is encoded and muxed by a fresh PyAV mp4 container in memory (its encoder flushed at the
    batch's end, so no frame is held back; the batch starts on an IDR frame); the first batch keeps the
    header (``ftyp`` + empty ``moov``), later ones only their ``moof`` + ``mdat``, whose decode time
    (``tfdt``) is moved to the batch's place in the video. The bytes are then appended to the file.
    """

    MOVFLAGS = "frag_keyframe+empty_moov+default_base_moof"
    # no B-frames: a fragment's first frame is then shown at its decode time, so fragments made by separate
    # encoders and muxers line up end to end (B-frames delay each batch by a batch-dependent number of frames)
    ENCODER_OPTIONS = {"x264-params": "bframes=0"}

    def __init__(self, path: Path, codec: str, pix_fmt: str, options: dict[str, str], rate: Fraction,
                 height: int, width: int) -> None:
        self._rate, self._width, self._height = rate, width, height
        self._codec, self._pix_fmt, self._options = codec, pix_fmt, options
        self._file = open(path, "wb")  # noqa: SIM115 - kept open across write() calls, closed in close()
        self._next_pts = 0
        self._fragments: list[tuple[int, int]] = []  # (decode time in track units, file offset of its moof)
        self._track_id = 1

    def write(self, frames: list[av.VideoFrame]) -> None:
        """Encode ``frames`` (a fresh encoder, flushed at the end: no frame held back) and append them as one fragment."""
        buffer = io.BytesIO()
        options = {"movflags": self.MOVFLAGS, "fragment_index": str(len(self._fragments) + 1)}
        with av.open(buffer, mode="w", format="mp4", options=options) as muxer:
            stream = muxer.add_stream(self._codec, rate=self._rate, options={**self._options, **self.ENCODER_OPTIONS})
            stream.width, stream.height, stream.pix_fmt = self._width, self._height, self._pix_fmt
            for i, frame in enumerate(frames):
                frame.pts, frame.time_base = i, 1 / self._rate  # explicit: x264 rate control reads the timestamps
                muxer.mux(stream.encode(frame))
            muxer.mux(stream.encode(None))
            track_time_base = stream.time_base  # the muxer's track timescale, set when it wrote its header
        start, self._next_pts = self._next_pts, self._next_pts + len(frames)
        self._append_fragment(buffer.getvalue(), round(Fraction(start) / self._rate / track_time_base))

    def _append_fragment(self, data: bytes, offset: int) -> None:
        keep = (b"moof", b"mdat") if self._fragments else (b"ftyp", b"moov", b"moof", b"mdat")
        out = bytearray()
        for kind, start, end in _boxes(data):
            if kind not in keep:
                continue
            box = bytearray(data[start:end])
            if kind == b"moof":
                decode_time = self._shift_decode_time(box, offset)
                self._fragments.append((decode_time, self._file.tell() + len(out)))
            out += box
        self._file.write(out)
        self._file.flush()  # in the OS's hands now: it outlives this process

    def _shift_decode_time(self, moof: bytearray, offset: int) -> int:
        """Move this (fresh muxer's) fragment, whose time starts at 0, to its place in the video: add
        ``offset`` (track units) to its ``tfdt``; returns the new decode time."""
        for kind, start, end in _boxes(bytes(moof[8:])):
            if kind != b"traf":
                continue
            traf = 8 + start
            for sub, sub_start, _ in _boxes(bytes(moof[traf + 8 : 8 + end])):
                at = traf + 8 + sub_start
                if sub == b"tfhd":
                    self._track_id = struct.unpack_from(">I", moof, at + 12)[0]
                elif sub == b"tfdt":
                    layout = ">Q" if moof[at + 8] == 1 else ">I"
                    decode_time = struct.unpack_from(layout, moof, at + 12)[0] + offset
                    struct.pack_into(layout, moof, at + 12, decode_time)
                    return decode_time
        raise ValueError("mp4 fragment without a tfdt box")

    def close(self) -> None:
        """Append the fragment index (``mfra``: where each fragment starts, for seeking and the duration)."""
        try:
            if self._fragments:
                entries = b"".join(struct.pack(">QQBBB", t, offset, 1, 1, 1) for t, offset in self._fragments)
                tfra = _box(b"tfra", struct.pack(">BxxxIII", 1, self._track_id, 0, len(self._fragments)) + entries)
                mfro_size = 16
                self._file.write(_box(b"mfra", tfra + _box(b"mfro", struct.pack(">xxxxI", 8 + len(tfra) + mfro_size))))
        finally:
            self._file.close()


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
