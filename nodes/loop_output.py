"""Where the loop controller's decoded frames go: all kept for the IMAGE output, or streamed to an mp4.

``LoopOutput.add(chunk)`` gets each decoded chunk (IMAGE [N, H, W, 3], in frame order). With ``keep_all``
the chunks are copied into one preallocated [T, H, W, 3] tensor (no list of chunks and no concatenation
at the end, which held every frame twice); otherwise only the last ``keep_last`` frames are kept and the
rest lives only in the video file. A writer, when given, gets every chunk as it arrives.
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch

from ..zizi_models.video_io import VideoWriter
from .comfy import folders

log = logging.getLogger(__name__)

ALL_FRAMES = "all frames"
STREAM = "stream to file (small IMAGE)"
OUTPUT_MODES = [ALL_FRAMES, STREAM]
DEFAULT_STREAM_PREFIX = "zizi/stream"


def open_writer(prefix: str, width: int, height: int, fps: float) -> VideoWriter:
    """An mp4 writer for ``prefix`` in ComfyUI's output folder (the next free counter, like SaveImage)."""
    folder, stem, counter, _ = folders.save_path(prefix, width, height)
    return VideoWriter(Path(folder) / f"{stem}_{counter:05}_.mp4", fps=fps)


class LoopOutput:
    """Collects decoded chunks for a video of ``total_frames`` frames."""

    def __init__(self, total_frames: int, keep_all: bool, keep_last: int, writer: VideoWriter | None = None) -> None:
        if not keep_all and writer is None:
            raise ValueError("output: streaming needs a video writer (stream_prefix)")
        self.total, self.keep_all, self.keep_last, self.writer = total_frames, keep_all, max(keep_last, 1), writer
        self.frames_added = 0
        self._all: torch.Tensor | None = None
        self._last: torch.Tensor | None = None

    def add(self, chunk: torch.Tensor) -> None:
        count = chunk.shape[0]
        if self.frames_added + count > self.total:
            raise RuntimeError(f"{self.frames_added + count} frames decoded for a video of {self.total}")
        if self.writer is not None:
            self.writer.write(chunk.numpy())
        if self.keep_all:
            if self._all is None:
                self._all = torch.empty((self.total, *chunk.shape[1:]), dtype=chunk.dtype)
            self._all[self.frames_added:self.frames_added + count] = chunk
        else:
            last = chunk if self._last is None else torch.cat([self._last, chunk])
            self._last = last[-self.keep_last:].clone() if last.shape[0] > self.keep_last else last
        self.frames_added += count

    def images(self) -> torch.Tensor:
        """The IMAGE output: every frame (all frames mode) or the last ``keep_last`` frames (streaming)."""
        if self.frames_added == 0:
            raise RuntimeError("no frame was decoded")
        if self.keep_all:
            return self._all[:self.frames_added]
        return self._last

    def close(self) -> None:
        """Finish the video file (a cancelled run leaves a playable file with the frames written so far)."""
        if self.writer is not None:
            self.writer.close()
            log.info("Zizi loop: %d frames written to %s", self.writer.frames_written, self.writer.path)
