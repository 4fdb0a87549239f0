"""POSE_KEYPOINT schema: arrays <-> dicts, lenient parsing, strict validation, JSON."""

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from zizi_models.pose.schema import (
    array_to_person,
    body_keypoints,
    dumps_pose_json,
    empty_frame,
    export_controlnet_aux,
    frame_from_arrays,
    frame_to_arrays,
    load_pose_json,
    loads_pose_json,
    parse_frame,
    parse_pose_keypoint,
    save_pose_json,
    sequence_to_tracks,
    tracks_to_sequence,
    validate_pose_keypoint,
)
from zizi_models.pose.skeleton import K_ALL


def _person(rng, width=640, height=480, missing=(3, 7)):
    pts = np.zeros((K_ALL, 3))
    pts[:, 0] = rng.uniform(10, width - 10, K_ALL)
    pts[:, 1] = rng.uniform(10, height - 10, K_ALL)
    pts[:, 2] = rng.uniform(0.2, 1.0, K_ALL)
    pts[list(missing)] = 0.0
    return pts


def test_arrays_round_trip_and_strict_output():
    rng = np.random.default_rng(0)
    pts = np.stack([_person(rng), _person(rng)])
    frame = frame_from_arrays([4, 9], pts, 640, 480)
    validate_pose_keypoint([frame])
    ids, back = frame_to_arrays(frame)
    assert ids == [4, 9]
    np.testing.assert_allclose(back, pts)
    assert body_keypoints(frame).shape == (2, 18, 3)
    person = frame["people"][0]
    assert len(person["pose_keypoints_2d"]) == 54
    assert len(person["hand_left_keypoints_2d"]) == len(person["hand_right_keypoints_2d"]) == 63
    assert len(person["face_keypoints_2d"]) == 210
    assert frame["units"] == "pixels" and frame["canvas_width"] == 640 and frame["canvas_height"] == 480


def test_tracks_round_trip_fills_absent_people_with_missing():
    rng = np.random.default_rng(1)
    f0 = frame_from_arrays([0, 1], np.stack([_person(rng), _person(rng)]), 640, 480)
    f1 = frame_from_arrays([1], _person(rng)[None], 640, 480)
    ids, tracks = sequence_to_tracks([f0, f1])
    assert ids == [0, 1] and tracks.shape == (2, 2, K_ALL, 3)
    assert np.all(tracks[1, 0] == 0)  # person 0 absent in frame 1
    back = tracks_to_sequence(ids, tracks, (640, 480))
    assert [p["person_id"] for p in back[1]["people"]] == [1]
    np.testing.assert_allclose(frame_to_arrays(back[0])[1], frame_to_arrays(f0)[1])


def test_missing_points_have_zero_coordinates():
    pts = np.zeros((K_ALL, 3))
    pts[0] = (12.0, 34.0, 0.0)  # c = 0 but coordinates set: must be cleaned
    pts[1] = (5.0, 6.0, 1.7)  # confidence above 1 is clipped
    person = array_to_person(pts, 0)
    assert person["pose_keypoints_2d"][:6] == [0.0, 0.0, 0.0, 5.0, 6.0, 1.0]


def _controlnet_aux_frame():
    """What comfyui_controlnet_aux's OpenPose/DWPose nodes emit: normalised, c = 1, None parts."""
    body = []
    for j in range(18):
        body += [0.1 + 0.04 * j, 0.2 + 0.03 * j, 1.0] if j != 9 else [0.0, 0.0, 0.0]
    hand = [-1 / 512, -1 / 768, 1.0] * 21  # undetected hand points are negative
    hand[0:3] = [0.5, 0.6, 1.0]
    return {
        "people": [{"pose_keypoints_2d": body, "face_keypoints_2d": None,
                    "hand_left_keypoints_2d": hand, "hand_right_keypoints_2d": None}],
        "canvas_width": 512, "canvas_height": 768,
    }


def test_normalised_units_are_detected_and_converted():
    frame = parse_frame(_controlnet_aux_frame())
    validate_pose_keypoint([frame])
    body = body_keypoints(frame)[0]
    np.testing.assert_allclose(body[0], [0.1 * 512, 0.2 * 768, 1.0])
    np.testing.assert_allclose(body[17], [(0.1 + 0.04 * 17) * 512, (0.2 + 0.03 * 17) * 768, 1.0])
    assert np.all(body[9] == 0)
    _, arr = frame_to_arrays(frame)
    hand = arr[0, 18:39]
    np.testing.assert_allclose(hand[0], [0.5 * 512, 0.6 * 768, 1.0])
    assert np.all(hand[1:] == 0), "negative (undetected) hand points become missing"
    assert np.all(arr[0, 60:] == 0), "a None face becomes 70 missing points"
    assert frame["people"][0]["person_id"] == 0


def test_pixel_units_are_kept_and_explicit_units_win():
    raw = _controlnet_aux_frame()
    raw["people"][0]["pose_keypoints_2d"][0:3] = [300.0, 200.0, 0.9]
    body = body_keypoints(parse_frame(raw))[0]
    np.testing.assert_allclose(body[0], [300.0, 200.0, 0.9])
    np.testing.assert_allclose(body[1][:2], [0.14, 0.23])  # pixels stay pixels
    forced = body_keypoints(parse_frame(_controlnet_aux_frame(), units="pixels"))[0]
    np.testing.assert_allclose(forced[0][:2], [0.1, 0.2])


