"""The interface every pose backend implements."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any

import numpy as np

from ..schema import PoseFrame, PoseKeypoint
from .image import as_frame_list

FrameCallback = Callable[[int], None]


class PoseBackend(ABC):
    """Detects people in RGB frames and returns strict POSE_KEYPOINT (one dict per frame).

    ``detect(frames, on_frame)`` calls ``on_frame(i)`` in the calling thread after each frame,
    with ``i`` counting finished frames from 0 (the progress is ``(i + 1) / F``); an exception
    raised by ``on_frame`` (e.g. ComfyUI's interrupt) stops the detection and propagates.
    Use a backend as a context manager or call ``close()`` to release its models.
    """

    name: str = "base"

    @abstractmethod
    def detect_frame(self, frame: np.ndarray) -> PoseFrame:
        """One RGB uint8 ``[H, W, 3]`` frame -> one POSE_KEYPOINT frame in its pixels."""

    def detect(self, frames: Any, on_frame: FrameCallback | None = None) -> PoseKeypoint:
        """frames: ``[F, H, W, 3]`` uint8 RGB (or anything ``as_frame_list`` reads) -> ``F`` frames."""
        results: PoseKeypoint = []
        for i, img in enumerate(as_frame_list(frames)):
            results.append(self.detect_frame(img))
            if on_frame is not None:
                on_frame(i)
        return results

    def close(self) -> None:  # noqa: B027 - optional hook: backends without resources need nothing
        """Release models and threads. Safe to call twice."""

    def __enter__(self) -> PoseBackend:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
