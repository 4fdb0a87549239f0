"""POSE_KEYPOINT: the pose sequence format shared with comfyui_controlnet_aux, made strict.

A POSE_KEYPOINT value is a list with one dict per video frame (frame 0 first, every frame
present, an empty ``people`` list when nobody is there)::

    {
      "version": 1.3,                      # OpenPose JSON version this mirrors
      "units": "pixels",                   # our addition: coordinates are canvas pixels
      "canvas_width": W, "canvas_height": H,
      "people": [{
          "person_id": 0,                  # stable across frames for one tracked person
          "pose_keypoints_2d":       [x, y, c] * 18,   # OpenPose COCO-18 order
          "hand_left_keypoints_2d":  [x, y, c] * 21,
          "hand_right_keypoints_2d": [x, y, c] * 21,
          "face_keypoints_2d":       [x, y, c] * 70,
      }, ...],
    }

Conventions fixed here (comfyui_controlnet_aux leaves them loose):
* one unit: pixels of the canvas (x right, y down, origin at the top-left corner);
* ``c`` is a real confidence in [0, 1]; ``c == 0`` means missing and then ``x == y == 0``;
* every part is always a full list (never ``None``);
* ``person_id`` is an int >= 0, unique within a frame and stable along a track.

``parse_pose_keypoint`` reads the loose variants found in the wild (normalised units, ``None``
parts, 68-point faces, OpenPose's ``person_id: [-1]``, controlnet_aux's negative coordinates
for undetected hand points, confidences slightly above 1) and returns the strict form;
``validate_pose_keypoint`` checks the strict form and raises ``ValueError`` naming the frame
and field at fault.
"""

from __future__ import annotations

import json
import logging
import math
import os
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np

from .skeleton import K_ALL, N_FACE, N_FACE_NO_PUPILS, PART_FIELDS

logger = logging.getLogger(__name__)

PoseFrame = dict[str, Any]
PoseKeypoint = list[PoseFrame]
Units = Literal["auto", "pixels", "normalized"]

OPENPOSE_JSON_VERSION = 1.3
UNITS_PIXELS = "pixels"
_NORMALISED_NAMES = ("normalized", "normalised")
# A frame whose present coordinates all lie in [-_NORM_EPS, 1 + _NORM_EPS] is in normalised units.
_NORM_EPS = 1e-6


# ----------------------------------------------------------------------------- arrays <-> dicts


def empty_frame(width: int, height: int) -> PoseFrame:
    """A frame with nobody in it."""
    return {
        "version": OPENPOSE_JSON_VERSION,
        "units": UNITS_PIXELS,
        "canvas_width": int(width),
        "canvas_height": int(height),
        "people": [],
    }


def _clean(points: np.ndarray) -> np.ndarray:
    """[..., 3] -> copy with c clipped to [0, 1] and x = y = 0 where c == 0."""
    out = np.array(points, dtype=np.float64, copy=True)
    out[..., 2] = np.clip(np.nan_to_num(out[..., 2], nan=0.0), 0.0, 1.0)
    missing = out[..., 2] <= 0.0
    out[missing] = 0.0
    return out


def array_to_person(points: np.ndarray, person_id: int) -> dict[str, Any]:
    """One person from a ``[130, 3]`` array (body, left hand, right hand, face)."""
    points = _clean(np.asarray(points).reshape(K_ALL, 3))
    person: dict[str, Any] = {"person_id": int(person_id)}
    for field, (sl, _n) in PART_FIELDS.items():
        person[field] = [float(v) for v in points[sl].reshape(-1)]
    return person


def person_to_array(person: dict[str, Any]) -> np.ndarray:
    """Strict person dict -> ``[130, 3]`` float64 array (x, y, c)."""
    out = np.zeros((K_ALL, 3), dtype=np.float64)
    for field, (sl, n) in PART_FIELDS.items():
        values = person.get(field)
        if values:
            out[sl] = np.asarray(values, dtype=np.float64).reshape(n, 3)
    return out


def frame_to_arrays(frame: PoseFrame) -> tuple[list[int], np.ndarray]:
    """Frame -> (person ids, keypoints ``[P, 130, 3]``)."""
    ids = [int(p["person_id"]) for p in frame["people"]]
    arr = np.zeros((len(ids), K_ALL, 3), dtype=np.float64)
    for i, person in enumerate(frame["people"]):
        arr[i] = person_to_array(person)
    return ids, arr


def frame_from_arrays(ids: Sequence[int], points: np.ndarray, width: int, height: int) -> PoseFrame:
    """(ids, ``[P, 130, 3]``) -> frame. People with no present keypoint are dropped."""
    frame = empty_frame(width, height)
    for pid, pts in zip(ids, np.asarray(points).reshape(-1, K_ALL, 3), strict=True):
        if np.any(pts[:, 2] > 0):
            frame["people"].append(array_to_person(pts, pid))
    return frame