def test_controlnet_aux_json_round_trip(tmp_path):
    raw = [_controlnet_aux_frame(), {"people": [], "canvas_width": 512, "canvas_height": 768}]
    path = tmp_path / "in.json"
    path.write_text(json.dumps(raw))
    frames = load_pose_json(path)
    assert len(frames) == 2 and frames[1]["people"] == []
    save_pose_json(frames, tmp_path / "out.json")
    again = load_pose_json(tmp_path / "out.json")
    assert again == frames
    # and back to the exact flavour comfyui_controlnet_aux reads (normalised, c = 1, None parts)
    legacy = export_controlnet_aux(frames)
    person = legacy[0]["people"][0]
    assert person["face_keypoints_2d"] is None and person["hand_right_keypoints_2d"] is None
    np.testing.assert_allclose(person["pose_keypoints_2d"][:3], [0.1, 0.2, 1.0])
    np.testing.assert_allclose(frame_to_arrays(parse_pose_keypoint(legacy)[0])[1], frame_to_arrays(frames[0])[1])


def test_openpose_json_flavour_person_id_list_and_68_point_face():
    face68 = [100.0, 120.0, 0.8] * 68
    raw = {"version": 1.3, "canvas_width": 320, "canvas_height": 240,
           "people": [{"person_id": [-1], "pose_keypoints_2d": [50.0, 60.0, 0.7] * 18, "face_keypoints_2d": face68}]}
    frame = parse_pose_keypoint(raw)[0]
    assert frame["people"][0]["person_id"] == 0
    face = frame_to_arrays(frame)[1][0, 60:]
    assert np.all(face[:68, 2] == pytest.approx(0.8)) and np.all(face[68:] == 0)


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ('[{"people": [], "canvas_width": 512, ', "line 1"),
        ("[1, 2]", "frame 0: expected a dict"),
        ('[{"people": [], "canvas_width": 512}]', "frame 0: missing 'canvas_height'"),
        ('[{"people": [], "canvas_width": 0, "canvas_height": 5}]', "frame 0.canvas_width"),
        ('[{"canvas_width": 5, "canvas_height": 5}]', "frame 0: missing 'people'"),
        ('[{"people": {}, "canvas_width": 5, "canvas_height": 5}]', "frame 0.people: expected a list"),
        ('[{"people": [], "canvas_width": 5, "canvas_height": 5},'
         ' {"people": [{"pose_keypoints_2d": [1, 2, 3]}], "canvas_width": 5, "canvas_height": 5}]',
         "frame 1, people[0].pose_keypoints_2d: expected 54 numbers"),
        ('[{"people": [{"hand_left_keypoints_2d": "abc"}], "canvas_width": 5, "canvas_height": 5}]',
         "people[0].hand_left_keypoints_2d: expected a list"),
        ('[{"people": [{"pose_keypoints_2d": [' + ",".join(["NaN"] * 54) + ']}], "canvas_width": 5, "canvas_height": 5}]',
         "NaN"),
        ('[{"people": [{"person_id": 1}, {"person_id": 1}], "canvas_width": 5, "canvas_height": 5}]', "duplicate person_id"),
    ],
)
def test_malformed_json_gives_clear_errors(text, needle):
    with pytest.raises(ValueError) as info:
        loads_pose_json(text)
    assert needle in str(info.value)


def test_load_error_names_the_file(tmp_path):
    path = tmp_path / "broken.json"
    path.write_text("{not json")
    with pytest.raises(ValueError, match="broken.json: invalid POSE_KEYPOINT JSON at line 1"):
        load_pose_json(path)


def test_validation_lists_what_is_wrong():
    good = frame_from_arrays([0], np.ones((1, K_ALL, 3)), 64, 64)
    validate_pose_keypoint([good, empty_frame(64, 64)])
    bad = json.loads(json.dumps(good))
    bad["people"][0]["face_keypoints_2d"] = bad["people"][0]["face_keypoints_2d"][:-3]
    bad["people"][0]["pose_keypoints_2d"][2] = 0.0  # missing point with non-zero x, y
    bad["canvas_height"] = 64.0
    with pytest.raises(ValueError) as info:
        validate_pose_keypoint([good, bad])
    msg = str(info.value)
    assert "frame 1.canvas_height: expected a positive int" in msg
    assert "frame 1, people[0].face_keypoints_2d: expected a list of 210 numbers" in msg
    assert "missing keypoints (c = 0) must have x = y = 0" in msg
    with pytest.raises(ValueError, match="expected a list of frame dicts"):
        validate_pose_keypoint({"people": []})
    with pytest.raises(ValueError, match="invalid POSE_KEYPOINT"):
        dumps_pose_json([bad])


@settings(max_examples=40, deadline=None)
@given(
    st.integers(1, 3),
    st.integers(16, 4096),
    st.integers(16, 4096),
    st.integers(0, 2**31 - 1),
)
def test_json_round_trip_property(n_people, width, height, seed):
    """Any strict frame survives dumps -> loads unchanged, in pixels, whatever the canvas."""
    rng = np.random.default_rng(seed)
    pts = np.zeros((n_people, K_ALL, 3))
    pts[..., 0] = rng.uniform(0, width, (n_people, K_ALL))
    pts[..., 1] = rng.uniform(0, height, (n_people, K_ALL))
    pts[..., 2] = rng.uniform(0, 1, (n_people, K_ALL)) * (rng.uniform(size=(n_people, K_ALL)) > 0.3)
    pts[pts[..., 2] == 0] = 0.0
    pts[:, 0] = (width / 2 + 1.5, height / 2 + 1.5, 0.9)  # at least one point beyond 1 px: clearly pixels
    frames = [frame_from_arrays(list(range(n_people)), pts, width, height)]
    again = loads_pose_json(dumps_pose_json(frames))
    assert again == frames
    np.testing.assert_allclose(frame_to_arrays(again[0])[1], pts)
