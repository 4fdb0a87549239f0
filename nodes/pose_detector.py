"""The pose detector behind ZiziPoseExtract: built once per settings, reused, released on demand.

``DETECTORS`` holds at most one live detector (a ``zizi_models.pose`` backend). A run with the
same settings reuses it; other settings close it and build a new one. It is registered with
ComfyUI's model management (``external_models.external_model_handle``), so when ComfyUI unloads
models (``POST /free`` with ``unload_models`` or ``free_memory``, or ``free_memory`` making room
for another model) the detector is closed and dropped; the next run builds it again.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass

from ..zizi_models.pose import MissingWeightsError, PoseBackend, make_backend
from .comfy import external_models

log = logging.getLogger(__name__)

# MediaPipe upscales frames whose longer side is below this before detecting (tiny frames).
MEDIAPIPE_MIN_SIDE = 256


@dataclass(frozen=True)
class DetectorSettings:
    """Everything a detector is built from; equal settings share one detector."""

    backend: str
    detect_resolution: int
    include_hands: bool
    include_face: bool
    video: bool  # frames form a clip (MediaPipe tracking, stable person ids) vs independent images
    device: str
    weight_dirs: tuple[str, ...] = ()

    def describe(self) -> str:
        parts = [f"resolution {self.detect_resolution}", "video" if self.video else "images",
                 f"hands {'on' if self.include_hands else 'off'}", f"face {'on' if self.include_face else 'off'}"]
        if self.backend != "mediapipe":
            parts.append(f"device {self.device}")
        return ", ".join(parts)


def build_backend(settings: DetectorSettings) -> PoseBackend:
    """A backend for ``settings``; OpenPose/DWPose weights are looked up in each weight dir in turn.

    Raises ``MissingWeightsError`` naming the expected files and every folder searched.
    """
    if settings.backend == "mediapipe":
        return make_backend(
            "mediapipe",
            static_image_mode=not settings.video,
            max_side=settings.detect_resolution,
            min_side=min(MEDIAPIPE_MIN_SIDE, settings.detect_resolution),
            include_hands=settings.include_hands,
            include_face=settings.include_face,
        )
    kwargs: dict = {"device": settings.device, "track": settings.video}
    if settings.backend == "openpose":
        kwargs.update(include_hands=settings.include_hands, include_face=settings.include_face,
                      detect_resolution=settings.detect_resolution)
    errors: list[MissingWeightsError] = []
    for folder in settings.weight_dirs or ("",):
        try:
            return make_backend(settings.backend, weights_dir=folder or None, **kwargs)
        except MissingWeightsError as err:
            errors.append(err)
    message = str(errors[0])
    if len(settings.weight_dirs) > 1:
        message += f" Also searched the other 'pose' model folders: {', '.join(settings.weight_dirs[1:])}."
    raise MissingWeightsError(message)


class DetectorCache:
    """At most one live detector, keyed by ``DetectorSettings``; thread-safe.

    One ComfyUI model-management handle stands for "the pose detector" and lives as long as the
    cache: ComfyUI unloading it closes the detector, and the next ``acquire`` registers it again.
    (The handle must outlive the unload callback: ComfyUI's unload loop breaks if a model it is
    unloading is garbage collected in the middle of it.)
    """

    def __init__(self, build: Callable[[DetectorSettings], PoseBackend] = build_backend) -> None:
        self._build = build
        self._lock = threading.RLock()
        self._settings: DetectorSettings | None = None
        self._backend: PoseBackend | None = None
        self._handle: object | None = None

    @property
    def settings(self) -> DetectorSettings | None:
        return self._settings

    def acquire(self, settings: DetectorSettings) -> PoseBackend:
        """The detector for ``settings``: the cached one, or a new one (the old one is closed first).

        A failed build leaves the cache empty (nothing half-built is kept).
        """
        with self._lock:
            if self._handle is None:
                self._handle = external_models.external_model_handle("zizi pose detector", self._on_unloaded)
            if self._backend is None or self._settings != settings:
                self.release("settings changed")
                backend = self._build(settings)
                self._settings, self._backend = settings, backend
                log.info("pose detector %s created (%s)", settings.backend, settings.describe())
            external_models.external_model_in_use(self._handle)
            return self._backend

    def release(self, reason: str) -> bool:
        """Close and drop the cached detector; True if there was one."""
        with self._lock:
            backend, settings = self._backend, self._settings
            self._backend = self._settings = None
        if backend is None or settings is None:
            return False
        try:
            backend.close()
        except Exception:  # noqa: BLE001 - releasing must never fail the caller
            log.warning("pose detector %s: error while closing it", settings.backend, exc_info=True)
        log.info("pose detector %s released (%s)", settings.backend, reason)
        return True

    def _on_unloaded(self) -> None:
        self.release("ComfyUI unloaded models to free memory")


DETECTORS = DetectorCache()
