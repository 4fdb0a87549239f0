"""Layout conversions: MediaPipe pose/hand/face and COCO-WholeBody -> OpenPose."""

import numpy as np
import pytest

from zizi_models.pose.convert import (
    FACE_MESH_TO_OPENPOSE70,
    MEDIAPIPE_TO_OPENPOSE_BODY,
    coco_wholebody_to_openpose,
    mediapipe_face_to_openpose,
    mediapipe_hand_to_openpose,
    mediapipe_pose_to_openpose,
)
from zizi_models.pose.skeleton import BODY_NAMES

# MediaPipe BlazePose landmark names, in index order
MP_NAMES = (
    "nose", "left_eye_inner", "left_eye", "left_eye_outer", "right_eye_inner", "right_eye", "right_eye_outer",
    "left_ear", "right_ear", "mouth_left", "mouth_right", "left_shoulder", "right_shoulder", "left_elbow",
    "right_elbow", "left_wrist", "right_wrist", "left_pinky", "right_pinky", "left_index", "right_index",
    "left_thumb", "right_thumb", "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle",
    "left_heel", "right_heel", "left_foot_index", "right_foot_index",
)


def test_body_mapping_joins_the_same_named_joints():
    for op_idx, mp_idx in enumerate(MEDIAPIPE_TO_OPENPOSE_BODY):
        if BODY_NAMES[op_idx] == "neck":
            assert mp_idx == -1
        else:
            assert MP_NAMES[mp_idx] == BODY_NAMES[op_idx]


def test_mediapipe_pose_values_neck_and_visibility():
    lm = np.zeros((33, 3))
    lm[:, 0] = np.linspace(0.1, 0.9, 33)
    lm[:, 1] = np.linspace(0.2, 0.8, 33)
    lm[:, 2] = 0.9
    lm[11, 2], lm[12, 2] = 0.8, 0.6  # shoulders
    lm[27, 2] = 0.3  # left ankle below the threshold
    lm[28, 0] = 1.2  # right ankle outside the frame
    body = mediapipe_pose_to_openpose(lm, width=200, height=100, min_confidence=0.5)
    np.testing.assert_allclose(body[0], [lm[0, 0] * 200, lm[0, 1] * 100, 0.9])
    np.testing.assert_allclose(body[2], [lm[12, 0] * 200, lm[12, 1] * 100, 0.6])  # right shoulder
    neck = ((lm[11, :2] + lm[12, :2]) / 2) * [200, 100]
    np.testing.assert_allclose(body[1], [*neck, 0.6])  # min of the two shoulders
    assert np.all(body[13] == 0) and np.all(body[10] == 0)
    lm[12, 2] = 0.1  # one shoulder missing -> no neck
    assert np.all(mediapipe_pose_to_openpose(lm, 200, 100)[1] == 0)
    with pytest.raises(ValueError, match=r"expected shape \[33, >=3\]"):
        mediapipe_pose_to_openpose(lm[:20], 200, 100)


def test_hand_keeps_order_and_confidence():
    lm = np.stack([np.linspace(0.1, 0.5, 21), np.linspace(0.3, 0.7, 21), np.zeros(21)], 1)
    hand = mediapipe_hand_to_openpose(lm, 100, 50, confidence=0.7)
    np.testing.assert_allclose(hand[:, 0], lm[:, 0] * 100)
    np.testing.assert_allclose(hand[:, 1], lm[:, 1] * 50)
    assert np.all(hand[:, 2] == pytest.approx(0.7))


def test_face_mapping_is_a_symmetric_injective_pick():
    idx = FACE_MESH_TO_OPENPOSE70
    assert len(idx) == 68 and len(set(idx)) == 68 and max(idx) < 468
    # midline points of the canonical mesh: chin, nose bridge/tip, subnasale, lip centres
    for op, mesh in ((8, 152), (27, 168), (30, 4), (33, 2), (51, 0), (57, 17), (62, 13), (66, 14)):
        assert idx[op] == mesh


def test_face_points_and_pupils():
    rng = np.random.default_rng(0)
    mesh = np.concatenate([rng.uniform(0.2, 0.8, (478, 2)), np.zeros((478, 1))], 1)
    face = mediapipe_face_to_openpose(mesh[:468], 300, 200, confidence=0.9)
    np.testing.assert_allclose(face[36, :2], mesh[33, :2] * [300, 200])
    np.testing.assert_allclose(face[68, :2], face[36:42, :2].mean(0))  # pupil = eye contour centre
    np.testing.assert_allclose(face[69, :2], face[42:48, :2].mean(0))
    assert np.all(face[:, 2] == pytest.approx(0.9))
    refined = mediapipe_face_to_openpose(mesh, 300, 200)
    np.testing.assert_allclose(refined[68, :2], mesh[468, :2] * [300, 200])  # iris centre
    np.testing.assert_allclose(refined[69, :2], mesh[473, :2] * [300, 200])


def test_coco_wholebody_to_openpose():
    kp = np.stack([np.arange(133) + 10.0, np.arange(133) + 20.0], 1)
    sc = np.full(133, 0.9)
    sc[9] = 0.1  # COCO left wrist below threshold
    body, lhand, rhand, face = coco_wholebody_to_openpose(kp, sc, min_confidence=0.3)
    np.testing.assert_allclose(body[0], [10, 20, 0.9])  # nose
    np.testing.assert_allclose(body[2], [16, 26, 0.9])  # right shoulder = COCO 6
    np.testing.assert_allclose(body[1], [15.5, 25.5, 0.9])  # neck = mid(COCO 5, 6)
    np.testing.assert_allclose(body[14], [12, 22, 0.9])  # right eye = COCO 2
    assert np.all(body[7] == 0)  # left wrist dropped
    np.testing.assert_allclose(lhand[0], [101, 111, 0.9])
    np.testing.assert_allclose(rhand[20], [142, 152, 0.9])
    np.testing.assert_allclose(face[0], [33, 43, 0.9])
    assert face[68, 2] > 0 and face[69, 2] > 0  # pupils from the eye contours
