"""Retargeting keeps the driving limb angles and takes the reference limb lengths."""

import numpy as np
import pytest

from zizi_models.pose.retarget import bone_lengths, retarget_pose_keypoint
from zizi_models.pose.schema import frame_from_arrays, frame_to_arrays
from zizi_models.pose.skeleton import BODY_TREE, HAND_LEFT_SLICE, K_ALL, L_WRIST, NECK, NOSE

# bone direction (degrees, image coordinates: 0 = +x, 90 = down) of a standing person
BASE_ANGLES = {
    NOSE: -90, 2: 180, 5: 0, 8: 100, 11: 80, 14: -120, 15: -60, 16: 180, 17: 0,
    3: 100, 4: 90, 6: 80, 7: 90, 9: 90, 10: 90, 12: 90, 13: 90,
}
DRIVING_LENGTHS = {NOSE: 40, 2: 50, 5: 50, 8: 120, 11: 120, 14: 12, 15: 12, 16: 15, 17: 15,
                   3: 60, 4: 55, 6: 60, 7: 55, 9: 80, 10: 75, 12: 80, 13: 75}


def _skeleton(root, lengths, angles, hand_offsets=None):
    pts = np.zeros((K_ALL, 3))
    pts[NECK] = (*root, 1.0)
    for parent, child in BODY_TREE:
        a = np.deg2rad(angles[child])
        pts[child, :2] = pts[parent, :2] + lengths[child] * np.array([np.cos(a), np.sin(a)])
        pts[child, 2] = 0.9
    if hand_offsets is not None:
        pts[HAND_LEFT_SLICE, :2] = pts[L_WRIST, :2] + hand_offsets
        pts[HAND_LEFT_SLICE, 2] = 0.8
    return pts


def _angles(body):
    return np.array([np.arctan2(*(body[c, 1::-1] - body[p, 1::-1])) for p, c in BODY_TREE])


@pytest.fixture
def driving():
    rng = np.random.default_rng(0)
    hand = rng.uniform(-10, 10, (21, 2))
    frames = []
    for t in range(12):
        angles = dict(BASE_ANGLES)
        angles[3] += 8 * t  # right arm raising
        angles[4] += 10 * t
        angles[9] -= 3 * t  # right leg kicking
        pts = _skeleton((200 + 5 * t, 150 + 2 * t), DRIVING_LENGTHS, angles, hand)
        frames.append(frame_from_arrays([0], pts[None], 640, 480))
    return frames


@pytest.fixture
def reference():
    lengths = {k: v * (1.4 if k in (3, 4, 6, 7, 9, 10, 12, 13) else 0.9) for k, v in DRIVING_LENGTHS.items()}
    pts = _skeleton((256, 120), lengths, BASE_ANGLES)
    return frame_from_arrays([0], pts[None], 512, 768), lengths


def test_limb_angles_from_driving_lengths_from_reference(driving, reference):
    ref_frame, ref_lengths = reference
    out = retarget_pose_keypoint(driving, ref_frame)
    assert len(out) == len(driving)
    assert (out[0]["canvas_width"], out[0]["canvas_height"]) == (512, 768)
    expected = np.array([ref_lengths[c] for _, c in BODY_TREE])
    for src, dst in zip(driving, out, strict=True):
        body_src = frame_to_arrays(src)[1][0, :18]
        body_dst = frame_to_arrays(dst)[1][0, :18]
        np.testing.assert_allclose(bone_lengths(body_dst), expected, rtol=1e-6)
        np.testing.assert_allclose(_angles(body_dst), _angles(body_src), atol=1e-6)
        np.testing.assert_allclose(body_dst[:, 2], body_src[:, 2])  # confidences kept


def test_root_starts_on_reference_and_follows_scaled_motion(driving, reference):
    ref_frame, _ = reference
    out = retarget_pose_keypoint(driving, ref_frame)
    ref_neck = frame_to_arrays(ref_frame)[1][0, NECK, :2]
    necks = np.array([frame_to_arrays(f)[1][0, NECK, :2] for f in out])
    drv_necks = np.array([frame_to_arrays(f)[1][0, NECK, :2] for f in driving])
    np.testing.assert_allclose(necks[0], ref_neck, atol=1e-9)
    motion, drv_motion = necks - necks[0], drv_necks - drv_necks[0]
    s = np.linalg.norm(motion[-1]) / np.linalg.norm(drv_motion[-1])
    np.testing.assert_allclose(motion, s * drv_motion, atol=1e-6)
    # global scale = median per-bone ratio: 9 bones x 0.9 and 8 limbs x 1.4 -> 0.9
    assert s == pytest.approx(0.9)


def test_hands_stay_attached_to_the_wrist(driving, reference):
    ref_frame, _ = reference
    out = retarget_pose_keypoint(driving, ref_frame)
    for src, dst in zip(driving, out, strict=True):
        a, b = frame_to_arrays(src)[1][0], frame_to_arrays(dst)[1][0]
        off_src = a[HAND_LEFT_SLICE, :2] - a[L_WRIST, :2]
        off_dst = b[HAND_LEFT_SLICE, :2] - b[L_WRIST, :2]
        np.testing.assert_allclose(off_dst, 0.9 * off_src, atol=1e-6)


def test_missing_parent_uses_global_map_and_errors_are_clear(driving, reference):
    ref_frame, _ = reference
    ids, pts = frame_to_arrays(driving[5])
    pts[0, 3] = 0.0  # right elbow missing: the wrist cannot hang from it
    driving = list(driving)
    driving[5] = frame_from_arrays(ids, pts, 640, 480)
    out = frame_to_arrays(retarget_pose_keypoint(driving, ref_frame)[5])[1][0]
    assert out[3, 2] == 0.0 and out[4, 2] > 0.0
    root0 = frame_to_arrays(driving[0])[1][0, NECK, :2]
    ref_root = frame_to_arrays(ref_frame)[1][0, NECK, :2]
    np.testing.assert_allclose(out[4, :2], ref_root + 0.9 * (pts[0, 4, :2] - root0))
    with pytest.raises(ValueError, match="reference frame person_id 7 not found"):
        retarget_pose_keypoint(driving, ref_frame, reference_person_id=7)
    empty = frame_from_arrays([], np.zeros((0, K_ALL, 3)), 512, 512)
    with pytest.raises(ValueError, match="reference frame has no person"):
        retarget_pose_keypoint(driving, empty)
