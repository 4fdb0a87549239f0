"""Stable person ids across frames."""

import numpy as np

from zizi_models.pose.schema import frame_from_arrays, frame_to_arrays
from zizi_models.pose.skeleton import K_ALL
from zizi_models.pose.track import assign_track_ids


def _person(x: float, y: float) -> np.ndarray:
    pts = np.zeros((K_ALL, 3))
    pts[:18, 0] = x + np.arange(18)
    pts[:18, 1] = y + 3 * np.arange(18)
    pts[:18, 2] = 0.9
    return pts


def test_ids_follow_people_when_their_order_in_the_list_swaps():
    frames = []
    for t in range(10):
        a, b = _person(100 + 2 * t, 100), _person(400 - 2 * t, 120)
        people = [a, b] if t % 2 == 0 else [b, a]  # detector returns them in varying order
        frames.append(frame_from_arrays([0, 1], np.stack(people), 512, 512))
    tracked = assign_track_ids(frames)
    left = [ids[int(np.argmin(arr[:, 0, 0]))] for ids, arr in map(frame_to_arrays, tracked)]
    right = [ids[int(np.argmax(arr[:, 0, 0]))] for ids, arr in map(frame_to_arrays, tracked)]
    assert len(set(left)) == 1 and len(set(right)) == 1 and left[0] != right[0]


def test_new_people_get_new_ids_and_ids_are_never_reused():
    seq = [
        [_person(100, 100)],
        [_person(102, 100), _person(400, 100)],  # someone enters
        [_person(104, 100)],  # and leaves
        [_person(106, 100)],
        [_person(108, 100), _person(250, 300)],  # someone else, elsewhere
    ]
    frames = [frame_from_arrays(list(range(len(p))), np.stack(p), 512, 512) for p in seq]
    tracked = assign_track_ids(frames, max_age=1)
    ids = [frame_to_arrays(f)[0] for f in tracked]
    assert ids == [[0], [0, 1], [0], [0], [0, 2]]


def test_max_distance_and_age():
    frames = [
        frame_from_arrays([0], _person(100, 100)[None], 512, 512),
        frame_from_arrays([0], _person(300, 100)[None], 512, 512),  # a jump of 200 px > 0.1 x diagonal
        frame_from_arrays([0], _person(302, 100)[None], 512, 512),
    ]
    assert [frame_to_arrays(f)[0] for f in assign_track_ids(frames)] == [[0], [1], [1]]
    loose = assign_track_ids(frames, max_distance=0.5)
    assert [frame_to_arrays(f)[0] for f in loose] == [[0], [0], [0]]
    empty = frame_from_arrays([], np.zeros((0, K_ALL, 3)), 512, 512)
    gap = [frames[0], empty, empty, frames[0]]
    assert [frame_to_arrays(f)[0] for f in assign_track_ids(gap, max_age=1)] == [[0], [], [], [1]]
    assert [frame_to_arrays(f)[0] for f in assign_track_ids(gap, max_age=5)] == [[0], [], [], [0]]