def body_keypoints(frame: PoseFrame) -> np.ndarray:
    """Body keypoints of every person in a frame: ``[P, 18, 3]``."""
    return frame_to_arrays(frame)[1][:, PART_FIELDS["pose_keypoints_2d"][0]]


def sequence_to_tracks(frames: Sequence[PoseFrame]) -> tuple[list[int], np.ndarray]:
    """Sequence -> (sorted track ids, ``[F, T, 130, 3]``); absent people are all zeros (missing)."""
    per_frame = [frame_to_arrays(f) for f in frames]
    ids = sorted({pid for fids, _ in per_frame for pid in fids})
    col = {pid: j for j, pid in enumerate(ids)}
    tracks = np.zeros((len(frames), len(ids), K_ALL, 3), dtype=np.float64)
    for t, (fids, arr) in enumerate(per_frame):
        for pid, pts in zip(fids, arr, strict=True):
            tracks[t, col[pid]] = pts
    return ids, tracks


def canvas_sizes(frames: Sequence[PoseFrame]) -> list[tuple[int, int]]:
    """(width, height) of every frame."""
    return [(int(f["canvas_width"]), int(f["canvas_height"])) for f in frames]


def tracks_to_sequence(
    ids: Sequence[int], tracks: np.ndarray, sizes: Sequence[tuple[int, int]] | tuple[int, int]
) -> PoseKeypoint:
    """Inverse of ``sequence_to_tracks``; ``sizes`` is one (W, H) or one per frame."""
    n_frames = tracks.shape[0]
    if len(sizes) == 2 and isinstance(sizes[0], int | np.integer):
        sizes = [sizes] * n_frames  # type: ignore[list-item]
    return [frame_from_arrays(ids, tracks[t], *sizes[t]) for t in range(n_frames)]  # type: ignore[misc]


# ----------------------------------------------------------------------------- lenient parsing


def _as_int(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        raise ValueError(f"{where}: expected a positive integer, got {value!r}")
    if not math.isfinite(float(value)) or float(value) != int(value) or int(value) <= 0:
        raise ValueError(f"{where}: expected a positive integer, got {value!r}")
    return int(value)


def _read_part(person: dict[str, Any], field: str, n: int, where: str) -> np.ndarray:
    """One keypoint list -> ``[n, 3]`` (missing part -> zeros). 68-point faces get 2 empty pupils."""
    values = person.get(field)
    if values is None or (isinstance(values, list | tuple) and len(values) == 0):
        return np.zeros((n, 3), dtype=np.float64)
    if not isinstance(values, list | tuple | np.ndarray):
        raise ValueError(f"{where}.{field}: expected a list of numbers, got {type(values).__name__}")
    try:
        arr = np.asarray(values, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{where}.{field}: expected a flat list of numbers (x, y, c per keypoint)") from err
    allowed = [n * 3] + ([N_FACE_NO_PUPILS * 3] if n == N_FACE else [])
    if arr.size not in allowed:
        hint = " or 204 (68 keypoints without pupils)" if n == N_FACE else ""
        raise ValueError(
            f"{where}.{field}: expected {n * 3} numbers ({n} keypoints x 3: x, y, confidence){hint}, "
            f"got {arr.size}"
        )
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{where}.{field}: contains NaN or infinite values")
    out = np.zeros((n, 3), dtype=np.float64)
    out[: arr.size // 3] = arr.reshape(-1, 3)
    return out


def _read_person_id(person: dict[str, Any], where: str) -> int | None:
    pid = person.get("person_id")
    if isinstance(pid, list | tuple):  # OpenPose writes [-1]
        pid = pid[0] if len(pid) else None
    if pid is None:
        return None
    if isinstance(pid, bool) or not isinstance(pid, int | float | np.integer) or float(pid) != int(pid):
        raise ValueError(f"{where}.person_id: expected an integer, got {pid!r}")
    return int(pid) if int(pid) >= 0 else None


def looks_normalised(points: np.ndarray) -> bool:
    """True when every present point ([..., 3], c > 0) has both coordinates in [0, 1]."""
    pts = points.reshape(-1, 3)
    present = pts[pts[:, 2] > 0]
    # controlnet_aux marks undetected hand points with small negative coordinates: ignore them
    present = present[(present[:, 0] >= 0) & (present[:, 1] >= 0)]
    return present.shape[0] > 0 and bool(np.all(present[:, :2] <= 1.0 + _NORM_EPS))


def parse_frame(obj: Any, index: int = 0, units: Units = "auto") -> PoseFrame:
    """Read one frame in any controlnet_aux / OpenPose JSON flavour; return the strict form.

    ``units``: "pixels", "normalized" (multiply by the canvas size) or "auto": use the frame's
    ``units`` key when present, else normalised when all present coordinates are <= 1.0.
    """
    where = f"frame {index}"
    if not isinstance(obj, dict):
        raise ValueError(
            f"{where}: expected a dict with 'people', 'canvas_width', 'canvas_height', got {type(obj).__name__}"
        )
    for key in ("canvas_width", "canvas_height"):
        if key not in obj:
            raise ValueError(f"{where}: missing '{key}' (the canvas size in pixels is required)")
    width = _as_int(obj["canvas_width"], f"{where}.canvas_width")
    height = _as_int(obj["canvas_height"], f"{where}.canvas_height")
    if "people" not in obj:
        raise ValueError(f"{where}: missing 'people' (use an empty list for a frame without people)")
    people = obj["people"] if obj["people"] is not None else []
    if not isinstance(people, list | tuple):
        raise ValueError(f"{where}.people: expected a list, got {type(people).__name__}")

    ids: list[int | None] = []
    arrays = np.zeros((len(people), K_ALL, 3), dtype=np.float64)
    for i, person in enumerate(people):
        pwhere = f"{where}, people[{i}]"
        if not isinstance(person, dict):
            raise ValueError(f"{pwhere}: expected a dict of keypoint lists, got {type(person).__name__}")
        ids.append(_read_person_id(person, pwhere))
        for field, (sl, n) in PART_FIELDS.items():
            arrays[i, sl] = _read_part(person, field, n, pwhere)

    declared = obj.get("units") if units == "auto" else units
    if declared in _NORMALISED_NAMES:
        normalised = True
    elif declared == UNITS_PIXELS:
        normalised = False
    elif declared is None or declared == "auto":
        normalised = looks_normalised(arrays)
    else:
        raise ValueError(f"{where}.units: expected 'pixels' or 'normalized', got {declared!r}")
    if normalised:
        negative = (arrays[..., 0] < 0) | (arrays[..., 1] < 0)
        arrays[negative] = 0.0  # controlnet_aux's "not detected" marker
        arrays[..., 0] *= width
        arrays[..., 1] *= height
        logger.debug("%s: normalised coordinates converted to pixels (%dx%d)", where, width, height)
    if np.any(arrays[..., 2] > 1.0):
        logger.debug("%s: confidences above 1 clipped to 1", where)

    # ids: keep explicit ones, give the others the smallest free non-negative ints
    used = {pid for pid in ids if pid is not None}
    if len(used) != sum(pid is not None for pid in ids):
        raise ValueError(f"{where}: duplicate person_id values {sorted(p for p in ids if p is not None)}")
    free = (k for k in range(len(ids) + len(used) + 1) if k not in used)
    final_ids = [pid if pid is not None else next(free) for pid in ids]

    frame = empty_frame(width, height)
    frame["people"] = [array_to_person(arrays[i], final_ids[i]) for i in range(len(people))]
    return frame


def parse_pose_keypoint(obj: Any, units: Units = "auto") -> PoseKeypoint:
    """A POSE_KEYPOINT value (list of frames, or a single frame dict) -> strict list of frames."""
    if isinstance(obj, dict):
        obj = [obj]
    if not isinstance(obj, list | tuple):
        raise ValueError(f"POSE_KEYPOINT: expected a list of frame dicts, got {type(obj).__name__}")
    return [parse_frame(f, i, units) for i, f in enumerate(obj)]


# ----------------------------------------------------------------------------- strict validation


def _frame_problems(frame: Any, index: int) -> list[str]:
    where = f"frame {index}"
    if not isinstance(frame, dict):
        return [f"{where}: expected a dict, got {type(frame).__name__}"]
    problems: list[str] = []
    for key in ("canvas_width", "canvas_height"):
        value = frame.get(key)
        if isinstance(value, bool) or not isinstance(value, int | np.integer) or value <= 0:
            problems.append(f"{where}.{key}: expected a positive int, got {value!r}")
    if frame.get("units", UNITS_PIXELS) != UNITS_PIXELS:
        problems.append(f"{where}.units: expected 'pixels', got {frame.get('units')!r}")
    people = frame.get("people")
    if not isinstance(people, list):
        return problems + [f"{where}.people: expected a list, got {type(people).__name__}"]
    seen: set[int] = set()
    for i, person in enumerate(people):
        pwhere = f"{where}, people[{i}]"
        if not isinstance(person, dict):
            problems.append(f"{pwhere}: expected a dict, got {type(person).__name__}")
            continue
        pid = person.get("person_id")
        if isinstance(pid, bool) or not isinstance(pid, int | np.integer) or pid < 0:
            problems.append(f"{pwhere}.person_id: expected an int >= 0, got {pid!r}")
        elif pid in seen:
            problems.append(f"{pwhere}.person_id: {pid} is used twice in this frame")
        else:
            seen.add(int(pid))
        for field, (_sl, n) in PART_FIELDS.items():
            values = person.get(field)
            if not isinstance(values, list) or len(values) != n * 3:
                got = len(values) if isinstance(values, list) else type(values).__name__
                problems.append(f"{pwhere}.{field}: expected a list of {n * 3} numbers ({n} x (x, y, c)), got {got}")
                continue
            try:
                arr = np.asarray(values, dtype=np.float64).reshape(n, 3)
            except (TypeError, ValueError):
                problems.append(f"{pwhere}.{field}: contains non-numbers")
                continue
            if not np.all(np.isfinite(arr)):
                problems.append(f"{pwhere}.{field}: contains NaN or infinite values")
            elif np.any((arr[:, 2] < 0) | (arr[:, 2] > 1)):
                problems.append(f"{pwhere}.{field}: confidences must lie in [0, 1]")
            elif np.any((arr[:, 2] == 0) & np.any(arr[:, :2] != 0, axis=1)):
                problems.append(f"{pwhere}.{field}: missing keypoints (c = 0) must have x = y = 0")
    return problems


def validate_pose_keypoint(frames: Any, max_problems: int = 10) -> None:
    """Raise ``ValueError`` listing what is wrong when ``frames`` is not strict POSE_KEYPOINT."""
    if not isinstance(frames, list):
        raise ValueError(f"POSE_KEYPOINT: expected a list of frame dicts, got {type(frames).__name__}")
    problems: list[str] = []
    for i, frame in enumerate(frames):
        problems.extend(_frame_problems(frame, i))
        if len(problems) >= max_problems:
            break
    if problems:
        raise ValueError("invalid POSE_KEYPOINT:\n  " + "\n  ".join(problems[:max_problems]))


# ----------------------------------------------------------------------------- JSON


def loads_pose_json(text: str | bytes, units: Units = "auto") -> PoseKeypoint:
    """Parse POSE_KEYPOINT JSON text (a list of frames or one frame)."""
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as err:
        raise ValueError(
            f"invalid POSE_KEYPOINT JSON at line {err.lineno}, column {err.colno}: {err.msg}"
        ) from err
    return parse_pose_keypoint(obj, units)


def load_pose_json(path: str | os.PathLike[str], units: Units = "auto") -> PoseKeypoint:
    """Read a POSE_KEYPOINT JSON file (errors name the file, the frame and the field)."""
    with open(path, encoding="utf-8") as fh:
        text = fh.read()
    try:
        return loads_pose_json(text, units)
    except ValueError as err:
        raise ValueError(f"{os.fspath(path)}: {err}") from err


def dumps_pose_json(frames: Sequence[PoseFrame], indent: int | None = None) -> str:
    """Serialise strict POSE_KEYPOINT frames (validated first)."""
    frames = list(frames)
    validate_pose_keypoint(frames)
    return json.dumps(frames, indent=indent)


def save_pose_json(frames: Sequence[PoseFrame], path: str | os.PathLike[str], indent: int | None = None) -> None:
    """Validate and write POSE_KEYPOINT frames to ``path`` atomically (write + rename)."""
    text = dumps_pose_json(frames, indent)
    tmp = f"{os.fspath(path)}.tmp"
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write(text)
    os.replace(tmp, path)


def export_controlnet_aux(frames: Sequence[PoseFrame], binary_confidence: bool = True) -> list[dict[str, Any]]:
    """Strict frames -> the exact flavour comfyui_controlnet_aux's own nodes read back.

    That pack stores normalised coordinates and drops every keypoint whose confidence is < 1
    when it decodes, so by default present points get ``c = 1.0`` (``binary_confidence``).
    """
    out = []
    for frame in frames:
        width, height = int(frame["canvas_width"]), int(frame["canvas_height"])
        ids, arr = frame_to_arrays(frame)
        arr[..., 0] /= width
        arr[..., 1] /= height
        if binary_confidence:
            arr[..., 2] = (arr[..., 2] > 0).astype(np.float64)
        people = []
        for pid, pts in zip(ids, arr, strict=True):
            person: dict[str, Any] = {"person_id": pid}
            for field, (sl, _n) in PART_FIELDS.items():
                person[field] = [float(v) for v in pts[sl].reshape(-1)] if np.any(pts[sl, 2] > 0) else None
            people.append(person)
        out.append({"people": people, "canvas_width": width, "canvas_height": height})
    return out
